import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import { DataPointType, AggregationTemporality, type DataPoint, type Histogram, type MetricData, type ResourceMetrics, type ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { isStale } from '../../src/model/stale.ts';
import { putVarint, TimeBits, TWO32, varintSize } from './wire.ts';

/**
 * Our protobuf encoder of ExportMetricsServiceRequest (field numbers from opentelemetry-proto).
 * The official serializer cannot write `flags` (NO_RECORDED_VALUE), which staleness needs.
 *
 * A request is walked twice by the same code: once by a {@link Sizer}, which records the length
 * of every nested message in the order they are met, and once by a {@link BufWriter}, which
 * writes into one buffer of exactly the total size, taking each length prefix from that record.
 * Nothing is copied or allocated per message, and times are written without BigInt (a batch of a
 * large tailnet has hundreds of thousands of points). A point's attributes, most of its bytes,
 * are encoded once per attributes object and copied from then on ({@link cachedAttributes}).
 * Fields go in field-number order, as the official serializer writes them, so a batch without
 * staleness or histograms encodes to its bytes exactly (it packs histogram buckets; we do not).
 */
interface Sink {
  /** Starts a length-delimited field (a nested message). */
  begin(field: number): void;
  end(): void;
  varint(field: number, v: number): void;
  /** A signed 64-bit varint (negative numbers take ten bytes). */
  int64(field: number, v: number): void;
  fixed64(field: number, lo: number, hi: number): void;
  /** A timestamp as fixed64 nanoseconds. */
  nanos(field: number, t: HrTime): void;
  double(field: number, v: number): void;
  string(field: number, s: string): void;
  /** A KeyValue whose value is a string, boolean or number (the common case). */
  keyValue(field: number, key: string, value: string | number | boolean): void;
  /** The repeated KeyValue field `field` (7 or 9 are cached, see {@link cachedAttributes}). */
  attributes(field: number, attrs: Attributes): void;
  /** The points of a gauge or sum, each as field 1 of the container. */
  numberPoints(points: readonly DataPoint<number>[]): void;
}


/** Byte length of UTF-8 text, remembered for the short strings (label keys and values repeat). */
class Utf8Lengths {
  private readonly _known = new Map<string, number>();
  of(s: string): number {
    let n = this._known.get(s);
    if (n === undefined) {
      n = Buffer.byteLength(s, 'utf8');
      if (s.length <= 256) this._known.set(s, n);
    }
    return n;
  }
}

/** Encoded length of an AnyValue holding a scalar (field 1 string, 2 bool, 3 int64, 4 double). */
function scalarValueLength(utf8: Utf8Lengths, v: string | number | boolean): number {
  if (typeof v === 'string') {
    const n = utf8.of(v);
    return 1 + varintSize(n) + n;
  }
  if (typeof v === 'boolean') return 2;
  if (Number.isSafeInteger(v)) return 1 + (v < 0 ? 10 : varintSize(v));
  return 9;
}

/** The length `n` whose varint prefix and body together take `total` bytes. */
function lengthWithin(total: number): number {
  for (let k = 1; k <= 5; k++) if (varintSize(total - k) === k) return total - k;
  throw new Error('protobuf: inconsistent length');
}

/** UTF-8 length of `s`, counted in JS for short text (a native call costs more than the loop). */
function utf8Length(s: string): number {
  if (s.length > 32) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

/** Writes `s`, whose UTF-8 length is `n`, at `pos`; returns the position after it. */
function putText(buf: Buffer, pos: number, s: string, n: number): number {
  if (n === s.length && n <= 32) {
    for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
    return pos + n;
  }
  return pos + buf.write(s, pos, n, 'utf8');
}

function put32(buf: Uint8Array, pos: number, v: number): void {
  buf[pos] = v;
  buf[pos + 1] = v >>> 8;
  buf[pos + 2] = v >>> 16;
  buf[pos + 3] = v >>> 24;
}

/** A negative int64 as its ten-byte two's-complement varint. */
function putNegative(buf: Uint8Array, pos: number, v: number): number {
  let x = BigInt.asUintN(64, BigInt(v));
  while (x > 0x7fn) {
    buf[pos++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  buf[pos++] = Number(x);
  return pos;
}

/**
 * The encoded repeated KeyValues of attribute sets, per attributes object. Receivers hand a
 * series the same attributes object every cycle and nothing in the pipeline changes one in
 * place (processors that rewrite attributes make new objects), so a set is encoded once per
 * series lifetime instead of once per cycle; an entry goes away with its object. Only sets of
 * scalar values within {@link MAX_CACHED} encoded bytes are kept. The bytes are views into
 * shared 4 KiB slabs: an ArrayBuffer per entry took about twice the memory (its own backing
 * store and bookkeeping) and copied slower; a slab lives while any of its views does, which for
 * series that come and go together (a device's) is about when its series do.
 */
const MAX_CACHED = 1024;
const SLAB_BYTES = 4 * 1024;
/** The entry of a set that is not cached (a non-scalar value, or too long). */
const UNCACHED = new Uint8Array(0);
const EMPTY = new Uint8Array(0);
const pointAttributes = new WeakMap<Attributes, Uint8Array>();
const histogramAttributes = new WeakMap<Attributes, Uint8Array>();
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;
// Lengths met while sizing a set, for its write: key, value text, KeyValue body, AnyValue body.
const scratch: number[] = [];

/** Encodes `attrs` as repeated KeyValue field `field` (a cache entry), or {@link UNCACHED}. */
function encodeAttributes(field: number, attrs: Attributes): Uint8Array {
  let total = 0;
  let j = 0;
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    const kn = utf8Length(k);
    let av: number;
    let sn = 0;
    if (typeof v === 'string') {
      sn = utf8Length(v);
      av = 1 + varintSize(sn) + sn;
    } else if (typeof v === 'boolean') av = 2;
    else if (typeof v === 'number') av = Number.isSafeInteger(v) ? 1 + (v < 0 ? 10 : varintSize(v)) : 9;
    else return UNCACHED;
    const n = 1 + varintSize(kn) + kn + 1 + varintSize(av) + av;
    total += 1 + varintSize(n) + n;
    if (total > MAX_CACHED) return UNCACHED;
    scratch[j++] = kn;
    scratch[j++] = sn;
    scratch[j++] = n;
    scratch[j++] = av;
  }
  if (total === 0) return EMPTY;
  if (slabUsed + total > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const buf = slab;
  const start = slabUsed;
  let pos = start;
  j = 0;
  const tag = (field << 3) | 2;
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    const kn = scratch[j++] as number;
    const sn = scratch[j++] as number;
    const n = scratch[j++] as number;
    const av = scratch[j++] as number;
    buf[pos++] = tag;
    pos = putVarint(buf, pos, n);
    buf[pos++] = 0x0a;
    pos = putVarint(buf, pos, kn);
    pos = putText(buf, pos, k, kn);
    buf[pos++] = 0x12;
    pos = putVarint(buf, pos, av);
    if (typeof v === 'string') {
      buf[pos++] = 0x0a;
      pos = putVarint(buf, pos, sn);
      pos = putText(buf, pos, v, sn);
    } else if (typeof v === 'boolean') {
      buf[pos++] = 0x10;
      buf[pos++] = v ? 1 : 0;
    } else if (Number.isSafeInteger(v)) {
      buf[pos++] = 0x18;
      pos = (v as number) < 0 ? putNegative(buf, pos, v as number) : putVarint(buf, pos, v as number);
    } else {
      buf[pos++] = 0x21;
      buf.writeDoubleLE(v as number, pos);
      pos += 8;
    }
  }
  slabUsed = pos;
  return new Uint8Array(buf.buffer, buf.byteOffset + start, pos - start);
}

/** Where an attributes object keeps its encodings (own, non-enumerable: see {@link cachedAttributes}). */
const AS_POINT = Symbol('tsmetrics.otlp.pointAttributes');
const AS_HISTOGRAM = Symbol('tsmetrics.otlp.histogramAttributes');
type Cached = { [AS_POINT]?: Uint8Array; [AS_HISTOGRAM]?: Uint8Array };

/**
 * The cached encoding of `attrs` as field 7 (number points) or 9 (histogram points), or
 * {@link UNCACHED}. The entry is an own non-enumerable symbol property of the object: with a
 * WeakMap of a large batch's objects its lookups were most of the encode's time (the whole encode
 * took twice as long), and its ephemerons slow every collection. Such a property is invisible to `for...in`, `Object.keys`,
 * spreads, JSON and structured clones, so copies of the object never carry it; objects that
 * cannot take a property (frozen) are cached in a WeakMap instead.
 */
function cachedAttributes(field: number, attrs: Attributes): Uint8Array {
  const key = field === 7 ? AS_POINT : field === 9 ? AS_HISTOGRAM : undefined;
  if (key === undefined) return UNCACHED;
  const own = (attrs as Cached)[key];
  // Own only: an object made with another attributes object as its prototype must not be
  // written with that one's values.
  if (own !== undefined && Object.hasOwn(attrs, key)) return own;
  if (Object.isExtensible(attrs)) {
    const c = encodeAttributes(field, attrs);
    // A proxy may refuse the property; its entry then goes to the WeakMap like a frozen object's.
    if (Reflect.defineProperty(attrs, key, { value: c })) return c;
  }
  const cache = key === AS_POINT ? pointAttributes : histogramAttributes;
  let c = cache.get(attrs);
  if (c === undefined) {
    c = encodeAttributes(field, attrs);
    cache.set(attrs, c);
  }
  return c;
}

/**
 * Measures; lengths of nested messages (and of scalar KeyValues) go to a table in the order the
 * writer will need them.
 */
class Sizer implements Sink {
  size = 0;
  private _lengths: Int32Array;
  private _count = 0;
  private readonly _open: number[] = [];
  readonly utf8 = new Utf8Lengths();

  constructor(table: Int32Array = new Int32Array(1024)) {
    this._lengths = table;
  }
  /** The whole table (grown), for a later Sizer to reuse. */
  get table(): Int32Array {
    return this._lengths;
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
  begin(_field?: number): void {
    this._open.push(this._slot(), this.size);
    this.size += 1; // tag (every field number here is below 16)
  }
  end(): void {
    const start = this._open.pop() as number;
    const slot = this._open.pop() as number;
    const len = this.size - start - 1;
    this._lengths[slot] = len;
    this.size += varintSize(len);
  }
  keyValue(_f: number, key: string, value: string | number | boolean): void {
    const k = this.utf8.of(key);
    const av = scalarValueLength(this.utf8, value);
    const n = 1 + varintSize(k) + k + 1 + varintSize(av) + av;
    // The slot first: taking one may replace the table.
    const slot = this._slot();
    this._lengths[slot] = n;
    this.size += 1 + varintSize(n) + n;
  }
  varint(_f: number, v: number): void {
    this.size += 1 + varintSize(v);
  }
  int64(_f: number, v: number): void {
    this.size += 1 + (v < 0 ? 10 : varintSize(v));
  }
  fixed64(): void {
    this.size += 9;
  }
  nanos(): void {
    this.size += 9;
  }
  double(): void {
    this.size += 9;
  }
  string(_f: number, s: string): void {
    const n = this.utf8.of(s);
    this.size += 1 + varintSize(n) + n;
  }
  attributes(field: number, attrs: Attributes): void {
    const c = cachedAttributes(field, attrs);
    if (c !== UNCACHED) this.size += c.length;
    else keyValues(this, field, attrs);
  }
  numberPoints(points: readonly DataPoint<number>[]): void {
    // Indexed: a for...of here allocated an iterator result per point.
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as DataPoint<number>;
      // The point's slot first, then those its attributes may take (the writer's order).
      const slot = this._slot();
      const start = this.size;
      this.attributes(7, p.attributes);
      const len = this.size - start + 18 + (isStale(p) ? 2 : 9);
      this._lengths[slot] = len;
      this.size = start + 1 + varintSize(len) + len;
    }
  }
}


/** Writes into a buffer of the measured size. */
class BufWriter implements Sink {
  readonly buf: Buffer;
  private _pos = 0;
  private _next = 0;
  private readonly _lengths: Int32Array;
  private readonly _utf8: Utf8Lengths;
  // Points of a batch mostly share their times: the last conversion of each field is kept.
  private readonly _start = new TimeCache();
  private readonly _end = new TimeCache();

  constructor(sizer: Sizer) {
    this.buf = Buffer.allocUnsafe(sizer.size);
    this._lengths = sizer.lengths;
    this._utf8 = sizer.utf8;
  }
  private _tag(field: number, wire: number): void {
    this.buf[this._pos++] = (field << 3) | wire;
  }
  private _uvarint(v: number): void {
    this._pos = putVarint(this.buf, this._pos, v);
  }
  begin(field: number): void {
    this._tag(field, 2);
    this._uvarint(this._lengths[this._next++] as number);
  }
  end(): void {}
  varint(field: number, v: number): void {
    this._tag(field, 0);
    this._uvarint(v);
  }
  int64(field: number, v: number): void {
    this._tag(field, 0);
    this._pos = v >= 0 ? putVarint(this.buf, this._pos, v) : putNegative(this.buf, this._pos, v);
  }
  fixed64(field: number, lo: number, hi: number): void {
    this._tag(field, 1);
    put32(this.buf, this._pos, lo);
    put32(this.buf, this._pos + 4, hi);
    this._pos += 8;
  }
  nanos(field: number, t: HrTime): void {
    const c = field === 2 ? this._start : this._end;
    c.of(t);
    this.fixed64(field, c.lo, c.hi);
  }
  double(field: number, v: number): void {
    this._tag(field, 1);
    this.buf.writeDoubleLE(v, this._pos);
    this._pos += 8;
  }
  /** A string field; a short one learns its UTF-8 length from the write (one prefix byte). */
  string(field: number, s: string): void {
    this._tag(field, 2);
    if (s.length * 3 < 0x80) {
      const n = this.buf.write(s, this._pos + 1, 'utf8');
      this.buf[this._pos] = n;
      this._pos += 1 + n;
      return;
    }
    const n = this._utf8.of(s);
    this._uvarint(n);
    this.buf.write(s, this._pos, n, 'utf8');
    this._pos += n;
  }
  keyValue(field: number, key: string, value: string | number | boolean): void {
    const n = this._lengths[this._next++] as number;
    this._tag(field, 2);
    this._uvarint(n);
    const end = this._pos + n;
    this.string(1, key);
    this._tag(2, 2);
    this._uvarint(lengthWithin(end - this._pos));
    if (typeof value === 'string') this.string(1, value);
    else if (typeof value === 'boolean') this.varint(2, value ? 1 : 0);
    else if (Number.isSafeInteger(value)) this.int64(3, value);
    else this.double(4, value);
  }
  attributes(field: number, attrs: Attributes): void {
    const c = cachedAttributes(field, attrs);
    if (c === UNCACHED) return keyValues(this, field, attrs);
    if (c.length === 0) return;
    this.buf.set(c, this._pos);
    this._pos += c.length;
  }
  numberPoints(points: readonly DataPoint<number>[]): void {
    const buf = this.buf;
    const start = this._start;
    const end = this._end;
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as DataPoint<number>;
      buf[this._pos++] = 0x0a;
      const pos = putVarint(buf, this._pos, this._lengths[this._next++] as number);
      // Fields in order, as numberPoint.
      start.of(p.startTime);
      end.of(p.endTime);
      buf[pos] = 0x11;
      put32(buf, pos + 1, start.lo);
      put32(buf, pos + 5, start.hi);
      buf[pos + 9] = 0x19;
      put32(buf, pos + 10, end.lo);
      put32(buf, pos + 14, end.hi);
      const stale = isStale(p);
      if (stale) this._pos = pos + 18;
      else {
        buf[pos + 18] = 0x21;
        buf.writeDoubleLE(p.value, pos + 19);
        this._pos = pos + 27;
      }
      this.attributes(7, p.attributes);
      if (stale) {
        buf[this._pos++] = 0x40;
        buf[this._pos++] = 1;
      }
    }
  }
}

/**
 * One HrTime as fixed64 nanoseconds (lo, hi), kept for the next point with the same time array.
 * Times before 1970 or with negative parts are written as 0 and fractions are cut.
 */
class TimeCache extends TimeBits {
  private _t: HrTime | undefined;
  of(t: HrTime): void {
    if (t === this._t) return;
    this._t = t;
    this.set(Math.max(0, Math.trunc(t[0])), Math.max(0, Math.trunc(t[1])));
  }
}

function anyValue(o: Sink, v: AnyValue): void {
  if (typeof v === 'string') o.string(1, v);
  else if (typeof v === 'boolean') o.varint(2, v ? 1 : 0);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) o.int64(3, v);
    else o.double(4, v);
  } else if (Array.isArray(v)) {
    o.begin(5);
    for (const x of v) {
      o.begin(1);
      anyValue(o, x as AnyValue);
      o.end();
    }
    o.end();
  } else if (v !== null && v !== undefined) o.string(1, String(v));
}

