import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { copyPoint } from './stale.ts';
import {
  AggregationTemporality,
  DataPointType,
  type DataPoint,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';

/** Milliseconds since the epoch to OpenTelemetry's [seconds, nanoseconds]. */
export function msToHrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

export function hrTimeToMs(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

export type MetricKind = 'gauge' | 'counter' | 'histogram';

/** Accumulates one metric's points; `build()` turns it into sdk-metrics `MetricData`. */
export class MetricBuilder {
  readonly name: string;
  readonly help: string;
  readonly kind: MetricKind;
  readonly points: DataPoint<number>[] = [];
  readonly histogramPoints: DataPoint<Histogram>[] = [];
  // Points of one batch mostly share their times (one instant per cycle or per device); one
  // [s, ns] array per distinct instant instead of two per point is ~100 bytes per series less.
  // Times are never mutated in place anywhere in the pipeline, so sharing them is safe.
  private _ms = NaN;
  private _hr: HrTime = [0, 0];
  private _startMs = NaN;
  private _startHr: HrTime = [0, 0];
  constructor(name: string, help: string, kind: MetricKind) {
    this.name = name;
    this.help = help;
    this.kind = kind;
  }
  /** Adds a point; `startMs` matters for counters (first seen / last reset). */
  add(attributes: Attributes, value: number, timeMs: number, startMs = timeMs): this {
    this.points.push({ attributes, value, startTime: this._start(startMs), endTime: this._time(timeMs) });
    return this;
  }
  addHistogram(attributes: Attributes, value: Histogram, timeMs: number, startMs = timeMs): this {
    this.histogramPoints.push({ attributes, value, startTime: this._start(startMs), endTime: this._time(timeMs) });
    return this;
  }
  private _time(ms: number): HrTime {
    if (ms !== this._ms) {
      this._ms = ms;
      this._hr = msToHrTime(ms);
    }
    return this._hr;
  }
  private _start(ms: number): HrTime {
    if (ms === this._ms) return this._time(ms);
    if (ms !== this._startMs) {
      this._startMs = ms;
      this._startHr = msToHrTime(ms);
    }
    return this._startHr;
  }
  build(): MetricData {
    // Scraped and computed values are always DOUBLE: INT with a fractional value is invalid OTLP.
    const descriptor = { name: this.name, description: this.help, unit: '', valueType: ValueType.DOUBLE };
    if (this.kind === 'counter') {
      return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: this.points };
    }
    if (this.kind === 'histogram') {
      return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM, dataPoints: this.histogramPoints };
    }
    return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints: this.points };
  }
}

/** Builds one ResourceMetrics batch, metric by metric, keeping the order metrics were declared. */
export class BatchBuilder {
  private readonly _metrics = new Map<string, MetricBuilder>();
  private readonly _resource: Resource;
  private readonly _scope: { name: string; version?: string };
  constructor(resourceAttributes: Attributes, scope: { name: string; version?: string }) {
    this._resource = resourceFromAttributes(resourceAttributes);
    this._scope = scope;
  }
  metric(name: string, help: string, kind: MetricKind): MetricBuilder {
    let m = this._metrics.get(name);
    if (!m) {
      m = new MetricBuilder(name, help, kind);
      this._metrics.set(name, m);
    }
    return m;
  }
  gauge(name: string, help: string): MetricBuilder {
    return this.metric(name, help, 'gauge');
  }
  counter(name: string, help: string): MetricBuilder {
    return this.metric(name, help, 'counter');
  }
  build(): ResourceMetrics {
    const metrics: MetricData[] = [];
    // A metric without points would print a HELP/TYPE header with nothing under it.
    for (const m of this._metrics.values()) if (m.points.length || m.histogramPoints.length) metrics.push(m.build());
    return { resource: this._resource, scopeMetrics: [{ scope: this._scope, metrics }] };
  }
}

/** An empty batch with the given resource. */
export function emptyBatch(resource: Resource): ResourceMetrics {
  return { resource, scopeMetrics: [] };
}

/** Counts data points in a batch (self-telemetry). */
export function countPoints(batch: ResourceMetrics): number {
  let n = 0;
  for (const sm of batch.scopeMetrics) for (const m of sm.metrics) n += m.dataPoints.length;
  return n;
}

/**
 * A copy of `batch` whose points are copies too, for a consumer that keeps a batch past the
 * call that handed it over (a send queue). Receivers may write a series' point in place at its
 * next scrape (see `StartTimeTracker.point` in receivers/device_metrics/convert.ts), so a kept
 * batch would otherwise show values of a later cycle. Point times and histogram values are
 * never written in place, so the copies share them; an end-of-series flag is carried along.
 */
export function snapshotPoints(batch: ResourceMetrics): ResourceMetrics {
  return {
    resource: batch.resource,
    scopeMetrics: batch.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.map((m) => ({ ...m, dataPoints: (m.dataPoints as Array<DataPoint<unknown>>).map((p) => copyPoint(p, p.startTime, p.value)) }) as MetricData),
    })),
  };
}

/**
 * Returns a copy of `batch` whose metrics are mapped by `fn` (null drops the metric; a metric
 * left with no points is dropped too, as the Collector's filter processor does).
 */
export function mapMetrics(batch: ResourceMetrics, fn: (m: MetricData) => MetricData | null): ResourceMetrics {
  const scopeMetrics: ScopeMetrics[] = [];
  for (const sm of batch.scopeMetrics) {
    const metrics: MetricData[] = [];
    for (const m of sm.metrics) {
      const out = fn(m);
      if (out && out.dataPoints.length > 0) metrics.push(out);
    }
    if (metrics.length) scopeMetrics.push({ scope: sm.scope, metrics });
  }
  return { resource: batch.resource, scopeMetrics };
}

/** Copies a metric with new points, keeping its type fields. */
export function withPoints(m: MetricData, dataPoints: DataPoint<number>[] | DataPoint<Histogram>[]): MetricData {
  return { ...m, dataPoints } as MetricData;
}

/** Copies a metric with a new name (relabeling `__name__`). */
export function withName(m: MetricData, name: string): MetricData {
  return { ...m, descriptor: { ...m.descriptor, name } } as MetricData;
}
