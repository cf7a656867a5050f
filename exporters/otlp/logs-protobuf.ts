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
 * A KeyValue whose value was written just before under the same key is copied from where it was
 * written ({@link KvEntry}): a flow log's connections repeat most of their record's values.
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

/** KeyValue keys remembered per field number (see {@link KvEntry}); once full, the cache starts over. */
const KEY_CACHE_MAX = 4096;

/** Strings this short are at most 127 bytes in UTF-8: their prefix is one byte, learned as written. */
const SHORT = 42;

/** A hex digit's value, as the official decoder reads one (no validation: ids are trusted). */
const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c - 55);

/**
 * Writes the UTF-8 of a string of at most {@link SHORT} characters at `at` (room for 3 bytes a
 * character is the caller's); returns its length. ASCII goes byte by byte, anything else through
 * Buffer, which writes UTF-8 as TextEncoder does (a lone surrogate becomes U+FFFD).
 */
function shortUtf8(buf: Buffer, at: number, s: string): number {
  const len = s.length;
  let i = 0;
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    buf[at + i] = c;
  }
  return i === len ? len : buf.write(s, at, 'utf8');
}

let writers = 0;
/** Moves a writer remembers; a record moves its body's bytes at most a few times. */
const MOVES_KEPT = 8;

/**
 * Writes protobuf into a buffer that grows as needed. A nested message reserves the bytes its
 * length is expected to take; {@link end} writes the length there.
 */
class Writer {
  buf: Buffer;
  pos = 0;
  /** Tells this writer's arena from others' in {@link KvEntry}, without holding the arena. */
  readonly id = ++writers;
  /** How many times bytes already written were moved (a length prefix that needed another size). */
  moves = 0;
  /** Where the last moves began, by move number modulo {@link MOVES_KEPT}: bytes from there on moved. */
  readonly moveAt = new Float64Array(MOVES_KEPT);
  /** Open messages: where each one's length goes, and how many bytes were reserved for it. */
  private _open = new Int32Array(64);
  private _depth = 0;
  private readonly _time = new TimeBits();

  /** `buf` four bytes at a time: copies of a few dozen bytes go twice as fast as byte by byte. */
  private _view: DataView;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
    this._view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }
  /** Room for `n` more bytes. */
  private _room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n + 1024));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
    this._view = new DataView(grown.buffer, grown.byteOffset, grown.length);
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
  /** Ends the innermost open message; returns its length. */
  end(): number {
    const reserved = this._open[--this._depth] as number;
    const at = this._open[--this._depth] as number;
    const len = this.pos - at - reserved;
    const need = varintSize(len);
    if (need !== reserved) {
      this._room(need - reserved);
      this.buf.copyWithin(at + need, at + reserved, this.pos);
      this.pos += need - reserved;
      this.moveAt[this.moves++ % MOVES_KEPT] = at;
    }
    if (need === 1) this.buf[at] = len;
    else putVarint(this.buf, at, len);
    return len;
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
      const n = shortUtf8(buf, at, s);
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
   * uint32 range, written in one go: `head` is the key field's bytes (tag, length, UTF-8), and
   * both length prefixes are written as one byte, moved in the rare case one needs two.
   */
  scalarKeyValue(field: number, head: KeyHead, v: string | number): void {
    const n = head.bytes;
    this._room(n + 20 + 3 * SHORT);
    const buf = this.buf;
    const at = this.pos;
    buf[at] = (field << 3) | 2;
    let p = at + 2;
    // Whole words: up to three bytes past the key are written, and overwritten just below.
    const words = head.words;
    const view = this._view;
    for (let i = 0; i < words.length; i++) view.setInt32(p + 4 * i, words[i] as number, true);
    p += n;
    buf[p] = (2 << 3) | 2;
    const anyAt = p + 1;
    p += 2;
    if (typeof v === 'string') {
      buf[p] = (1 << 3) | 2;
      const sAt = p + 2;
      // At most 126 bytes: a one-byte length.
      const m = shortUtf8(buf, sAt, v);
      buf[p + 1] = m;
      p = sAt + m;
    } else {
      buf[p++] = 3 << 3;
      p = putVarint(buf, p, v >>> 0);
    }
    this.pos = p;
    this._fixLength(anyAt);
    this._fixLength(at + 1);
  }
  /** Writes the length of the message whose one-byte prefix is at `at` and which ends at `pos`. */
  private _fixLength(at: number): void {
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    // At most 2 bytes: a scalar KeyValue is under 16 KiB.
    this._room(1);
    this.buf.copyWithin(at + 2, at + 1, this.pos);
    this.pos++;
    this.moveAt[this.moves++ % MOVES_KEPT] = at;
    this.buf[at] = (len & 0x7f) | 0x80;
    this.buf[at + 1] = len >>> 7;
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
  /**
   * Whether bytes written at `at` when {@link moves} was `moves` are still there: no move since
   * began at or before them (moves of messages that end before `at` leave them in place). Only the
   * last {@link MOVES_KEPT} moves are known; older writes are taken as moved.
   */
  inPlace(at: number, moves: number): boolean {
    if (this.moves - moves > MOVES_KEPT) return false;
    for (let j = moves; j < this.moves; j++) if ((this.moveAt[j % MOVES_KEPT] as number) <= at) return false;
    return true;
  }
  /** Writes again the `len` bytes written at `at` (still where they were: see {@link KvEntry}). */
  again(at: number, len: number): void {
    this._room(len + 4);
    const view = this._view;
    const pos = this.pos;
    // Whole words (the source ends before `pos`, so the copy never reads what it writes); up to
    // three bytes past the copy are written, and are overwritten by whatever comes next.
    for (let i = 0; i < len; i += 4) view.setInt32(pos + i, view.getInt32(at + i, true), true);
    this.pos = pos + len;
  }
  /** What was written, as its own copy. */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/**
 * Length-prefix sizes reserved for a map value and for a record's body: the size the last one
 * needed. A wrong guess moves the message's bytes (and makes the KeyValues written in it unusable
 * for {@link KvEntry}); a flow record's body is a map of under 128 bytes, the audit event's more.
 */
let kvlistReserve = 2;
let bodyReserve = 2;

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
    o.begin(6, kvlistReserve);
    keyValues(o, 1, v as Record<string, unknown>);
    kvlistReserve = varintSize(o.end());
  }
  // null, undefined, bigint, symbol, function: an empty AnyValue, as the official serializer writes.
}

