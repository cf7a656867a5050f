import { DataPointType, type DataPoint, type Histogram, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Attributes, HrTime } from '@opentelemetry/api';
import { BoundedCache, prometheusName } from '../../src/model/names.ts';
import { escapeName, isLegacyMetricName, quoteEscape, seriesRef, writtenLabelName, writtenMetricName, type Escaping } from './escaping.ts';
import { TEXT_FORMAT, type ExpositionFormat } from './negotiate.ts';

/**
 * Prometheus text serializer producing byte-for-byte the output of
 * `@opentelemetry/exporter-prometheus`'s `PrometheusSerializer` (without target_info, scope
 * labels, prefix or timestamps — our defaults), about three times faster. The official
 * serializer takes ~1.4 s for 440,000 points on the benchmark machine, which misses the 1 s
 * target for a 10,000-device tailnet; `bench/` keeps both figures and a test checks that the
 * two outputs are identical.
 */

const NEEDS_ESCAPE = /[\\\n"]/;

/**
 * Printed names by source name. Names come from devices and the API, so the cache is bounded by
 * the characters it holds, not just its entry count.
 */
const nameCache = new BoundedCache<string>({ maxChars: 4 * 1024 * 1024, maxEntries: 100_000 });
function sanitize(name: string): string {
  let s = nameCache.get(name);
  if (s === undefined) {
    s = prometheusName(name);
    nameCache.set(name, s);
  }
  return s;
}

/** A label name Prometheus accepts: not empty and not starting with a digit. */
function labelName(k: string): string {
  const s = sanitize(k);
  if (s === '') return '_';
  const c = s.charCodeAt(0);
  return c >= 48 && c <= 57 ? `_${s}` : s;
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeValue(v: unknown): string {
  const s = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v);
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function valueString(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return `${v}`;
}

function labels(attrs: Attributes, extra?: string, reserved?: string): string {
  if (extra === undefined && reserved === undefined) return cachedLabels(attrs);
  return plainLabels(attrs, extra, reserved);
}

function plainLabels(attrs: Attributes, extra?: string, reserved?: string): string {
  let s = '';
  // Attributes are usually already valid Prometheus names (receivers write them so); only when
  // one is rewritten can two collide, and a line with a repeated label name makes Prometheus
  // reject the whole scrape, so the later one is renamed exported_<name> as Prometheus does.
  let used: Set<string> | undefined;
  for (const k in attrs) {
    // Own keys only, as the official serializer reads them (an object may inherit others).
    if (!Object.hasOwn(attrs, k)) continue;
    let n = labelName(k);
    if (n !== k || used || n === reserved) {
      if (!used) {
        used = new Set();
        for (const prev in attrs) {
          if (prev === k) break;
          if (Object.hasOwn(attrs, prev)) used.add(labelName(prev));
        }
      }
      while (used.has(n) || n === reserved) n = `exported_${n}`;
      used.add(n);
    }
    if (s.length > 0) s += ',';
    s += `${n}="${escapeValue(attrs[k])}"`;
  }
  if (extra !== undefined) s += s.length > 0 ? `,${extra}` : extra;
  return s;
}

/** Where an attributes object keeps its label text (own, non-enumerable: see {@link cachedLabels}). */
const LABEL_TEXT = Symbol('tsmetrics.prometheus.labels');
type WithText = { [LABEL_TEXT]?: string };

/** One label set's text, and the texts of the label sets that extend it by one label. */
interface PrefixNode {
  text: string;
  next?: Map<string, Map<string, PrefixNode>>;
}

/**
 * Label texts built from shared prefixes: every series of a device starts with the same
 * `device_id="…",device_name="…"`, which is built once per device, and each `k="v"` piece once
 * per page. Texts are flat strings (joined, not concatenated): a V8 rope of the shared parts
 * would be ~30 bytes smaller per series (25 MB at 10,000 devices), but writing a page of ropes
 * took 30–50 % longer (the writer walks each rope, and flattens it in place when it writes it
 * on its own). Holds only while one page is being rendered (a node per series); the texts it
 * made outlive it on their objects.
 */
class LabelPrefixes {
  private readonly _root: PrefixNode = { text: '' };
  /** `k="v"` pieces, shared by every series with that label. */
  private readonly _pieces = new Map<string, Map<string, string>>();

  /** The text of `attrs`, or undefined when it is not a plain label set (see `plainLabels`). */
  text(attrs: Attributes): string | undefined {
    let node = this._root;
    for (const k in attrs) {
      if (!Object.hasOwn(attrs, k)) continue;
      const v = attrs[k];
      if (typeof v !== 'string' || labelName(k) !== k) return undefined;
      let byKey = (node.next ??= new Map()).get(k);
      if (byKey === undefined) {
        byKey = new Map();
        node.next.set(k, byKey);
      }
      let child = byKey.get(v);
      if (child === undefined) {
        child = { text: node.text === '' ? this._piece(k, v).slice(1) : [node.text, this._piece(k, v)].join('') };
        byKey.set(v, child);
      }
      node = child;
    }
    return node.text;
  }

  /** `,k="v"` (escaped). */
  private _piece(k: string, v: string): string {
    let byValue = this._pieces.get(k);
    if (byValue === undefined) {
      byValue = new Map();
      this._pieces.set(k, byValue);
    }
    let p = byValue.get(v);
    if (p === undefined) {
      p = `,${k}="${escapeValue(v)}"`;
      byValue.set(v, p);
    }
    return p;
  }
}

/** The prefixes of the page being rendered (a fresh set for each, dropped when it ends). */
let prefixes = new LabelPrefixes();

/**
 * The label text of `attrs` without extra labels: kept on the object itself as an own
 * non-enumerable symbol property, as the OTLP encoder keeps its encodings (invisible to
 * `for...in`, spreads and JSON, so no copy carries it). Receivers keep a series' attributes
 * object from cycle to cycle, so each scrape of the page only joins texts made once; nothing of
 * the page itself is held between scrapes. Objects that cannot take the property (frozen ones)
 * are rendered each time. Attributes objects are never changed once made: that is the contract
 * every cache in the pipeline relies on.
 */
function cachedLabels(attrs: Attributes): string {
  // A point without an attributes object (a hostile or careless source) has no labels, as
  // `for...in` gives it; reading the property of one would fail the whole page.
  if (attrs == null) return '';
  const own = (attrs as WithText)[LABEL_TEXT];
  // Own only: an object whose prototype is another attributes object has its own labels.
  if (own !== undefined && Object.hasOwn(attrs, LABEL_TEXT)) return own;
  const text = prefixes.text(attrs) ?? plainLabels(attrs);
  if (Object.isExtensible(attrs)) {
    try {
      Reflect.defineProperty(attrs, LABEL_TEXT, { value: text });
    } catch {
      // A proxy that throws on it: rendered each time.
    }
  }
  return text;
}

function metricName(m: MetricData): string | undefined {
  let name = sanitize(escapeHelp(m.descriptor.name));
  if (name === '' || name === '_') return undefined;
  if (name[0] !== undefined && name[0] >= '0' && name[0] <= '9') name = `_${name}`;
  if (m.dataPointType === DataPointType.SUM && m.isMonotonic && !name.endsWith('_total')) name += '_total';
  return name;
}

function typeOf(m: MetricData): string {
  switch (m.dataPointType) {
    case DataPointType.SUM:
      return m.isMonotonic ? 'counter' : 'gauge';
    case DataPointType.GAUGE:
      return 'gauge';
    case DataPointType.HISTOGRAM:
      return 'histogram';
    default:
      return 'untyped';
  }
}

interface Family {
  type: string;
  help: string;
  metrics: MetricData[];
}

function points(name: string, m: MetricData, out: LineSink, from: number, to: number): void {
  if (m.dataPointType === DataPointType.HISTOGRAM) {
    const pts = m.dataPoints as DataPoint<Histogram>[];
    for (let i = from; i < to; i++) {
      const p = pts[i] as DataPoint<Histogram>;
      const h = p.value;
      // Bucket lines add their own `le`, so an attribute of that name must be renamed.
      const base = labels(p.attributes, undefined, 'le');
      const lbl = base.length ? `{${base}}` : '';
      if (h.count != null) out.push(`${name}_count${lbl} ${valueString(h.count)}\n`);
      if (h.sum != null) out.push(`${name}_sum${lbl} ${valueString(h.sum)}\n`);
      let cum = 0;
      let infDefined = false;
      const counts = h.buckets.counts;
      for (let b = 0; b < counts.length; b++) {
        cum += counts[b] as number;
        const ub = h.buckets.boundaries[b];
        if (ub === undefined && infDefined) break;
        if (ub === Infinity) infDefined = true;
        const le = ub === undefined || ub === Infinity ? '+Inf' : String(ub);
        out.push(`${name}_bucket{${base.length ? `${base},` : ''}le="${le}"} ${valueString(cum)}\n`);
      }
    }
    return;
  }
  if (m.dataPointType === DataPointType.SUM || m.dataPointType === DataPointType.GAUGE) {
    const pts = m.dataPoints as DataPoint<number>[];
    for (let i = from; i < to; i++) {
      const p = pts[i] as DataPoint<number>;
      const l = labels(p.attributes);
      out.push(l.length ? `${name}{${l}} ${valueString(p.value)}\n` : `${name} ${valueString(p.value)}\n`);
    }
  }
}

// --- Other formats: OpenMetrics 1.0 and the escaping schemes of Prometheus 3 negotiation ---

/** Printed label names by attribute key, per escaping scheme other than `underscores`. */
const labelNameCaches = new Map<Escaping, BoundedCache<string>>();

/** The label name for attribute key `k` under `esc` (unquoted; quoting happens on writing). */
function escapedLabelName(k: string, esc: Escaping): string {
  if (esc === 'underscores') return labelName(k);
  let cache = labelNameCaches.get(esc);
  if (!cache) {
    cache = new BoundedCache<string>({ maxChars: 1024 * 1024, maxEntries: 20_000 });
    labelNameCaches.set(esc, cache);
  }
  let s = cache.get(k);
  if (s === undefined) {
    const w = k.toWellFormed();
    s = w === '' ? '_' : esc === 'allow-utf-8' ? w : escapeName(w, esc, 'label');
    cache.set(k, s);
  }
  return s;
}

/** Like `labels`, for any escaping scheme; names outside the legacy charset are quoted. */
function labelsFor(attrs: Attributes, esc: Escaping, extra?: string, reserved?: string): string {
  if (esc === 'underscores') return labels(attrs, extra, reserved);
  let s = '';
  let used: Set<string> | undefined;
  for (const k in attrs) {
    // Own keys only, as in the text format: a series is the same in every format.
    if (!Object.hasOwn(attrs, k)) continue;
    let n = escapedLabelName(k, esc);
    if (n !== k || used || n === reserved) {
      if (!used) {
        used = new Set();
        for (const prev in attrs) {
          if (prev === k) break;
          if (Object.hasOwn(attrs, prev)) used.add(escapedLabelName(prev, esc));
        }
      }
      while (used.has(n) || n === reserved) n = `exported_${n}`;
      used.add(n);
    }
    if (s.length > 0) s += ',';
    s += `${writtenLabelName(n)}="${escapeValue(attrs[k])}"`;
  }
  if (extra !== undefined) s += s.length > 0 ? `,${extra}` : extra;
  return s;
}

/**
 * The sample name of `m` under `esc`. `underscores` is today's rule; the others start from the
 * OpenTelemetry name itself, with `_total` added to a counter first and the scheme applied to
 * the whole name, as the Go OpenTelemetry exporter does.
 */
function metricNameFor(m: MetricData, esc: Escaping): string | undefined {
  if (esc === 'underscores') return metricName(m);
  let name = m.descriptor.name.toWellFormed();
  if (name === '') return undefined;
  if (m.dataPointType === DataPointType.SUM && m.isMonotonic && !name.endsWith('_total')) name += '_total';
  return esc === 'allow-utf-8' ? name : escapeName(name, esc, 'metric');
}

function bareRef(name: string, labels: string): string {
  return labels.length ? `${name}{${labels}}` : name;
}
/** OpenMetrics' spelling of a float label value (`le`): always with a `.` or an exponent. */
function omFloat(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  const s = `${v}`;
  return s === 'NaN' || s.includes('.') || s.includes('e') ? s : `${s}.0`;
}

/**
 * A point's start time as OpenMetrics `_created` seconds, written exactly from the
 * [seconds, nanoseconds] pair (a float would lose the nanoseconds). Undefined when unknown.
 */
function createdSeconds(t: HrTime | undefined): string | undefined {
  if (!t) return undefined;
  const [s, ns] = t;
  if (!Number.isSafeInteger(s) || !Number.isInteger(ns) || s < 0 || ns < 0 || ns >= 1e9 || (s === 0 && ns === 0)) return undefined;
  if (ns === 0) return `${s}`;
  return `${s}.${String(ns).padStart(9, '0').replace(/0+$/, '')}`;
}

/** An OpenMetrics counter's family name: the sample name without `_total`. */
function omFamilyName(name: string, type: string): string {
  return type === 'counter' && name.endsWith('_total') ? name.slice(0, -6) : name;
}

function pointsFor(name: string, m: MetricData, fmt: ExpositionFormat, out: LineSink, from: number, to: number): void {
  const esc = fmt.escaping;
  const om = fmt.openmetrics;
  // Suffixes add only legacy characters, so one check of the name decides for every line.
  const series = isLegacyMetricName(name) ? bareRef : seriesRef;
  if (m.dataPointType === DataPointType.HISTOGRAM) {
    const pts = m.dataPoints as DataPoint<Histogram>[];
    for (let i = from; i < to; i++) {
      const p = pts[i] as DataPoint<Histogram>;
      const h = p.value;
      const base = labelsFor(p.attributes, esc, undefined, 'le');
      const lbl = (extra: string) => (base.length ? `${base},${extra}` : extra);
      const ref = (suffix: string) => series(name + suffix, base);
      if (!om) {
        if (h.count != null) out.push(`${ref('_count')} ${valueString(h.count)}\n`);
        if (h.sum != null) out.push(`${ref('_sum')} ${valueString(h.sum)}\n`);
      }
      let cum = 0;
      let infDefined = false;
      const counts = h.buckets.counts;
      for (let b = 0; b < counts.length; b++) {
        cum += counts[b] as number;
        const ub = h.buckets.boundaries[b];
        if (ub === undefined && infDefined) break;
        if (ub === undefined || ub === Infinity) infDefined = true;
        const le = ub === undefined || ub === Infinity ? '+Inf' : om ? omFloat(ub) : String(ub);
        out.push(`${series(`${name}_bucket`, lbl(`le="${le}"`))} ${valueString(cum)}\n`);
      }
      if (om) {
        // OpenMetrics requires the +Inf bucket; a point without one still gets it, from count.
        if (!infDefined) out.push(`${series(`${name}_bucket`, lbl('le="+Inf"'))} ${valueString(h.count ?? cum)}\n`);
        if (h.sum != null) out.push(`${ref('_sum')} ${valueString(h.sum)}\n`);
        out.push(`${ref('_count')} ${valueString(h.count ?? cum)}\n`);
        const created = createdSeconds(p.startTime);
        if (created !== undefined) out.push(`${ref('_created')} ${created}\n`);
      }
    }
    return;
  }
  if (m.dataPointType === DataPointType.SUM || m.dataPointType === DataPointType.GAUGE) {
    const counter = om && m.dataPointType === DataPointType.SUM && m.isMonotonic;
    const createdName = counter ? `${omFamilyName(name, 'counter')}_created` : '';
    const pts = m.dataPoints as DataPoint<number>[];
    for (let i = from; i < to; i++) {
      const p = pts[i] as DataPoint<number>;
      const l = labelsFor(p.attributes, esc);
      out.push(`${series(name, l)} ${valueString(p.value)}\n`);
      if (counter) {
        const created = createdSeconds(p.startTime);
        if (created !== undefined) out.push(`${series(createdName, l)} ${created}\n`);
      }
    }
  }
}

/** OpenTelemetry (UCUM) units as the words Prometheus puts at the end of a name. */
const UNIT_WORDS: Record<string, string> = {
  d: 'days', h: 'hours', min: 'minutes', s: 'seconds', ms: 'milliseconds', us: 'microseconds', ns: 'nanoseconds',
  By: 'bytes', KiBy: 'kibibytes', MiBy: 'mebibytes', GiBy: 'gibibytes', TiBy: 'tebibytes', KBy: 'kilobytes', MBy: 'megabytes', GBy: 'gigabytes', TBy: 'terabytes',
  m: 'meters', V: 'volts', A: 'amperes', J: 'joules', W: 'watts', g: 'grams', Cel: 'celsius', Hz: 'hertz', '1': 'ratio', '%': 'percent',
};
const PER_WORDS: Record<string, string> = { s: 'second', m: 'minute', min: 'minute', h: 'hour', d: 'day', w: 'week', mo: 'month', y: 'year' };
const UNIT_WORD = /^[a-zA-Z0-9_]+$/;

/** The Prometheus spelling of an OpenTelemetry unit, or undefined when there is none. */
export function unitWord(unit: string): string | undefined {
  if (unit === '' || unit.startsWith('{')) return undefined;
  const [num = '', per, ...rest] = unit.split('/');
  if (rest.length) return undefined;
  const n = UNIT_WORDS[num] ?? num;
  if (per === undefined) return UNIT_WORD.test(n) ? n : undefined;
  const d = PER_WORDS[per] ?? UNIT_WORDS[per] ?? per;
  const w = `${n}_per_${d}`;
  return UNIT_WORD.test(w) ? w : undefined;
}

/** Appends the sample lines of points `from`–`to` of `m` to `out`, one string per line. */
function body(name: string, m: MetricData, fmt: ExpositionFormat, out: LineSink, from: number, to: number): void {
  if (!fmt.openmetrics && fmt.escaping === 'underscores') points(name, m, out, from, to);
  else pointsFor(name, m, fmt, out, from, to);
}

/**
 * Points rendered between two looks at the sink: a family of a 10,000-device tailnet has tens of
 * thousands of points, and its text must not be held whole before any of it is sent.
 */
const POINTS_PER_SLICE = 1_000;

/** Takes a page's lines, one string each. */
interface LineSink {
  push(line: string): unknown;
}

/** Collects a page's lines into parts of type P. */
interface PageSink<P> extends LineSink {
  /** Lines taken so far. */
  readonly lines: number;
  /** Parts complete enough to hand on (and forgets them). */
  ready(): P[];
  /** Every part left, the last one however small. */
  end(): P[];
}

/**
 * Lines per part of a page: ~250 KB of text. Lines are collected in an array and joined once
 * per part (building with += leaves a rope of string nodes for the GC to walk).
 */
const LINES_PER_PART = 2_000;

class TextParts implements PageSink<string> {
  private readonly _out: string[] = [];
  lines = 0;
  push(line: string): void {
    this._out.push(line);
    this.lines++;
  }
  ready(): string[] {
    return this._out.length >= LINES_PER_PART ? this.end() : [];
  }
  end(): string[] {
    if (this._out.length === 0) return [];
    const s = this._out.join('');
    this._out.length = 0;
    return [s];
  }
}

/** Bytes per buffer part of a page. */
const PART_BYTES = 256 * 1024;

type Utf8Writable = Buffer & { utf8Write?: (s: string, offset: number) => number };

/**
 * Lines written straight into UTF-8 buffers: the page is never one string, and the bytes the
 * client gets are made in one pass (joining lines and then encoding the joined text copied the
 * page twice, the join itself walking each line's rope).
 */
class BufferParts implements PageSink<Buffer> {
  private _buf: Utf8Writable = Buffer.allocUnsafe(PART_BYTES);
  private _pos = 0;
  private _done: Buffer[] = [];
  lines = 0;
  push(line: string): void {
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    if (this._pos + line.length * 3 > this._buf.length) {
      if (this._pos > 0) this._done.push(this._buf.subarray(0, this._pos));
      this._buf = Buffer.allocUnsafe(Math.max(PART_BYTES, line.length * 3));
      this._pos = 0;
    }
    // Node's own UTF-8 writer, without `write`'s argument handling: a quarter to a third of the
    // time of writing a large page (measured at 825,000 lines).
    const b = this._buf;
    this._pos += b.utf8Write ? b.utf8Write(line, this._pos) : b.write(line, this._pos);
    this.lines++;
  }
  ready(): Buffer[] {
    const d = this._done;
    if (d.length) this._done = [];
    return d;
  }
  end(): Buffer[] {
    if (this._pos > 0) this._done.push(this._buf.subarray(0, this._pos));
    this._pos = 0;
    this._buf = Buffer.alloc(0);
    return this.ready();
  }
}

/** Serializes a snapshot as Prometheus text (same rules and output as the official serializer). */
export function serializePrometheusText(rm: ResourceMetrics): string {
  return serializePrometheusParts(rm).join('');
}

/** The same text as a list of parts, for streaming a large body. */
export function serializePrometheusParts(rm: ResourceMetrics): string[] {
  return serializeParts(rm, TEXT_FORMAT);
}

function typeLine(type: string, om: boolean): string {
  return om && type === 'untyped' ? 'unknown' : type;
}

/**
 * The exposition of `rm` in `fmt` as a list of parts (about LINES_PER_PART lines each; joined,
 * they are the page). OpenMetrics output ends with `# EOF`.
 */
export function serializeParts(rm: ResourceMetrics, fmt: ExpositionFormat): string[] {
  return Array.from(pageParts(rm, fmt, new TextParts()));
}

/**
 * The same parts, each rendered when it is asked for: a large page is written to the client
 * while the rest is still being rendered, and no more than a part of it (and the lines of up to
 * POINTS_PER_SLICE points) is held. Nothing of a page is kept for the next one but each series'
 * label text (see `cachedLabels`).
 */
export function exposition(rm: ResourceMetrics, fmt: ExpositionFormat): Generator<string, void, undefined> {
  return pageParts(rm, fmt, new TextParts());
}

/** The page as UTF-8 buffers of about 256 KB, each rendered when it is asked for. */
export function expositionBytes(rm: ResourceMetrics, fmt: ExpositionFormat): Generator<Buffer, void, undefined> {
  return pageParts(rm, fmt, new BufferParts());
}

function* pageParts<P>(rm: ResourceMetrics, fmt: ExpositionFormat, out: PageSink<P>): Generator<P, void, undefined> {
  // Two pages rendered at once share the newer one's prefixes: any of them gives the same text.
  prefixes = new LabelPrefixes();
  try {
    yield* renderPage(rm, fmt, out);
  } finally {
    // A node per series: as large as the texts themselves, and of no use after the page.
    prefixes = new LabelPrefixes();
  }
}

function* renderPage<P>(rm: ResourceMetrics, fmt: ExpositionFormat, out: PageSink<P>): Generator<P, void, undefined> {
  const esc = fmt.escaping;
  const om = fmt.openmetrics;
  const legacyText = !om && esc === 'underscores';
  const families = new Map<string, Family>();
  let conflicts = 0;
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      const name = metricNameFor(m, esc);
      if (name === undefined) continue;
      const type = typeOf(m);
      const f = families.get(name);
      if (!f) {
        families.set(name, { type, help: m.descriptor.description, metrics: [m] });
        continue;
      }
      if (f.type !== type) {
        // The official serializer drops the whole family on a TYPE conflict, which would let one
        // source silence a family for every source. The first type (sources are served in a
        // stable order) keeps the family; the conflicting metric alone is left out.
        conflicts++;
        continue;
      }
      if (!f.help && m.descriptor.description) f.help = m.descriptor.description;
      f.metrics.push(m);
    }
  }
  let parts = 0;
  // OpenMetrics names a counter's family without `_total`, so a gauge `x` and a counter `x_total`
  // would declare one family twice; the later one is left out, like a TYPE conflict.
  const omFamilies = om ? new Set<string>() : undefined;
  for (const [name, f] of families) {
    let header: string | undefined;
    if (legacyText) header = `# HELP ${name} ${escapeHelp(f.help || 'description missing')}\n# TYPE ${name} ${f.type}\n`;
    else if (!om) header = `# HELP ${writtenMetricName(name)} ${escapeHelp(f.help || 'description missing')}\n# TYPE ${writtenMetricName(name)} ${f.type}\n`;
    else {
      const fam = omFamilyName(name, f.type);
      if (omFamilies?.has(fam)) {
        conflicts++;
        continue;
      }
      omFamilies?.add(fam);
      const w = writtenMetricName(fam);
      header = `# HELP ${w} ${quoteEscape(f.help || 'description missing')}\n# TYPE ${w} ${typeLine(f.type, true)}\n`;
      // OpenMetrics requires a family's name to end with its unit, so UNIT is only written then.
      const unit = f.metrics.map((m) => unitWord(m.descriptor.unit ?? '')).find((u) => u !== undefined);
      if (unit !== undefined && fam.endsWith(`_${unit}`)) header += `# UNIT ${w} ${unit}\n`;
    }
    for (const m of f.metrics) {
      // The header goes with the family's first metric; a metric with no lines and no header
      // to carry adds nothing. (Every line ends with a newline, as the official serializer's
      // trim-and-newline per metric leaves it.)
      const before = out.lines;
      if (header !== undefined) out.push(header);
      header = undefined;
      const n = m.dataPoints.length;
      for (let i = 0; i < n; i += POINTS_PER_SLICE) {
        body(name, m, fmt, out, i, Math.min(n, i + POINTS_PER_SLICE));
        yield* out.ready();
      }
      if (out.lines !== before) parts++;
    }
  }
  lastConflicts = conflicts;
  if (om) out.push('# EOF\n');
  else if (parts === 0) out.push('# no registered metrics');
  yield* out.end();
}

let lastConflicts = 0;

/** Metrics left out of the last serialization because their TYPE disagreed with their family's. */
export function lastTypeConflicts(): number {
  return lastConflicts;
}
