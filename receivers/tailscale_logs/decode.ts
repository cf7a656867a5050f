import type { HrTime } from '@opentelemetry/api';
import { BoundedCache } from '../../src/model/names.ts';

/** A decoded RFC 3339 time: ms since the epoch and the exact OpenTelemetry time (ns kept). */
export interface Time {
  readonly ms: number;
  readonly hr: HrTime;
  /** The text as the API sent it. */
  readonly text: string;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/** The digit at `i` of `s`, or -1. */
function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1;
}
/** The two digits at `i` of `s` as a number, or -1. */
function two(s: string, i: number): number {
  const a = digit(s, i);
  const b = digit(s, i + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with every field plainly in range, as the API writes its
 * times, read by hand: the regex and Date.parse took a sixth of the flow-log mapping. Anything
 * else (offsets, a lower-case t or z, day 29 or later, hour 24) is left to the general parse,
 * which is the reference (a test holds the two to the same answers).
 */
function parseUtcFast(v: string): Time | undefined {
  const n = v.length;
  if (n < 20 || v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(10) !== 84 || v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58 || v.charCodeAt(n - 1) !== 90) return undefined;
  const hi = two(v, 0);
  const lo = two(v, 2);
  const y = hi < 0 || lo < 0 ? -1 : hi * 100 + lo;
  const mo = two(v, 5);
  const d = two(v, 8);
  const h = two(v, 11);
  const mi = two(v, 14);
  const sec = two(v, 17);
  if (y < 1000 || mo < 1 || mo > 12 || d < 1 || d > 28 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59) return undefined;
  let ns = 0;
  if (n > 20) {
    // A dot and 1–9 digits before the Z.
    if (v.charCodeAt(19) !== 46 || n < 22 || n > 30) return undefined;
    for (let i = 20; i < n - 1; i++) {
      const c = digit(v, i);
      if (c < 0) return undefined;
      ns = ns * 10 + c;
    }
    ns *= 10 ** (30 - n);
  } else if (n !== 20) return undefined;
  const whole = Date.UTC(y, mo - 1, d, h, mi, sec);
  const s = whole / 1000;
  return { ms: whole + Math.floor(ns / 1e6), hr: [s, ns], text: v };
}

/** Parses an RFC 3339 time with 0–9 fractional digits and any offset; undefined when invalid. */
export function parseTime(v: unknown): Time | undefined {
  if (typeof v !== 'string' || v.length > 40) return undefined;
  return parseUtcFast(v) ?? parseTimeGeneral(v);
}

/** {@link parseTime} by the RFC 3339 grammar; the reference for the fast path. */
export function parseTimeGeneral(v: string): Time | undefined {
  const m = RFC3339.exec(v);
  if (!m) return undefined;
  const whole = Date.parse(`${m[1]}T${m[2]}${(m[4] as string).toUpperCase()}`);
  if (!Number.isFinite(whole)) return undefined;
  const sec = Math.floor(whole / 1000);
  const ns = m[3] ? Number((m[3] + '00000000').slice(0, 9)) : 0;
  return { ms: sec * 1000 + Math.floor(ns / 1e6), hr: [sec, ns], text: v };
}

/** Go's zero time, which the API sends for "unset" (audit `deferredAt`). */
export function isZeroTime(t: Time): boolean {
  return t.ms < Date.UTC(1970, 0, 1);
}

export function hrFromMs(ms: number): HrTime {
  const sec = Math.floor(ms / 1000);
  return [sec, (ms - sec * 1000) * 1e6];
}

/** `ip:port` or `[ipv6]:port` as flow logs write them. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

const V4 = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/;
const V6 = /^\[([0-9A-Fa-f:.]{2,45})(?:%[^\]]{1,16})?\]:(\d{1,5})$/;

/** Parses a flow endpoint; undefined when it is not one (the entry is then malformed). */
export function parseEndpoint(v: unknown): Endpoint | undefined {
  if (typeof v !== 'string' || v.length > 64) return undefined;
  const m4 = V4.exec(v);
  if (m4) {
    if ((m4[1] as string).split('.').some((o) => Number(o) > 255)) return undefined;
    const port = Number(m4[2]);
    return port <= 65535 ? { address: m4[1] as string, port, family: 4 } : undefined;
  }
  const m6 = V6.exec(v);
  if (m6 && (m6[1] as string).includes(':')) {
    const port = Number(m6[2]);
    return port <= 65535 ? { address: (m6[1] as string).toLowerCase(), port, family: 6 } : undefined;
  }
  return undefined;
}

/**
 * `parseEndpoint` through a cache: the same endpoints come back entry after entry (two regexes
 * and a split each time were a tenth of the mapping). Bounded like the address cache (at most
 * 50 000 entries, the older half forgotten first), so hostile records cannot grow it.
 */
const endpoints = new BoundedCache<Endpoint | null>({ maxChars: 16 * 1024 * 1024, maxEntries: 50_000, sizeOf: () => 32 });
const parsedOrNull = (v: string): Endpoint | null => parseEndpoint(v) ?? null;
export function endpointOf(v: unknown): Endpoint | undefined {
  if (typeof v !== 'string' || v.length > 64) return undefined;
  return endpoints.getOrSet(v, parsedOrNull) ?? undefined;
}

/** A JSON value as a bounded string, or undefined when it is not a string. */
export function boundedString(v: unknown, max: number): string | undefined {
  if (typeof v !== 'string') return undefined;
  return v.length > max ? v.slice(0, max) : v;
}

/** A non-negative integer count; missing is 0, anything else not a count is undefined. */
export function countOf(v: unknown): number | undefined {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The `logs` list of a response body (`null` or absent when there is nothing), or an error text. */
export function logsOf(text: string): { logs: unknown[]; tailnet: string | undefined } | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: 'response is not JSON' };
  }
  if (!isObject(v)) return { error: 'response is not a JSON object' };
  const logs = v.logs;
  if (logs !== undefined && logs !== null && !Array.isArray(logs)) return { error: 'response has a "logs" field that is not a list' };
  const tailnet = typeof v.tailnet === 'string' && v.tailnet.length <= 256 ? v.tailnet : undefined;
  return { logs: (logs as unknown[] | null | undefined) ?? [], tailnet };
}
