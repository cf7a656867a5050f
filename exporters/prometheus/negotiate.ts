import { ESCAPINGS, type Escaping } from './escaping.ts';

/** What a scrape is answered with: the syntax, its version and how names are escaped. */
export interface ExpositionFormat {
  readonly openmetrics: boolean;
  /** OpenMetrics version named in the Content-Type (the body is the same for both). */
  readonly version: '0.0.4' | '1.0.0' | '0.0.1';
  readonly escaping: Escaping;
}

/** The format served when the scraper states no preference we can honour. */
export const TEXT_FORMAT: ExpositionFormat = { openmetrics: false, version: '0.0.4', escaping: 'underscores' };

export interface Negotiated {
  readonly format: ExpositionFormat;
  readonly contentType: string;
}

const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const DEFAULT: Negotiated = { format: TEXT_FORMAT, contentType: TEXT_CONTENT_TYPE };

/**
 * Bounds on the `Accept` header. Node already refuses headers over the server's 16 KiB limit;
 * these keep the work per request small and fixed. A header beyond them is answered with the
 * text format, as Prometheus' own exporters fall back to text for anything they cannot use.
 */
export const MAX_ACCEPT_CHARS = 4096;
export const MAX_ACCEPT_CLAUSES = 64;
const MAX_PARAMS = 16;

interface Clause {
  type: string;
  subtype: string;
  q: number;
  params: Map<string, string>;
  order: number;
}

const Q_VALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

function parseClause(raw: string, order: number): Clause | undefined {
  const pieces = raw.split(';');
  if (pieces.length > MAX_PARAMS + 1) return undefined;
  const range = (pieces[0] as string).trim().toLowerCase();
  let type: string;
  let subtype: string;
  if (range === '*') {
    type = '*';
    subtype = '*';
  } else {
    const slash = range.indexOf('/');
    if (slash <= 0 || slash === range.length - 1) return undefined;
    type = range.slice(0, slash).trim();
    subtype = range.slice(slash + 1).trim();
    if (type === '*' && subtype !== '*') return undefined;
  }
  let q = 1;
  const params = new Map<string, string>();
  for (let i = 1; i < pieces.length; i++) {
    const p = pieces[i] as string;
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const key = p.slice(0, eq).trim().toLowerCase();
    let value = p.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (key === 'q') {
      // An unreadable weight is no weight at all: the clause is left out rather than guessed.
      if (!Q_VALUE.test(value)) return undefined;
      q = Number(value);
    } else params.set(key, value);
  }
  if (q === 0) return undefined;
  return { type, subtype, q, params, order };
}

function specificity(c: Clause): number {
  return c.type === '*' ? 0 : c.subtype === '*' ? 1 : 2;
}

/** The format this clause selects among ours, or undefined when it names none of them. */
function match(c: Clause): ExpositionFormat['version'] | undefined {
  // A wildcard accepts anything; the text format is what it has always been given here (curl,
  // browsers), so a wildcard never switches a client to OpenMetrics.
  if (c.type === '*' || (c.subtype === '*' && (c.type === 'text' || c.type === 'application'))) return '0.0.4';
  const v = c.params.get('version');
  if (c.type === 'application' && c.subtype === 'openmetrics-text') {
    if (v === undefined || v === '0.0.1') return '0.0.1';
    if (v === '1.0.0') return '1.0.0';
    return undefined;
  }
  if (c.type === 'text' && c.subtype === 'plain' && (v === undefined || v === '0.0.4')) return '0.0.4';
  return undefined;
}

/**
 * Picks the exposition format for a request's `Accept` header, by the rules of Prometheus'
 * `expfmt` content negotiation: clauses by falling weight (then by specificity), the first
 * that names a format we serve wins; an `escaping=` parameter on that clause or on a clause
 * weighted above it selects the name escaping and is echoed in the Content-Type. Anything else
 * (no header, nothing we serve, a malformed or oversized header) gets the 0.0.4 text format.
 */
export function negotiate(accept: string | string[] | undefined): Negotiated {
  const header = Array.isArray(accept) ? accept.join(',') : accept;
  if (header === undefined || header.length === 0 || header.length > MAX_ACCEPT_CHARS) return DEFAULT;
  const raw = header.split(',');
  if (raw.length > MAX_ACCEPT_CLAUSES) return DEFAULT;
  const clauses: Clause[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = parseClause(raw[i] as string, i);
    if (c) clauses.push(c);
  }
  clauses.sort((a, b) => b.q - a.q || specificity(b) - specificity(a) || a.order - b.order);
  let escaping: Escaping | undefined;
  let version: ExpositionFormat['version'] = '0.0.4';
  for (const c of clauses) {
    const e = c.params.get('escaping');
    if (e !== undefined && ESCAPINGS.has(e)) escaping = e as Escaping;
    const v = match(c);
    if (v !== undefined) {
      version = v;
      break;
    }
  }
  if (version === '0.0.4' && escaping === undefined) return DEFAULT;
  const openmetrics = version !== '0.0.4';
  const base = openmetrics ? `application/openmetrics-text; version=${version}; charset=utf-8` : TEXT_CONTENT_TYPE;
  return {
    format: { openmetrics, version, escaping: escaping ?? 'underscores' },
    contentType: escaping === undefined ? base : `${base}; escaping=${escaping}`,
  };
}