/** Attributes KeyValue by KeyValue (what the cache does not hold). */
function keyValues(o: Sink, field: number, attrs: Attributes): void {
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      o.keyValue(field, k, v);
      continue;
    }
    o.begin(field);
    o.string(1, k);
    o.begin(2);
    anyValue(o, v as AnyValue);
    o.end();
    o.end();
  }
}

/** In field order, as the official serializer writes (so our bytes are its bytes, flags aside). */
function numberPoint(o: Sink, p: DataPoint<number>): void {
  o.nanos(2, p.startTime);
  o.nanos(3, p.endTime);
  const stale = isStale(p);
  if (!stale) o.double(4, p.value);
  o.attributes(7, p.attributes);
  if (stale) o.varint(8, 1);
}

function histogramPoint(o: Sink, p: DataPoint<Histogram>): void {
  o.attributes(9, p.attributes);
  o.nanos(2, p.startTime);
  o.nanos(3, p.endTime);
  if (isStale(p)) {
    o.fixed64(4, 0, 0);
    o.varint(10, 1);
    return;
  }
  const count = Math.max(0, Math.round(p.value.count));
  o.fixed64(4, count % TWO32, Math.floor(count / TWO32));
  if (p.value.sum !== undefined) o.double(5, p.value.sum);
  for (const c of p.value.buckets.counts) {
    const n = Math.max(0, Math.round(c));
    o.fixed64(6, n % TWO32, Math.floor(n / TWO32));
  }
  for (const b of p.value.buckets.boundaries) o.double(7, b);
}

