import { createHash } from 'node:crypto';

/**
 * A stable identity for a record: a hash of its canonical JSON (object keys sorted), so the same
 * record served again — in an overlapping window or after a restart — has the same identity
 * whatever order the server wrote its keys in. 128 bits of SHA-256, base64: collisions are not a
 * practical concern at any volume a tailnet produces. `size` is the canonical JSON's length
 * (the record's size bound is checked on it without a second walk).
 */
export function recordIdentity(v: unknown): { id: string; size: number } {
  // One string, hashed once: an update() per token cost more than the hashing itself.
  let text = '';
  canonical(v, (s) => {
    text += s;
  });
  return { id: createHash('sha256').update(text).digest().subarray(0, 16).toString('base64'), size: text.length };
}

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
