import { ErrorCode, TsmetricsError } from '../../src/errors.ts';

export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface ExpositionSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface ExpositionFamily {
  name: string;
  help: string | undefined;
  type: FamilyType;
  samples: ExpositionSample[];
}

/** Invalid Prometheus text; `line` is 1-based. */
export class ExpositionParseError extends TsmetricsError {
  readonly line: number;
  constructor(line: number, message: string) {
    super(ErrorCode.EXPOSITION_PARSE, `line ${line}: ${message}`);
    this.name = 'ExpositionParseError';
    this.line = line;
  }
}

/**
 * What one exposition may contain. A device controls its own `/metrics`; these bounds hold
 * every string and count it sends to a size chosen here rather than by the device.
 */
export interface ExpositionLimits {
  /** Most samples (lines with a value) in one exposition. */
  readonly maxSamples?: number;
  /** Longest metric name, characters. */
  readonly maxNameLength?: number;
  /** Longest label name, characters. */
  readonly maxLabelNameLength?: number;
  /** Most labels on one sample. */
  readonly maxLabels?: number;
  /** HELP texts longer than this are cut (a HELP is only shown, never matched on). */
  readonly maxHelpLength?: number;
}

/** Defaults generous for tailscaled (names < 70 characters, at most 3 labels). */
export const DEFAULT_EXPOSITION_LIMITS: Required<ExpositionLimits> = {
  maxSamples: 50_000,
  maxNameLength: 256,
  maxLabelNameLength: 128,
  maxLabels: 32,
  maxHelpLength: 1024,
};

/** The exposition is well-formed but exceeds a bound of `ExpositionLimits`. */
export class ExpositionLimitError extends ExpositionParseError {
  /** Which bound: `samples`, `name`, `label_name` or `labels`. */
  readonly limit: 'samples' | 'name' | 'label_name' | 'labels';
  constructor(line: number, limit: ExpositionLimitError['limit'], message: string) {
    super(line, message);
    this.name = 'ExpositionLimitError';
    this.limit = limit;
  }
}

const TYPES = new Set<FamilyType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const TYPE_WORDS: readonly string[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

// Character classes by code (a lookup table is much faster than comparisons in the hot loop):
// bit 1 = label-name start [a-zA-Z_], 2 = label-name char (+digits), 4 = metric-name start
// (+':'), 8 = metric-name char.
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const letter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
  const digit = c >= 48 && c <= 57;
  CLASS[c] = (letter ? 1 | 2 | 4 | 8 : 0) | (digit ? 2 | 8 : 0) | (c === 58 ? 4 | 8 : 0);
}
// `c` is undefined past the end of the text (undefined < 128 is false, as NaN would be).
function isNameStart(c: number | undefined, colon: boolean): boolean {
  return (c as number) < 128 && ((CLASS[c as number] as number) & (colon ? 4 : 1)) !== 0;
}
function isNameChar(c: number | undefined, colon: boolean): boolean {
  return (c as number) < 128 && ((CLASS[c as number] as number) & (colon ? 8 : 2)) !== 0;
}

/**
 * The text's UTF-16 code units, in a buffer reused across calls. Indexing a typed array is about
 * twice as fast as `charCodeAt` (no string-representation checks per character), and copying the
 * units in costs a few percent of one pass over them.
 */
let scratch = new Uint16Array(0);
/** Bodies above this many characters get an array of their own, so a large one is not kept. */
const SCRATCH_MAX = 1 << 20;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function codeUnits(text: string): Uint16Array {
  const len = text.length;
  let units: Uint16Array;
  if (len > SCRATCH_MAX) units = new Uint16Array(len);
  else {
    if (scratch.length < len) scratch = new Uint16Array(Math.min(SCRATCH_MAX, Math.max(len, 2 * scratch.length, 4096)));
    units = scratch;
  }
  if (LITTLE_ENDIAN) Buffer.from(units.buffer, units.byteOffset, 2 * len).write(text, 'utf16le');
  else for (let i = 0; i < len; i++) units[i] = text.charCodeAt(i);
  // Exactly the text's length: reads past its end give undefined, never an earlier body's units.
  return units.subarray(0, len);
}

