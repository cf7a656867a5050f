/**
 * Our protobuf encoder of ExportLogsServiceRequest (field numbers from opentelemetry-proto). It
 * writes the bytes the official `ProtobufLogsSerializer` writes for the same records (same field
 * order, same omitted fields, same grouping by resource and scope object), at a fraction of the
 * cost; logs-protobuf.test.ts holds it to that, byte for byte.
 *
 * As in protobuf.ts (metrics), a request is walked by one piece of code twice: a {@link Sizer}
 * records the length of every nested message in the order they are met, then a
 * {@link BufWriter} writes into one buffer of exactly the total size, taking each length prefix
 * from that record. What differs: every record is measured once, on its own, into a
 * {@link MeasuredLogs}. The size split of the exporter (logs-size.ts) measures the whole batch
 * that way, and the requests it cuts out of it are written from that one measurement — only the
 * few resource and scope headers of each request are measured again.
 */
import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import { ProtobufLogsSerializer, type IExportLogsServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsBatch } from '../../src/model/logs.ts';

type Scope = ReadableLogRecord['instrumentationScope'];

const TWO32 = 0x100000000;
/** Integers the official serializer writes as `int_value` (others go as `double_value`). */
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

const uvarintSize = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5);

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
 * Size of a number written as a protobuf int64 varint the way the official writer does: values
 * in the uint32 range are truncated to an integer; anything else (negative, large, NaN) takes the
 * 64-bit two's complement of its truncated halves.
 */
function varintSize(v: number): number {
  if (v >= 0 && v <= 0xffffffff) return uvarintSize(v >>> 0);
  wide(v);
  if (wideHi === 0) return uvarintSize(wideLo);
  // Bits above the low 32: five bytes hold 35 bits, each further byte 7 more.
  let n = 5;
  for (let x = wideHi >>> 3; x > 0; x >>>= 7) n++;
  return n;
}

/** UTF-8 length of `s` as Buffer (and TextEncoder) write it: a lone surrogate becomes U+FFFD. */
function utf8Length(s: string): number {
  const len = s.length;
  if (len > 64) return Buffer.byteLength(s, 'utf8');
  let n = len;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    // Past this point, let Buffer decide surrogates (pairs are 4 bytes, lone ones 3).
    if (c >= 0xd800 && c <= 0xdfff) return Buffer.byteLength(s, 'utf8');
    n += c < 0x800 ? 1 : 2;
  }
  return n;
}

/** Strings this short are at most 127 bytes in UTF-8: their prefix is one byte, learned as written. */
const SHORT = 42;

/** What both passes do with a field; the sizer measures it, the writer writes it. */
interface Sink {
  /** Starts a length-delimited field (a nested message). */
  begin(field: number): void;
  end(): void;
  /** An int64/uint32 field, with the official writer's treatment of odd numbers. */
  varint(field: number, v: number): void;
  fixed32(field: number, v: number): void;
  /** A timestamp as fixed64 nanoseconds. */
  time(field: number, t: HrTime): void;
  double(field: number, v: number): void;
  string(field: number, s: string): void;
  bytes(field: number, b: Uint8Array): void;
  /** Hex text written as the bytes it spells (trace and span ids). */
  hex(field: number, s: string): void;
  /** Record `i` of the measurement as a ScopeLogs field (tag and length included). */
  record(i: number): void;
}

/** Every record of a batch measured on its own; requests are written from it. */
export interface MeasuredLogs {
  readonly records: LogsBatch;
  /** Record `i` as a ScopeLogs field, tag and length prefix included, bytes. */
  readonly sizes: Float64Array;
  /** Where record `i`'s lengths start in `lengths` (its own length first). */
  readonly starts: Int32Array;
  readonly lengths: Int32Array;
}

class Sizer implements Sink {
  size = 0;
  private _lengths: Int32Array;
  private _count = 0;
  private readonly _open: number[] = [];
  private readonly _m: MeasuredLogs | undefined;

