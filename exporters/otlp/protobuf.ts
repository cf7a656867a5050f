import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import { DataPointType, AggregationTemporality, type DataPoint, type Histogram, type MetricData, type ResourceMetrics, type ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { isStale } from '../../src/model/stale.ts';

/**
 * Our protobuf encoder of ExportMetricsServiceRequest (field numbers from opentelemetry-proto).
 * The official serializer cannot write `flags` (NO_RECORDED_VALUE), which staleness needs.
 *
 * A request is walked twice by the same code: once by a {@link Sizer}, which records the length
 * of every nested message in the order they are met, and once by a {@link BufWriter}, which
 * writes into one buffer of exactly the total size, taking each length prefix from that record.
 * Nothing is copied or allocated per message, and times are written without BigInt (a batch of a
 * large tailnet has hundreds of thousands of points).
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
}

const varintSize = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : v < 0x800000000 ? 5 : Math.ceil(Math.log2(v + 1) / 7));

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

/**
 * Measures; lengths of nested messages (and of scalar KeyValues) go to a table in the order the
 * writer will need them.
 */
class Sizer implements Sink {
  size = 0;
  private _lengths = new Int32Array(1024);
  private _count = 0;
  private readonly _open: number[] = [];
  readonly utf8 = new Utf8Lengths();

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
}

const TWO32 = 0x100000000;

/** Writes into a buffer of the measured size. */
class BufWriter implements Sink {
  readonly buf: Buffer;
  private _pos = 0;
  private _next = 0;
  private readonly _lengths: Int32Array;
  private readonly _utf8: Utf8Lengths;
  // Points of a batch mostly share their times: the last conversion is kept.
  private _s = -1;
  private _ns = -1;
  private _lo = 0;
  private _hi = 0;

  constructor(sizer: Sizer) {
    this.buf = Buffer.allocUnsafe(sizer.size);
    this._lengths = sizer.lengths;
    this._utf8 = sizer.utf8;
  }
  private _tag(field: number, wire: number): void {
    this.buf[this._pos++] = (field << 3) | wire;
  }
  private _uvarint(v: number): void {
    let x = v;
    while (x >= 0x80) {
      this.buf[this._pos++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this._pos++] = x;
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
    if (v >= 0) return this._uvarint(v);
    let x = BigInt.asUintN(64, BigInt(v));
    while (x > 0x7fn) {
      this.buf[this._pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this._pos++] = Number(x);
  }
  fixed64(field: number, lo: number, hi: number): void {
    this._tag(field, 1);
    this.buf.writeUInt32LE(lo, this._pos);
    this.buf.writeUInt32LE(hi, this._pos + 4);
    this._pos += 8;
  }
  nanos(field: number, t: HrTime): void {
    const s = Math.max(0, Math.trunc(t[0]));
    const ns = Math.max(0, Math.trunc(t[1]));
    if (s !== this._s || ns !== this._ns) {
      // s·1e9 + ns with 16-bit limbs of s, so every partial product stays below 2^53 (no BigInt).
      const b = Math.floor(s / 0x10000) * 1e9; // times 2^16
      const c = (b % 0x10000) * 0x10000 + (s % 0x10000) * 1e9 + ns;
      this._lo = c % TWO32;
      this._hi = (Math.floor(b / 0x10000) + Math.floor(c / TWO32)) % TWO32;
      this._s = s;
      this._ns = ns;
    }
    this.fixed64(field, this._lo, this._hi);
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

function attributes(o: Sink, field: number, attrs: Attributes): void {
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

function numberPoint(o: Sink, p: DataPoint<number>): void {
  attributes(o, 7, p.attributes);
  o.nanos(2, p.startTime);
  o.nanos(3, p.endTime);
  if (isStale(p)) o.varint(8, 1);
  else o.double(4, p.value);
}

function histogramPoint(o: Sink, p: DataPoint<Histogram>): void {
  attributes(o, 9, p.attributes);
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
    for (const p of m.dataPoints) {
      o.begin(1);
      numberPoint(o, p);
      o.end();
    }
    o.end();
  } else if (m.dataPointType === DataPointType.SUM) {
    o.begin(7);
    for (const p of m.dataPoints) {
      o.begin(1);
      numberPoint(o, p);
      o.end();
    }
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
  attributes(o, 1, rm.resource.attributes);
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
  const sizer = new Sizer();
  request(sizer, rm);
  const w = new BufWriter(sizer);
  request(w, rm);
  return w.buf;
}

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
