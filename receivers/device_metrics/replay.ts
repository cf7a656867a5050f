/**
 * Replaying a device's last exposition: tailscaled writes the same lines scrape after scrape,
 * only the numbers change. After a scrape has been parsed and converted, its text is cut into
 * the parts between the values (the segments); the next body that consists of exactly those
 * segments with a number between each two is written straight into the series' points, without
 * building a sample, a labels object or a label string. Anything else — one character
 * different, a value that is not a number, a counter that turns NaN — is parsed the long way,
 * which also builds the next template.
 *
 * Why this is exact: the parser reads a sample's value as the characters after the labels up
 * to a blank or the end of the line. A body whose every other character equals the template's
 * has the same lines, names, labels, HELP and TYPE, so its families and series are the
 * template's, in the same order; only the values can differ, and they are read by the parser's
 * own rule (an integer of up to 15 digits, else `parseGoFloat`). Every family is still admitted
 * by the shared registry with the same arguments as `convertFamilies` gives, so type conflicts,
 * budgets and HELP behave the same.
 */
import type { HrTime } from '@opentelemetry/api';
import { msToHrTime } from '../../src/model/batch.ts';
import { BoundedCache } from '../../src/model/names.ts';
import { admitted, canonical, printableMetricName, type ConvertContext, type SeriesState } from './convert.ts';
import type { OutputKind } from './families.ts';
import { codeUnits, parseGoFloat, type ExpositionFamily } from './exposition.ts';

/**
 * Longest body a template is made of, in characters. A template is kept per device; its
 * skeleton is shared with every device writing the same segments, but a device that writes a
 * body no one else writes keeps its own (two bytes per character), so this bounds what one
 * device can make the receiver hold beyond its series. tailscaled's bodies are 5–20 KB.
 */
const MAX_TEMPLATE_CHARS = 64 * 1024;

/**
 * The segments of a body, as one array of characters and where each segment starts: bytes when
 * every character is ASCII (then a body's UTF-8 bytes are compared with them directly, four at
 * a time), else UTF-16 code units (compared with the decoded text).
 */
interface Skeleton {
  readonly bytes: DataView | undefined;
  readonly units: Uint16Array | undefined;
  /** Segment k is characters `at[k]` … `at[k + 1] - 1`; `at.length` = segments + 1. */
  readonly at: Int32Array;
  /**
   * The families its text declares, in order (the text fixes them: names, types, HELP and how
   * many samples each has), and for each sample whether it is a counter's.
   */
  readonly families: readonly TemplateFamily[];
  readonly counter: Uint8Array;
}

/**
 * One skeleton per distinct set of segments for the process: devices of one client version
 * write the same ones. Bounded by characters and entries, as devices choose the text; past the
 * bound a device's skeleton is its own. Only skeletons built twice get in (`admit`).
 */
const skeletons = new BoundedCache<Skeleton>({ maxChars: 4 * 1024 * 1024, maxEntries: 10_000, sizeOf: (k) => (k.units?.length ?? (k.bytes?.byteLength ?? 0) / 2) + 4 * k.at.length });

/**
 * Skeletons built once and not yet shared, by a hash of their text. A skeleton enters the shared
 * cache only when a second build makes the same one: a device writing a new body every scrape
 * never does, so it cannot push the skeletons honest devices share out of the cache (it keeps
 * only its own, one at a time). A hash collision only shares a skeleton one build early.
 */
const builtOnce = new Set<number>();

function admit(key: string, sk: Skeleton): void {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  if (builtOnce.delete(h)) {
    skeletons.set(key, sk);
    return;
  }
  if (builtOnce.size >= 100_000) builtOnce.clear();
  builtOnce.add(h);
}

function sameFamilies(a: readonly TemplateFamily[], b: readonly TemplateFamily[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as TemplateFamily;
    const y = b[i] as TemplateFamily;
    if (x.name !== y.name || x.kind !== y.kind || x.help !== y.help || x.count !== y.count) return false;
  }
  return true;
}

type Cut = Pick<Skeleton, 'bytes' | 'units' | 'at'>;