/**
 * Whether `text` holds at `i` the same whole name (the next character cannot continue it) as the
 * `len` characters at `at`. Names repeat line after line, so trying the expected one first saves
 * scanning and slicing it again; comparing the text with itself is several times faster than
 * `startsWith` with the sliced name.
 */
function sameNameAt(code: Uint16Array, i: number, at: number, len: number, colon: boolean): boolean {
  if (len === 0 || isNameChar(code[i + len], colon)) return false;
  for (let k = 0; k < len; k++) if (code[i + k] !== code[at + k]) return false;
  return true;
}

const FLOAT_RE = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)$/;

/**
 * Parses a sample value as expfmt does (Go's strconv.ParseFloat, minus the forms expfmt rejects:
 * hex, binary and octal literals and `_` separators).
 */
export function parseGoFloat(s: string): number | undefined {
  // Fast path for the common case: optional sign, digits, optional fraction and exponent.
  const n = s.length;
  let i = 0;
  let c = s.charCodeAt(0);
  if (c === 43 || c === 45) c = s.charCodeAt(++i);
  if ((c >= 48 && c <= 57) || c === 46) {
    let digits = 0;
    while (i < n && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
      i++;
      digits++;
    }
    if (i < n && s.charCodeAt(i) === 46) {
      i++;
      while (i < n && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
        i++;
        digits++;
      }
    }
    if (digits === 0) return undefined;
    if (i < n && (s.charCodeAt(i) | 32) === 101) {
      i++;
      c = s.charCodeAt(i);
      if (c === 43 || c === 45) i++;
      let exp = 0;
      while (i < n && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
        i++;
        exp++;
      }
      if (exp === 0) return undefined;
    }
    return i === n ? Number(s) : undefined;
  }
  switch (s.toLowerCase()) {
    case 'nan':
    case '+nan':
    case '-nan':
      return NaN;
    case 'inf':
    case '+inf':
    case 'infinity':
    case '+infinity':
      return Infinity;
    case '-inf':
    case '-infinity':
      return -Infinity;
  }
  if (!FLOAT_RE.test(s)) return undefined;
  return Number(s);
}

/** Unescapes a HELP docstring: `\\` and `\n` (other escapes stay as written, as in expfmt). */
function unescapeHelp(s: string): string {
  if (!s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      const n = s[i + 1];
      if (n === '\\') {
        out += '\\';
        i++;
        continue;
      }
      if (n === 'n') {
        out += '\n';
        i++;
        continue;
      }
    }
    out += c;
  }
  return out;
}

/** Where the last `readQuoted` stopped (module state instead of a result object per label). */
let quotedNext = 0;
/** Position of the next backslash in the text being parsed (-1: none left). */
let nextBackslash = -1;

/**
 * Reads a `"…"` string starting at `i` (the opening quote); escapes `\\`, `\"`, `\n`. Returns
 * the value; the index after the closing quote is left in `quotedNext`.
 */
function readQuoted(text: string, code: Uint16Array, i: number, end: number, line: number, what: string): string {
  // Fast path: no escape before the closing quote on this line (native searches, one slice).
  const q = text.indexOf('"', i + 1);
  if (q >= 0 && q < end) {
    // The next backslash in the text is remembered, so each search runs over new text only.
    if (nextBackslash >= 0 && nextBackslash <= i) nextBackslash = text.indexOf('\\', i + 1);
    if (nextBackslash < 0 || nextBackslash > q) {
      quotedNext = q + 1;
      return text.slice(i + 1, q);
    }
  }
  let value = '';
  let j = i + 1;
  let seg = j;
  for (;;) {
    if (j >= end) throw new ExpositionParseError(line, `${what} "${value + text.slice(seg, j)}" contains unescaped new-line`);
    const ch = code[j];
    if (ch === 34) break;
    if (ch === 92) {
      value += text.slice(seg, j);
      const n = text[j + 1];
      if (n === '\\') value += '\\';
      else if (n === '"') value += '"';
      else if (n === 'n') value += '\n';
      else throw new ExpositionParseError(line, 'invalid escape sequence');
      j += 2;
      seg = j;
      continue;
    }
    j++;
  }
  value += text.slice(seg, j);
  quotedNext = j + 1;
  return value;
}