const TEMPORALITY: Record<number, number> = { [AggregationTemporality.DELTA]: 1, [AggregationTemporality.CUMULATIVE]: 2 };

function metric(o: Sink, m: MetricData): void {
  o.string(1, m.descriptor.name);
  if (m.descriptor.description) o.string(2, m.descriptor.description);
  if (m.descriptor.unit) o.string(3, m.descriptor.unit);
  if (m.dataPointType === DataPointType.GAUGE) {
    o.begin(5);
    o.numberPoints(m.dataPoints);
    o.end();
  } else if (m.dataPointType === DataPointType.SUM) {
    o.begin(7);
    o.numberPoints(m.dataPoints);
    o.varint(2, TEMPORALITY[m.aggregationTemporality] ?? 2);
    if (m.isMonotonic) o.varint(3, 1);
    o.end();
  } else if (m.dataPointType === DataPointType.HISTOGRAM) {
    o.begin(9);
    for (const p of m.dataPoints) {
      o.begin(1);
      histogramPoint(o, p);
      o.end();
    }
    o.varint(2, TEMPORALITY[m.aggregationTemporality] ?? 2);
    o.end();
  }
}

function scope(o: Sink, sm: ScopeMetrics): void {
  o.begin(1);
  o.string(1, sm.scope.name);
  if (sm.scope.version) o.string(2, sm.scope.version);
  o.end();
}