/** Segments as characters and offsets (a skeleton without its families yet). */
function cut(segs: readonly string[]): Cut {
  const at = new Int32Array(segs.length + 1);
  let total = 0;
  for (let k = 0; k < segs.length; k++) {
    at[k] = total;
    total += (segs[k] as string).length;
  }
  at[segs.length] = total;
  const units = new Uint16Array(total);
  let high = 0;
  for (let k = 0; k < segs.length; k++) {
    const seg = segs[k] as string;
    const base = at[k] as number;
    for (let j = 0; j < seg.length; j++) high |= units[base + j] = seg.charCodeAt(j);
  }
  // Uint8Array.from copies: the bytes do not keep the units' buffer alive.
  return high < 128 ? { bytes: new DataView(Uint8Array.from(units).buffer), units: undefined, at } : { bytes: undefined, units, at };
}

/** The cut's characters as a string (its cache key). */
function cutText({ bytes, units }: Cut): string {
  return bytes ? `b|${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')}` : `u|${Buffer.from((units as Uint16Array).buffer, (units as Uint16Array).byteOffset, (units as Uint16Array).byteLength).toString('utf16le')}`;
}

/** The shared skeleton equal to `units`/`at` with `families`, or this one (offered for sharing). */
function shared(c: Cut, families: readonly TemplateFamily[]): Skeleton {
  const { bytes, units, at } = c;
  // The key is made from the copies, not from the segments: those are slices of the body, and a
  // key holding them would keep every body alive. The offsets make it one key per cut.
  const key = `${at.join(',')}|${cutText(c)}`;
  const known = skeletons.get(key);
  // The text fixes the families, but HELP is cut by the receiver's max_help_length: a receiver
  // with another bound gets a skeleton of its own.
  if (known !== undefined && sameFamilies(known.families, families)) return known;
  const counter = new Uint8Array(at.length - 2);
  let e = 0;
  for (const f of families) for (let j = 0; j < f.count; j++) counter[e++] = f.kind === 'counter' ? 1 : 0;
  const sk: Skeleton = { bytes, units, at, families, counter };
  if (known === undefined) admit(key, sk);
  return sk;
}

interface TemplateFamily {
  /** Its printed name. */
  readonly name: string;
  readonly kind: 'counter' | 'gauge';
  readonly help: string;
  /** Its samples: the next `count` entries. */
  readonly count: number;
}

/** Scrapes written by replay, process-wide: tests check that their bodies took the path they test. */
export const replayStats = { replays: 0 };

/** Values of the body being replayed (reused: one replay runs at a time). */
let values = new Float64Array(1024);

const isBlank = (c: number): boolean => c === 32 || c === 9;

/**
 * Reads the values of a body against skeleton `sk`: true when the body is exactly its segments
 * with one value token between each two, the values then in `values`. Compares code units, not
 * strings (`startsWith` per segment took longer than parsing the body). `code` is the text's
 * code units, or — for an all-ASCII skeleton only — the body's UTF-8 bytes: a byte equal to an
 * ASCII unit is that character, and a value token must be ASCII too (a non-ASCII byte in one
 * makes this false, and the body is decoded and parsed the long way).
 */
function readValues(code: Uint16Array | Uint8Array, sk: Cut): boolean {
  const { bytes, units, at } = sk;
  // Bytes are compared with bytes, units with units; nothing else.
  const byBytes = code instanceof Uint8Array;
  if (byBytes ? bytes === undefined : units === undefined) return false;
  const view = byBytes ? new DataView(code.buffer, code.byteOffset, code.byteLength) : undefined;
  const n = at.length - 2;
  if (values.length < n) values = new Float64Array(Math.max(n, values.length * 2));
  const len = code.length;
  let pos = 0;
  for (let k = 0; k <= n; k++) {
    const from = at[k] as number;
    const segLen = (at[k + 1] as number) - from;
    if (pos + segLen > len) return false;
    if (view && bytes) {
      // Four bytes at a time (seven times faster than one), then the rest.
      let j = 0;
      for (; j + 4 <= segLen; j += 4) if (view.getUint32(pos + j) !== bytes.getUint32(from + j)) return false;
      for (; j < segLen; j++) if (view.getUint8(pos + j) !== bytes.getUint8(from + j)) return false;
    } else {
      const u = units as Uint16Array;
      for (let j = 0; j < segLen; j++) if (code[pos + j] !== u[from + j]) return false;
    }
    pos += segLen;
    if (k === n) break;
    const vs = pos;
    let int = 0;
    let isInt = true;
    for (; pos < len; pos++) {
      const c = code[pos] as number;
      if (c === 32 || c === 9 || c === 10 || c === 13) break;
      // No number the parser reads has a non-ASCII character: the long way fails the line too.
      if (c >= 128) return false;
      if (isInt) {
        if (c >= 48 && c <= 57) int = int * 10 + (c - 48);
        else isInt = false;
      }
    }
    if (pos === vs) return false;
    let v: number | undefined;
    if (isInt && pos - vs <= 15) v = int;
    else {
      v = parseGoFloat(asciiString(code, vs, pos));
      if (v === undefined) return false;
    }
    values[k] = v;
  }
  return pos === len;
}

