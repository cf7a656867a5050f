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

function measure(fn: () => Uint8Array | undefined): { ms: number; bytes: number; size: number } {
  fn(); // warm-up
  const ms: number[] = [];
  const bytes: number[] = [];
  let size = 0;
  for (let i = 0; i < rounds; i++) {
    gc?.();
    const before = v8.getHeapStatistics().used_heap_size;
    const profiler = new v8.GCProfiler();
    profiler.start();
    const t0 = performance.now();
    size = fn()?.length ?? 0;
    ms.push(performance.now() - t0);
    let freed = 0;
    for (const s of profiler.stop().statistics) freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    bytes.push(v8.getHeapStatistics().used_heap_size - before + freed);
  }
  return { ms: median(ms), bytes: median(bytes), size };
}

const ours = measure(() => encodeMetricsRequest(rm));
const official = measure(() => ProtobufMetricsSerializer.serializeRequest(rm));
process.stdout.write(JSON.stringify({ series: snap.series, ours, official }) + '\n');
