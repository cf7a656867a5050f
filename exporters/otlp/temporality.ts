/**
 * Cumulative to delta, for OTLP backends that want deltas
 * (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE).
 *
 * The pipeline carries cumulative data everywhere (Prometheus needs it); only the OTLP exporter
 * turns a copy into deltas on its way out. Each delta point covers the interval since the
 * series' previous point: its start is the previous point's time, its end its own time.
 *
 * - A counter reset (the start time moved, or the value went down) sends the new value as the
 *   delta: what was counted since the restart. A delta is never negative.
 * - A series seen for the first time only sets the baseline: a device's counter carries
 *   everything since the device booted, and sending that as one delta would be a spike. So
 *   does a series that comes back after it disappeared (a device that left the tailnet and
 *   returned): its state went with it.
 * - The state is one entry per series of each source's latest batch, replaced by every batch:
 *   it follows the live series and never outgrows them, like the staleness processor's.
 */
import type { Attributes, HrTime } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, type DataPoint, type Histogram, type MetricData, type ResourceMetrics, type ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { copyPoint, isStale } from '../../src/model/stale.ts';
import type { TemporalityPreference } from './config.ts';

/** Which data a batch is: scraped observations, or tsmetrics' own instruments. */
export type DataOrigin = 'pipeline' | 'self';

interface SumState {
  readonly start: HrTime;
  readonly time: HrTime;
  readonly value: number;
}

interface HistogramState {
  readonly start: HrTime;
  readonly time: HrTime;
  readonly value: Histogram;
}

type State = SumState | HistogramState;
/** One source's state: metric (scope, name, type) → attribute signature → the series' last point. */
type SourceState = Map<string, Map<string, State>>;

const cmp = (a: HrTime, b: HrTime): number => a[0] - b[0] || a[1] - b[1];

/**
 * Whether a metric of `origin` goes out as deltas under `preference`. The specification's
 * `lowmemory` keeps asynchronous counters cumulative, since turning them into deltas costs
 * state per series: scraped counters are observations of that kind, so only tsmetrics' own
 * (synchronous) counters and histograms change.
 */
export function wantsDelta(preference: TemporalityPreference, origin: DataOrigin, m: MetricData): boolean {
  if (preference === 'cumulative' || (preference === 'lowmemory' && origin === 'pipeline')) return false;
  if (m.aggregationTemporality !== AggregationTemporality.CUMULATIVE) return false;
  if (m.dataPointType === DataPointType.SUM) return m.isMonotonic;
  return m.dataPointType === DataPointType.HISTOGRAM;
}

function histogramDelta(v: Histogram, prev: Histogram): Histogram | undefined {
  const b = v.buckets;
  const pb = prev.buckets;
  if (b.counts.length !== pb.counts.length || b.boundaries.some((x, i) => x !== pb.boundaries[i])) return undefined;
  const counts = b.counts.map((c, i) => c - (pb.counts[i] as number));
  const out: Histogram = { buckets: { boundaries: b.boundaries, counts }, count: v.count - prev.count };
  if (v.sum !== undefined && prev.sum !== undefined) out.sum = v.sum - prev.sum;
  return out;
}

function histogramWentDown(v: Histogram, prev: Histogram): boolean {
  if (v.count < prev.count) return true;
  return v.buckets.counts.some((c, i) => c < (prev.buckets.counts[i] ?? 0));
}

/**
 * The delta state of one OTLP exporter, one map of series per source. Not shared: each exporter
 * sends its own intervals.
 */
export class DeltaConverter {
  private readonly _preference: TemporalityPreference;
  private readonly _sources = new Map<string, SourceState>();
  /** Signature of an attributes object (receivers reuse them across cycles, so this mostly hits). */
  private readonly _signatures = new WeakMap<Attributes, string>();

  constructor(preference: TemporalityPreference) {
    this._preference = preference;
  }

  /** True when nothing is ever converted (cumulative). */
  get passThrough(): boolean {
    return this._preference === 'cumulative';
  }

  /** Series whose previous point is held, over all sources (tests, `/debug`). */
  trackedSeries(): number {
    let n = 0;
    for (const src of this._sources.values()) for (const m of src.values()) n += m.size;
    return n;
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    this._sources.clear();
  }

  private _signature(attrs: Attributes): string {
    let s = this._signatures.get(attrs);
    if (s === undefined) {
      s = JSON.stringify(Object.keys(attrs).sort().map((k) => [k, attrs[k]]));
      this._signatures.set(attrs, s);
    }
    return s;
  }

