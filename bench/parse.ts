// Parser throughput against parse-prometheus-text-format, in a process of its own so the
// figures do not depend on what ran before (GC state, JIT). Prints one JSON line.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import parsePtf from 'parse-prometheus-text-format';
import { parseExposition } from '../receivers/device_metrics/exposition.ts';

const quick = process.argv.includes('--quick');
// Kept free of other imports: a bigger heap slows every parser's GC and blurs the comparison.
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fixture = readFileSync(fileURLToPath(new URL('../test/fixtures/client-metrics.txt', import.meta.url)), 'utf8');

function genericCorpus(bytes: number): string {
  let s = '';
  let fam = 0;
  while (s.length < bytes) {
    const name = `app_requests_${fam}_total`;
    s += `# HELP ${name} Requests handled by shard ${fam}.\n# TYPE ${name} counter\n`;
    for (let i = 0; i < 500; i++) s += `${name}{method="${['GET', 'POST', 'PUT'][i % 3]}",code="${200 + (i % 7)}",handler="/api/v${i % 4}/items",instance="10.0.${fam % 256}.${i % 256}:8080"} ${i * 17 + fam}\n`;
    fam++;
  }
  return s;
}

/**
 * Both parsers' throughput (MB/s) on `inputs`, their rounds interleaved: this machine's speed
 * drifts by tens of percent within seconds, and timing all of one parser's rounds before the
 * other's rounds put that drift into the ratio.
 */
/** A full collection when the process runs with --expose-gc (run.ts starts it so). */
const collect = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

const throughputs = (fns: ReadonlyArray<(s: string) => unknown>, inputs: string[], rounds: number): number[] => {
  const bytes = inputs.reduce((n, s) => n + s.length, 0);
  for (const fn of fns) for (let w = 0; w < 3; w++) for (const s of inputs) fn(s); // warm-up: JIT each parser fully
  const times = fns.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => {
      // Each round starts from a collected heap, so neither parser pays for the other's garbage.
      collect();
      const t0 = performance.now();
      for (const s of inputs) fn(s);
      (times[i] as number[]).push(performance.now() - t0);
    });
  }
  return times.map((ts) => bytes / 1e6 / (median(ts) / 1000));
};

const reps = quick ? 400 : 4000;
const generic = genericCorpus(quick ? 1_000_000 : 10_000_000);
// Conformance first: on this corpus both parsers must agree, or the speed is moot.
if (parseExposition(generic).length !== (parsePtf(generic) as unknown[]).length) throw new Error('parsers disagree on the generic corpus');
const out: Record<string, { ours: number; theirs: number; bytes: number }> = {};
for (const [label, inputs] of [['tailscaled', new Array<string>(reps).fill(fixture)], ['generic', [generic]]] as const) {
  const [ours, theirs] = throughputs([parseExposition, (s) => parsePtf(s)], inputs as string[], quick ? 5 : 9) as [number, number];
  out[label] = { ours, theirs, bytes: (inputs as string[]).reduce((n, s) => n + s.length, 0) };
}
process.stdout.write(JSON.stringify(out) + '\n');
