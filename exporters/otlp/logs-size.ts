/**
 * Encoded sizes of OTLP log records (ExportLogsServiceRequest, opentelemetry-proto field numbers)
 * and the split of a logs batch into requests of at most `max_request_bytes`. Sizes follow what
 * the official protobuf logs serializer writes; they are measured, never encoded.
 */
import type { AnyValue, Attributes } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsBatch } from '../../src/model/logs.ts';

const varintSize = (v: number): number => (v < 0 ? 10 : v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : v < 2 ** 35 ? 5 : Math.min(10, Math.ceil(Math.log2(v + 1) / 7)));
/** A length-delimited field holding `n` bytes (every field number here is below 16). */
const delimited = (n: number): number => 1 + varintSize(n) + n;
const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

/** The AnyValue message's body. */
function anyValueSize(v: unknown): number {
  if (typeof v === 'string') return delimited(utf8(v));
  if (typeof v === 'boolean') return 2;
  if (typeof v === 'number') return Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63 ? 1 + varintSize(v) : 9;
  if (v instanceof Uint8Array) return delimited(v.length);
  if (Array.isArray(v)) {
    let n = 0;
    for (const x of v) n += delimited(anyValueSize(x));
    return delimited(n);
  }
  if (typeof v === 'object' && v !== null) return delimited(kvsSize(v as Record<string, unknown>));
  return 0;
}

/** Repeated KeyValue fields. */
function kvsSize(attrs: Attributes | Record<string, unknown>): number {
  let n = 0;
  for (const k in attrs) {
    if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
    n += delimited(delimited(utf8(k)) + delimited(anyValueSize((attrs as Record<string, unknown>)[k])));
  }
  return n;
}

/** One LogRecord field of a ScopeLogs, tag and length included. */
export function recordSize(r: ReadableLogRecord): number {
  let n = 9 + 9; // time_unix_nano, observed_time_unix_nano
  if (r.severityNumber) n += 1 + varintSize(r.severityNumber);
  if (r.severityText) n += delimited(utf8(r.severityText));
  if (r.body !== undefined) n += delimited(anyValueSize(r.body as AnyValue));
  if (r.attributes) n += kvsSize(r.attributes);
  n += 1 + varintSize(r.droppedAttributesCount ?? 0);
  if (r.spanContext?.traceFlags) n += 5;
  if (r.spanContext?.traceId) n += delimited(r.spanContext.traceId.length >> 1);
  if (r.spanContext?.spanId) n += delimited(r.spanContext.spanId.length >> 1);
  if (r.eventName) n += delimited(utf8(r.eventName));
  return delimited(n);
}

/** A ResourceLogs' own fields (resource, schema URL) with room for its length prefix. */
function resourceSize(resource: Resource): number {
  return 1 + delimited(kvsSize(resource.attributes) + 2) + (resource.schemaUrl ? delimited(utf8(resource.schemaUrl)) : 0) + 5;
}

/** A ScopeLogs' own fields (scope, schema URL) with room for its length prefix. */
function scopeSize(scope: ReadableLogRecord['instrumentationScope']): number {
  let s = delimited(utf8(scope.name));
  if (scope.version) s += delimited(utf8(scope.version));
  if (scope.attributes) s += kvsSize(scope.attributes);
  if (scope.droppedAttributesCount) s += 1 + varintSize(scope.droppedAttributesCount);
  return 1 + delimited(s) + (scope.schemaUrl ? delimited(utf8(scope.schemaUrl)) : 0) + 5;
}

/**
 * Splits a batch into requests of at most `maxBytes` encoded each, by whole records and in
 * order. A record larger than the limit travels alone. A batch within the limit is returned as
 * it is (the common case: one walk over the records, no copy).
 */
export function splitLogsByEncodedSize(batch: LogsBatch, maxBytes: number): LogsBatch[] {
  const sizes = new Float64Array(batch.length);
  // Every resource and scope is paid for again in each request it appears in.
  const headers = new Map<object, number>();
  const headerOf = (key: object, size: () => number): number => {
    let n = headers.get(key);
    if (n === undefined) headers.set(key, (n = size()));
    return n;
  };
  let total = 0;
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i] as ReadableLogRecord;
    sizes[i] = recordSize(r);
    total += sizes[i] as number;
  }
  for (const r of batch) {
    headerOf(r.resource, () => resourceSize(r.resource));
    headerOf(r.instrumentationScope, () => scopeSize(r.instrumentationScope));
    // Most batches carry one resource and one scope; more would be a reason to look closer.
    if (headers.size > 2) break;
  }
  let all = 0;
  for (const v of headers.values()) all += v;
  if (headers.size <= 2 && total + all <= maxBytes) return [batch];
  const out: LogsBatch[] = [];
  let start = 0;
  let used = 0;
  const seen = new Set<object>();
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i] as ReadableLogRecord;
    let extra = sizes[i] as number;
    if (!seen.has(r.resource)) extra += headerOf(r.resource, () => resourceSize(r.resource));
    if (!seen.has(r.instrumentationScope)) extra += headerOf(r.instrumentationScope, () => scopeSize(r.instrumentationScope));
    if (i > start && used + extra > maxBytes) {
      out.push(batch.slice(start, i));
      start = i;
      seen.clear();
      extra = (sizes[i] as number) + headerOf(r.resource, () => resourceSize(r.resource)) + headerOf(r.instrumentationScope, () => scopeSize(r.instrumentationScope));
      used = 0;
    }
    seen.add(r.resource);
    seen.add(r.instrumentationScope);
    used += extra;
  }
  if (start < batch.length) out.push(start === 0 ? batch : batch.slice(start));
  return out;
}
