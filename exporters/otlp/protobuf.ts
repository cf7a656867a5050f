import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import { DataPointType, AggregationTemporality, type DataPoint, type Histogram, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { isStale } from '../../src/model/stale.ts';

/**
 * A small protobuf writer for the OTLP metrics messages we send. The official protobuf
 * serializer cannot write `flags` (NO_RECORDED_VALUE), which staleness needs, so we encode
 * ExportMetricsServiceRequest ourselves (field numbers from opentelemetry-proto).
 */
class Writer {
  private _buf: Uint8Array = new Uint8Array(1024);
  private _len = 0;
  private _ensure(n: number): void {
    if (this._len + n <= this._buf.length) return;
    let size = this._buf.length * 2;
    while (size < this._len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this._buf.subarray(0, this._len));
    this._buf = b;
  }
  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this._ensure(10);
    while (x > 0x7fn) {
      this._buf[this._len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this._buf[this._len++] = Number(x);
  }
  smallVarint(v: number): void {
    this._ensure(5);
    let x = v >>> 0;
    while (x > 0x7f) {
      this._buf[this._len++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    this._buf[this._len++] = x;
  }
  tag(field: number, wire: number): void {
    this.smallVarint((field << 3) | wire);
  }
  fixed64(field: number, v: bigint): void {
    this.tag(field, 1);
    this._ensure(8);
    new DataView(this._buf.buffer).setBigUint64(this._len, BigInt.asUintN(64, v), true);
    this._len += 8;
  }
  double(field: number, v: number): void {
    this.tag(field, 1);
    this._ensure(8);
    new DataView(this._buf.buffer).setFloat64(this._len, v, true);
    this._len += 8;
  }
  string(field: number, s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.tag(field, 2);
    this.smallVarint(bytes.length);
    this._ensure(bytes.length);
    this._buf.set(bytes, this._len);
    this._len += bytes.length;
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.smallVarint(b.length);
    this._ensure(b.length);
    this._buf.set(b, this._len);
    this._len += b.length;
  }
  message(field: number, fn: (w: Writer) => void): void {
    const inner = new Writer();
    fn(inner);
    this.bytes(field, inner.finish());
  }
  finish(): Uint8Array {
    return this._buf.slice(0, this._len);
  }
}

function nanos(t: HrTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(Math.trunc(t[1]));
}

function anyValue(w: Writer, v: AnyValue): void {
  if (typeof v === 'string') w.string(1, v);
  else if (typeof v === 'boolean') {
    w.tag(2, 0);
    w.smallVarint(v ? 1 : 0);
  } else if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      w.tag(3, 0);
      w.varint(BigInt(v));
    } else w.double(4, v);
  } else if (Array.isArray(v)) {
    w.message(5, (a) => {
      for (const x of v) a.message(1, (e) => anyValue(e, x as AnyValue));
    });
  } else if (v !== null && v !== undefined) w.string(1, String(v));
}

function attributes(w: Writer, field: number, attrs: Attributes): void {
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    w.message(field, (kv) => {
      kv.string(1, k);
      kv.message(2, (av) => anyValue(av, v as AnyValue));
    });
  }
}

function numberPoint(w: Writer, p: DataPoint<number>): void {
  attributes(w, 7, p.attributes);
  w.fixed64(2, nanos(p.startTime));
  w.fixed64(3, nanos(p.endTime));
  if (isStale(p)) {
    w.tag(8, 0);
    w.smallVarint(1);
  } else w.double(4, p.value);
}

function histogramPoint(w: Writer, p: DataPoint<Histogram>): void {
  attributes(w, 9, p.attributes);
  w.fixed64(2, nanos(p.startTime));
  w.fixed64(3, nanos(p.endTime));
  if (isStale(p)) {
    w.fixed64(4, 0n);
    w.tag(10, 0);
    w.smallVarint(1);
    return;
  }
  w.fixed64(4, BigInt(Math.round(p.value.count)));
  if (p.value.sum !== undefined) w.double(5, p.value.sum);
  for (const c of p.value.buckets.counts) w.fixed64(6, BigInt(Math.round(c)));
  for (const b of p.value.buckets.boundaries) w.double(7, b);
}

const TEMPORALITY: Record<number, number> = { [AggregationTemporality.DELTA]: 1, [AggregationTemporality.CUMULATIVE]: 2 };

function metric(w: Writer, m: MetricData): void {
  w.string(1, m.descriptor.name);
  if (m.descriptor.description) w.string(2, m.descriptor.description);
  if (m.descriptor.unit) w.string(3, m.descriptor.unit);
  if (m.dataPointType === DataPointType.GAUGE) {
    w.message(5, (g) => {
      for (const p of m.dataPoints) g.message(1, (x) => numberPoint(x, p));
    });
  } else if (m.dataPointType === DataPointType.SUM) {
    w.message(7, (s) => {
      for (const p of m.dataPoints) s.message(1, (x) => numberPoint(x, p));
      s.tag(2, 0);
      s.smallVarint(TEMPORALITY[m.aggregationTemporality] ?? 2);
      if (m.isMonotonic) {
        s.tag(3, 0);
        s.smallVarint(1);
      }
    });
  } else if (m.dataPointType === DataPointType.HISTOGRAM) {
    w.message(9, (h) => {
      for (const p of m.dataPoints) h.message(1, (x) => histogramPoint(x, p));
      h.tag(2, 0);
      h.smallVarint(TEMPORALITY[m.aggregationTemporality] ?? 2);
    });
  }
}

/** Encodes one ResourceMetrics as an OTLP ExportMetricsServiceRequest (protobuf). */
export function encodeMetricsRequest(rm: ResourceMetrics): Uint8Array {
  const w = new Writer();
  w.message(1, (r) => {
    r.message(1, (res) => attributes(res, 1, rm.resource.attributes));
    for (const sm of rm.scopeMetrics) {
      r.message(2, (s) => {
        s.message(1, (sc) => {
          sc.string(1, sm.scope.name);
          if (sm.scope.version) sc.string(2, sm.scope.version);
        });
        for (const m of sm.metrics) s.message(2, (x) => metric(x, m));
      });
    }
  });
  return w.finish();
}
