// `npm run soak`: 1,000 cycles with 20 % device churn and faults switched on and off; live
// series, open sockets and heap after GC must stay flat (under 5 % growth from cycle 100 to 1,000).
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { runSoak } from './soak-lib.ts';

const cycles = Number(process.argv.find((a) => a.startsWith('--cycles='))?.slice(9) ?? 1000);
// Compared from cycle 100 (after warm-up: JIT, caches, first churn generations) to the last.
const from = Math.min(100, Math.floor(cycles / 3));
const r = await runSoak({ cycles, from, devices: 200, log: (s) => process.stderr.write(`${s}\n`) });
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
process.stdout.write(`\nsoak: ${cycles} cycles, 200 devices, 20 % churn per cycle, faults on and off\n`);
process.stdout.write(`heap after GC   cycle ${from}: ${(r.first.heapBytes / 1e6).toFixed(1)} MB  cycle ${cycles}: ${(r.last.heapBytes / 1e6).toFixed(1)} MB  growth ${pct(r.heapGrowth)}\n`);
process.stdout.write(`live series     ${r.first.liveSeries} → ${r.last.liveSeries}  growth ${pct(r.seriesGrowth)}\n`);
process.stdout.write(`open sockets    ${r.first.sockets} → ${r.last.sockets}  growth ${pct(r.socketGrowth)}\n`);
const ok = r.heapGrowth < 0.05 && r.seriesGrowth < 0.05 && r.socketGrowth < 0.05;
process.stdout.write(ok ? 'flat: yes\n' : 'flat: NO\n');
// `--out=` lets the short soak in `npm test` write elsewhere than the committed full-run figures.
const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6) ?? join(fileURLToPath(new URL('.', import.meta.url)), 'results', 'soak.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, cycles, ...r }, null, 2) + '\n');
process.exitCode = ok ? 0 : 1;
