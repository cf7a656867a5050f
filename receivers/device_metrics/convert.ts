import type { Attributes, HrTime } from '@opentelemetry/api';
import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import type { BatchBuilder } from '../../src/model/batch.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import { boundLabel } from '../../src/model/labels.ts';
import { BoundedCache, prometheusName } from '../../src/model/names.ts';
import { keyLabel, sharedKey } from '../../src/model/intern.ts';
import { FamilyRegistry, type OutputKind } from './families.ts';
import type { ExpositionFamily, ExpositionSample } from './exposition.ts';

/** What the receiver remembers about one series of a device between scrapes. */
export interface SeriesState {
  /** Start of a cumulative series (first seen, or last reset). */
  start: HrTime | undefined;
  /** The series' attributes object, reused while its labels stay the same. */
  attrs: Attributes;
  /**
   * The point last written for this series: its value is the "last value" a counter reset is
   * judged against, so no second copy of it is kept (a boxed double per series, at 10,000
   * devices ~13 MB).
   */
  point: { value: unknown } | undefined;
  /** Scrape number in which the series was last seen (unseen ones are swept at commit). */
  seen: number;
  /**
   * Its key (shared by every device with the same series, see `sharedKey`): for the series of
   * a scrape, the printed sample name followed by the JSON text of its labels (`seriesKey`).
   */
  key: string;
  /**
   * How many printed labels of its own (beyond the device's) its attributes hold, or -1 when
   * they cannot be told apart from the device's; see `StartTimeTracker.predict`.
   */
  labels: number;
}

/** The number a counter's reset is judged on: its value, or a histogram's count. */
function comparable(v: unknown): number {
  return typeof v === 'number' ? v : ((v as { count?: number } | undefined)?.count ?? NaN);
}

/**
 * Per-device series state, as the Collector's prometheus receiver keeps it: a cumulative
 * series' start time is when it was first seen and is reset to the current time when its value
 * drops; and every series keeps one attributes object across scrapes (see
 * `src/model/intern.ts`). Series not seen in a successful scrape are forgotten.
 */
export class StartTimeTracker {
  private _device = '';
  /** The labels object `_device` was computed from (receivers keep it while it is unchanged). */
  private _deviceLabels: object | undefined;
  private _scrape = 0;
  /** Whether the series `series()` returned last had already been seen in this scrape. */
  private _again = false;
  /** Its slot among this scrape's points (below), when `_again`. */
  private _cur = -1;
  /** The start it had before this scrape, when not `_again` (restored for a duplicate). */
  private _startBefore: HrTime | undefined;
  /**
   * The value the series returned last is judged against for a counter reset: what was exported
   * for it last time, also for a duplicate line (whose series' point already holds this scrape's
   * first line, see `point`). NaN for a new series.
   */
  private _before = NaN;
  // This scrape's points, handed to their series at commit: until then `s.point` is the
  // previous scrape's point, so every line of a series — a duplicate too — is judged against
  // what was exported last time, never against another line of this scrape. Reused arrays:
  // no allocation per sample once they have grown.
  private _states: SeriesState[] = [];
  private readonly _points: Array<{ value: unknown; startTime?: HrTime }> = [];
  private readonly _starts: Array<HrTime | undefined> = [];
  private readonly _befores: number[] = [];
  /**
   * The series of the last successful scrape in the order they came, and where this scrape is
   * in it: a device writes the same series in the same order scrape after scrape, so the next
   * sample is predicted to be `_prev[_cursor]` and, when its name and labels prove it, found
   * without building or hashing its key.
   */
  private _prev: SeriesState[] = [];
  private _cursor = 0;
  /**
   * Key → state for samples not found by position: built on the first such sample of a scrape
   * from `_prev` and what the scrape has made so far, and dropped at its end. In steady state no
   * scrape builds one, so a device keeps no map of its series (~22 bytes per series).
   */
  private _index: Map<string, SeriesState> | undefined;
  /** Slot of each series in this scrape's arrays; built on the first duplicate only. */
  private _slots: Map<SeriesState, number> | undefined;
  /** Duplicate series seen in the current scrape (the last sample wins, as in Prometheus). */
  duplicates = 0;
  /**
   * Changes whenever the kept series (`series()` order) change: a successful scrape, a reset. A
   * replay template (replay.ts) is valid only for the generation it was built in.
   */
  private _generation = 0;

