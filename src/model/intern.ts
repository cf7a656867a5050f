import type { Attributes } from '@opentelemetry/api';
import { BoundedCache } from './names.ts';

/**
 * One copy of each series key for the whole process. Keys repeat across devices (every
 * tailscaled writes `tailscaled_inbound_bytes_total{path="derp"}`; every device has an
 * `online` series), so a map that keeps a key per series holds the same text thousands of
 * times; with this, it holds one. Bounded by characters and entries, since devices and API
 * records choose these strings: past the bound a key is simply not shared.
 */
const sharedKeys = new BoundedCache<string>({ maxChars: 8 * 1024 * 1024, maxEntries: 100_000 });

/**
 * One self-delimiting part of a key: its length, then the text. Keys built from label values
 * must be injective — joining values with separators lets a value that contains the separator
 * (an API record, a device's label, a peer's host name) make another label set's key and be
 * handed that series' attributes or state — and a length prefix cannot be forged by the text
 * after it.
 */
export function keyPart(s: string): string {
  return `${s.length}:${s}`;
}

/** `keyPart(name) + keyPart(value)`: one label of a key. */
export function keyLabel(name: string, value: string): string {
  return `${name.length}:${name}${value.length}:${value}`;
}

/** The process's shared copy of `key` (itself the first time). */
export function sharedKey(key: string): string {
  return sharedKeys.getOrSet(key, (k) => k);
}

/**
 * Gives a series the same attributes object from one cycle to the next when its labels are
 * unchanged. Processors can then cache per object (the relabel result, the staleness key)
 * instead of rebuilding strings for every series every cycle. Two generations: objects not seen
 * in a cycle are forgotten at `commit()`, so memory follows the live series.
 */
export class AttributeInterner {
  // Two levels (group, then key) so the long part shared by many series — a device's id and
  // name — is stored once per group rather than inside every series' key.
  private _prev = new Map<string, Map<string, Attributes>>();
  private _next = new Map<string, Map<string, Attributes>>();

  /** The interned object for (`group`, `key`), or `attrs` itself the first time. */
  intern(group: string, key: string, attrs: Attributes): Attributes {
    return internIn(this._nextOf(group), this._prev.get(group), key, attrs);
  }

  /**
   * The interning scope of one group, for a caller that interns many series of the same group
   * in a row (a device's): the group's maps are looked up once, not once per series.
   */
  group(group: string): InternGroup {
    return new GroupScope(this._nextOf(group), this._prev.get(group));
  }

  private _nextOf(group: string): Map<string, Attributes> {
    let next = this._next.get(group);
    if (!next) {
      next = new Map();
      this._next.set(group, next);
    }
    return next;
  }

  commit(): void {
    this._prev = this._next;
    this._next = new Map();
  }

  get size(): number {
    let n = 0;
    for (const m of this._prev.values()) n += m.size;
    return n;
  }
}

/** One group of an AttributeInterner (see `AttributeInterner.group`). */
export interface InternGroup {
  /** The interned object for `key` in this group, or `attrs` itself the first time. */
  intern(key: string, attrs: Attributes): Attributes;
}

class GroupScope implements InternGroup {
  private readonly _next: Map<string, Attributes>;
  private readonly _prev: Map<string, Attributes> | undefined;

  constructor(next: Map<string, Attributes>, prev: Map<string, Attributes> | undefined) {
    this._next = next;
    this._prev = prev;
  }

  intern(key: string, attrs: Attributes): Attributes {
    return internIn(this._next, this._prev, key, attrs);
  }
}

/** `key` in one group: this cycle's object, else last cycle's, else `attrs` (then remembered). */
function internIn(next: Map<string, Attributes>, prev: Map<string, Attributes> | undefined, key: string, attrs: Attributes): Attributes {
  const hit = next.get(key);
  if (hit) return hit;
  const out = prev?.get(key) ?? attrs;
  // The map keeps the key for a cycle: the shared copy, not this cycle's freshly built text.
  next.set(sharedKey(key), out);
  return out;
}

const signatures = new WeakMap<object, string>();

/**
 * A stable string for an attribute set (its JSON), cached per object: for interned objects it is
 * computed once per series lifetime instead of once per cycle.
 */
export function attributeSignature(attrs: Attributes): string {
  let s = signatures.get(attrs);
  if (s === undefined) {
    s = JSON.stringify(attrs);
    signatures.set(attrs, s);
  }
  return s;
}
