/**
 * Bounded, escaped renderings of untrusted values (device names, API strings, log bodies) for a
 * terminal or a pipe. Whatever a value holds, a text line carries no control character (no ANSI
 * escape, no newline, no bidirectional override) and no line is longer than {@link MAX_LINE_CHARS};
 * a JSON line is valid JSON of bounded size.
 */
import type { HrTime } from '@opentelemetry/api';

/** Characters of one string value that are printed; the rest is counted, not shown. */
export const MAX_VALUE_CHARS = 1024;
/** Characters of one output line (the end is cut and marked). */
export const MAX_LINE_CHARS = 16 * 1024;
/** Entries of one map or list that are printed. */
export const MAX_ENTRIES = 64;
/** Nesting of maps and lists that is printed. */
export const MAX_DEPTH = 6;

// C0 and C1 controls, DEL, line and paragraph separators, bidirectional embeddings, overrides and
// isolates, the zero-width joiners and the byte-order mark: what can move a cursor or reorder text.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff\\"]/g;

function escapeChar(c: string): string {
  switch (c) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    case '\\':
      return '\\\\';
    case '"':
      return '\\"';
    default: {
      const code = c.charCodeAt(0);
      return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    }
  }
}

/** `s` cut to `max` UTF-16 units without splitting a surrogate pair, and how many were cut. */
export function cut(s: string, max: number): { text: string; dropped: number } {
  if (s.length <= max) return { text: s, dropped: 0 };
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return { text: s.slice(0, end), dropped: s.length - end };
}

/** A string for a text line: cut to {@link MAX_VALUE_CHARS}, escaped, quoted when it needs to be. */
export function textString(s: string): string {
  const { text, dropped } = cut(s, MAX_VALUE_CHARS);
  const escaped = text.replace(UNSAFE, escapeChar);
  const suffix = dropped ? `…(+${dropped} chars)` : '';
  return escaped === '' || dropped || escaped !== text || /[\s={}[\]]/.test(escaped) ? `"${escaped}${suffix}"` : escaped;
}

/** A log-record value (AnyValue) or attribute value for a text line. */
export function textValue(v: unknown, depth = 0): string {
  if (typeof v === 'string') return textString(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v === null || v === undefined) return '<empty>';
  if (v instanceof Uint8Array) return `bytes:${textString(Buffer.from(v.subarray(0, MAX_VALUE_CHARS)).toString('base64'))}${v.length > MAX_VALUE_CHARS ? `…(+${v.length - MAX_VALUE_CHARS} bytes)` : ''}`;
  if (depth >= MAX_DEPTH) return '{…}';
  if (Array.isArray(v)) {
    const shown = v.slice(0, MAX_ENTRIES).map((x) => textValue(x, depth + 1));
    if (v.length > MAX_ENTRIES) shown.push(`…(+${v.length - MAX_ENTRIES})`);
    return `[${shown.join(' ')}]`;
  }
  if (typeof v === 'object') return `{${textPairs(v as Record<string, unknown>, depth + 1)}}`;
  return textString(String(v));
}

/** `k=v k2=v2` of a map or attribute set, at most {@link MAX_ENTRIES} of them. */
export function textPairs(attrs: Record<string, unknown>, depth = 0): string {
  const parts: string[] = [];
  let n = 0;
  for (const k in attrs) {
    if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
    if (n++ >= MAX_ENTRIES) continue;
    parts.push(`${textString(k)}=${textValue(attrs[k], depth)}`);
  }
  if (n > MAX_ENTRIES) parts.push(`…(+${n - MAX_ENTRIES})`);
  return parts.join(' ');
}

/** A value as bounded JSON-ready data (strings cut, maps and lists capped, bytes in base64). */
export function jsonValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') {
    const { text, dropped } = cut(v, MAX_VALUE_CHARS);
    return dropped ? `${text}…(+${dropped} chars)` : text;
  }
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'boolean' || v === null || v === undefined) return v ?? null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v.subarray(0, MAX_VALUE_CHARS)).toString('base64'), length: v.length };
  if (depth >= MAX_DEPTH) return '{…}';
  if (Array.isArray(v)) {
    const out = v.slice(0, MAX_ENTRIES).map((x) => jsonValue(x, depth + 1));
    if (v.length > MAX_ENTRIES) out.push(`…(+${v.length - MAX_ENTRIES})`);
    return out;
  }
  if (typeof v === 'object') return jsonMap(v as Record<string, unknown>, depth + 1);
  return String(v);
}

/** A map or attribute set as bounded JSON-ready data. */
export function jsonMap(attrs: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const k in attrs) {
    if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
    if (n++ >= MAX_ENTRIES) continue;
    out[jsonValue(k) as string] = jsonValue(attrs[k], depth);
  }
  if (n > MAX_ENTRIES) out['…'] = `+${n - MAX_ENTRIES} more`;
  return out;
}

/** A text line cut to {@link MAX_LINE_CHARS}. */
export function boundLine(line: string): string {
  const { text, dropped } = cut(line, MAX_LINE_CHARS);
  // An escape sequence cut in half is still plain characters: nothing here can be a control.
  return dropped ? `${text}…(line cut, +${dropped} chars)` : line;
}

/**
 * One JSON line of bounded size. A line still too long after its values were bounded (many
 * large attributes) keeps its short fields and says what was left out.
 */
export function jsonLine(obj: Record<string, unknown>): string {
  const line = safeJson(obj);
  if (line.length <= MAX_LINE_CHARS) return line;
  const short: Record<string, unknown> = {};
  const omitted: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'object' && v !== null) omitted.push(k);
    else short[k] = typeof v === 'string' ? jsonValue(cut(v, 256).text) : v;
  }
  short.omitted = omitted;
  short.reason = `line over ${MAX_LINE_CHARS} characters`;
  return safeJson(short);
}

// JSON.stringify escapes C0 controls but leaves these as they are; a terminal may act on them.
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]/g;

/** JSON text with every character a terminal could act on written as a `\uXXXX` escape. */
function safeJson(v: unknown): string {
  return JSON.stringify(v).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** HrTime as RFC 3339 with nanoseconds (`2023-11-14T22:13:20.123456789Z`). */
export function isoNanos(t: HrTime): string {
  const [s, ns] = t;
  if (!Number.isFinite(s) || !Number.isFinite(ns)) return 'invalid';
  const d = new Date(s * 1000);
  if (Number.isNaN(d.getTime())) return 'invalid';
  return `${d.toISOString().slice(0, 19)}.${String(Math.trunc(ns)).padStart(9, '0')}Z`;
}
