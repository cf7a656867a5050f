import type { Attributes } from '@opentelemetry/api';
import type { BatchBuilder } from '../../../src/model/batch.ts';
import { boundLabel } from '../../../src/model/labels.ts';
import type { Logger, Redactor } from '../../../src/log/logger.ts';
import type { Device } from '../../../src/pipeline/inventory.ts';
import type { ApiResponse, TailscaleApiClient } from '../client.ts';
import { ApiDecodeError, jsonErrorWhere } from '../decode.ts';
import { apiTime } from '../metrics.ts';
import type { CollectorSettings } from './spec.ts';

/** A metric a collector emits: name, HELP text, and the API field it comes from (README). */
export type MetricDef = readonly [name: string, help: string, source: string];

/** The bounds every collector applies to what the API sends. */
export interface Limits {
  /** Entries one list may hold (`max_items`). */
  readonly maxItems: number;
  /** Values kept from a list inside a record (`max_values`). */
  readonly maxValues: number;
  /** Code points of a label value (`label_max_length`). */
  readonly maxLabel: number;
}

/**
 * Adds points to a collector's batch. Every label value is bounded (`boundLabel`) and every
 * series gets the receiver's base labels (`tailnet`); values that are not finite numbers are
 * dropped, so a hostile field can cost its own point and nothing more.
 */
export class Emitter {
  private readonly _bb: BatchBuilder;
  private readonly _base: Attributes;
  private readonly _maxLabel: number;
  private readonly _nowMs: number;
  private readonly _seen = new Set<string>();
  private readonly _onDuplicate: (name: string) => void;
  constructor(bb: BatchBuilder, base: Attributes, maxLabel: number, nowMs: number, onDuplicate: (name: string) => void = () => undefined) {
    this._bb = bb;
    this._base = base;
    this._maxLabel = maxLabel;
    this._nowMs = nowMs;
    this._onDuplicate = onDuplicate;
  }

  /**
   * The point's attributes, or undefined when the series was already emitted this cycle: values
   * that differ only beyond the label cut (or repeat in a list) would otherwise make two samples
   * with one identity, which Prometheus rejects for the whole scrape.
   */
  private _attrs(name: string, labels: Readonly<Record<string, string>>): Attributes | undefined {
    const a: Attributes = { ...this._base };
    let key = name;
    for (const k in labels) {
      const v = boundLabel(labels[k] as string, this._maxLabel);
      a[k] = v;
      key += `\u0000${k}\u0001${v}`;
    }
    if (this._seen.has(key)) {
      this._onDuplicate(name);
      return undefined;
    }
    this._seen.add(key);
    return a;
  }

  gauge(def: MetricDef, labels: Readonly<Record<string, string>>, value: number | undefined): void {
    if (value === undefined || !Number.isFinite(value)) return;
    const a = this._attrs(def[0], labels);
    if (a) this._bb.gauge(def[0], def[1]).add(a, value, this._nowMs);
  }

  /** A cumulative counter point; `startMs` is when the series was first seen or last reset. */
  counter(def: MetricDef, labels: Readonly<Record<string, string>>, value: number | undefined, startMs: number): void {
    if (value === undefined || !Number.isFinite(value) || value < 0) return;
    const a = this._attrs(def[0], labels);
    if (a) this._bb.counter(def[0], def[1]).add(a, value, this._nowMs, Math.min(startMs, this._nowMs));
  }
}

/** What a collector gets for one cycle. */
export interface CollectorContext {
  readonly client: TailscaleApiClient;
  readonly signal: AbortSignal;
  readonly deadlineMs: number;
  readonly nowMs: number;
  readonly out: Emitter;
  readonly limits: Limits;
  readonly includeUserEmail: boolean;
  readonly settings: CollectorSettings;
  /** The receiver's device inventory (for joins without per-device calls). */
  readonly devices: () => readonly Device[];
  /** Counts entries that were skipped (`decode`) or cut off (`limit`), and logs that once. */
  readonly drop: (kind: 'decode' | 'limit' | 'parse', what: string, n: number) => void;
  readonly logger: Logger;
  readonly secrets: Redactor;
  /** `GET /api/v2<path>` with this cycle's signal, deadline and the collector's tag and scope. */
  get(path: string, o?: { accept?: string | null; scope?: string }): Promise<ApiResponse>;
}

/** One collector: state lives in the object (policy hash, counter start times, first-seen times). */
export interface Collector {
  collect(ctx: CollectorContext): Promise<void>;
}

export const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
/** A finite number (wrong types, NaN and ±Infinity count as absent). */
export const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** A finite count: a number ≥ 0. */
export const count = (v: unknown): number | undefined => {
  const n = num(v);
  return n !== undefined && n >= 0 ? n : undefined;
};
export const b01 = (v: boolean): number => (v ? 1 : 0);
/** A label value as it will be emitted, for keys that must not collide after the cut. */
export const labelOf = (ctx: CollectorContext, v: string): string => boundLabel(v, ctx.limits.maxLabel);

