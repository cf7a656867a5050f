/**
 * The split of a logs batch into requests of at most `max_request_bytes`, encoded. Sizes come
 * from the logs encoder's own measurement (logs-protobuf.ts), which the requests are then
 * written from: a batch is walked once to be measured, whether it is split or not.
 */
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsBatch } from '../../src/model/logs.ts';
import { adoptMeasurement, measureLogRecords, resourceLogsOverhead, scopeLogsOverhead } from './logs-protobuf.ts';

/**
 * Splits a batch into requests of at most `maxBytes` encoded each, by whole records and in
 * order. A record larger than the limit travels alone. A batch within the limit is returned as
 * it is (no copy).
 */
export function splitLogsByEncodedSize(batch: LogsBatch, maxBytes: number): LogsBatch[] {
  const m = measureLogRecords(batch);
  const starts = m.starts;
  const sizes = new Float64Array(batch.length);
  for (let i = 0; i < batch.length; i++) sizes[i] = (starts[i + 1] as number) - (starts[i] as number);
  // Every resource and scope is paid for again in each request it appears in.
  const headers = new Map<object, number>();
  const headerOf = <K extends object>(key: K, size: (k: K) => number): number => {
    let n = headers.get(key);
    if (n === undefined) headers.set(key, (n = size(key)));
    return n;
  };
  const resourceHeader = (r: Resource): number => headerOf(r, resourceLogsOverhead);
  const scopeHeader = (s: ReadableLogRecord['instrumentationScope']): number => headerOf(s, scopeLogsOverhead);
  const total = starts[batch.length] as number;
  let lastResource: Resource | undefined;
  let lastScope: object | undefined;
  for (const r of batch) {
    if (r.resource === lastResource && r.instrumentationScope === lastScope) continue;
    lastResource = r.resource;
    lastScope = r.instrumentationScope;
    resourceHeader(r.resource);
    scopeHeader(r.instrumentationScope);
    // Most batches carry one resource and one scope; more would be a reason to look closer.
    if (headers.size > 2) break;
  }
  let all = 0;
  for (const v of headers.values()) all += v;
  if (headers.size <= 2 && total + all <= maxBytes) {
    adoptMeasurement(batch, m, 0);
    return [batch];
  }
  const out: LogsBatch[] = [];
  let start = 0;
  let used = 0;
  // A scope is one ScopeLogs per resource it appears under: it is paid for per pair.
  const seen = new Map<Resource, Set<object>>();
  const cut = (from: number, to: number): void => {
    const part = from === 0 && to === batch.length ? batch : batch.slice(from, to);
    adoptMeasurement(part, m, from);
    out.push(part);
  };
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i] as ReadableLogRecord;
    let extra = sizes[i] as number;
    const scopes = seen.get(r.resource);
    if (!scopes) extra += resourceHeader(r.resource);
    if (!scopes?.has(r.instrumentationScope)) extra += scopeHeader(r.instrumentationScope);
    if (i > start && used + extra > maxBytes) {
      cut(start, i);
      start = i;
      seen.clear();
      extra = (sizes[i] as number) + resourceHeader(r.resource) + scopeHeader(r.instrumentationScope);
      used = 0;
    }
    let own = seen.get(r.resource);
    if (!own) seen.set(r.resource, (own = new Set()));
    own.add(r.instrumentationScope);
    used += extra;
  }
  if (start < batch.length) cut(start, batch.length);
  return out;
}
