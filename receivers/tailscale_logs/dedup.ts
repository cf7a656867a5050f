import { hash } from 'node:crypto';

/**
 * Deeper than this a record is malformed: Tailscale's records nest four levels. Every walk of a
 * record (identity, mapping, the OTLP encoder) recurses, and JSON.parse accepts nesting far
 * deeper than a recursion can follow, so one record of `[[[[…]]]]` would otherwise throw out of
 * the poll on every retry and stop the type for good.
 */
export const MAX_DEPTH = 64;

/** What the receiver needs of a record before it maps it. */
export interface RecordIdentity {
  /** 128 bits of SHA-256, base64. */
  readonly id: string;
  /** The record's size as JSON text (see {@link recordIdentity} and {@link flowIdentity}). */
  readonly size: number;
  /** Nested deeper than {@link MAX_DEPTH}: the record is malformed (its identity covers that depth). */
  readonly tooDeep: boolean;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Base64 character → its 6 bits. */
const B64_VALUE = new Map([...B64].map((c, i) => [c, i]));

/**
 * The first 128 bits of SHA-256, base64 (24 characters, `==` at the end). Taken from the digest's
 * own base64 text, whose first 21 characters are those bits' and whose 22nd holds their last 2
 * bits with 4 of the next byte's, cleared here: three times cheaper than slicing a Buffer first.
 */
function digest(text: string): string {
  const b = hash('sha256', text, 'base64');
  return `${b.slice(0, 21)}${B64[(B64_VALUE.get(b[21] as string) as number) & 0x30] as string}==`;
}

/**
 * A stable identity for a record: a hash of its canonical JSON (object keys sorted), so the same
 * record served again — in an overlapping window or after a restart — has the same identity
 * whatever order the server wrote its keys in. 128 bits of SHA-256, base64: collisions are not a
 * practical concern at any volume a tailnet produces. `size` is the canonical JSON's length
 * (the record's size bound is checked on it without a second walk). Levels below
 * {@link MAX_DEPTH} are written as one marker, so the identity of a too-deep record is stable too.
 */
export function recordIdentity(v: unknown): RecordIdentity {
  const text = canonicalJson(v);
  return { id: digest(text), size: text.length, tooDeep: deep };
}

/** Longest key field a flow identity is made of; a longer one takes the canonical identity. */
const FLOW_KEY_MAX = 256;
const TRAFFIC_KEYS = ['virtualTraffic', 'subnetTraffic', 'exitTraffic', 'physicalTraffic'] as const;

/**
 * The identity of a network flow record: its reporting node, the time the logs service received
 * it (`logged`, the server's clock), its sample period (`start`, `end`) and how many entries each
 * traffic list holds, as the server wrote them. `nodeId` and `logged` are the two fields the logs
 * service itself sets, so no device can make its record take another device's identity; two
 * uploads of one node stamped the same microsecond still differ in their periods. Hashing these
 * instead of the whole record's canonical JSON made the identity ~10× cheaper (it had been the
 * largest cost of the flow-log path). A record whose key fields are not short strings takes the
 * canonical identity. `size` is then the record's JSON length with string escapes not counted.
 */
export function flowIdentity(v: unknown): RecordIdentity {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return recordIdentity(v);
  const r = v as Record<string, unknown>;
  const { nodeId, logged, start, end } = r;
  if (!isKey(nodeId) || !isKey(logged) || !isKey(start) || !isKey(end)) return recordIdentity(v);
  let key = `flow\n${nodeId}\n${logged}\n${start}\n${end}`;
  for (const k of TRAFFIC_KEYS) {
    const list = r[k];
    key += Array.isArray(list) ? `\n${list.length}` : list === undefined || list === null ? '\n-' : '\n?';
  }
  deep = false;
  const size = jsonSize(v, 0);
  return { id: digest(key), size, tooDeep: deep };
}

const isKey = (x: unknown): x is string => typeof x === 'string' && x.length <= FLOW_KEY_MAX;

/** Set by the walks below when they reach {@link MAX_DEPTH}. */
let deep = false;

/** Digits of a JSON number without making its text (integers, the common case). */
function numberSize(n: number): number {
  if (!Number.isInteger(n) || Math.abs(n) >= 1e15) return String(n).length;
  let len = n < 0 ? 2 : 1;
  for (let a = Math.abs(n); a >= 10; a = Math.floor(a / 10)) len++;
  return len;
}

/** The length of `v` as compact JSON, string escapes not counted; stops at {@link MAX_DEPTH}. */
function jsonSize(v: unknown, depth: number): number {
  if (typeof v === 'string') return v.length + 2;
  if (typeof v === 'number') return Number.isFinite(v) ? numberSize(v) : 4;
  if (v === null || typeof v !== 'object') return v === true ? 4 : v === false ? 5 : 4;
  if (depth >= MAX_DEPTH) {
    deep = true;
    return 0;
  }
  let n = 2;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) n += jsonSize(v[i], depth + 1) + (i ? 1 : 0);
    return n;
  }
  let first = true;
  for (const k in v) {
    if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
    n += k.length + 3 + jsonSize((v as Record<string, unknown>)[k], depth + 1) + (first ? 0 : 1);
    first = false;
  }
  return n;
}

