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

const TYPES = new Set<FamilyType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

// Character classes by code: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names without ':'.
function isNameStart(c: number, colon: boolean): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (colon && c === 58);
}
function isNameChar(c: number, colon: boolean): boolean {
  return isNameStart(c, colon) || (c >= 48 && c <= 57);
}

const FLOAT_RE = /^[+-]?(?:(?:\d+(?:_\d+)*)?\.?\d+(?:_\d+)*(?:[eE][+-]?\d+)?|\d+(?:_\d+)*\.(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]*\.?[0-9a-fA-F]*(?:[pP][+-]?\d+)?)$/;

/** Go's strconv.ParseFloat rules for the forms exporters write (decimal, Inf, NaN). */
export function parseGoFloat(s: string): number | undefined {
  const lower = s.toLowerCase();
  switch (lower) {
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
  if (s.includes('_')) return undefined; // Go allows underscores only with a base prefix
  if (/^[+-]?0[xX]/.test(s)) {
    if (!/[pP]/.test(s)) return undefined; // hex floats need an exponent in Go
    const m = /^([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)[pP]([+-]?\d+)$/.exec(s);
    if (!m || (m[2] === '' && m[3] === '')) return undefined;
    const mant = parseInt((m[2] || '0') + (m[3] ?? ''), 16) / 16 ** (m[3]?.length ?? 0);
    const v = mant * 2 ** Number(m[4]);
    return m[1] === '-' ? -v : v;
  }
  const v = Number(s);
  return Number.isNaN(v) ? undefined : v;
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
export function parseExposition(text: string): ExpositionFamily[] {
  const families = new Map<string, FamilyState>();
  const order: ExpositionFamily[] = [];
  let current: FamilyState | undefined;
  const len = text.length;
  let pos = 0;
  let lineNo = 0;

  const family = (name: string): FamilyState => {
    let f = families.get(name);
    if (!f) {
      f = { fam: { name, help: undefined, type: 'untyped', samples: [] }, typed: false, helped: false };
      families.set(name, f);
      order.push(f.fam);
    }
    return f;
  };

  /** The family a sample name belongs to: itself, or a histogram/summary it is a part of. */
  const familyForSample = (name: string): FamilyState => {
    const direct = families.get(name);
    if (direct) return direct;
    for (const suffix of ['_bucket', '_count', '_sum']) {
      if (name.endsWith(suffix)) {
        const base = families.get(name.slice(0, -suffix.length));
        if (base && (base.fam.type === 'histogram' || (base.fam.type === 'summary' && suffix !== '_bucket'))) return base;
      }
    }
    return family(name);
  };

  while (pos < len) {
    lineNo++;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    let lineEnd = end;
    if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--; // tolerate CRLF
    const start = pos;
    pos = end + 1;
    // Skip leading blanks.
    let i = start;
    while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    if (i >= lineEnd) continue;
    const c0 = text.charCodeAt(i);
    if (c0 === 35) {
      // '#': HELP, TYPE or a comment.
      i++;
      while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      let kwEnd = i;
      while (kwEnd < lineEnd && text.charCodeAt(kwEnd) !== 32 && text.charCodeAt(kwEnd) !== 9) kwEnd++;
      const kw = text.slice(i, kwEnd);
      if (kw !== 'HELP' && kw !== 'TYPE') continue;
      i = kwEnd;
      while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      const nameStart = i;
      if (i >= lineEnd || !isNameStart(text.charCodeAt(i), true)) throw new ExpositionParseError(lineNo, `invalid metric name in ${kw} comment`);
      while (i < lineEnd && isNameChar(text.charCodeAt(i), true)) i++;
      const name = text.slice(nameStart, i);
      if (i < lineEnd && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) throw new ExpositionParseError(lineNo, `invalid metric name in ${kw} comment`);
      while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      const rest = text.slice(i, lineEnd);
      const f = family(name);
      if (kw === 'HELP') {
        if (f.helped) throw new ExpositionParseError(lineNo, `second HELP line for metric name "${name}"`);
        f.helped = true;
        f.fam.help = unescapeHelp(rest);
      } else {
        const t = rest.trimEnd().toLowerCase() as FamilyType;
        if (!TYPES.has(t)) throw new ExpositionParseError(lineNo, `unknown metric type "${rest.trimEnd()}"`);
        if (f.typed || f.fam.samples.length) throw new ExpositionParseError(lineNo, `second TYPE line for metric name "${name}", or TYPE reported after samples`);
        f.typed = true;
        f.fam.type = t;
      }
      current = f;
      continue;
    }
    // A sample line: name [labels] value [timestamp]
    if (!isNameStart(c0, true)) throw new ExpositionParseError(lineNo, `invalid metric name`);
    const nameStart = i;
    while (i < lineEnd && isNameChar(text.charCodeAt(i), true)) i++;
    const name = text.slice(nameStart, i);
    const labels: Record<string, string> = {};
    const nameEnd = i;
    while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    let hadLabels = false;
    if (i < lineEnd && text.charCodeAt(i) === 123) {
      hadLabels = true;
      i++;
      for (;;) {
        while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
        if (i >= lineEnd) throw new ExpositionParseError(lineNo, 'unexpected end of label set');
        if (text.charCodeAt(i) === 125) {
          i++;
          break;
        }
        const ls = i;
        if (!isNameStart(text.charCodeAt(i), false)) throw new ExpositionParseError(lineNo, `invalid label name for metric "${name}"`);
        while (i < lineEnd && isNameChar(text.charCodeAt(i), false)) i++;
        const lname = text.slice(ls, i);
        while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
        if (text.charCodeAt(i) !== 61) throw new ExpositionParseError(lineNo, `expected '=' after label name "${lname}"`);
        i++;
        while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
        if (text.charCodeAt(i) !== 34) throw new ExpositionParseError(lineNo, `expected '"' to start the value of label "${lname}"`);
        i++;
        let value = '';
        let segStart = i;
        for (;;) {
          if (i >= lineEnd) throw new ExpositionParseError(lineNo, `unterminated value of label "${lname}"`);
          const ch = text.charCodeAt(i);
          if (ch === 34) break;
          if (ch === 92) {
            value += text.slice(segStart, i);
            const n = text[i + 1];
            if (n === '\\') value += '\\';
            else if (n === '"') value += '"';
            else if (n === 'n') value += '\n';
            else throw new ExpositionParseError(lineNo, `invalid escape sequence '\\${n ?? ''}' in label value`);
            i += 2;
            segStart = i;
            continue;
          }
          i++;
        }
        value += text.slice(segStart, i);
        i++;
        if (Object.hasOwn(labels, lname)) throw new ExpositionParseError(lineNo, `duplicate label name "${lname}" for metric "${name}"`);
        if (lname === '__name__') throw new ExpositionParseError(lineNo, 'label name "__name__" is reserved');
        labels[lname] = value;
        while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
        const sep = text.charCodeAt(i);
        if (sep === 44) {
          i++;
          continue;
        }
        if (sep === 125) {
          i++;
          break;
        }
        throw new ExpositionParseError(lineNo, `expected ',' or '}' after label value of "${lname}"`);
      }
    }
    // Value.
    const afterLabels = i;
    while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    if (hadLabels ? i === afterLabels : i === nameEnd) {
      if (i < lineEnd) throw new ExpositionParseError(lineNo, `expected a blank before the value of "${name}"`);
    }
    const vs = i;
    while (i < lineEnd && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) i++;
    if (vs === i) throw new ExpositionParseError(lineNo, `missing value for metric "${name}"`);
    const vText = text.slice(vs, i);
    const value = parseGoFloat(vText);
    if (value === undefined) throw new ExpositionParseError(lineNo, `invalid value "${vText}" for metric "${name}"`);
    while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    let timestampMs: number | undefined;
    if (i < lineEnd) {
      const ts = i;
      while (i < lineEnd && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) i++;
      const tText = text.slice(ts, i);
      if (!/^[+-]?\d+$/.test(tText)) throw new ExpositionParseError(lineNo, `invalid timestamp "${tText}" for metric "${name}"`);
      timestampMs = Number(tText);
      while (i < lineEnd && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      if (i < lineEnd) throw new ExpositionParseError(lineNo, `unexpected text after the timestamp of "${name}"`);
    }
    const f = current && (name === current.fam.name || belongsTo(name, current.fam)) ? current : familyForSample(name);
    current = f;
    const t = f.fam.type;
    if (t === 'histogram' && name === `${f.fam.name}_bucket` && labels.le === undefined) throw new ExpositionParseError(lineNo, `histogram bucket "${name}" has no "le" label`);
    if (t === 'summary' && name === f.fam.name && labels.quantile === undefined) throw new ExpositionParseError(lineNo, `summary sample "${name}" has no "quantile" label`);
    if (t !== 'histogram' && t !== 'summary' && name !== f.fam.name) throw new ExpositionParseError(lineNo, `sample "${name}" does not belong to family "${f.fam.name}"`);
    const sample: ExpositionSample = timestampMs === undefined ? { name, labels, value } : { name, labels, value, timestampMs };
    f.fam.samples.push(sample);
  }
  return order;
}

function belongsTo(name: string, fam: ExpositionFamily): boolean {
  if (fam.type === 'histogram') return name === `${fam.name}_bucket` || name === `${fam.name}_count` || name === `${fam.name}_sum`;
  if (fam.type === 'summary') return name === `${fam.name}_count` || name === `${fam.name}_sum`;
  return false;
}