function request(o: Sink, rm: ResourceMetrics): void {
  o.begin(1);
  o.begin(1);
  keyValues(o, 1, rm.resource.attributes);
  o.varint(2, 0); // dropped_attributes_count, written as the official serializer does
  o.end();
  for (const sm of rm.scopeMetrics) {
    o.begin(2);
    scope(o, sm);
    for (const m of sm.metrics) {
      o.begin(2);
      metric(o, m);
      o.end();
    }
    o.end();
  }
  o.end();
}

/** Encodes one ResourceMetrics as an OTLP ExportMetricsServiceRequest (protobuf). */
export function encodeMetricsRequest(rm: ResourceMetrics): Uint8Array {
  const sizer = new Sizer(spareLengths);
  spareLengths = undefined;
  request(sizer, rm);
  const w = new BufWriter(sizer);
  request(w, rm);
  if (sizer.table.length <= KEEP_LENGTHS) spareLengths = sizer.table;
  return w.buf;
}

/**
 * The length table of the last request, kept for the next one (a large batch would otherwise
 * grow a new one every time, megabytes of garbage); taken while in use, so nested sizers get
 * their own. Kept only up to {@link KEEP_LENGTHS} entries (4 MiB).
 */
let spareLengths: Int32Array | undefined;
const KEEP_LENGTHS = 1 << 20;

