// Our OTLP protobuf encoder against the official serializer, in its own process (run with
// --expose-gc) so each round starts from a collected heap: time, and V8 heap bytes allocated
// (what is held at the end plus what every collection during the round freed). ArrayBuffer
// backing stores are left out: V8 frees them after the collection that found them.
import v8 from 'node:v8';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { encodeMetricsRequest } from '../exporters/otlp/protobuf.ts';
import { median, tailnetSnapshot } from './lib.ts';

const devices = Number(process.argv[2] ?? 10000);
const rounds = Number(process.argv[3] ?? 5);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const snap = tailnetSnapshot(devices);
const rm: ResourceMetrics = { resource: snap.client.resource, scopeMetrics: [...snap.api.scopeMetrics, ...snap.client.scopeMetrics] };

/** One call of `fn` from a collected heap: its time and the V8 heap bytes it allocated. */
function once(fn: () => Uint8Array | undefined): { ms: number; bytes: number; size: number } {
  gc?.();
  const before = v8.getHeapStatistics().used_heap_size;
  const profiler = new v8.GCProfiler();
  profiler.start();
  const t0 = performance.now();
  const size = fn()?.length ?? 0;
  const ms = performance.now() - t0;
  let freed = 0;
  for (const s of profiler.stop().statistics) freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
  return { ms, bytes: v8.getHeapStatistics().used_heap_size - before + freed, size };
}

function measure(fn: () => Uint8Array | undefined): { ms: number; bytes: number; size: number } {
  fn(); // warm-up
  const runs = Array.from({ length: rounds }, () => once(fn));
  return { ms: median(runs.map((r) => r.ms)), bytes: median(runs.map((r) => r.bytes)), size: runs.at(-1)?.size ?? 0 };
}

const ours = measure(() => encodeMetricsRequest(rm));
// The rounds above reuse the batch's attributes objects, as the product does from one cycle to
// the next (receivers keep a series' object), so they meet our encoder's per-object cache warm.
// The first cycle after a start, or a batch of all-new series, meets it cold: one encode of a
// fresh snapshot (new objects, same shape) with the code already compiled.
const ours_cold = ((): { ms: number; bytes: number; size: number } => {
  const fresh = tailnetSnapshot(devices);
  const frm: ResourceMetrics = { resource: fresh.client.resource, scopeMetrics: [...fresh.api.scopeMetrics, ...fresh.client.scopeMetrics] };
  return once(() => encodeMetricsRequest(frm));
})();
const official = measure(() => ProtobufMetricsSerializer.serializeRequest(rm));
process.stdout.write(JSON.stringify({ series: snap.series, ours, ours_cold, official }) + '\n');