/** Units `from` … `to - 1` of `code`, all ASCII, as a string. */
function asciiString(code: Uint16Array | Uint8Array, from: number, to: number): string {
  const part = code.subarray(from, to);
  return Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString(code instanceof Uint8Array ? 'latin1' : 'utf16le');
}

/** A device's last exposition, cut at its values, bound to the series they were written to. */
export class ReplayTemplate {
  private readonly _skeleton: Skeleton;
  private readonly _states: readonly SeriesState[];
  private readonly _labels: object;
  private readonly _generation: number;

  private constructor(skeleton: Skeleton, states: readonly SeriesState[], labels: object, generation: number) {
    this._skeleton = skeleton;
    this._states = states;
    this._labels = labels;
    this._generation = generation;
  }

  /**
   * The template of a scrape just parsed (`families`) and converted with `ctx` (its tracker
   * committed), or undefined when the scrape is not one a replay could repeat exactly: a
   * histogram or summary, a timestamp, a sample left out (NaN counter, duplicate, refused
   * family), a line whose value is not where this cut finds it, or a body too large.
   */
  static build(text: string, families: readonly ExpositionFamily[], ctx: ConvertContext): ReplayTemplate | undefined {
    if (!ctx.families || text.length > MAX_TEMPLATE_CHARS) return undefined;
    const tracker = ctx.tracker;
    if (!tracker.madeWith(ctx.deviceLabels)) return undefined;
    const states = tracker.kept();
    const fams: TemplateFamily[] = [];
    const names: string[] = [];
    const expected: number[] = [];
    for (const fam of families) {
      if (fam.type !== 'counter' && fam.type !== 'gauge' && fam.type !== 'untyped') return undefined;
      const name = printableMetricName(fam.name);
      if (name === undefined) return undefined;
      // The parser's strings are slices of the body: kept as they are, they would keep it alive.
      fams.push({ name: canonical(name), kind: fam.type === 'counter' ? 'counter' : 'gauge', help: canonical(fam.help ?? ''), count: fam.samples.length });
      for (const s of fam.samples) {
        if (s.timestampMs !== undefined) return undefined;
        names.push(s.name);
        expected.push(s.value);
      }
    }
    // One kept series per sample, in order: nothing was left out or merged.
    if (states.length !== names.length) return undefined;
    let e = 0;
    for (const f of fams) {
      for (let j = 0; j < f.count; j++) {
        const s = states[e++] as SeriesState;
        if (typeof s.point?.value !== 'number' || (f.kind === 'counter' && s.start === undefined)) return undefined;
      }
    }
    // Cut the text at each sample line's value: the last blank-separated token of the line.
    const segs: string[] = [];
    const len = text.length;
    let segStart = 0;
    let k = 0;
    let pos = 0;
    while (pos < len) {
      let end = text.indexOf('\n', pos);
      if (end < 0) end = len;
      let lineEnd = end;
      if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
      let i = pos;
      pos = end + 1;
      while (i < lineEnd && isBlank(text.charCodeAt(i))) i++;
      if (i >= lineEnd || text.charCodeAt(i) === 35) continue;
      // The line must start with its sample's name (a line naming itself inside the braces, or
      // samples of one family written apart, do not line up with the parsed order).
      const name = names[k];
      if (name === undefined || !text.startsWith(name, i)) return undefined;
      const after = text.charCodeAt(i + name.length);
      if (after !== 123 && !isBlank(after)) return undefined;
      let ve = lineEnd;
      while (ve > i && isBlank(text.charCodeAt(ve - 1))) ve--;
      let vs = ve;
      while (vs > i && !isBlank(text.charCodeAt(vs - 1))) vs--;
      if (vs <= i) return undefined;
      segs.push(text.slice(segStart, vs));
      segStart = ve;
      k++;
    }
    if (k !== names.length) return undefined;
    segs.push(text.slice(segStart));
    // The cut must give back exactly the values the parser read; only then is it shared.
    const own = cut(segs);
    // Checked on what replay will read: the UTF-8 bytes for an ASCII skeleton (a text with any
    // other character is not made a template of), so `readValues` only ever sees one kind of
    // array in a tailnet whose bodies are ASCII and stays monomorphic.
    let code: Uint8Array | Uint16Array;
    if (own.bytes) {
      code = Buffer.from(text, 'utf8');
      if (code.length !== text.length) return undefined;
    } else code = codeUnits(text);
    if (!readValues(code, own)) return undefined;
    for (let j = 0; j < k; j++) if (!Object.is(values[j], expected[j])) return undefined;
    return new ReplayTemplate(shared(own, fams), states, ctx.deviceLabels, tracker.generation);
  }