/** Size of the per-exposition filter of family names (see `find` in `parseExposition`). */
const FILTER_BITS = 4096;
/**
 * The filter's words, reused by every parse (parsing is synchronous, so one at a time): a fresh
 * typed array per body is an off-heap allocation the collector must track and free, which cost
 * more than the filter saves on a small body.
 */
const filterWords = new Uint32Array(FILTER_BITS >>> 5);

/** The hash `parseExposition` takes of a name while scanning it, for names it did not scan. */
function nameHash(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return h;
}

interface FamilyState {
  fam: ExpositionFamily;
  typed: boolean;
  helped: boolean;
}

/**
 * Parses the Prometheus text exposition format 0.0.4 as Prometheus' own parser (prometheus/common
 * expfmt) does: HELP/TYPE in any order before samples, escapes in label values and HELP,
 * optional millisecond timestamps, NaN/±Inf, comments and blank lines, a missing final newline,
 * labelled histograms and summaries grouped by their base name. Invalid input throws
 * `ExpositionParseError` with the line number.
 */
export function parseExposition(text: string, limits: ExpositionLimits = {}): ExpositionFamily[] {
  // No limits unless asked: trusted text (our own page, fixtures) may be large; receivers pass
  // DEFAULT_EXPOSITION_LIMITS or their configured bounds.
  const maxSamples = limits.maxSamples ?? Infinity;
  const maxName = limits.maxNameLength ?? Infinity;
  const maxLabelName = limits.maxLabelNameLength ?? Infinity;
  const maxLabels = limits.maxLabels ?? Infinity;
  const maxHelp = limits.maxHelpLength ?? Infinity;
  let samples = 0;
  const tooLongName = (line: number, n: string): never => {
    throw new ExpositionLimitError(line, 'name', `metric name of ${n.length} characters exceeds the limit of ${maxName}`);
  };
  const families = new Map<string, FamilyState>();
  const order: ExpositionFamily[] = [];
  let current: FamilyState | undefined;
  let lastName = '';
  nextBackslash = text.indexOf('\\');
  const code = codeUnits(text);
  // Label names repeat on every sample of a family; reuse the strings seen last.
  const labelNames: string[] = [];
  /** The label names of the last sample, by position (unquoted ones only). */
  const labelAt: (string | undefined)[] = [];
  /** Where each of `labelAt` was read in `text`. */
  const labelPos: number[] = [];
  /** Where `lastName` was read in `text`. */
  let lastNameAt = 0;
  /** `nameHash(lastName)`. */
  let lastNameHash = 0;
  const len = text.length;
  let pos = 0;
  let lineNo = 0;

  // Most names are new when first looked up, and `families.get` of a freshly sliced name costs
  // far more than the rest of its line (V8 hashes the slice through the runtime). So a family is
  // first only marked in a bit filter, by a hash taken while its name was scanned; the map is
  // filled (and asked) only once some name hits a marked bit. A collision, even a contrived one,
  // costs no more than asking the map every time, as without the filter.
  const seen = filterWords.fill(0);
  const pending: FamilyState[] = [];
  const find = (name: string, hash: number): FamilyState | undefined => {
    const bit = (hash ^ (hash >>> 15)) & (FILTER_BITS - 1);
    if (((seen[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return undefined;
    for (const p of pending) families.set(p.fam.name, p);
    pending.length = 0;
    return families.get(name);
  };
  const family = (name: string, hash: number): FamilyState => {
    let f = find(name, hash);
    if (!f) {
      f = { fam: { name, help: undefined, type: 'untyped', samples: [] }, typed: false, helped: false };
      const bit = (hash ^ (hash >>> 15)) & (FILTER_BITS - 1);
      seen[bit >>> 5] = (seen[bit >>> 5] as number) | (1 << (bit & 31));
      pending.push(f);
      order.push(f.fam);
    }
    return f;
  };

  /** The family a sample name belongs to: itself, or a histogram/summary it is a part of. */
  const familyForSample = (name: string, hash: number): FamilyState => {
    const direct = find(name, hash);
    if (direct) return direct;
    for (const suffix of ['_bucket', '_count', '_sum']) {
      if (name.endsWith(suffix)) {
        const baseName = name.slice(0, -suffix.length);
        const base = find(baseName, nameHash(baseName));
        if (base && (base.fam.type === 'histogram' || (base.fam.type === 'summary' && suffix !== '_bucket'))) return base;
      }
    }
    return family(name, hash);
  };

  while (pos < len) {
    lineNo++;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    let lineEnd = end;
    if (lineEnd > pos && code[lineEnd - 1] === 13) lineEnd--; // tolerate CRLF
    const start = pos;
    pos = end + 1;
    // Skip leading blanks.
    let i = start;
    while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
    if (i >= lineEnd) continue;
    const c0 = code[i];
    if (c0 === 35) {
      // '#': HELP, TYPE or a comment.
      i++;
      while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
      let kwEnd = i;
      while (kwEnd < lineEnd && code[kwEnd] !== 32 && code[kwEnd] !== 9) kwEnd++;
      const isHelp = kwEnd - i === 4 && text.startsWith('HELP', i);
      if (!isHelp && !(kwEnd - i === 4 && text.startsWith('TYPE', i))) continue;
      const kw = isHelp ? 'HELP' : 'TYPE';
      i = kwEnd;
      while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
      if (i >= lineEnd) continue; // "# HELP" alone is just a comment
      let name: string;
      let hash: number;
      if (code[i] === 34) {
        name = readQuoted(text, code, i, lineEnd, lineNo, 'metric name');
        hash = nameHash(name);
        i = quotedNext;
      } else {
        // TYPE, HELP and the samples name the same family in a row: reuse the string.
        if (sameNameAt(code, i, lastNameAt, lastName.length, true)) {
          name = lastName;
          hash = lastNameHash;
          i += name.length;
        } else {
          const nameStart = i;
          if (!isNameStart(code[i], true)) throw new ExpositionParseError(lineNo, 'invalid metric name in comment');
          hash = 0;
          for (let c = code[i]; i < lineEnd && isNameChar(c, true); c = code[++i]) hash = (Math.imul(hash, 31) + (c as number)) | 0;
          name = lastName = text.slice(nameStart, i);
          lastNameAt = nameStart;
          lastNameHash = hash;
        }
      }
      if (i < lineEnd && code[i] !== 32 && code[i] !== 9) throw new ExpositionParseError(lineNo, 'invalid metric name in comment');
      if (name.length > maxName) tooLongName(lineNo, name);
      while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
      const f = current !== undefined && current.fam.name === name ? current : family(name, hash);
      current = f;
      if (i >= lineEnd) continue; // a name and nothing else is not an error either
      if (kw === 'HELP') {
        if (f.helped) throw new ExpositionParseError(lineNo, `second HELP line for metric name "${name}"`);
        f.helped = true;
        f.fam.help = unescapeHelp(maxHelp < lineEnd - i ? text.slice(i, i + maxHelp) : text.slice(i, lineEnd));
      } else {
        // Fast path: the usual lowercase words compared in place, without a slice.
        let word: string | undefined;
        for (const w of TYPE_WORDS) {
          if (lineEnd - i === w.length && text.startsWith(w, i)) {
            word = w;
            break;
          }
        }
        const rest = word ?? text.slice(i, lineEnd);
        word ??= rest.trimEnd().toLowerCase();
        const t = (word === 'gaugehistogram' || word === 'gauge_histogram' ? 'histogram' : word) as FamilyType;
        if (!TYPES.has(t)) throw new ExpositionParseError(lineNo, `unknown metric type "${rest.trimEnd()}"`);
        if (f.typed || f.fam.samples.length) throw new ExpositionParseError(lineNo, `second TYPE line for metric name "${name}", or TYPE reported after samples`);
        f.typed = true;
        f.fam.type = t;
      }
      continue;
    }
    // A sample line: name [labels] value [timestamp]; the name may also be quoted inside the braces.
    let name = '';
    let hash = 0;
    if (c0 !== 123) {
      // Consecutive samples usually repeat the name: reuse the string instead of slicing again.
      if (sameNameAt(code, i, lastNameAt, lastName.length, true)) {
        name = lastName;
        hash = lastNameHash;
        i += name.length;
      } else {
        if (!isNameStart(c0, true)) throw new ExpositionParseError(lineNo, 'invalid metric name');
        const nameStart = i;
        for (let c = c0; i < lineEnd && isNameChar(c, true); c = code[++i]) hash = (Math.imul(hash, 31) + (c as number)) | 0;
        name = lastName = text.slice(nameStart, i);
        lastNameAt = nameStart;
        lastNameHash = hash;
      }
    }
    const labels: Record<string, string> = {};
    let nLabels = 0;
    const nameEnd = i;
    while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
    let hadLabels = false;
    if (i < lineEnd && code[i] === 123) {
      hadLabels = true;
      i++;
      for (;;) {
        while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
        if (i >= lineEnd) throw new ExpositionParseError(lineNo, 'unexpected end of label set');
        if (code[i] === 125) {
          i++;
          break;
        }
        let lname: string;
        if (code[i] === 34) {
          const qv = readQuoted(text, code, i, lineEnd, lineNo, 'label name');
          i = quotedNext;
          while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
          const nc = code[i];
          if (nc === 44 || nc === 125) {
            // A quoted string without `=` is the metric name.
            if (name !== '') throw new ExpositionParseError(lineNo, 'multiple metric names');
            if (qv === '') throw new ExpositionParseError(lineNo, 'invalid metric name');
            name = qv;
            hash = nameHash(qv);
            if (nc === 44) i++;
            continue;
          }
          if (nc !== 61) throw new ExpositionParseError(lineNo, 'unexpected end of metric name');
          if (qv === '') throw new ExpositionParseError(lineNo, 'invalid label name ""');
          lname = qv;
          if (lname.length > maxLabelName) throw new ExpositionLimitError(lineNo, 'label_name', `label name of ${lname.length} characters exceeds the limit of ${maxLabelName}`);
        } else {
          // The previous sample's label at this position is the likely one (already checked
          // against the limit); only unquoted names are kept there, so they hold name characters only.
          const expected = labelAt[nLabels];
          if (expected !== undefined && sameNameAt(code, i, labelPos[nLabels] as number, expected.length, false)) {
            lname = expected;
            i += expected.length;
          } else {
            const ls = i;
            if (!isNameStart(code[i], false)) throw new ExpositionParseError(lineNo, name ? `invalid label name for metric "${name}"` : 'invalid metric name');
            while (i < lineEnd && isNameChar(code[i], false)) i++;
            let known: string | undefined;
            for (const n of labelNames) {
              if (n.length === i - ls && text.startsWith(n, ls)) {
                known = n;
                break;
              }
            }
            if (i - ls > maxLabelName) throw new ExpositionLimitError(lineNo, 'label_name', `label name of ${i - ls} characters exceeds the limit of ${maxLabelName}`);
            lname = known ?? text.slice(ls, i);
            if (!known && labelNames.length < 16) labelNames.push(lname);
            if (nLabels < 16) {
              labelAt[nLabels] = lname;
              labelPos[nLabels] = ls;
            }
          }
          while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
          if (code[i] !== 61) throw new ExpositionParseError(lineNo, `expected '=' after label name "${lname}"`);
        }
        i++;
        while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
        if (code[i] !== 34) throw new ExpositionParseError(lineNo, `expected '"' at start of label value of "${lname}"`);
        const lvalue = readQuoted(text, code, i, lineEnd, lineNo, 'label value');
        i = quotedNext;
        if (nLabels >= maxLabels) throw new ExpositionLimitError(lineNo, 'labels', `more than ${maxLabels} labels on one sample`);
        if (nLabels++ > 0 && Object.hasOwn(labels, lname)) throw new ExpositionParseError(lineNo, `duplicate label names for metric "${name}"`);
        if (lname === '__name__') throw new ExpositionParseError(lineNo, 'label name "__name__" is reserved');
        labels[lname] = lvalue;
        while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
        const sep = code[i];
        if (sep === 44) {
          i++;
          continue;
        }
        if (sep === 125) {
          i++;
          break;
        }
        throw new ExpositionParseError(lineNo, `unexpected end of label value of "${lname}"`);
      }
      if (name === '') throw new ExpositionParseError(lineNo, 'invalid metric name');
    }
    if (name.length > maxName) tooLongName(lineNo, name);
    if (++samples > maxSamples) throw new ExpositionLimitError(lineNo, 'samples', `more than ${maxSamples} samples`);
    // Value.
    while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
    if (!hadLabels && i === nameEnd && i < lineEnd) throw new ExpositionParseError(lineNo, 'invalid metric name');
    const vs = i;
    // Integers (most counters and gauges) are read while scanning, without a slice and a
    // second parse; anything else goes through parseGoFloat.
    let intValue = 0;
    let isInt = true;
    while (i < lineEnd) {
      const ch = code[i] as number; // i < lineEnd: inside the text
      if (ch === 32 || ch === 9) break;
      if (isInt) {
        if (ch >= 48 && ch <= 57) intValue = intValue * 10 + (ch - 48);
        else isInt = false;
      }
      i++;
    }
    if (vs === i) throw new ExpositionParseError(lineNo, `missing value for metric "${name}"`);
    let value: number | undefined;
    if (isInt && i - vs <= 15) value = intValue;
    else {
      const vText = text.slice(vs, i);
      value = parseGoFloat(vText);
      if (value === undefined) throw new ExpositionParseError(lineNo, `expected float as value, got "${vText}"`);
    }
    while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
    let timestampMs: number | undefined;
    if (i < lineEnd) {
      const ts = i;
      while (i < lineEnd && code[i] !== 32 && code[i] !== 9) i++;
      const tText = text.slice(ts, i);
      if (!/^[+-]?\d+$/.test(tText)) throw new ExpositionParseError(lineNo, `expected integer as timestamp, got "${tText}"`);
      // expfmt reads timestamps as int64; anything outside that range is an error there too.
      const big = BigInt(tText);
      if (big > 9223372036854775807n || big < -9223372036854775808n) throw new ExpositionParseError(lineNo, `timestamp "${tText.slice(0, 40)}" is outside int64`);
      timestampMs = Number(tText);
      while (i < lineEnd && (code[i] === 32 || code[i] === 9)) i++;
      if (i < lineEnd) throw new ExpositionParseError(lineNo, 'spurious string after timestamp');
    }
    const f = current && (name === current.fam.name || belongsTo(name, current.fam)) ? current : familyForSample(name, hash);
    current = f;
    const t = f.fam.type;
    if (t === 'histogram' && name === `${f.fam.name}_bucket`) {
      if (labels.le === undefined || parseGoFloat(labels.le) === undefined) throw new ExpositionParseError(lineNo, "expected float as value for 'le' label");
      if (value < 0) throw new ExpositionParseError(lineNo, `negative bucket population for histogram "${f.fam.name}"`);
    }
    if (t === 'histogram' && name === `${f.fam.name}_count` && value < 0) throw new ExpositionParseError(lineNo, `negative count for histogram "${f.fam.name}"`);
    if (t === 'summary' && name === f.fam.name && (labels.quantile === undefined || parseGoFloat(labels.quantile) === undefined)) {
      throw new ExpositionParseError(lineNo, "expected float as value for 'quantile' label");
    }
    if (t !== 'histogram' && t !== 'summary' && name !== f.fam.name) throw new ExpositionParseError(lineNo, `sample "${name}" does not belong to family "${f.fam.name}"`);
    const sample: ExpositionSample = timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs };
    f.fam.samples.push(sample);
  }
  // Like expfmt, families that only had HELP/TYPE lines and no samples are left out.
  return order.filter((f) => f.samples.length > 0);
}

function belongsTo(name: string, fam: ExpositionFamily): boolean {
  if (fam.type === 'histogram') return name === `${fam.name}_bucket` || name === `${fam.name}_count` || name === `${fam.name}_sum`;
  if (fam.type === 'summary') return name === `${fam.name}_count` || name === `${fam.name}_sum`;
  return false;
}