  /** Forgets everything when the device's own labels (name, tailnet) change. */
  device(signature: string): void {
    this._deviceLabels = undefined;
    if (signature !== this._device) {
      this._device = signature;
      this._prev = [];
      this._index = undefined;
      this._generation++;
    }
  }

  /** Like `device`, from the labels object itself: the same object is not signed again. */
  deviceLabels(labels: object): void {
    if (labels === this._deviceLabels) return;
    this.device(JSON.stringify(labels));
    this._deviceLabels = labels;
  }

  /**
   * The state of the series at the predicted position when the sample provably is that series:
   * the same printed name, and exactly its own printed labels with the same values. Then the
   * sample's key (see `seriesKey`) equals the series' key whatever path built either, so the
   * lookup by key can be skipped. Undefined when not proven; the caller then asks `series`.
   */
  predict(name: string, labels: Record<string, string>): SeriesState | undefined {
    const s = this._prev[this._cursor];
    // The key is the name and then `{` (the labels' JSON): that prefix proves the name.
    if (s === undefined || s.seen === this._scrape || s.labels < 0 || s.key.charCodeAt(name.length) !== 123 || !s.key.startsWith(name)) return undefined;
    const a = s.attrs;
    let n = 0;
    for (const k in labels) {
      // A label named like one of ours was renamed in the attributes; the value there is ours.
      if (a[k] !== labels[k] || RESERVED.has(k)) return undefined;
      n++;
    }
    if (n !== s.labels) return undefined;
    this._cursor++;
    return this._take(s);
  }

  /**
   * The state of `key` for this scrape; `make` builds the attributes of a new series, which
   * holds `labels` printed labels of its own (-1: never predicted, for keys of another form).
   */
  series(key: string, make: () => Attributes, labels = -1): SeriesState {
    let index = this._index;
    if (!index) {
      index = new Map();
      for (const p of this._prev) index.set(p.key, p);
      for (const p of this._states) index.set(p.key, p);
      this._index = index;
    }
    let s = index.get(key);
    if (!s) {
      const shared = sharedKey(key);
      s = { start: undefined, attrs: make(), point: undefined, seen: this._scrape, key: shared, labels };
      index.set(shared, s);
      this._again = false;
      this._startBefore = undefined;
      this._before = NaN;
      return s;
    }
    // Back in step with the last scrape's order: the series is usually just ahead of the
    // position (a series before it is gone).
    for (let j = this._cursor, end = Math.min(this._prev.length, j + 8); j < end; j++) {
      if (this._prev[j] === s) {
        this._cursor = j + 1;
        break;
      }
    }
    return this._take(s);
  }

  private _take(s: SeriesState): SeriesState {
    this._again = s.seen === this._scrape;
    if (this._again) {
      if (!this._slots) {
        this._slots = new Map();
        for (let i = 0; i < this._states.length; i++) this._slots.set(this._states[i] as SeriesState, i);
      }
      this._cur = this._slots.get(s) ?? -1;
      // A duplicate line is judged as if it were the only one: from the start and the value
      // before this scrape.
      if (this._cur >= 0) {
        s.start = this._starts[this._cur];
        this._before = this._befores[this._cur] as number;
      }
    } else {
      s.seen = this._scrape;
      this._startBefore = s.start;
      this._before = comparable(s.point?.value);
    }
    return s;
  }

  /**
   * Start time for a cumulative series given its current `value`, judged against what was
   * exported for it last time (call right after `series()` or `predict()` for it).
   */
  start(s: SeriesState, value: number, now: HrTime): HrTime {
    if (s.start === undefined || value < this._before) s.start = now;
    return s.start;
  }