  /**
   * The batch as the preference wants it. `source` names the stream whose consecutive batches
   * are compared (pipeline + receiver, or the self-telemetry); the source's previous state is
   * replaced by what this batch holds. Self-telemetry counters start at zero when the process
   * starts, so their first point is a true delta and is sent; a scraped series' first point only
   * sets the baseline.
   */
  convert(batch: ResourceMetrics, source: string, origin: DataOrigin): ResourceMetrics {
    if (this.passThrough) return batch;
    const prevSource = this._sources.get(source);
    const nextSource: SourceState = new Map();
    const scopeMetrics: ScopeMetrics[] = [];
    let changed = false;
    for (const sm of batch.scopeMetrics) {
      const metrics: MetricData[] = [];
      for (const m of sm.metrics) {
        if (!wantsDelta(this._preference, origin, m)) {
          metrics.push(m);
          continue;
        }
        changed = true;
        // Signatures are cached strings (their hash is computed once); keys are not concatenated.
        const metricKey = `${sm.scope.name}\u0000${m.descriptor.name}\u0000${m.dataPointType}`;
        const prev = prevSource?.get(metricKey) ?? new Map<string, State>();
        let next = nextSource.get(metricKey);
        if (!next) nextSource.set(metricKey, (next = new Map()));
        const points =
          m.dataPointType === DataPointType.HISTOGRAM
            ? this._histograms(m.dataPoints, prev, next, origin)
            : this._sums(m.dataPoints as DataPoint<number>[], prev, next, origin);
        if (next.size === 0) nextSource.delete(metricKey);
        if (points.length) metrics.push({ ...m, aggregationTemporality: AggregationTemporality.DELTA, dataPoints: points } as MetricData);
      }
      if (metrics.length) scopeMetrics.push({ scope: sm.scope, metrics });
    }
    if (nextSource.size) this._sources.set(source, nextSource);
    else this._sources.delete(source);
    return changed ? { resource: batch.resource, scopeMetrics } : batch;
  }

  private _sums(points: DataPoint<number>[], prev: Map<string, State>, next: Map<string, State>, origin: DataOrigin): DataPoint<number>[] {
    const out: DataPoint<number>[] = [];
    for (const p of points) {
      const key = this._signature(p.attributes);
      const last = prev.get(key) as SumState | undefined;
      if (isStale(p)) {
        // The series ends here; its state goes with it.
        out.push(copyPoint(p, last?.time ?? p.startTime, 0));
        continue;
      }
      if (!Number.isFinite(p.value)) {
        // Nothing to subtract from or to; the baseline waits for a real value.
        if (last) next.set(key, last);
        continue;
      }
      const state: SumState = { start: p.startTime, time: p.endTime, value: p.value };
      if (!last) {
        next.set(key, state);
        if (origin === 'self' && cmp(p.startTime, p.endTime) < 0) out.push(copyPoint(p, p.startTime, Math.max(0, p.value)));
        continue;
      }
      if (cmp(p.endTime, last.time) <= 0) {
        // The same point again (last good data re-sent): no new interval.
        next.set(key, last);
        continue;
      }
      next.set(key, state);
      const reset = cmp(p.startTime, last.start) !== 0 || p.value < last.value;
      out.push(copyPoint(p, this._intervalStart(p, last.time, reset), Math.max(0, reset ? p.value : p.value - last.value)));
    }
    return out;
  }

  private _histograms(points: DataPoint<Histogram>[], prev: Map<string, State>, next: Map<string, State>, origin: DataOrigin): DataPoint<Histogram>[] {
    const out: DataPoint<Histogram>[] = [];
    for (const p of points) {
      const key = this._signature(p.attributes);
      const last = prev.get(key) as HistogramState | undefined;
      if (isStale(p)) {
        out.push(copyPoint(p, last?.time ?? p.startTime, p.value));
        continue;
      }
      const state: HistogramState = { start: p.startTime, time: p.endTime, value: p.value };
      if (!last) {
        next.set(key, state);
        if (origin === 'self' && cmp(p.startTime, p.endTime) < 0) out.push(copyPoint(p, p.startTime, p.value));
        continue;
      }
      if (cmp(p.endTime, last.time) <= 0) {
        next.set(key, last);
        continue;
      }
      next.set(key, state);
      const reset = cmp(p.startTime, last.start) !== 0 || histogramWentDown(p.value, last.value);
      const delta = reset ? p.value : histogramDelta(p.value, last.value);
      // New bucket boundaries make it another histogram: it starts over from here.
      if (delta) out.push(copyPoint(p, this._intervalStart(p, last.time, reset), delta));
    }
    return out;
  }

  /**
   * Where a delta's interval starts: the previous point's time, or — after a reset whose start
   * lies inside the interval — the reset itself. A true reset point (start == time: the
   * counter restarted at an unknown moment since the previous point) keeps the previous time.
   */
  private _intervalStart(p: DataPoint<unknown>, lastTime: HrTime, reset: boolean): HrTime {
    return reset && cmp(p.startTime, lastTime) > 0 && cmp(p.startTime, p.endTime) < 0 ? p.startTime : lastTime;
  }
}