/** The longest timestamp text parsed: RFC 3339 with nanoseconds and an offset is 35 characters. */
const MAX_TIME_TEXT = 64;

/** An RFC 3339 time as Unix seconds; undefined for absent, empty, zero-time, overlong or invalid. */
export function seconds(v: unknown): number | undefined {
  if (typeof v !== 'string' || v.length > MAX_TIME_TEXT) return undefined;
  const ms = apiTime(v);
  return ms === undefined ? undefined : ms / 1000;
}

/** Parses a JSON body; the error names the position only (the parser would quote the input). */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiDecodeError(`${what} is not valid JSON (${jsonErrorWhere(err)})`);
  }
}

/**
 * The list under `key` of a JSON object (or the body itself when `key` is null: the invite
 * endpoints answer with a bare array, or `null` for none). A missing list is a decode error; a
 * list longer than `maxItems` is rejected before any entry is decoded.
 */
export function listOf(data: unknown, key: string | null, what: string, maxItems: number): unknown[] {
  const v = key === null ? data : isObj(data) ? data[key] : undefined;
  if (key === null && v === null) return [];
  if (!Array.isArray(v)) throw new ApiDecodeError(key === null ? `${what} is not a list` : `${what} has no "${key}" list`);
  if (v.length > maxItems) throw new ApiDecodeError(`${what} has ${v.length} entries, more than max_items (${maxItems})`, 'too_large');
  return v;
}

/**
 * Decodes the entries of a list, skipping those `decode` rejects and those whose id repeats an
 * earlier one (two series with one identity would be ambiguous); skipped entries are counted.
 */
export function records<T>(ctx: CollectorContext, items: readonly unknown[], what: string, decode: (raw: Record<string, unknown>) => T | undefined, idOf: (t: T) => string): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const raw of items) {
    const t = isObj(raw) ? decode(raw) : undefined;
    // Ids become labels cut to label_max_length, so two ids that differ only past the cut are
    // one series: the second is skipped like a repeated id.
    const id = t === undefined ? '' : boundLabel(idOf(t), ctx.limits.maxLabel);
    if (t === undefined || !id || seen.has(id)) {
      skipped++;
      continue;
    }
    seen.add(id);
    out.push(t);
  }
  if (skipped) ctx.drop('decode', `${what} without a usable id (or repeating one)`, skipped);
  return out;
}

/**
 * The strings of a list inside a record, at most `max_values` of them (the rest are dropped and
 * counted); non-strings are ignored. Undefined when the field is not a list.
 */
export function strings(ctx: CollectorContext, v: unknown, what: string): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  const max = ctx.limits.maxValues;
  let extra = 0;
  for (const x of v) {
    if (typeof x !== 'string') continue;
    if (out.length >= max) extra++;
    else out.push(x);
  }
  if (extra) ctx.drop('limit', what, extra);
  return out;
}

/**
 * Runs `fn` for at most `max` items, `concurrency` at a time; items beyond `max` are not called
 * this cycle. Each result is the value or the error, so one failing call costs its own entry.
 */
export async function boundedCalls<T, R>(items: readonly T[], max: number, concurrency: number, fn: (item: T) => Promise<R>): Promise<{ results: Array<{ item: T; value?: R; error?: unknown }>; skipped: number }> {
  const todo = items.slice(0, max);
  const results: Array<{ item: T; value?: R; error?: unknown }> = new Array(todo.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      const i = next++;
      const item = todo[i] as T;
      try {
        results[i] = { item, value: await fn(item) };
      } catch (error) {
        results[i] = { item, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
  return { results, skipped: items.length - todo.length };
}

/**
 * Start times of remote cumulative counters: the first time a series was seen, moved to now when
 * its value drops (the remote side reset), as the Collector's prometheus receiver does. Series
 * not seen in a cycle are forgotten at `commit()`, so memory follows the live series.
 */
export class CounterStarts {
  private _prev = new Map<string, { startMs: number; value: number }>();
  private _next = new Map<string, { startMs: number; value: number }>();

  start(key: string, value: number, nowMs: number): number {
    const p = this._next.get(key) ?? this._prev.get(key);
    const startMs = p && value >= p.value ? p.startMs : nowMs;
    this._next.set(key, { startMs, value });
    return startMs;
  }

  /** The value the series had in the previous cycle. */
  previous(key: string): number | undefined {
    return this._prev.get(key)?.value;
  }

  commit(): void {
    this._prev = this._next;
    this._next = new Map();
  }
}

/** The device inventory by nodeId (services name their hosts by nodeId). */
export function devicesByNodeId(devices: readonly Device[]): Map<string, Device> {
  const m = new Map<string, Device>();
  for (const d of devices) if (d.nodeId) m.set(d.nodeId, d);
  return m;
}
