// Runs the tailnet simulator in its own process so simulated devices never share the measured
// process. Prints one JSON line {env, pid, devices, port} and runs until SIGTERM. With
// --shard=i --shards=n [--port=p] it serves only that shard of the device servers (see
// SimulatorOptions.deviceShard).
import { TailnetSimulator } from '../src/simulator/simulator.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const sim = new TailnetSimulator({
  devices: Number(args.get('devices') ?? 100),
  deviceLatencyMs: Number(args.get('latency') ?? 0),
  uniform: args.get('uniform') === 'true',
  exporterShare: 1,
  ephemeralLifetimeMs: 0,
  listScale: Number(args.get('list-scale') ?? 1),
  seed: 7,
  ...(args.has('shard') ? { deviceShard: { index: Number(args.get('shard')), count: Number(args.get('shards')), port: Number(args.get('port') ?? 0) } } : {}),
});
await sim.start();
process.stdout.write(JSON.stringify({ env: sim.env(), pid: process.pid, devices: sim.devices.length, port: sim.devicePort }) + '\n');
process.once('SIGTERM', () => {
  void sim.stop().then(() => process.exit(0));
});