  /**
   * The point for a number sample of `s` in this scrape: the series' last point, written in
   * place, when it has one; a new one otherwise (and for a duplicate line, whose value `claim`
   * copies into the point already written). Points living from scrape to scrape keep the heap
   * from filling with a cycle's worth of dead points (825,000 at 10,000 devices) that live just
   * long enough to be promoted; the price is that a batch's points show the latest scrape, so a
   * consumer that keeps a batch past the cycle copies what it needs (the OTLP exporter's queue).
   */
  point(s: SeriesState, value: number, startTime: HrTime, endTime: HrTime): DataPoint<number> {
    const p = s.point as { -readonly [K in keyof DataPoint<number>]: DataPoint<number>[K] } | undefined;
    if (p === undefined || this._again || typeof p.value !== 'number') return { attributes: s.attrs, value, startTime, endTime };
    p.attributes = s.attrs;
    p.value = value;
    p.startTime = startTime;
    p.endTime = endTime;
    return p;
  }

  /**
   * Records the point written for `s` in this scrape (call right after `series()` for it);
   * returns false when the series already has one (a duplicate line): that point then takes
   * this line's value and start time, so exactly one series is exported and the last line wins.
   */
  claim(s: SeriesState, point: { value: unknown; startTime?: HrTime }): boolean {
    if (this._again && this._cur >= 0) {
      const p = this._points[this._cur] as { value: unknown; startTime?: HrTime };
      p.value = point.value;
      if (point.startTime !== undefined) p.startTime = point.startTime;
      this.duplicates++;
      return false;
    }
    this._slots?.set(s, this._states.length);
    this._states.push(s);
    this._points.push(point);
    this._starts.push(this._startBefore);
    this._befores.push(this._before);
    return true;
  }

  private _clear(): void {
    this._states.length = 0;
    this._cursor = 0;
    this._index = undefined;
    this._points.length = 0;
    this._starts.length = 0;
    this._befores.length = 0;
    this._slots = undefined;
    this._again = false;
    this._scrape++;
    this.duplicates = 0;
  }

  /** Ends a scrape: its points become the series' last points; series not seen in it are forgotten. */
  commit(): void {
    const order = this._states;
    for (let i = 0; i < order.length; i++) (order[i] as SeriesState).point = this._points[i];
    // This scrape's series, in order, are what is kept and the next scrape's prediction;
    // series it did not see are no longer referenced. The old order's array is reused.
    this._states = this._prev;
    this._prev = order;
    this._generation++;
    this._clear();
  }

  /** See `_generation`. */
  get generation(): number {
    return this._generation;
  }

  /** Whether `labels` is the device labels object the kept series were made with. */
  madeWith(labels: object): boolean {
    return labels === this._deviceLabels;
  }

  /**
   * The series kept from the last successful scrape, in the order it wrote them (read-only: a
   * replay template takes them as its entries).
   */
  kept(): readonly SeriesState[] {
    return this._prev;
  }

  /**
   * Ends a scrape a replay template wrote (replay.ts): every kept series was written again, in
   * the same order, unless `only` says which were (a family refused this time); those not in it
   * are forgotten, as `commit` forgets the series a scrape did not see.
   */
  replayed(only?: SeriesState[]): void {
    if (only) {
      this._prev = only;
      this._generation++;
    }
    this._clear();
  }

  /**
   * A failed scrape keeps the previous state (counters resume without a false reset): start
   * times it moved are put back; entries it created are swept at the next successful scrape if
   * they do not reappear.
   */
  abandon(): void {
    for (let i = 0; i < this._states.length; i++) (this._states[i] as SeriesState).start = this._starts[i];
    this._clear();
  }

  /** Series kept from the last successful scrape. */
  get size(): number {
    return this._prev.length;
  }
}

export interface ConvertContext {
  readonly out: BatchBuilder;
  readonly deviceLabels: Attributes;
  readonly timeMs: number;
  readonly tracker: StartTimeTracker;
  readonly familyAllowed: (name: string) => boolean;
  readonly maxLabel: number;
  /**
   * One type and HELP per name across the devices of a receiver (see families.ts). Without one,
   * this call's families are checked only against each other.
   */
  readonly families?: FamilyRegistry;
  /** Only families whose (Prometheus) name this accepts are taken; default: all. */
  readonly namespace?: (name: string) => boolean;
  /** Counts of what was left out, for the receiver's per-device error counters. */
  readonly report?: ConvertReport;
  /**
   * Most families one device may contribute per scrape. The registry is shared by every device,
   * so without a per-device share one device could fill it with made-up names and leave no room
   * for anyone else's.
   */
  readonly maxFamilies?: number;
}

