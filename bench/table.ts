// `npm run bench:table -- RUN.json [MORE.json ...]`: the README's performance table from full
// benchmark runs. The first file is the run the table shows; every file given adds to the
// range column, so the spread over runs is stated next to the figure it qualifies.
import { readFileSync } from 'node:fs';
import type { Result } from './lib.ts';

interface Run {
  date: string;
  quick: boolean;
  node: string;
  machine: { cpus: number };
  results: Result[];
}

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: npm run bench:table -- RUN.json [MORE.json ...]\n');
  process.exit(2);
}
const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Run);
const [shown] = runs as [Run, ...Run[]];
if (runs.some((r) => r.quick)) throw new Error('quick runs do not belong in the README table');

const fmt = (v: number): string => (Math.abs(v) >= 10_000 ? Math.round(v).toLocaleString('en-US') : String(v));
const out: string[] = [];
out.push(`Full run of ${shown.date.slice(0, 10)} (${shown.machine.cpus} cores, Node ${shown.node}); range over ${runs.length} full run${runs.length > 1 ? 's' : ''}:`);
out.push('');
out.push('| Benchmark | Figure | Peer | Ratio | Range over runs | Target | Met |');
out.push('|---|---|---|---|---|---|---|');
for (const r of shown.results) {
  // A run counts toward the range only if it measured the same thing (same target and unit).
  const all = runs.map((x) => x.results.find((y) => y.name === r.name)).filter((y): y is Result => y !== undefined && Number.isFinite(y.value) && y.target === r.target && y.unit === r.unit);
  // Ratios are what targets are about when there is a peer; otherwise the value itself.
  const pick = (y: Result): number => (y.ratio !== undefined ? y.ratio : y.value);
  const xs = all.map(pick);
  const range = xs.length > 1 ? `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}${r.ratio !== undefined ? '×' : ''} (${xs.length} runs)` : '';
  const met = r.met === null ? '–' : r.met ? 'yes' : '**no**';
  out.push(`| \`${r.name}\` | ${fmt(r.value)} ${r.unit} | ${r.peer ?? ''} | ${r.ratio ?? ''} | ${range} | ${r.target} | ${met} |`);
}
process.stdout.write(out.join('\n') + '\n');