/**
 * The record as JSON with every object's keys in sorted (UTF-16) order. The fast way is a copy
 * with its keys inserted in that order, written by the engine's own JSON.stringify: walking the
 * record in JS and stringifying each value on its own took twice as long, and it was the largest
 * single cost of the flow-log path. Objects keep integer-like keys in numeric order whatever the
 * insertion order, so a record with a key starting with a digit takes the walk.
 */
export function canonicalJson(v: unknown): string {
  slowKey = false;
  deep = false;
  const copy = sortedCopy(v, 0);
  if (!slowKey) return JSON.stringify(copy) ?? 'null';
  let text = '';
  canonical(v, 0, (s) => {
    text += s;
  });
  return text;
}

/** What stands for the levels of a record below {@link MAX_DEPTH} in its canonical text. */
const TOO_DEEP = '"\u2026"';

/**
 * Set by `sortedCopy` on a key an inserted copy cannot hold in sorted order: one that may be an
 * array index (first character a digit) or `__proto__` (assigning it sets the prototype), and on
 * reaching {@link MAX_DEPTH} (the engine's JSON.stringify would overflow the stack below it).
 */
let slowKey = false;

/**
 * Sorted key lists by the key order they were found in. A flow record is a handful of shapes
 * (the record, its nodes, its entries) repeated thousands of times, and sorting each object's
 * keys anew was a third of the identity's cost. Few and searched in order, so any input costs
 * at most SHAPES_MAX comparisons of key lists per object.
 */
const SHAPES_MAX = 32;
const shapes: Array<{ readonly keys: readonly string[]; readonly sorted: string[] }> = [];
function sortedKeys(keys: string[]): string[] {
  search: for (const e of shapes) {
    if (e.keys.length !== keys.length) continue;
    for (let i = 0; i < keys.length; i++) if (e.keys[i] !== keys[i]) continue search;
    return e.sorted;
  }
  const sorted = [...keys].sort();
  if (shapes.length >= SHAPES_MAX) shapes.shift();
  shapes.push({ keys, sorted });
  return sorted;
}

/** `v` with object keys in sorted order; parts already in order are returned as they are. */
function sortedCopy(v: unknown, depth: number): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_DEPTH) {
    deep = slowKey = true;
    return v;
  }
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = v[i] as unknown;
      const c = sortedCopy(x, depth + 1);
      if (c !== x && !out) out = v.slice(0, i);
      if (out) out.push(c);
    }
    return out ?? v;
  }
  const o = v as Record<string, unknown>;
  let keys = Object.keys(o);
  let sorted = true;
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      sorted = false;
      break;
    }
  }
  if (!sorted) keys = sortedKeys(keys);
  let out: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const c0 = k.charCodeAt(0);
    if ((c0 >= 48 && c0 <= 57) || k === '__proto__') slowKey = true;
    const x = o[k];
    const c = sortedCopy(x, depth + 1);
    if (!out && (!sorted || c !== x)) {
      out = {};
      // Keys before this one are in order and unchanged.
      for (let j = 0; j < i; j++) out[keys[j] as string] = o[keys[j] as string];
    }
    if (out) out[k] = c;
  }
  return out ?? v;
}

/** The canonical text written token by token: any key order, any key, levels to {@link MAX_DEPTH}. */
function canonical(v: unknown, depth: number, out: (s: string) => void): void {
  if (v === null || typeof v !== 'object') {
    out(JSON.stringify(v) ?? 'null');
    return;
  }
  if (depth >= MAX_DEPTH) {
    out(TOO_DEEP);
    return;
  }
  if (Array.isArray(v)) {
    out('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out(',');
      canonical(v[i], depth + 1, out);
    }
    out(']');
    return;
  }
  const keys = Object.keys(v).sort();
  out('{');
  for (let i = 0; i < keys.length; i++) {
    if (i) out(',');
    out(JSON.stringify(keys[i]));
    out(':');
    canonical((v as Record<string, unknown>)[keys[i] as string], depth + 1, out);
  }
  out('}');
}

/**
 * The identities of records already emitted, each with its time (the latest timestamp the record
 * carries). Identities older than the re-read horizon can never be served again and are pruned;
 * beyond `capacity` the oldest inserted are forgotten first (and counted), so memory stays bounded
 * whatever a server sends.
 */
export class IdentitySet {
  private readonly _m = new Map<string, number>();
  readonly capacity: number;
  /** Identities forgotten because the set was full (a later re-read could repeat them). */
  evicted = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  has(id: string): boolean {
    return this._m.has(id);
  }

  add(id: string, timeMs: number): void {
    if (this._m.has(id)) return;
    if (this._m.size >= this.capacity) {
      const oldest = this._m.keys().next().value as string;
      this._m.delete(oldest);
      this.evicted++;
    }
    this._m.set(id, timeMs);
  }

  /** Adds every identity of `other`, oldest first; what either set had to forget counts as evicted. */
  absorb(other: IdentitySet): void {
    this.evicted += other.evicted;
    for (const [id, ms] of other._m) this.add(id, ms);
  }

  /** Forgets identities whose time is before `horizonMs` (windows never start before it again). */
  prune(horizonMs: number): void {
    for (const [id, t] of this._m) if (t < horizonMs) this._m.delete(id);
  }

  get size(): number {
    return this._m.size;
  }

  entries(): Array<[string, number]> {
    return [...this._m];
  }
}