  constructor(m?: MeasuredLogs, capacity = 256) {
    this._m = m;
    this._lengths = new Int32Array(capacity);
  }
  get count(): number {
    return this._count;
  }
  /** The recorded lengths, in the order they were met. */
  get lengths(): Int32Array {
    return this._lengths.subarray(0, this._count);
  }
  private _slot(): number {
    if (this._count === this._lengths.length) {
      const grown = new Int32Array(this._lengths.length * 2);
      grown.set(this._lengths);
      this._lengths = grown;
    }
    return this._count++;
  }
  begin(): void {
    this._open.push(this._slot(), this.size);
    this.size += 1; // tag (every field number here is below 16)
  }
  end(): void {
    const start = this._open.pop() as number;
    const slot = this._open.pop() as number;
    const len = this.size - start - 1;
    this._lengths[slot] = len;
    this.size += uvarintSize(len);
  }
  varint(_f: number, v: number): void {
    this.size += 1 + varintSize(v);
  }
  fixed32(): void {
    this.size += 5;
  }
  time(): void {
    this.size += 9;
  }
  double(): void {
    this.size += 9;
  }
  string(_f: number, s: string): void {
    if (s.length <= SHORT) {
      const n = utf8Length(s);
      this.size += 2 + n;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    const slot = this._slot();
    this._lengths[slot] = n;
    this.size += 1 + uvarintSize(n) + n;
  }
  bytes(_f: number, b: Uint8Array): void {
    this.size += 1 + uvarintSize(b.length) + b.length;
  }
  hex(_f: number, s: string): void {
    const n = s.length >>> 1;
    this.size += 1 + uvarintSize(n) + n;
  }
  record(i: number): void {
    this.size += (this._m as MeasuredLogs).sizes[i] as number;
  }
}

/** A hex digit's value, as the official decoder reads one (no validation: ids are trusted). */
const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c - 55);

class BufWriter implements Sink {
  readonly buf: Buffer;
  private _pos = 0;
  private _lengths: Int32Array;
  private _next = 0;
  private readonly _m: MeasuredLogs;
  // Records of a batch mostly share their times: the last conversion is kept.
  private _s = -1;
  private _ns = -1;
  private _lo = 0;
  private _hi = 0;

