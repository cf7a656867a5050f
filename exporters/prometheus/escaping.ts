/**
 * Name escaping schemes of Prometheus 3's content negotiation (the `escaping=` parameter of
 * `Accept` and `Content-Type`). `underscores` is what this exporter has always written (see
 * `src/model/names.ts`); the others follow the rules of `prometheus/common`'s `model` package,
 * except that a label name is checked against the label-name charset (no `:`), where the Go
 * library checks it against the metric-name one and would let `a:b` through unquoted.
 */

/** The escaping schemes a scraper may ask for. */
export type Escaping = 'underscores' | 'allow-utf-8' | 'dots' | 'values';

export const ESCAPINGS: ReadonlySet<string> = new Set<Escaping>(['underscores', 'allow-utf-8', 'dots', 'values']);

const LEGACY_METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LEGACY_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** True when `name` can be written bare as a metric name in the legacy syntax. */
export function isLegacyMetricName(name: string): boolean {
  return LEGACY_METRIC.test(name);
}

/** True when `name` can be written bare as a label name in the legacy syntax. */
export function isLegacyLabelName(name: string): boolean {
  return LEGACY_LABEL.test(name);
}

function legacyRune(cp: number, first: boolean, colon: boolean): boolean {
  return (cp >= 97 && cp <= 122) || (cp >= 65 && cp <= 90) || cp === 95 || (colon && cp === 58) || (!first && cp >= 48 && cp <= 57);
}

/**
 * `name` (already well-formed UTF-16) rewritten into the legacy charset by `dots` or `values`.
 * Names that are already legacy-valid are returned as they are, as the Go library does.
 */
export function escapeName(name: string, scheme: 'dots' | 'values', kind: 'metric' | 'label'): string {
  const colon = kind === 'metric';
  if (name === '' || (colon ? LEGACY_METRIC : LEGACY_LABEL).test(name)) return name;
  let out = scheme === 'values' ? 'U__' : '';
  let first = true;
  for (const ch of name) {
    const cp = ch.codePointAt(0) as number;
    if (cp === 95) out += '__';
    else if (scheme === 'dots' && cp === 46) out += '_dot_';
    else if (legacyRune(cp, first, colon)) out += ch;
    else out += scheme === 'dots' ? '__' : `_${cp.toString(16)}_`;
    first = false;
  }
  return out;
}

/** A name or label value with `\`, newline and `"` escaped, for use inside double quotes. */
export function quoteEscape(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** A metric name as written after `# HELP`/`# TYPE`: bare when legacy-valid, else quoted. */
export function writtenMetricName(name: string): string {
  return LEGACY_METRIC.test(name) ? name : `"${quoteEscape(name)}"`;
}

/** A label name as written before `=`: bare when legacy-valid, else quoted. */
export function writtenLabelName(name: string): string {
  return LEGACY_LABEL.test(name) ? name : `"${quoteEscape(name)}"`;
}

/**
 * A series reference: `name{labels}` in the legacy syntax, `{"name",labels}` when the name is
 * not legacy-valid (the UTF-8 form of Prometheus 3 and OpenMetrics).
 */
export function seriesRef(name: string, labels: string): string {
  if (LEGACY_METRIC.test(name)) return labels.length ? `${name}{${labels}}` : name;
  const q = `"${quoteEscape(name)}"`;
  return labels.length ? `{${q},${labels}}` : `{${q}}`;
}
