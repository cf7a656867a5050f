import { hash } from 'node:crypto';

/**
 * A stable identity for a record: a hash of its canonical JSON (object keys sorted), so the same
 * record served again — in an overlapping window or after a restart — has the same identity
 * whatever order the server wrote its keys in. 128 bits of SHA-256, base64: collisions are not a
 * practical concern at any volume a tailnet produces. `size` is the canonical JSON's length
 * (the record's size bound is checked on it without a second walk).
 */
export function recordIdentity(v: unknown): { id: string; size: number } {
  const text = canonicalJson(v);
  return { id: hash('sha256', text, 'buffer').subarray(0, 16).toString('base64'), size: text.length };
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
  const copy = sortedCopy(v);
  if (!slowKey) return JSON.stringify(copy) ?? 'null';
  let text = '';
  canonical(v, (s) => {
    text += s;
  });
  return text;
}

/**
 * Set by `sortedCopy` on a key an inserted copy cannot hold in sorted order: one that may be an
 * array index (first character a digit) or `__proto__` (assigning it sets the prototype).
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
function sortedCopy(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = v[i] as unknown;
      const c = sortedCopy(x);
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
    const c = sortedCopy(x);
    if (!out && (!sorted || c !== x)) {
      out = {};
      // Keys before this one are in order and unchanged.
      for (let j = 0; j < i; j++) out[keys[j] as string] = o[keys[j] as string];
    }
    if (out) out[k] = c;
  }
  return out ?? v;
}

/** The canonical text written token by token: any key order, any key. */
function canonical(v: unknown, out: (s: string) => void): void {
  if (v === null || typeof v !== 'object') {
    out(JSON.stringify(v) ?? 'null');
    return;
  }
  if (Array.isArray(v)) {
    out('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out(',');
      canonical(v[i], out);
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
    canonical((v as Record<string, unknown>)[keys[i] as string], out);
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