  constructor(size: number, headers: Int32Array, m: MeasuredLogs) {
    this.buf = Buffer.allocUnsafe(size);
    this._lengths = headers;
    this._m = m;
  }
  get pos(): number {
    return this._pos;
  }
  private _uvarint(v: number): void {
    const buf = this.buf;
    let x = v;
    while (x >= 0x80) {
      buf[this._pos++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    buf[this._pos++] = x;
  }
  begin(field: number): void {
    this.buf[this._pos++] = (field << 3) | 2;
    this._uvarint(this._lengths[this._next++] as number);
  }
  end(): void {}
  varint(field: number, v: number): void {
    this.buf[this._pos++] = field << 3;
    if (v >= 0 && v <= 0xffffffff) return this._uvarint(v >>> 0);
    wide(v);
    let lo = wideLo;
    let hi = wideHi;
    const buf = this.buf;
    while (hi > 0 || lo > 0x7f) {
      buf[this._pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[this._pos++] = lo;
  }
  fixed32(field: number, v: number): void {
    this.buf[this._pos++] = (field << 3) | 5;
    this.buf.writeUInt32LE(v >>> 0, this._pos);
    this._pos += 4;
  }
  time(field: number, t: HrTime): void {
    const s = t[0];
    const ns = t[1];
    if (s !== this._s || ns !== this._ns) {
      // s·1e9 + ns from 16-bit halves of s, so every partial product stays exact (no BigInt).
      const high = Math.floor(s / 0x10000) * 1e9; // times 2^16
      const low = (high % 0x10000) * 0x10000 + (s % 0x10000) * 1e9 + ns;
      this._lo = low % TWO32;
      this._hi = (Math.floor(high / 0x10000) + Math.floor(low / TWO32)) % TWO32;
      this._s = s;
      this._ns = ns;
    }
    const buf = this.buf;
    buf[this._pos++] = (field << 3) | 1;
    buf.writeUInt32LE(this._lo, this._pos);
    buf.writeUInt32LE(this._hi, this._pos + 4);
    this._pos += 8;
  }
  double(field: number, v: number): void {
    this.buf[this._pos++] = (field << 3) | 1;
    this.buf.writeDoubleLE(v, this._pos);
    this._pos += 8;
  }
  string(field: number, s: string): void {
    const buf = this.buf;
    buf[this._pos++] = (field << 3) | 2;
    const len = s.length;
    if (len <= SHORT) {
      const at = this._pos + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      const n = i === len ? len : buf.write(s, at, 'utf8');
      buf[this._pos] = n;
      this._pos = at + n;
      return;
    }
    const n = this._lengths[this._next++] as number;
    this._uvarint(n);
    this._pos += buf.write(s, this._pos, n, 'utf8');
  }
  bytes(field: number, b: Uint8Array): void {
    this.buf[this._pos++] = (field << 3) | 2;
    this._uvarint(b.length);
    this.buf.set(b, this._pos);
    this._pos += b.length;
  }
  hex(field: number, s: string): void {
    const buf = this.buf;
    buf[this._pos++] = (field << 3) | 2;
    const n = s.length >>> 1;
    this._uvarint(n);
    for (let i = 0; i < n; i++) buf[this._pos++] = (hexDigit(s.charCodeAt(2 * i)) << 4) | hexDigit(s.charCodeAt(2 * i + 1));
  }
  record(i: number): void {
    const m = this._m;
    const headers = this._lengths;
    const next = this._next;
    this._lengths = m.lengths;
    this._next = m.starts[i] as number;
    this.begin(2);
    logRecord(this, m.records[i] as ReadableLogRecord);
    this._lengths = headers;
    this._next = next;
  }
}

function anyValue(o: Sink, v: unknown): void {
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
    o.begin(6);
    keyValues(o, 1, v as Record<string, unknown>);
    o.end();
  }
  // null, undefined, bigint, symbol, function: an empty AnyValue, as the official serializer writes.
}

/** Repeated KeyValue fields: own enumerable keys in their order. */
function keyValues(o: Sink, field: number, kvs: Attributes | Record<string, unknown>): void {
  for (const k in kvs) {
    if (!Object.prototype.hasOwnProperty.call(kvs, k)) continue;
    o.begin(field);
    o.string(1, k);
    o.begin(2);
    anyValue(o, (kvs as Record<string, unknown>)[k]);
    o.end();
    o.end();
  }
}

/** A LogRecord's fields (opentelemetry-proto logs.v1), in the order the official writer uses. */
function logRecord(o: Sink, r: ReadableLogRecord): void {
  o.time(1, r.hrTime);
  if (r.severityNumber !== undefined && r.severityNumber !== 0) o.varint(2, r.severityNumber);
  if (r.severityText) o.string(3, r.severityText);
  if (r.body !== undefined) {
    o.begin(5);
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

/** A ResourceLogs' fields before its ScopeLogs. */
function resourceHead(o: Sink, resource: Resource): void {
  o.begin(1);
  const attrs = resource.attributes;
  if (attrs) keyValues(o, 1, attrs);
  o.varint(2, 0); // dropped_attributes_count: the official serializer always writes it
  o.end();
}

/** A ScopeLogs' fields before its records. */
function scopeHead(o: Sink, scope: Scope): void {
  o.begin(1);
  o.string(1, scope.name);
  if (scope.version) o.string(2, scope.version);
  if (scope.attributes) keyValues(o, 3, scope.attributes);
  if (scope.droppedAttributesCount) o.varint(4, scope.droppedAttributesCount);
  o.end();
}

/** Records `from`‥`to` of a measurement, grouped as the official serializer groups them. */
interface Group {
  resource: Resource;
  scopes: Array<{ scope: Scope; records: number[] }>;
}

function groups(m: MeasuredLogs, from: number, to: number): Group[] {
  const byResource = new Map<Resource, Map<Scope, number[]>>();
  let lastResource: Resource | undefined;
  let lastScope: Scope | undefined;
  let last: number[] | undefined;
  for (let i = from; i < to; i++) {
    const r = m.records[i] as ReadableLogRecord;
    // Runs of records with one resource and scope are the rule: look the maps up once per run.
    if (r.resource !== lastResource || r.instrumentationScope !== lastScope || !last) {
      lastResource = r.resource;
      lastScope = r.instrumentationScope;
      let scopes = byResource.get(lastResource);
      if (!scopes) byResource.set(lastResource, (scopes = new Map()));
      last = scopes.get(lastScope);
      if (!last) scopes.set(lastScope, (last = []));
    }
    last.push(i);
  }
  const out: Group[] = [];
  for (const [resource, scopes] of byResource) out.push({ resource, scopes: [...scopes].map(([scope, records]) => ({ scope, records })) });
  return out;
}

function request(o: Sink, gs: Group[]): void {
  for (const g of gs) {
    o.begin(1);
    resourceHead(o, g.resource);
    for (const s of g.scopes) {
      o.begin(2);
      scopeHead(o, s.scope);
      for (const i of s.records) o.record(i);
      if (s.scope.schemaUrl) o.string(3, s.scope.schemaUrl);
      o.end();
    }
    if (g.resource.schemaUrl) o.string(3, g.resource.schemaUrl);
    o.end();
  }
}

/** Measures every record of `batch` (in batch order, each on its own). */
export function measureLogRecords(batch: LogsBatch): MeasuredLogs {
  const n = batch.length;
  const sizes = new Float64Array(n);
  const starts = new Int32Array(n);
  const sizer = new Sizer(undefined, Math.max(256, n * 16));
  for (let i = 0; i < n; i++) {
    const before = sizer.size;
    starts[i] = sizer.count;
    sizer.begin();
    logRecord(sizer, batch[i] as ReadableLogRecord);
    sizer.end();
    sizes[i] = sizer.size - before;
  }
  return { records: batch, sizes, starts, lengths: sizer.lengths };
}

/** Encoded size of a ResourceLogs' own fields (resource, schema URL), its tag and length prefix included. */
export function resourceLogsOverhead(resource: Resource): number {
  const s = new Sizer();
  s.begin();
  resourceHead(s, resource);
  if (resource.schemaUrl) s.string(3, resource.schemaUrl);
  // The prefix grows with the records inside; five bytes cover any length below 2^35.
  return s.size + 5;
}

/** Encoded size of a ScopeLogs' own fields (scope, schema URL), its tag and length prefix included. */
export function scopeLogsOverhead(scope: Scope): number {
  const s = new Sizer();
  s.begin();
  scopeHead(s, scope);
  if (scope.schemaUrl) s.string(3, scope.schemaUrl);
  return s.size + 5;
}

/** Requests cut out of a measured batch: where each one's records start in the measurement. */
const measuredParts = new WeakMap<LogsBatch, { m: MeasuredLogs; from: number }>();

/**
 * Notes that `part` is records `from`… of a measurement, so that encoding it reuses the
 * measurement (batches are immutable: the same array always holds the same records).
 */
export function adoptMeasurement(part: LogsBatch, m: MeasuredLogs, from: number): void {
  measuredParts.set(part, { m, from });
}

/**
 * Encodes records as one OTLP ExportLogsServiceRequest (protobuf): the bytes of the official
 * `ProtobufLogsSerializer.serializeRequest` for the same records.
 */
export function encodeLogsRequest(batch: LogsBatch): Uint8Array {
  let known = measuredParts.get(batch);
  // A part is only trusted while it still lines up with its measurement.
  if (known && (known.m.records[known.from] !== batch[0] || known.from + batch.length > known.m.records.length)) known = undefined;
  const m = known?.m ?? measureLogRecords(batch);
  const from = known?.from ?? 0;
  const gs = groups(m, from, from + batch.length);
  const sizer = new Sizer(m);
  request(sizer, gs);
  const w = new BufWriter(sizer.size, sizer.lengths, m);
  request(w, gs);
  if (w.pos !== sizer.size) throw new Error(`logs protobuf: wrote ${w.pos} of ${sizer.size} measured bytes`);
  return w.buf;
}

/** OTLP/protobuf logs written by our encoder; responses use the stock decoder. */
export const protobufLogsSerializer: ISerializer<LogsBatch, IExportLogsServiceResponse> = {
  serializeRequest: (batch) => encodeLogsRequest(batch),
  deserializeResponse: (data) => ProtobufLogsSerializer.deserializeResponse(data),
};
