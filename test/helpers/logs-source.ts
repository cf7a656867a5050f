import type { Attributes, HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsBatch } from '../../src/model/logs.ts';
import type { BatchInfo, LogsConsumer, Receiver, ReceiverFactory } from '../../src/component/types.ts';
import { defineSchema } from '../../src/config/schema.ts';

/**
 * `test_logs`: a logs receiver for tests that delivers the batches it is handed, one per
 * `collectNow()`, through the real pipeline (processors, fan-out, counters, exporters).
 */
export class LogsSource {
  /** Batches the next collections deliver, in order. */
  readonly pending: LogsBatch[] = [];
  private readonly _next: LogsConsumer[] = [];

  readonly factory: ReceiverFactory<{ source: string }> = {
    kind: 'receiver',
    type: 'test_logs',
    stability: 'development',
    description: 'Test-only logs source.',
    signals: ['logs'],
    configSchema: defineSchema<{ source: string }>({ source: { doc: 'unused', format: String, default: '' } }),
    createReceiver: () => {
      throw new Error('test_logs emits logs only');
    },
    createLogsReceiver: (_settings, _config, next): Receiver => {
      this._next.push(next);
      return {
        start: async () => undefined,
        shutdown: async () => undefined,
        collectNow: async () => {
          const batch = this.pending.shift();
          const info: BatchInfo = { source: 'test_logs', time: Date.now(), interval: 60_000 };
          if (batch) await next.consumeLogs(batch, info);
        },
      };
    },
  };
}

/** A log record as a receiver would build it (plain fields, shared resource and scope objects). */
export function logRecord(resource: Resource, scope: ReadableLogRecord['instrumentationScope'], fields: Partial<Omit<ReadableLogRecord, 'resource' | 'instrumentationScope'>> = {}): ReadableLogRecord {
  const time: HrTime = fields.hrTime ?? [1_700_000_000, 123_456_789];
  return {
    hrTime: time,
    hrTimeObserved: fields.hrTimeObserved ?? time,
    attributes: fields.attributes ?? ({} as Attributes),
    droppedAttributesCount: fields.droppedAttributesCount ?? 0,
    resource,
    instrumentationScope: scope,
    ...(fields.severityNumber !== undefined ? { severityNumber: fields.severityNumber } : {}),
    ...(fields.severityText !== undefined ? { severityText: fields.severityText } : {}),
    ...(fields.body !== undefined ? { body: fields.body } : {}),
    ...(fields.eventName !== undefined ? { eventName: fields.eventName } : {}),
    ...(fields.spanContext !== undefined ? { spanContext: fields.spanContext } : {}),
  };
}
