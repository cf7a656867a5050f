/** Longest label value a connector writes; longer values are cut (a hostile record's 1 MB name costs 256 chars). */
export const MAX_LABEL_LENGTH = 256;

/**
 * A non-empty string attribute cut to `max` UTF-16 units (never through a surrogate pair), or
 * undefined for anything else: numbers, arrays and objects where a string belongs are absent, not
 * stringified, so a wrong type cannot invent a label value.
 */
export function labelValue(v: unknown, max = MAX_LABEL_LENGTH): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  if (v.length <= max) return v;
  const cut = v.charCodeAt(max - 1);
  return v.slice(0, cut >= 0xd800 && cut <= 0xdbff ? max - 1 : max);
}

/**
 * Keeps a label's distinct values bounded: the values of `known` always pass, up to `cap` others
 * are admitted as they are first seen, and every later newcomer becomes `other`.
 */
export class BoundedValues {
  private readonly _known: ReadonlySet<string>;
  private readonly _admitted = new Set<string>();
  private readonly _cap: number;
  constructor(known: readonly string[], cap: number) {
    this._known = new Set(known);
    this._cap = cap;
  }
  map(v: string): string {
    if (this._known.has(v) || this._admitted.has(v)) return v;
    if (this._admitted.size >= this._cap) return 'other';
    this._admitted.add(v);
    return v;
  }
}