/** What a conversion left out, and why. */
export interface ConvertReport {
  /** Samples of a family whose type disagrees with the type the registry holds for its name. */
  typeConflicts: number;
  /** Samples of families outside the allowed namespace. */
  outsideNamespace: number;
  /** Samples of new families refused because the registry is full. */
  registryFull: number;
}

/** Label names we attach ourselves; a device's label that prints as one of them is renamed. */
const RESERVED = new Set(['device_id', 'device_name', 'tailnet']);

/**
 * Canonical copies of label names and values. A value sliced from a scraped body can keep the
 * whole body alive (V8 sliced strings); a series keeps its attributes for its lifetime, so its
 * strings are copied once here — and shared, since the same values ("derp", "direct_ipv4") recur
 * on every device. Bounded by characters, not only entries: devices choose these strings.
 */
const canonicalStrings = new BoundedCache<string>({ maxChars: 4 * 1024 * 1024, maxEntries: 100_000 });
export function canonical(v: string): string {
  let c = canonicalStrings.get(v);
  if (c === undefined) {
    c = v.length > 12 ? Buffer.from(v, 'utf8').toString('utf8') : v;
    canonicalStrings.set(c, c);
  }
  return c;
}

/** A label name as Prometheus can print it: sanitized, never empty, never starting with a digit. */
function printableLabelName(k: string): string {
  let n = prometheusName(k);
  if (n === '') n = '_';
  const c = n.charCodeAt(0);
  if (c >= 48 && c <= 57) n = `_${n}`;
  return n;
}

/**
 * Builds a series' attributes under Prometheus' `honor_labels: false` rule, applied to the
 * OpenTelemetry attributes themselves so OTLP and `/metrics` carry the same names: each scraped
 * label name is written as Prometheus would print it, and one that equals a label we attach or a
 * label already taken is renamed `exported_<name>` (repeatedly, until free). Names are visited in
 * sorted order, so the outcome does not depend on the order a device wrote them in.
 */
function attrs(ctx: ConvertContext, labels: Record<string, string>, skip?: string): Attributes {
  // Copied key by key into an empty literal rather than spread: `{}` has room for four
  // properties in the object itself, a spread copy only for the device's three, so a series with
  // one label of its own (most of tailscaled's) would need a separate property array (~20 bytes
  // per series at 10,000 devices).
  const a: Attributes = {};
  for (const k in ctx.deviceLabels) a[k] = ctx.deviceLabels[k];
  let plain = true;
  for (const k in labels) {
    if (k === skip) continue;
    if (RESERVED.has(k) || printableLabelName(k) !== k) {
      plain = false;
      break;
    }
  }
  if (plain) {
    for (const k in labels) if (k !== skip) a[canonical(k)] = canonical(boundLabel(labels[k] as string, ctx.maxLabel));
    return a;
  }
  const keys = Object.keys(labels).filter((k) => k !== skip).sort();
  for (const k of keys) {
    let n = printableLabelName(k);
    while (RESERVED.has(n) || Object.hasOwn(a, n)) n = `exported_${n}`;
    a[canonical(n)] = canonical(boundLabel(labels[k] as string, ctx.maxLabel));
  }
  return a;
}

/** Label names already known to print as themselves (and not to be one of ours); bounded. */
const plainNames = new BoundedCache<boolean>({ maxChars: 1024 * 1024, maxEntries: 10_000, sizeOf: () => 1 });
const printsAsItself = (k: string): boolean => !RESERVED.has(k) && printableLabelName(k) === k;
function isPlainLabelName(k: string): boolean {
  return plainNames.getOrSet(k, printsAsItself);
}

/**
 * The key of a series in its device's state: its printed name and labels, so two lines that
 * print as the same series — label or metric names that sanitize alike, the same labels in
 * another order, values equal once bounded — are one series (the last line wins), never two
 * identical lines on the page. `name` is the printed metric name. The fast path (plain label
 * names in sorted order, short well-formed values: what tailscaled writes) is the raw text.
 */
