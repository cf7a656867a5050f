/**
 * Our protobuf encoder of ExportLogsServiceRequest (field numbers from opentelemetry-proto). It
 * writes the bytes the official `ProtobufLogsSerializer` writes for the same records (same field
 * order, same omitted fields, same grouping by resource and scope object), at a fraction of the
 * cost; logs-protobuf.test.ts holds it to that, byte for byte.
 *
 * Records are written once each, one after the other, into one growing buffer (an arena, see
 * {@link measureLogRecords}); a nested message reserves room for its length and the length is
 * written when the message ends (moving the message in the rare case its prefix needs another
 * size than was reserved). The arena is also the measurement: the exporter's size split
 * (logs-size.ts) reads each record's encoded size from it, and a request is its few resource and
 * scope headers around a copy of its records' bytes. So a batch is walked once, split or not.
 */
import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import { ProtobufLogsSerializer, type IExportLogsServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ErrorCode, TsmetricsError } from '../../src/errors.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { putVarint, TimeBits, TWO32, varintSize } from './wire.ts';

type Scope = ReadableLogRecord['instrumentationScope'];

/** Integers the official serializer writes as `int_value` (others go as `double_value`). */
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

/** The low and high 32 bits the official writer takes from a number outside the uint32 range. */
let wideLo = 0;
let wideHi = 0;
function wide(v: number): void {
  const abs = Math.abs(v);
  wideLo = abs >>> 0;
  wideHi = (abs / TWO32) >>> 0;
  if (v < 0) {
    // Two's complement; NaN and infinities come out as 0, as they do there.
    wideLo = (~wideLo + 1) >>> 0;
    wideHi = (~wideHi + (wideLo === 0 ? 1 : 0)) >>> 0;
  }
}

/**
 * UTF-8 of attribute keys: a few dozen names repeat on every record. Bounded, as body keys come
 * from API answers; once full, new keys are simply written as text.
 */
const keyBytes = new Map<string, Buffer>();
const KEY_CACHE_MAX = 4096;

/** Strings this short are at most 127 bytes in UTF-8: their prefix is one byte, learned as written. */
const SHORT = 42;

/** A hex digit's value, as the official decoder reads one (no validation: ids are trusted). */
const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c - 55);

/**
 * Writes protobuf into a buffer that grows as needed. A nested message reserves the bytes its
 * length is expected to take; {@link end} writes the length there.
 */