  /**
   * Writes `body` into the series' points through `ctx` as `convertFamilies` would, and ends the
   * tracker's scrape. Returns the number of points written, or undefined — before anything was
   * changed — when `body` is not this template's with other values (parse it instead). After a
   * replay that had to leave a family out, `valid` is false. `body` is the text, or its UTF-8
   * bytes when `ascii` is true (undefined otherwise).
   */
  replay(body: string | Uint8Array, ctx: ConvertContext): number | undefined {
    const tracker = ctx.tracker;
    const registry = ctx.families;
    if (!this.valid || !registry || ctx.deviceLabels !== this._labels || !tracker.madeWith(this._labels) || tracker.generation !== this._generation) return undefined;
    if (!readValues(typeof body === 'string' ? codeUnits(body) : body, this._skeleton)) return undefined;
    const states = this._states;
    const counter = this._skeleton.counter;
    // A counter sample that is NaN is left out by the long way (and its series with it).
    for (let k = 0; k < states.length; k++) if (counter[k] === 1 && Number.isNaN(values[k])) return undefined;
    const now: HrTime = msToHrTime(ctx.timeMs);
    const budget = { left: ctx.maxFamilies ?? Infinity };
    let only: SeriesState[] | undefined;
    let k = 0;
    let n = 0;
    for (const f of this._skeleton.families) {
      const kind: OutputKind = f.kind;
      // Every family was allowed when the template was made, and `familyAllowed` depends on the
      // name alone (the receiver's configuration), so it is not asked again.
      if (!admitted(ctx, registry, f.name, kind, f.help, f.count, budget)) {
        only ??= states.slice(0, k);
        k += f.count;
        continue;
      }
      const m = ctx.out.metric(f.name, registry.help(f.name), kind);
      for (let j = 0; j < f.count; j++, k++) {
        const s = states[k] as SeriesState;
        const p = s.point as { -readonly [K in 'attributes' | 'value' | 'startTime' | 'endTime']: unknown } & { value: number };
        const v = values[k] as number;
        if (kind === 'counter') {
          if (v < p.value) s.start = now;
          p.startTime = s.start;
        } else p.startTime = now;
        p.value = v;
        p.endTime = now;
        m.points.push(p as never);
        only?.push(s);
        n++;
      }
    }
    tracker.replayed(only);
    if (only) this.valid = false;
    replayStats.replays++;
    return n;
  }

  /** False once the series it writes are no longer the tracker's (see `replay`). */
  valid = true;

  /** Whether `replay` takes the body's bytes (its segments are all ASCII). */
  get ascii(): boolean {
    return this._skeleton.bytes !== undefined;
  }
}
