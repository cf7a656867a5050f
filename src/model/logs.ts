import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';

/**
 * The logs data that travels between components: OpenTelemetry's own log record type
 * (`ReadableLogRecord` of `@opentelemetry/sdk-logs`), so what a receiver builds is what the
 * official OTLP serializer writes. Records that share a `resource` object and an
 * `instrumentationScope` object are grouped into one `ResourceLogs` / `ScopeLogs` on the wire, so
 * a producer reuses those two objects for a whole batch. A batch is immutable: a processor that
 * changes records returns new ones.
 */
export type LogRecordData = ReadableLogRecord;

/** One delivery of log records. */
export type LogsBatch = readonly ReadableLogRecord[];

/** Records in a batch (for the received/sent/dropped counters). */
export function countRecords(batch: LogsBatch | null): number {
  return batch ? batch.length : 0;
}
