import type { TestContext } from 'node:test';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { defaultRegistry } from '../../src/components.ts';
import type { Exporter, ExporterFactory } from '../../src/component/types.ts';
import { defineSchema } from '../../src/config/schema.ts';
import { resolveConfig, type RawServiceConfig } from '../../src/config/service.ts';
import type { InventoryHub } from '../../src/pipeline/inventory.ts';
import { PipelineService } from '../../src/pipeline/service.ts';
import { tailscaleLogsReceiverFactory } from '../../receivers/tailscale_logs/index.ts';
import { memoryLogger } from './index.ts';

/** An exporter that keeps every log record (and each batch as delivered) for assertions. */
export class LogsSink implements Exporter {
  readonly records: ReadableLogRecord[] = [];
  readonly batches: ReadableLogRecord[][] = [];
  async start(): Promise<void> {}
  async shutdown(): Promise<void> {}
  async consume(): Promise<void> {}
  async consumeLogs(batch: readonly ReadableLogRecord[]): Promise<void> {
    this.batches.push([...batch]);
    this.records.push(...batch);
  }
}

/** Exporter type `sink` (logs only): add it to a registry with `defaultRegistry([..., logsSinkFactory])`. */
export const logsSinkFactory: ExporterFactory<Record<string, never>> = {
  kind: 'exporter',
  type: 'sink',
  stability: 'development',
  description: 'test sink',
  signals: ['logs'],
  configSchema: defineSchema<Record<string, never>>({}),
  createExporter: () => new LogsSink(),
};

/**
 * A pipeline of one `tailscale_logs` receiver (configured by `receiver`) into a logs sink, with
 * a memory logger; shut down after the test.
 */
export function logsPipeline(t: TestContext, receiver: Record<string, unknown>, opts: { clock: { now(): number }; inventory?: InventoryHub }): { svc: PipelineService; sink: LogsSink; lines: ReturnType<typeof memoryLogger>['lines'] } {
  const { logger, lines } = memoryLogger();
  const registry = defaultRegistry([tailscaleLogsReceiverFactory, logsSinkFactory]);
  const raw: RawServiceConfig = {
    receivers: { tailscale_logs: receiver },
    exporters: { sink: {} },
    service: { pipelines: { logs: { receivers: ['tailscale_logs'], exporters: ['sink'] } } },
  };
  const svc = new PipelineService(registry, resolveConfig(raw, registry, 'test'), { logger, clock: opts.clock, ...(opts.inventory ? { inventory: opts.inventory } : {}) });
  t.after(() => svc.shutdown(AbortSignal.timeout(2000)));
  return { svc, sink: svc.exporters.get('sink') as unknown as LogsSink, lines };
}

/** The value of a self-telemetry metric: its points matching `attrs`, summed (undefined: none). */
export async function selfMetric(svc: PipelineService, name: string, attrs: Record<string, string> = {}): Promise<number | undefined> {
  const { resourceMetrics } = await svc.telemetry.collect();
  let sum: number | undefined;
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name !== name) continue;
      for (const p of m.dataPoints) if (Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)) sum = (sum ?? 0) + (p.value as number);
    }
  }
  return sum;
}
