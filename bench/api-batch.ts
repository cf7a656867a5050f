// `npm run bench:api-batch [-- devices]`: what one tailscale_api cycle costs the main thread for a
// large tailnet, outside the full run — decoding the simulator's device list and building the
// batch from it with a warm interner (the steady state). Prints medians of repeated rounds.
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { AttributeInterner } from '../src/model/intern.ts';
import { decodeDeviceList } from '../receivers/tailscale_api/decode.ts';
import { buildApiBatch } from '../receivers/tailscale_api/metrics.ts';
import { median } from './lib.ts';

const n = Number(process.argv[2] ?? 10_000);
const sim = new TailnetSimulator({ devices: n, uniform: true, deviceServers: false, seed: 7, ephemeralLifetimeMs: 0 });
await sim.start();
const res = await fetch(`${sim.apiUrl}/api/v2/tailnet/${encodeURIComponent(sim.tailnet)}/devices?fields=all`, { headers: { authorization: `Bearer ${sim.apiKeys[0]}` } });
const text = await res.text();
await sim.stop();
const { devices } = decodeDeviceList(text);
const opts = { nowMs: Date.now(), includeUserEmail: true, tailnetLabel: 'example.com', maxLabel: 256, resource: {}, scopeVersion: 'bench', interner: new AttributeInterner() };
const time = (f: () => void, rounds: number): number[] => {
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    f();
    out.push(performance.now() - t0);
  }
  return out;
};
const build = time(() => buildApiBatch(devices, opts), 30);
const decode = time(() => decodeDeviceList(text), 10);
process.stdout.write(`${devices.length} devices, ${(text.length / 1e6).toFixed(1)} MB of JSON: build ${median(build).toFixed(1)} ms (fastest ${Math.min(...build).toFixed(1)}), decode ${median(decode).toFixed(1)} ms (median of 30 and 10 rounds)\n`);
