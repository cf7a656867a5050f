import type { Attributes, HrTime } from '@opentelemetry/api';
import type { Histogram } from '@opentelemetry/sdk-metrics';
import type { BatchBuilder } from '../../src/model/batch.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import { boundLabel } from '../../src/model/labels.ts';
import type { ExpositionFamily, ExpositionSample } from './exposition.ts';

/** What the receiver remembers about one series of a device between scrapes. */
interface SeriesState {
  /** Start of a cumulative series (first seen, or last reset). */
  start: HrTime | undefined;
  last: number;
  /** The series' attributes object, reused while its labels stay the same. */
  attrs: Attributes;
  /** The point written for this series in the current scrape (a duplicate overwrites it). */
  point: { value: unknown } | undefined;
  /** Scrape number in which `point` was written. */
  scrape: number;
}

/**
 * Per-device series state, as the Collector's prometheus receiver keeps it: a cumulative
 * series' start time is when it was first seen and is reset to the current time when its value
 * drops; and every series keeps one attributes object across scrapes (see
 * `src/model/intern.ts`). Each scrape replaces the map, so series that vanish are forgotten.
 */
export class StartTimeTracker {
  // One map with a "seen in scrape n" stamp per entry: unseen entries are swept at commit,
  // which costs one lookup per sample instead of copying every entry into a new map.
  private _series = new Map<string, SeriesState & { seen: number }>();
  private _device = '';
  private _scrape = 0;
  /** Duplicate series seen in the current scrape (the last sample wins, as in Prometheus). */
  duplicates = 0;

  /** Forgets everything when the device's own labels (name, tailnet) change. */
  device(signature: string): void {
    if (signature !== this._device) {
      this._device = signature;
      this._series = new Map();
    }
  }

  /** The state of `key` for this scrape; `make` builds the attributes of a new series. */
  series(key: string, make: () => Attributes): SeriesState {
    let s = this._series.get(key);
    if (!s) {
      s = { start: undefined, last: NaN, attrs: make(), point: undefined, scrape: -1, seen: this._scrape };
      this._series.set(key, s);
    } else s.seen = this._scrape;
    return s;
  }

  /** Start time for a cumulative series given its current `value`. */
  start(s: SeriesState, value: number, now: HrTime): HrTime {
    if (s.start === undefined || value < s.last) s.start = now;
    s.last = value;
    return s.start;
  }

  /**
   * Records the point written for `s` in this scrape; returns false when the series already has
   * one (a duplicate line), after overwriting its value so exactly one series is exported.
   */
  claim(s: SeriesState, point: { value: unknown }): boolean {
    if (s.scrape === this._scrape && s.point) {
      s.point.value = point.value;
      this.duplicates++;
      return false;
    }
    s.scrape = this._scrape;
    s.point = point;
    return true;
  }

  /** Ends a scrape: only the series seen in it are remembered. */
  commit(): void {
    for (const [k, s] of this._series) if (s.seen !== this._scrape) this._series.delete(k);
    this._scrape++;
    this.duplicates = 0;
  }

  /**
   * A failed scrape keeps the previous state (counters resume without a false reset); entries
   * it created are swept at the next successful scrape if they do not reappear.
   */
  abandon(): void {
    this._scrape++;
    this.duplicates = 0;
  }

  get size(): number {
    return this._series.size;
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

/**
 * Canonical copies of label values. A value sliced from a scraped body can keep the whole body
 * alive (V8 sliced strings); a series keeps its attributes for its lifetime, so its values are
 * copied once here — and shared, since the same values ("derp", "direct_ipv4") recur on every
 * device.
 */
const canonicalValues = new Map<string, string>();
function canonical(v: string): string {
  let c = canonicalValues.get(v);
  if (c === undefined) {
    c = v.length > 12 ? Buffer.from(v, 'utf8').toString('utf8') : v;
    if (canonicalValues.size < 50_000) canonicalValues.set(c, c);
  }
  return c;
}

function attrs(ctx: ConvertContext, labels: Record<string, string>, skip?: string): Attributes {
  const a: Attributes = { ...ctx.deviceLabels };
  for (const k in labels) {
    if (k === skip) continue;
    // A device's own label named like one of ours is kept as exported_<name>, as Prometheus does.
    const key = RESERVED.has(k) ? `exported_${k}` : canonical(k);
    a[key] = canonical(boundLabel(labels[k] as string, ctx.maxLabel));
  }
  return a;
}

function attributeSignatureOf(a: Attributes): string {
  return JSON.stringify(a);
}

function seriesKey(name: string, labels: Record<string, string>, skip?: string): string {
  if (skip === undefined || !(skip in labels)) return name + JSON.stringify(labels);
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
  ctx.tracker.device(attributeSignatureOf(ctx.deviceLabels));
  let n = 0;
  for (const fam of families) {
    if (!ctx.familyAllowed(fam.name)) continue;
    const help = fam.help ?? '';
    switch (fam.type) {
      case 'counter': {
        const m = ctx.out.metric(fam.name, help, 'counter');
        for (const s of fam.samples) {
          if (Number.isNaN(s.value)) continue;
          const st = ctx.tracker.series(seriesKey(s.name, s.labels), () => attrs(ctx, s.labels));
          const p = { attributes: st.attrs, value: s.value, startTime: ctx.tracker.start(st, s.value, now), endTime: now };
          if (ctx.tracker.claim(st, p)) {
            m.points.push(p);
            n++;
          }
        }
        break;
      }
      case 'histogram':
        n += convertHistogram(fam, ctx, now);
        break;
      case 'summary': {
        for (const s of fam.samples) {
          const m = ctx.out.metric(s.name, help, 'gauge');
          const st = ctx.tracker.series(seriesKey(s.name, s.labels), () => attrs(ctx, s.labels));
          const p = { attributes: st.attrs, value: s.value, startTime: now, endTime: now };
          if (ctx.tracker.claim(st, p)) {
            m.points.push(p);
            n++;
          }
        }
        break;
      }
      default: {
        const m = ctx.out.metric(fam.name, help, 'gauge');
        for (const s of fam.samples) {
          const st = ctx.tracker.series(seriesKey(s.name, s.labels), () => attrs(ctx, s.labels));
          const p = { attributes: st.attrs, value: s.value, startTime: now, endTime: now };
          if (ctx.tracker.claim(st, p)) {
            m.points.push(p);
            n++;
          }
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
    const st = ctx.tracker.series(seriesKey(fam.name, g.labels), () => attrs(ctx, g.labels));
    const p = { attributes: st.attrs, value, startTime: ctx.tracker.start(st, count, now), endTime: now };
    if (ctx.tracker.claim(st, p)) {
      m.histogramPoints.push(p);
      n++;
    }
  }
  return n;
}
