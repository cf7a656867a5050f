/**
 * Prometheus names as `@opentelemetry/exporter-prometheus` writes them: every character outside
 * `[a-zA-Z0-9_]` becomes `_` and runs of `_` collapse to one. Receivers apply the same rule to
 * what devices send, so a name means the same thing in OTLP and on `/metrics`, and two names that
 * would print the same are told apart before they can collide on an exposition line.
 */

const INVALID_CHARS = /[^a-z0-9_]/gi;
const MULTI_UNDERSCORE = /_{2,}/g;
const VALID = /^[a-zA-Z0-9_]*$/;

/** The name as the Prometheus serializer prints it (idempotent: `f(f(x)) === f(x)`). */
export function prometheusName(name: string): string {
  if (VALID.test(name) && !name.includes('__')) return name;
  return name.replace(INVALID_CHARS, '_').replace(MULTI_UNDERSCORE, '_');
}

/**
 * A map from strings to values bounded by the total length of its keys and values (UTF-16
 * units) as well as by entry count. Keys come from devices and the API, so a count alone would
 * let a few very long keys take the heap: when either bound is reached the older half is
 * forgotten (two generations, no per-hit bookkeeping on the hot path).
 */
export class BoundedCache<V> {
  private _young = new Map<string, V>();
  private _old = new Map<string, V>();
  private _youngChars = 0;
  private readonly _maxChars: number;
  private readonly _maxEntries: number;
  private readonly _size: (v: V) => number;

  constructor(opts: { maxChars: number; maxEntries: number; sizeOf?: (v: V) => number }) {
    this._maxChars = opts.maxChars;
    this._maxEntries = opts.maxEntries;
    this._size = opts.sizeOf ?? ((v) => (typeof v === 'string' ? v.length : 8));
  }

  get(key: string): V | undefined {
    const y = this._young.get(key);
    if (y !== undefined) return y;
    const o = this._old.get(key);
    // A hit in the old generation is promoted so entries in use survive the next rotation.
    if (o !== undefined) this.set(key, o);
    return o;
  }

  set(key: string, value: V): void {
    const cost = key.length + this._size(value) + 32;
    // A single entry larger than half the budget is never worth keeping.
    if (cost * 2 > this._maxChars) return;
    if (this._youngChars + cost > this._maxChars / 2 || this._young.size >= this._maxEntries / 2) {
      this._old = this._young;
      this._young = new Map();
      this._youngChars = 0;
    }
    this._young.set(key, value);
    this._youngChars += cost;
  }

  /**
   * The value for `key`, made by `make` on a miss and kept within the bounds: a memo whose
   * keys a device or an API record may choose. (`undefined` cannot be kept; use `null`.)
   */
  getOrSet(key: string, make: (key: string) => V): V {
    let v = this.get(key);
    if (v === undefined) {
      v = make(key);
      this.set(key, v);
    }
    return v;
  }

  /** Entries held now (both generations; for tests and self-checks). */
  get size(): number {
    return this._young.size + this._old.size;
  }

  /** Upper bound of the characters held (both generations). */
  get maxChars(): number {
    return this._maxChars;
  }
}