function seriesKey(ctx: ConvertContext, name: string, labels: Record<string, string>): string {
  let prev = '';
  let plain = true;
  for (const k in labels) {
    const v = labels[k] as string;
    if (k < prev || !isPlainLabelName(k) || v.length > ctx.maxLabel || !v.isWellFormed()) {
      plain = false;
      break;
    }
    prev = k;
  }
  if (plain) return name + JSON.stringify(labels);
  // What attrs() will make of them, without the device's own labels, in printed-name order.
  const a = attrs({ ...ctx, deviceLabels: {} }, labels);
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(a).sort()) sorted[k] = a[k];
  return name + JSON.stringify(sorted);
}

/**
 * The tracked state of the series a sample (printed name `sname`, labels `labels`) belongs to:
 * the predicted one when it is proven (`StartTimeTracker.predict`), else found or made by key.
 */
function stateFor(ctx: ConvertContext, sname: string, labels: Record<string, string>) {
  const predicted = ctx.tracker.predict(sname, labels);
  if (predicted) return predicted;
  let n = 0;
  for (const _ in labels) n++;
  return ctx.tracker.series(seriesKey(ctx, sname, labels), () => attrs(ctx, labels), n);
}

/** The metric name as Prometheus prints it; undefined when it cannot be printed at all. */
export function printableMetricName(name: string): string | undefined {
  let n = prometheusName(name);
  if (n === '' || n === '_') return undefined;
  const c = n.charCodeAt(0);
  if (c >= 48 && c <= 57) n = `_${n}`;
  return n;
}

/** The printed name of a sample of `fam`, whose own printed name is `name`. */
function sampleName(s: ExpositionSample, fam: ExpositionFamily, name: string): string {
  return s.name === fam.name ? name : (printableMetricName(s.name) ?? name);
}

/** The name a family occupies in the exposition (counters get `_total`, as the serializer does). */
function exposedName(name: string, kind: OutputKind): string {
  return kind === 'counter' && !name.endsWith('_total') ? `${name}_total` : name;
}

/**
 * Decides whether a family may be written: inside the namespace, and of the kind the registry
 * holds for the name it will print as (histograms also claim their `_bucket`, `_count` and
 * `_sum` lines). Counts what is refused in `ctx.report`.
 */
export function admitted(ctx: ConvertContext, registry: FamilyRegistry, name: string, kind: OutputKind, help: string, samples: number, budget: { left: number }): boolean {
  if (ctx.namespace && !ctx.namespace(name)) {
    if (ctx.report) ctx.report.outsideNamespace += samples;
    return false;
  }
  if (budget.left <= 0) {
    if (ctx.report) ctx.report.registryFull += samples;
    return false;
  }
  budget.left--;
  // The OpenTelemetry name and the printed name(s) are both claimed: a counter `x` prints as
  // `x_total`, so a gauge named `x` or `x_total` from another device would collide with it.
  const exposed = exposedName(name, kind);
  const names = kind === 'histogram' ? [name, `${name}_bucket`, `${name}_count`, `${name}_sum`] : exposed === name ? [name] : [name, exposed];
  let result: ReturnType<FamilyRegistry['admit']> = 'ok';
  for (const n of names) {
    const r = registry.admit(n, kind, n === names[0] ? help : '');
    if (r !== 'ok' && result === 'ok') result = r;
  }
  if (result === 'ok') return true;
  if (ctx.report) {
    if (result === 'type_conflict') ctx.report.typeConflicts += samples;
    else ctx.report.registryFull += samples;
  }
  return false;
}

/**
 * Converts one device's parsed families into OpenTelemetry points in `ctx.out`: counters become
 * monotonic cumulative sums with tracked start times, gauges and untyped become gauges,
 * histograms become explicit-bucket histograms, summaries are flattened to gauges (the JS data
 * model has no summary type). Metric and label names are written as Prometheus prints them.
 * Returns the number of points written.
 */