/** Encoded size of one data point of `m` inside its metric (tag and length prefix included). */
function pointSize(sizer: Sizer, m: MetricData, p: DataPoint<unknown>): number {
  const start = sizer.size;
  sizer.begin(1);
  if (m.dataPointType === DataPointType.HISTOGRAM) histogramPoint(sizer, p as DataPoint<Histogram>);
  else numberPoint(sizer, p as DataPoint<number>);
  sizer.end();
  return sizer.size - start;
}

/** Encoded size of everything of `m` but its points. */
function metricOverhead(sizer: Sizer, m: MetricData): number {
  const start = sizer.size;
  sizer.begin(2);
  metric(sizer, { ...m, dataPoints: [] } as MetricData);
  sizer.end();
  // The data container's length prefix grows with its points; ten bytes cover any size.
  return sizer.size - start + 10;
}

/**
 * Splits a batch into requests of at most `maxBytes` encoded each, by whole data points and in
 * order, each with the same resource and scopes. A single point larger than the limit travels
 * alone. A batch within the limit is returned as it is.
 */
export function splitByEncodedSize(rm: ResourceMetrics, maxBytes: number): ResourceMetrics[] {
  const sizer = new Sizer();
  request(sizer, { resource: rm.resource, scopeMetrics: [] });
  const base = sizer.size + 10;
  const total = new Sizer();
  request(total, rm);
  if (total.size <= maxBytes) return [rm];
  const out: ResourceMetrics[] = [];
  let scopes: ScopeMetrics[] = [];
  let used = base;
  const flush = (): void => {
    if (scopes.length) out.push({ resource: rm.resource, scopeMetrics: scopes });
    scopes = [];
    used = base;
  };
  for (const sm of rm.scopeMetrics) {
    const scopeStart = sizer.size;
    sizer.begin(2);
    scope(sizer, sm);
    sizer.end();
    const scopeSize = sizer.size - scopeStart + 10;
    for (const m of sm.metrics) {
      const overhead = metricOverhead(sizer, m);
      let points: unknown[] = [];
      const close = (): void => {
        if (!points.length) return;
        let current = scopes.at(-1);
        if (current?.scope !== sm.scope) {
          current = { scope: sm.scope, metrics: [] };
          scopes.push(current);
        }
        current.metrics.push({ ...m, dataPoints: points } as MetricData);
        points = [];
      };
      for (const p of m.dataPoints) {
        const n = pointSize(sizer, m, p);
        // The scope's and the metric's headers are paid again in every request they appear in.
        const opening = points.length ? 0 : overhead + (scopes.at(-1)?.scope === sm.scope ? 0 : scopeSize);
        if (used + opening + n > maxBytes && used > base) {
          close();
          flush();
          used += overhead + scopeSize + n;
        } else used += opening + n;
        points.push(p);
      }
      close();
    }
  }
  flush();
  return out;
}