/** A key field's bytes (tag, length, UTF-8) as little-endian words, the last one zero-padded. */
interface KeyHead {
  readonly bytes: number;
  readonly words: Int32Array;
}

/**
 * Where a key's KeyValue was last written and for which value. Records of a batch repeat most of
 * their values (a flow record's connections share its times, node and devices; protocol, traffic
 * type and address family take a few values), and a KeyValue's bytes depend on its field, key and
 * value alone, so the same value again is a copy of bytes already in the arena. The entry names
 * the writer by id and its move count, so it holds no arena and is never read after its bytes
 * have moved. Only small KeyValues are remembered, so what an entry keeps alive is small.
 */
interface KvEntry {
  /** The key field; undefined for a key of 128 bytes or more. */
  readonly head: KeyHead | undefined;
  value: unknown;
  writer: number;
  moves: number;
  at: number;
  len: number;
}
const KV_CACHE_BYTES = 160;
/** KvEntry by key, one map per KeyValue field number; at most KEY_CACHE_MAX keys of under 128 characters each. */
const kvEntries = new Map<number, Map<string, KvEntry>>();

/** Repeated KeyValue fields: own enumerable keys in their order. */
function keyValues(o: Writer, field: number, kvs: Attributes | Record<string, unknown>): void {
  let entries = kvEntries.get(field);
  if (entries === undefined) kvEntries.set(field, (entries = new Map()));
  for (const k in kvs) {
    if (!Object.prototype.hasOwnProperty.call(kvs, k)) continue;
    const v = (kvs as Record<string, unknown>)[k];
    let e = entries.get(k);
    // Only keys that could have a one-byte length prefix are remembered: a map holds its keys for
    // good, and body keys come from API answers (a device's own flow entries), so a key of any
    // length would keep up to KEY_CACHE_MAX of them alive whatever their size.
    if (e === undefined && k.length < 0x80) {
      // Full: started over, so keys that flood it (a device's own entry keys) cannot keep the
      // attribute names out of it for good; it only ever costs speed.
      if (entries.size >= KEY_CACHE_MAX) entries.clear();
      entries.set(k, (e = newEntry(k)));
    }
    // Attributes are never changed in place (the Processor contract), so the same object is the same value.
    if (e !== undefined && e.value === v && e.writer === o.id && o.inPlace(e.at, e.moves)) {
      o.again(e.at, e.len);
      continue;
    }
    const at = o.pos;
    // Most values are short strings and counts: written without opening their AnyValue.
    if (e?.head !== undefined && ((typeof v === 'string' && v.length <= SHORT) || (typeof v === 'number' && v >= 0 && v <= 0xffffffff && Number.isInteger(v)))) {
      o.scalarKeyValue(field, e.head, v);
    } else {
      o.begin(field);
      o.string(1, k);
      o.begin(2);
      anyValue(o, v);
      o.end();
      o.end();
    }
    const len = o.pos - at;
    // A byte array is not remembered: a few bytes can be a view that holds a buffer of any size.
    if (e === undefined || len > KV_CACHE_BYTES || v !== v || v instanceof Uint8Array) continue;
    e.value = v;
    e.writer = o.id;
    e.moves = o.moves;
    e.at = at;
    e.len = len;
  }
}

function newEntry(key: string): KvEntry {
  const utf8 = Buffer.from(key, 'utf8');
  if (utf8.length >= 0x80) return { head: undefined, value: undefined, writer: 0, moves: 0, at: 0, len: 0 };
  const bytes = Buffer.concat([Buffer.from([(1 << 3) | 2, utf8.length]), utf8, Buffer.alloc(3)]);
  const words = new Int32Array(Math.ceil((utf8.length + 2) / 4));
  for (let i = 0; i < words.length; i++) words[i] = bytes.readInt32LE(4 * i);
  return { head: { bytes: utf8.length + 2, words }, value: undefined, writer: 0, moves: 0, at: 0, len: 0 };
}

/** A LogRecord's fields (opentelemetry-proto logs.v1), in the order the official writer uses. */
function logRecord(o: Writer, r: ReadableLogRecord): void {
  o.time(1, r.hrTime);
  if (r.severityNumber !== undefined && r.severityNumber !== 0) o.varint(2, r.severityNumber);
  if (r.severityText) o.string(3, r.severityText);
  if (r.body !== undefined) {
    o.begin(5, bodyReserve);
    anyValue(o, r.body as AnyValue);
    bodyReserve = varintSize(o.end());
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
