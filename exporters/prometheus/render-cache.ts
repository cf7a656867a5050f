import type { Clock } from '../../src/component/types.ts';
import { TEXT_FORMAT, type ExpositionFormat } from './negotiate.ts';
import type { BodyCache } from './serializer.ts';

/** At most this many formats keep rendered bodies at a time (each can be as large as the page). */
export const MAX_CACHED_FORMATS = 3;
/** A format nobody asked for in this long stops being rendered ahead and its bodies are released. */
export const FORMAT_IDLE_MS = 10 * 60 * 1000;

function keyOf(f: ExpositionFormat): string {
  // Both OpenMetrics versions are the same body; only the Content-Type differs.
  return `${f.openmetrics ? 'om' : 'text'}:${f.escaping}`;
}

interface Entry {
  format: ExpositionFormat;
  cache: BodyCache;
  lastUsed: number;
  /** False for the 0.0.4 entry assumed before any scrape: it gives way to what scrapers ask. */
  asked: boolean;
}

/**
 * The rendered sample lines of each exposition format scrapers ask for. A format is rendered
 * ahead of requests only while someone asks for it, so serving one format costs the memory of
 * one page: the 0.0.4 text is the format assumed before the first scrape (dropped as soon as a
 * scrape asks for another), and any format is released once nobody has asked for it for
 * FORMAT_IDLE_MS. At most MAX_CACHED_FORMATS
 * are held; asking for another releases the least recently used.
 */
export class FormatCaches {
  private readonly _entries = new Map<string, Entry>();
  private readonly _clock: Clock;

  constructor(clock: Clock) {
    this._clock = clock;
    this._entries.set(keyOf(TEXT_FORMAT), { format: TEXT_FORMAT, cache: new WeakMap(), lastUsed: clock.now(), asked: false });
  }

  /** The cache for a format a scrape asks for now (created on first use). */
  use(format: ExpositionFormat): BodyCache {
    const now = this._clock.now();
    this._expire(now);
    const key = keyOf(format);
    let e = this._entries.get(key);
    if (e) this._entries.delete(key);
    else e = { format, cache: new WeakMap(), lastUsed: now, asked: true };
    e.lastUsed = now;
    e.asked = true;
    // A scraper that asks for another format than the assumed one: rendering the assumed one
    // ahead would double the memory for a page nobody reads.
    for (const [k, other] of this._entries) if (!other.asked) this._entries.delete(k);
    // Re-inserted last: the map's order is least recently used first.
    this._entries.set(key, e);
    while (this._entries.size > MAX_CACHED_FORMATS) this._entries.delete(this._entries.keys().next().value as string);
    return e.cache;
  }

  /** The formats to render a new batch in ahead of the next scrape. */
  active(): Array<{ format: ExpositionFormat; cache: BodyCache }> {
    this._expire(this._clock.now());
    return [...this._entries.values()];
  }

  /** Format keys currently holding bodies, least recently used first (for tests). */
  keys(): string[] {
    return [...this._entries.keys()];
  }

  private _expire(now: number): void {
    for (const [k, e] of this._entries) if (now - e.lastUsed > FORMAT_IDLE_MS) this._entries.delete(k);
  }
}
