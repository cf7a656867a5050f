import type { Attributes, HrTime } from '@opentelemetry/api';
import type { Histogram } from '@opentelemetry/sdk-metrics';
import type { BatchBuilder } from '../../src/model/batch.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import { boundLabel } from '../../src/model/labels.ts';
import type { ExpositionFamily, ExpositionSample } from './exposition.ts';

/** Start time and last value of one cumulative series (counter or histogram). */
interface SeriesStart {
  start: HrTime;
  last: number;
}

/**
 * Per-device cumulative-series state, as the Collector's prometheus receiver keeps it: a series'
 * start time is when it was first seen, and is reset to the current time when its value drops.
 * Each scrape replaces the map, so series that vanish are forgotten (memory follows live series).
 */
export class StartTimeTracker {
  private _prev = new Map<string, SeriesStart>();
  private _next = new Map<string, SeriesStart>();

  /** Start time for `key` given its current `value` (`now` is this scrape's time). */
  start(key: string, value: number, now: HrTime): HrTime {
    const p = this._prev.get(key);
    let s: SeriesStart;
    if (!p || value < p.last) s = { start: now, last: value };
    else {
      p.last = value;
      s = p;
    }
    this._next.set(key, s);
    return s.start;
  }

  /** Ends a scrape: only the series seen in it are remembered. */
  commit(): void {
    this._prev = this._next;
    this._next = new Map();
  }

  /** A failed scrape keeps the previous state (counters resume without a false reset). */
  abandon(): void {
    this._next = new Map();
  }

  get size(): number {
    return this._prev.size;
  }
}

export interface ConvertContext {
  readonly out: BatchBuilder;
  readonly deviceLabels: Attributes;
  readonly timeMs: number;
  readonly tracker: StartTimeTracker;
  readonly familyAllowed: (name: string) => boolean;
  readonly maxLabel: number;
}

const RESERVED = new Set(['device_id', 'device_name', 'tailnet']);

function attrs(ctx: ConvertContext, labels: Record<string, string>, skip?: string): Attributes {
  const a: Attributes = { ...ctx.deviceLabels };
  for (const k in labels) {
    if (k === skip) continue;
    // A device's own label named like one of ours is kept as exported_<name>, as Prometheus does.
    const key = RESERVED.has(k) ? `exported_${k}` : k;
    a[key] = boundLabel(labels[k] as string, ctx.maxLabel);
  }
  return a;
}

function seriesKey(name: string, labels: Record<string, string>, skip?: string): string {
  let k = name;
  for (const l in labels) if (l !== skip) k += `\u0000${l}\u0001${labels[l]}`;
  return k;
}

/**
 * Converts one device's parsed families into OpenTelemetry points in `ctx.out`: counters become
 * monotonic cumulative sums with tracked start times, gauges and untyped become gauges,
 * histograms become explicit-bucket histograms, summaries are flattened to gauges (the JS data
 * model has no summary type). Returns the number of points written.
 */
export function convertFamilies(families: readonly ExpositionFamily[], ctx: ConvertContext): number {
  const now = msToHrTime(ctx.timeMs);
  let n = 0;
  for (const fam of families) {
    if (!ctx.familyAllowed(fam.name)) continue;
    const help = fam.help ?? '';
    switch (fam.type) {
      case 'counter': {
        const m = ctx.out.metric(fam.name, help, 'counter');
        for (const s of fam.samples) {
          if (Number.isNaN(s.value)) continue;
          const start = ctx.tracker.start(seriesKey(s.name, s.labels), s.value, now);
          m.points.push({ attributes: attrs(ctx, s.labels), value: s.value, startTime: start, endTime: now });
          n++;
        }
        break;
      }
      case 'histogram':
        n += convertHistogram(fam, ctx, now);
        break;
      case 'summary': {
        for (const s of fam.samples) {
          const m = ctx.out.metric(s.name, help, 'gauge');
          m.points.push({ attributes: attrs(ctx, s.labels), value: s.value, startTime: now, endTime: now });
          n++;
        }
        break;
      }
      default: {
        const m = ctx.out.metric(fam.name, help, 'gauge');
        for (const s of fam.samples) {
          m.points.push({ attributes: attrs(ctx, s.labels), value: s.value, startTime: now, endTime: now });
          n++;
        }
      }
    }
  }
  return n;
}

function convertHistogram(fam: ExpositionFamily, ctx: ConvertContext, now: HrTime): number {
  interface Group {
    labels: Record<string, string>;
    buckets: Array<{ le: number; count: number }>;
    sum?: number;
    count?: number;
  }
  const groups = new Map<string, Group>();
  const group = (s: ExpositionSample, skip?: string): Group => {
    const key = seriesKey('', s.labels, skip);
    let g = groups.get(key);
    if (!g) {
      const labels = { ...s.labels };
      if (skip) delete labels[skip];
      g = { labels, buckets: [] };
      groups.set(key, g);
    }
    return g;
  };
  for (const s of fam.samples) {
    if (s.name === `${fam.name}_bucket`) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      if (!Number.isNaN(le)) group(s, 'le').buckets.push({ le, count: s.value });
    } else if (s.name === `${fam.name}_sum`) group(s).sum = s.value;
    else if (s.name === `${fam.name}_count`) group(s).count = s.value;
  }
  const m = ctx.out.metric(fam.name, fam.help ?? '', 'histogram');
  let n = 0;
  for (const g of groups.values()) {
    g.buckets.sort((a, b) => a.le - b.le);
    const inf = g.buckets[g.buckets.length - 1];
    // Like the Collector, a histogram without a +Inf bucket cannot be represented: drop it.
    if (!inf || inf.le !== Infinity) continue;
    const boundaries: number[] = [];
    const counts: number[] = [];
    let prev = 0;
    for (const b of g.buckets) {
      if (b.le !== Infinity) boundaries.push(b.le);
      counts.push(Math.max(0, b.count - prev));
      prev = b.count;
    }
    const count = g.count ?? inf.count;
    const value: Histogram = { buckets: { boundaries, counts }, count, ...(g.sum !== undefined ? { sum: g.sum } : {}) };
    const start = ctx.tracker.start(seriesKey(fam.name, g.labels), count, now);
    m.histogramPoints.push({ attributes: attrs(ctx, g.labels), value, startTime: start, endTime: now });
    n++;
  }
  return n;
}
