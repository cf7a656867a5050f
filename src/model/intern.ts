import type { Attributes } from '@opentelemetry/api';
import type { DataPoint } from '@opentelemetry/sdk-metrics';
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

/** One interned series: its attributes object, and the point last written for it. */
export interface InternedSeries {
  readonly attrs: Attributes;
  /** The series' point, rewritten in place by `MetricBuilder.addInterned` (once per cycle). */
  point: DataPoint<number> | undefined;
  /** The cycle that last asked for this series (`AttributeInterner.cycle`). */
  seen: number;
  /** The cycle whose batch holds `point` (a second use in one cycle gets a point of its own). */
  wrote: number;
}

interface Group {
  readonly series: Map<string, InternedSeries>;
  seen: number;
  /** How many of `series` this cycle asked for (all of them: nothing to forget). */
  live: number;
}

/**
 * Gives a series the same attributes object — and point — from one cycle to the next when its
 * labels are unchanged. Processors can then cache per object (the relabel result, the staleness
 * key) instead of rebuilding strings for every series every cycle, and a poll rewrites its
 * points instead of making new ones. Series not asked for in a cycle are forgotten at
 * `commit()`, so memory follows the live series. The maps persist: rebuilding them every cycle
 * (a map per device) was, with the points, most of what a 10,000-device API poll left for the
 * old generation's collector.
 */
export class AttributeInterner {
  // Two levels (group, then key) so the long part shared by many series — a device's id and
  // name — is stored once per group rather than inside every series' key.
  private readonly _groups = new Map<string, Group>();
  private _cycle = 1;

  /** The cycle being built (advanced by `commit`). */
  get cycle(): number {
    return this._cycle;
  }

  /** The interned object for (`group`, `key`), or `attrs` itself the first time. */
  intern(group: string, key: string, attrs: Attributes): Attributes {
    return this.series(group, key, attrs).attrs;
  }

  /** The interned series for (`group`, `key`), made with `attrs` the first time. */
  series(group: string, key: string, attrs: Attributes): InternedSeries {
    const cycle = this._cycle;
    let g = this._groups.get(group);
    if (!g) {
      g = { series: new Map(), seen: cycle, live: 0 };
      this._groups.set(group, g);
    } else if (g.seen !== cycle) {
      g.seen = cycle;
      g.live = 0;
    }
    let e = g.series.get(key);
    if (!e) {
      // The map keeps the shared copy of the key, not this cycle's freshly built text.
      e = { attrs, point: undefined, seen: 0, wrote: 0 };
      g.series.set(sharedKey(key), e);
    }
    if (e.seen !== cycle) {
      e.seen = cycle;
      g.live++;
    }
    return e;
  }

  /** Ends a cycle: what it did not ask for is forgotten. */
  commit(): void {
    const cycle = this._cycle++;
    for (const [name, g] of this._groups) {
      if (g.seen !== cycle) this._groups.delete(name);
      else if (g.live !== g.series.size) for (const [k, e] of g.series) if (e.seen !== cycle) g.series.delete(k);
    }
  }

  get size(): number {
    let n = 0;
    for (const g of this._groups.values()) n += g.series.size;
    return n;
  }
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
