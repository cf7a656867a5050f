// OTLP benchmarks: our protobuf encoder against the official serializer, the OTLP/gRPC export
// against the official gRPC exporter, and the cost of delta temporality. Used by run.ts.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { configSchema } from '../exporters/otlp/config.ts';
import { GrpcTransport } from '../exporters/otlp/grpc-transport.ts';
import { DeltaConverter } from '../exporters/otlp/temporality.ts';
import { parseConfig } from '../src/config/schema.ts';
import { median, receiverState, tailnetSnapshot, type Result } from './lib.ts';

/** The API and client batches of an N-device tailnet as one ResourceMetrics. */
function tailnetBatch(devices: number, nowMs?: number, state = receiverState()): { rm: ResourceMetrics; series: number } {
  const snap = tailnetSnapshot(devices, nowMs, state);
  return { rm: { resource: snap.client.resource, scopeMetrics: [...snap.api.scopeMetrics, ...snap.client.scopeMetrics] }, series: snap.series };
}

const MB = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;

/** otlp_encode_vs_official: ExportMetricsServiceRequest bytes for a 10,000-device batch (own process). */
export function otlpEncode(quick: boolean, results: Result[]): void {
  const devices = quick ? 1000 : 10_000;
  const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(new URL('./otlp-encode.ts', import.meta.url)), String(devices), quick ? '3' : '5'], { encoding: 'utf8', maxBuffer: 1e6 });
  type M = { ms: number; bytes: number; size: number };
  const { series, ours, official } = JSON.parse(out.trim().split('\n').pop() as string) as { series: number; ours: M; official: M };
  const ratio = ours.ms / official.ms;
  results.push({
    name: 'otlp_encode_vs_official',
    value: Math.round(ours.ms),
    unit: 'ms',
    peer: Math.round(official.ms),
    ratio: +ratio.toFixed(2),
    target: 'ratio ≤ 0.5',
    met: ratio <= 0.5,
    note: `${series} series (${devices} devices), one request of ${MB(ours.size)} (official ${MB(official.size)}); ours writes staleness flags, the official serializer cannot`,
  });
  const allocRatio = ours.bytes / official.bytes;
  results.push({
    name: 'otlp_encode_alloc_vs_official',
    value: +(ours.bytes / 1e6).toFixed(1),
    unit: 'MB allocated',
    peer: +(official.bytes / 1e6).toFixed(1),
    ratio: +allocRatio.toFixed(2),
    target: 'ratio ≤ 1.0',
    met: allocRatio <= 1.0,
    note: `V8 heap bytes allocated to encode the same ${devices}-device request, from a collected heap (ArrayBuffers not counted: the ${MB(ours.size)} output of both, and our encoder's table of message lengths)`,
  });
}

/** An OTLP/gRPC endpoint in a child process; resolves with its address. */
async function grpcSink(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./otlp-grpc-sink.ts', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`gRPC sink exited with ${code}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * otlp_grpc_export_vs_official: one 10,000-device batch exported over loopback gRPC to a
 * server in another process, by our transport (official gRPC exporter base, our encoder) and by
 * the official @opentelemetry/exporter-metrics-otlp-grpc exporter.
 */
export async function otlpGrpcExport(quick: boolean, results: Result[]): Promise<void> {
  const devices = quick ? 1000 : 10_000;
  const { rm, series } = tailnetBatch(devices);
  const sink = await grpcSink();
  const parsed = parseConfig(configSchema, { protocol: 'grpc', endpoint: sink.url, timeout: '60s' }, 'bench', 'otlp');
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const ours = new GrpcTransport(parsed.config, undefined);
  const official = new OTLPMetricExporter({ url: sink.url, credentials: credentials.createInsecure(), timeoutMillis: 60_000 });
  const rounds = quick ? 3 : 6;
  const time = async (fn: () => Promise<{ code: number; error?: Error }>): Promise<number> => {
    const ts: number[] = [];
    for (let i = 0; i <= rounds; i++) {
      const t0 = performance.now();
      const r = await fn();
      if (r.code !== 0) throw new Error(`export failed: ${r.error?.message}`);
      if (i > 0) ts.push(performance.now() - t0); // the first one opens the connection
    }
    return median(ts);
  };
  try {
    const a = await time(() => ours.export(rm));
    const b = await time(() => new Promise((resolve) => official.export(rm, resolve)));
    results.push({
      name: 'otlp_grpc_export_vs_official',
      value: Math.round(a),
      unit: 'ms',
      peer: Math.round(b),
      ratio: +(a / b).toFixed(2),
      target: 'ratio ≤ 1.0',
      met: a / b <= 1.0,
      note: `${series} series (${devices} devices) per Export call over loopback gRPC to another process; peer = official exporter-metrics-otlp-grpc`,
    });
  } finally {
    ours.close(new Error('bench done'));
    await ours.shutdown();
    await official.shutdown();
    await sink.stop();
  }
}

/** otlp_delta_convert: cumulative → delta for a 10,000-device batch, steady state. */
export function otlpDelta(quick: boolean, results: Result[]): void {
  const devices = quick ? 1000 : 10_000;
  const state = receiverState();
  const t0 = Date.now();
  const batches = [0, 1, 2, 3, 4, 5].map((i) => tailnetBatch(devices, t0 + i * 30_000, state));
  const converter = new DeltaConverter('delta');
  converter.convert((batches[0] as { rm: ResourceMetrics }).rm, 'bench', 'pipeline');
  const ts: number[] = [];
  for (const b of batches.slice(1)) {
    const s = performance.now();
    converter.convert(b.rm, 'bench', 'pipeline');
    ts.push(performance.now() - s);
  }
  const ms = median(ts);
  results.push({
    name: 'otlp_delta_convert',
    value: Math.round(ms),
    unit: 'ms/batch',
    target: 'reference',
    met: null,
    note: `${batches[0]?.series} series (${devices} devices), ${converter.trackedSeries()} counter series held (= the live ones)`,
  });
}