export function convertFamilies(families: readonly ExpositionFamily[], ctx: ConvertContext): number {
  const now = msToHrTime(ctx.timeMs);
  const registry = ctx.families ?? new FamilyRegistry();
  const budget = { left: ctx.maxFamilies ?? Infinity };
  ctx.tracker.deviceLabels(ctx.deviceLabels);
  let n = 0;
  for (const fam of families) {
    if (!ctx.familyAllowed(fam.name)) continue;
    const name = printableMetricName(fam.name);
    if (name === undefined) continue;
    const help = fam.help ?? '';
    switch (fam.type) {
      case 'counter': {
        if (!admitted(ctx, registry, name, 'counter', help, fam.samples.length, budget)) break;
        const m = ctx.out.metric(name, registry.help(name), 'counter');
        for (const s of fam.samples) {
          if (Number.isNaN(s.value)) continue;
          const st = stateFor(ctx, sampleName(s, fam, name), s.labels);
          const p = ctx.tracker.point(st, s.value, ctx.tracker.start(st, s.value, now), now);
          if (ctx.tracker.claim(st, p)) {
            m.points.push(p);
            n++;
          }
        }
        break;
      }
      case 'histogram':
        if (!admitted(ctx, registry, name, 'histogram', help, fam.samples.length, budget)) break;
        n += convertHistogram(fam, name, registry.help(name), ctx, now);
        break;
      case 'summary': {
        // One vote per printed name and device, however many quantiles it has.
        const verdicts = new Map<string, boolean>();
        for (const s of fam.samples) {
          const sname = printableMetricName(s.name);
          if (sname === undefined) continue;
          let ok = verdicts.get(sname);
          if (ok === undefined) {
            ok = admitted(ctx, registry, sname, 'gauge', help, fam.samples.filter((x) => x.name === s.name).length, budget);
            verdicts.set(sname, ok);
          }
          if (!ok) continue;
          const m = ctx.out.metric(sname, registry.help(sname), 'gauge');
          const st = stateFor(ctx, sname, s.labels);
          const p = ctx.tracker.point(st, s.value, now, now);
          if (ctx.tracker.claim(st, p)) {
            m.points.push(p);
            n++;
          }
        }
        break;
      }
      default: {
        if (!admitted(ctx, registry, name, 'gauge', help, fam.samples.length, budget)) break;
        const m = ctx.out.metric(name, registry.help(name), 'gauge');
        for (const s of fam.samples) {
          const st = stateFor(ctx, sampleName(s, fam, name), s.labels);
          const p = ctx.tracker.point(st, s.value, now, now);
          if (ctx.tracker.claim(st, p)) {
            m.points.push(p);
            n++;
          }
        }
      }
    }
  }
  if (!ctx.families) registry.endCycle();
  return n;
}

function convertHistogram(fam: ExpositionFamily, name: string, help: string, ctx: ConvertContext, now: HrTime): number {
  interface Group {
    labels: Record<string, string>;
    buckets: Array<{ le: number; count: number }>;
    sum?: number;
    count?: number;
  }
  const groups = new Map<string, Group>();
  const group = (s: ExpositionSample, skip?: string): Group => {
    // One key format for buckets (without `le`) and for `_sum`/`_count` (which have no `le`), so
    // the parts of one histogram meet in one group.
    let key = '';
    for (const l in s.labels) if (l !== skip) key += keyLabel(l, s.labels[l] as string);
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
  const m = ctx.out.metric(name, help, 'histogram');
  let n = 0;
  for (const g of groups.values()) {
    // A bound written twice counts once, the last line winning (the sort is stable), as for any
    // other duplicate sample: two counts for one bound would make the histogram invalid.
    g.buckets.sort((a, b) => a.le - b.le);
    for (let i = g.buckets.length - 1; i > 0; i--) if ((g.buckets[i - 1] as { le: number }).le === (g.buckets[i] as { le: number }).le) g.buckets.splice(i - 1, 1);
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
    const st = stateFor(ctx, name, g.labels);
    const p = { attributes: st.attrs, value, startTime: ctx.tracker.start(st, count, now), endTime: now };
    if (ctx.tracker.claim(st, p)) {
      m.histogramPoints.push(p);
      n++;
    }
  }
  return n;
}