class Writer {
  buf: Buffer;
  pos = 0;
  /** Open messages: where each one's length goes, and how many bytes were reserved for it. */
  private _open = new Int32Array(64);
  private _depth = 0;
  private readonly _time = new TimeBits();

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }
  /** Room for `n` more bytes. */
  private _room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n + 1024));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
  private _uvarint(v: number): void {
    this.pos = putVarint(this.buf, this.pos, v);
  }
  /** Starts a length-delimited field (a nested message) whose length should take `reserve` bytes. */
  begin(field: number, reserve = 1): void {
    this._room(16);
    if (this._depth === this._open.length) {
      const grown = new Int32Array(this._open.length * 2);
      grown.set(this._open);
      this._open = grown;
    }
    this.buf[this.pos++] = (field << 3) | 2;
    this._open[this._depth++] = this.pos;
    this._open[this._depth++] = reserve;
    this.pos += reserve;
  }
  end(): void {
    const reserved = this._open[--this._depth] as number;
    const at = this._open[--this._depth] as number;
    const len = this.pos - at - reserved;
    const need = varintSize(len);
    if (need !== reserved) {
      this._room(need - reserved);
      this.buf.copyWithin(at + need, at + reserved, this.pos);
      this.pos += need - reserved;
    }
    if (need === 1) this.buf[at] = len;
    else putVarint(this.buf, at, len);
  }
  /** An int64/uint32 field, with the official writer's treatment of odd numbers. */
  varint(field: number, v: number): void {
    this._room(11);
    const buf = this.buf;
    buf[this.pos++] = field << 3;
    if (v >= 0 && v <= 0xffffffff) return this._uvarint(v >>> 0);
    wide(v);
    let lo = wideLo;
    let hi = wideHi;
    while (hi > 0 || lo > 0x7f) {
      buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[this.pos++] = lo;
  }
  fixed32(field: number, v: number): void {
    this._room(5);
    this.buf[this.pos++] = (field << 3) | 5;
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }
  /** A timestamp as fixed64 nanoseconds, the official writer's bits for any time (wire.ts). */
  time(field: number, t: HrTime): void {
    const bits = this._time;
    bits.set(t[0], t[1]);
    this._room(9);
    const buf = this.buf;
    buf[this.pos++] = (field << 3) | 1;
    buf.writeUInt32LE(bits.lo, this.pos);
    buf.writeUInt32LE(bits.hi, this.pos + 4);
    this.pos += 8;
  }
  double(field: number, v: number): void {
    this._room(9);
    this.buf[this.pos++] = (field << 3) | 1;
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  string(field: number, s: string): void {
    const len = s.length;
    if (len <= SHORT) {
      this._room(2 + 3 * len);
      const buf = this.buf;
      buf[this.pos] = (field << 3) | 2;
      const at = this.pos + 2;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      // Buffer writes UTF-8 as TextEncoder does (a lone surrogate becomes U+FFFD).
      const n = i === len ? len : buf.write(s, at, 'utf8');
      buf[this.pos + 1] = n;
      this.pos = at + n;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    this._room(6 + n);
    this.buf[this.pos++] = (field << 3) | 2;
    this._uvarint(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }
  bytes(field: number, b: Uint8Array): void {
    this._room(6 + b.length);
    this.buf[this.pos++] = (field << 3) | 2;
    this._uvarint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /**
   * A KeyValue whose value is a string of at most {@link SHORT} characters or an integer in the
   * uint32 range, its AnyValue written without opening a nested message: that AnyValue's length
   * takes one byte but for a string of long UTF-8 sequences (moved by a byte then).
   */
  scalarKeyValue(field: number, key: string, v: string | number): void {
    this.begin(field);
    let enc = keyBytes.get(key);
    if (enc === undefined && keyBytes.size < KEY_CACHE_MAX) {
      enc = Buffer.from(key, 'utf8');
      // Only keys of a one-byte length prefix are kept (the write below assumes it).
      if (enc.length >= 0x80) enc = undefined;
      else keyBytes.set(key, enc);
    }
    if (enc === undefined) this.string(1, key);
    else {
      const n = enc.length;
      this._room(2 + n);
      const buf = this.buf;
      buf[this.pos++] = (1 << 3) | 2;
      buf[this.pos++] = n;
      for (let i = 0; i < n; i++) buf[this.pos + i] = enc[i] as number;
      this.pos += n;
    }
    this._room(8);
    const at = this.pos;
    this.buf[at] = (2 << 3) | 2;
    this.pos = at + 2;
    if (typeof v === 'string') this.string(1, v);
    else {
      this.buf[this.pos++] = 3 << 3;
      this._uvarint(v >>> 0);
    }
    // Read after the writes: they may have replaced the buffer.
    const buf = this.buf;
    const len = this.pos - at - 2;
    if (len < 0x80) buf[at + 1] = len;
    else {
      this._room(1);
      this.buf.copyWithin(at + 3, at + 2, this.pos);
      this.pos++;
      this.buf[at + 1] = (len & 0x7f) | 0x80;
      this.buf[at + 2] = len >>> 7;
    }
    this.end();
  }
  /** Hex text written as the bytes it spells (trace and span ids). */
  hex(field: number, s: string): void {
    const n = s.length >>> 1;
    this._room(6 + n);
    const buf = this.buf;
    buf[this.pos++] = (field << 3) | 2;
    this._uvarint(n);
    for (let i = 0; i < n; i++) buf[this.pos++] = (hexDigit(s.charCodeAt(2 * i)) << 4) | hexDigit(s.charCodeAt(2 * i + 1));
  }
  /** What was written, as its own copy. */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

function anyValue(o: Writer, v: unknown): void {
  const t = typeof v;
  if (t === 'string') o.string(1, v as string);
  else if (t === 'boolean') o.varint(2, v ? 1 : 0);
  else if (t === 'number') {
    const n = v as number;
    if (Number.isInteger(n) && n >= INT64_MIN && n < INT64_MAX) o.varint(3, n);
    else o.double(4, n);
  } else if (v instanceof Uint8Array) o.bytes(7, v);
  else if (Array.isArray(v)) {
    o.begin(5);
    for (const x of v as unknown[]) {
      o.begin(1);
      anyValue(o, x);
      o.end();
    }
    o.end();
  } else if (t === 'object' && v !== null) {
    o.begin(6, 2);
    keyValues(o, 1, v as Record<string, unknown>);
    o.end();
  }
  // null, undefined, bigint, symbol, function: an empty AnyValue, as the official serializer writes.
}

/** Repeated KeyValue fields: own enumerable keys in their order. */
function keyValues(o: Writer, field: number, kvs: Attributes | Record<string, unknown>): void {
  for (const k in kvs) {
    if (!Object.prototype.hasOwnProperty.call(kvs, k)) continue;
    const v = (kvs as Record<string, unknown>)[k];
    // Most values are short strings and counts: written without opening their AnyValue.
    if ((typeof v === 'string' && v.length <= SHORT) || (typeof v === 'number' && v >= 0 && v <= 0xffffffff && Number.isInteger(v))) {
      o.scalarKeyValue(field, k, v);
      continue;
    }
    o.begin(field);
    o.string(1, k);
    o.begin(2);
    anyValue(o, v);
    o.end();
    o.end();
  }
}

/** A LogRecord's fields (opentelemetry-proto logs.v1), in the order the official writer uses. */
function logRecord(o: Writer, r: ReadableLogRecord): void {
  o.time(1, r.hrTime);
  if (r.severityNumber !== undefined && r.severityNumber !== 0) o.varint(2, r.severityNumber);
  if (r.severityText) o.string(3, r.severityText);
  if (r.body !== undefined) {
    o.begin(5, 2);
    anyValue(o, r.body as AnyValue);
    o.end();
  }
  if (r.attributes) keyValues(o, 6, r.attributes);
  o.varint(7, r.droppedAttributesCount);
  const sc = r.spanContext;
  if (sc?.traceFlags) o.fixed32(8, sc.traceFlags);
  if (sc?.traceId) o.hex(9, sc.traceId);
  if (sc?.spanId) o.hex(10, sc.spanId);
  o.time(11, r.hrTimeObserved);
  if (r.eventName) o.string(12, r.eventName);
}

/** Every record of a batch written on its own, one after the other; requests are cut from it. */
export interface MeasuredLogs {
  readonly records: LogsBatch;
  /** Record `i` as a ScopeLogs field (tag and length prefix included) is `arena[starts[i], starts[i + 1])`. */
  readonly arena: Buffer;
  readonly starts: Float64Array;
}

/** Average encoded record size seen last, to size the next arena in one go. */
let recordBytesSeen = 256;

/** Writes every record of `batch` (in batch order, each as its own ScopeLogs field). */
export function measureLogRecords(batch: LogsBatch): MeasuredLogs {
  const n = batch.length;
  const starts = new Float64Array(n + 1);
  const w = new Writer(Math.ceil(n * recordBytesSeen * 1.1) + 1024);
  for (let i = 0; i < n; i++) {
    starts[i] = w.pos;
    // A record is rarely under 128 bytes or over 16 KiB: its length is given two bytes.
    w.begin(2, 2);
    logRecord(w, batch[i] as ReadableLogRecord);
    w.end();
  }
  starts[n] = w.pos;
  if (n > 0) recordBytesSeen = Math.max(16, w.pos / n);
  return { records: batch, arena: w.buf.subarray(0, w.pos), starts };
}

/** The Resource field of a ResourceLogs (tag and length included). */
function resourceField(resource: Resource): Buffer {
  const w = new Writer(256);
  w.begin(1);
  const attrs = resource.attributes;
  if (attrs) keyValues(w, 1, attrs);
  w.varint(2, 0); // dropped_attributes_count: the official serializer always writes it
  w.end();
  return w.take();
}

/** The InstrumentationScope field of a ScopeLogs (tag and length included). */
function scopeField(scope: Scope): Buffer {
  const w = new Writer(128);
  w.begin(1);
  w.string(1, scope.name);
  if (scope.version) w.string(2, scope.version);
  if (scope.attributes) keyValues(w, 3, scope.attributes);
  if (scope.droppedAttributesCount) w.varint(4, scope.droppedAttributesCount);
  w.end();
  return w.take();
}

const NONE = Buffer.alloc(0);

/** A `schema_url` field (3 in both ResourceLogs and ScopeLogs), or nothing. */
function schemaField(url: string | undefined): Buffer {
  if (!url) return NONE;
  const w = new Writer(64);
  w.string(3, url);
  return w.take();
}

/** Encoded size of a ResourceLogs' own fields (resource, schema URL), its tag and length prefix included. */
export function resourceLogsOverhead(resource: Resource): number {
  // The prefix grows with the records inside; five bytes cover any length below 2^35.
  return 1 + 5 + resourceField(resource).length + schemaField(resource.schemaUrl).length;
}

/** Encoded size of a ScopeLogs' own fields (scope, schema URL), its tag and length prefix included. */
export function scopeLogsOverhead(scope: Scope): number {
  return 1 + 5 + scopeField(scope).length + schemaField(scope.schemaUrl).length;
}

/** The records of one ScopeLogs: a range of the measurement, or a list of its indices. */
interface ScopeGroup {
  scope: Scope;
  from: number;
  to: number;
  records: number[] | undefined;
}

/** Records `from`‥`to` of a measurement, grouped as the official serializer groups them. */
function groups(m: MeasuredLogs, from: number, to: number): Map<Resource, ScopeGroup[]> {
  const out = new Map<Resource, ScopeGroup[]>();
  if (from === to) return out;
  const first = m.records[from] as ReadableLogRecord;
  let uniform = true;
  for (let i = from + 1; i < to; i++) {
    const r = m.records[i] as ReadableLogRecord;
    if (r.resource !== first.resource || r.instrumentationScope !== first.instrumentationScope) {
      uniform = false;
      break;
    }
  }
  // The rule: one resource and one scope, the records one run of the arena.
  if (uniform) return out.set(first.resource, [{ scope: first.instrumentationScope, from, to, records: undefined }]);
  const byResource = new Map<Resource, Map<Scope, number[]>>();
  for (let i = from; i < to; i++) {
    const r = m.records[i] as ReadableLogRecord;
    let scopes = byResource.get(r.resource);
    if (!scopes) byResource.set(r.resource, (scopes = new Map()));
    let list = scopes.get(r.instrumentationScope);
    if (!list) scopes.set(r.instrumentationScope, (list = []));
    list.push(i);
  }
  for (const [resource, scopes] of byResource) out.set(resource, [...scopes].map(([scope, records]) => ({ scope, from: 0, to: 0, records })));
  return out;
}

/** Bytes of a group's records in the arena. */
function recordBytes(m: MeasuredLogs, g: ScopeGroup): number {
  if (!g.records) return (m.starts[g.to] as number) - (m.starts[g.from] as number);
  let n = 0;
  for (const i of g.records) n += (m.starts[i + 1] as number) - (m.starts[i] as number);
  return n;
}

/** Copies a group's records from the arena; runs of neighbours go in one copy. */
function copyRecords(m: MeasuredLogs, g: ScopeGroup, out: Buffer, at: number): number {
  const s = m.starts;
  if (!g.records) return at + m.arena.copy(out, at, s[g.from] as number, s[g.to] as number);
  const list = g.records;
  let pos = at;
  for (let k = 0; k < list.length; ) {
    const a = list[k] as number;
    let b = a + 1;
    k++;
    while (k < list.length && list[k] === b) {
      b++;
      k++;
    }
    pos += m.arena.copy(out, pos, s[a] as number, s[b] as number);
  }
  return pos;
}

/** Records `from`‥`to` of a measurement as one ExportLogsServiceRequest. */
function request(m: MeasuredLogs, from: number, to: number): Buffer {
  const plan: Array<{ head: Buffer; tail: Buffer; len: number; scopes: Array<{ g: ScopeGroup; head: Buffer; tail: Buffer; len: number }> }> = [];
  let total = 0;
  for (const [resource, gs] of groups(m, from, to)) {
    const head = resourceField(resource);
    const tail = schemaField(resource.schemaUrl);
    let len = head.length + tail.length;
    const scopes = gs.map((g) => {
      const sh = scopeField(g.scope);
      const st = schemaField(g.scope.schemaUrl);
      const n = sh.length + recordBytes(m, g) + st.length;
      len += 1 + varintSize(n) + n;
      return { g, head: sh, tail: st, len: n };
    });
    total += 1 + varintSize(len) + len;
    plan.push({ head, tail, len, scopes });
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const r of plan) {
    out[pos++] = (1 << 3) | 2;
    pos = putVarint(out, pos, r.len);
    pos += r.head.copy(out, pos);
    for (const s of r.scopes) {
      out[pos++] = (2 << 3) | 2;
      pos = putVarint(out, pos, s.len);
      pos += s.head.copy(out, pos);
      pos = copyRecords(m, s.g, out, pos);
      pos += s.tail.copy(out, pos);
    }
    pos += r.tail.copy(out, pos);
  }
  // A bug, never input: fail the export (counted and logged) rather than send a broken request.
  if (pos !== total) throw new TsmetricsError(ErrorCode.EXPORT, `logs protobuf: wrote ${pos} of ${total} planned bytes`);
  return out;
}

/** Requests cut out of a measured batch: where each one's records start in the measurement. */
const measuredParts = new WeakMap<LogsBatch, { m: MeasuredLogs; from: number }>();

/**
 * Notes that `part` is records `from`… of a measurement, so that encoding it copies them from
 * there (batches are immutable: the same array always holds the same records).
 */
export function adoptMeasurement(part: LogsBatch, m: MeasuredLogs, from: number): void {
  measuredParts.set(part, { m, from });
}

/**
 * Encodes records as one OTLP ExportLogsServiceRequest (protobuf): the bytes of the official
 * `ProtobufLogsSerializer.serializeRequest` for the same records.
 */
export function encodeLogsRequest(batch: LogsBatch): Uint8Array {
  const known = measuredParts.get(batch);
  // A part is only trusted while it still lines up with its measurement.
  if (known && known.m.records[known.from] === batch[0] && known.from + batch.length <= known.m.records.length) return request(known.m, known.from, known.from + batch.length);
  return request(measureLogRecords(batch), 0, batch.length);
}

/** OTLP/protobuf logs written by our encoder; responses use the stock decoder. */
export const protobufLogsSerializer: ISerializer<LogsBatch, IExportLogsServiceResponse> = {
  serializeRequest: (batch) => encodeLogsRequest(batch),
  deserializeResponse: (data) => ProtobufLogsSerializer.deserializeResponse(data),
};
