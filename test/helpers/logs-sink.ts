import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Exporter, ExporterFactory } from '../../src/component/types.ts';
import { defineSchema } from '../../src/config/schema.ts';

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
