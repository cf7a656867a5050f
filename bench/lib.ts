import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BatchBuilder } from '../src/model/batch.ts';
import { makeDevice, finishDevice, renderClientMetrics } from '../src/simulator/model.ts';
import { parseExposition } from '../receivers/device_metrics/exposition.ts';
import { convertFamilies, StartTimeTracker } from '../receivers/device_metrics/convert.ts';
import { decodeDevice } from '../receivers/tailscale_api/decode.ts';
import { buildApiBatch } from '../receivers/tailscale_api/metrics.ts';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { AttributeInterner } from '../src/model/intern.ts';

export interface Result {
  name: string;
  value: number;
  unit: string;
  peer?: number;
  ratio?: number;
  target: string;
  met: boolean | null;
  note?: string;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/** One simulator process: its first line (env, device port) once it listens. */
async function simChild(args: string[]): Promise<{ env: Record<string, string>; port: number; child: ChildProcess }> {
  const script = fileURLToPath(new URL('./sim-child.ts', import.meta.url));
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
  });
  const { env, port } = JSON.parse(line) as { env: Record<string, string>; port: number };
  return { env, port, child };
}

/**
 * Starts the simulator in child processes; resolves with its env once it listens. With
 * `shards` > 1 the device servers are spread over that many processes (the first also serves
 * the API). Each process then holds fewer device servers and their kept connections: two
 * open files per device, against a per-process limit (20,000 on the benchmark machine).
 */
export async function simulatorProcess(opts: { devices: number; latency?: number; uniform?: boolean; listScale?: number; shards?: number }): Promise<{ env: Record<string, string>; child: ChildProcess; children: ChildProcess[]; stop: () => Promise<void> }> {
  const base = [`--devices=${opts.devices}`, `--latency=${opts.latency ?? 0}`, `--uniform=${opts.uniform ?? false}`, `--list-scale=${opts.listScale ?? 1}`];
  const shards = opts.shards ?? 1;
  const first = await simChild(shards > 1 ? [...base, '--shard=0', `--shards=${shards}`] : base);
  const children = [first.child];
  for (let i = 1; i < shards; i++) children.push((await simChild([...base, `--shard=${i}`, `--shards=${shards}`, `--port=${first.port}`])).child);
  return {
    env: first.env,
    child: first.child,
    children,
    stop: () =>
      Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      ).then(() => undefined),
  };
}

/**
 * The series set of an N-device tailnet, built by the receivers' own code (API metrics for
 * every device, all client families for each): what the Prometheus exporter holds.
 */
/** What the receivers keep between cycles (per-device trackers, the API interner). */
export interface ReceiverState {
  trackers: Map<string, StartTimeTracker>;
  interner: AttributeInterner;
}

export function receiverState(): ReceiverState {
  return { trackers: new Map(), interner: new AttributeInterner() };
}

export function tailnetSnapshot(devices: number, nowMs = Date.now(), state: ReceiverState = receiverState()): { api: ResourceMetrics; client: ResourceMetrics; series: number } {
  const apiDevices = [];
  const client = new BatchBuilder({ 'service.name': 'tsmetrics' }, { name: 'tsmetrics/device_metrics' });
  for (let i = 0; i < devices; i++) {
    const d = makeDevice(i, { seed: 11, suffix: 'tail4c8e1a.ts.net', exporterShare: 1, uniform: true });
    apiDevices.push(decodeDevice(finishDevice(d, nowMs)));
    let tracker = state.trackers.get(d.api.id);
    if (!tracker) {
      tracker = new StartTimeTracker();
      state.trackers.set(d.api.id, tracker);
    }
    convertFamilies(parseExposition(renderClientMetrics(d, nowMs, nowMs - 3_600_000)), {
      out: client,
      deviceLabels: { device_id: d.api.id, device_name: d.api.name },
      timeMs: nowMs,
      tracker,
      familyAllowed: () => true,
      maxLabel: 128,
    });
    tracker.commit();
  }
  const api = buildApiBatch(
    apiDevices.filter((d) => d !== undefined),
    { nowMs, includeUserEmail: true, tailnetLabel: '', maxLabel: 128, resource: { 'service.name': 'tsmetrics' }, scopeVersion: '0', interner: state.interner },
  );
  const c = client.build();
  let series = 0;
  for (const rm of [api, c]) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) series += m.dataPoints.length;
  return { api, client: c, series };
}
