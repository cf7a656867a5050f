import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Counter } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Settings } from '../../src/component/types.ts';
import { errorMessage } from '../../src/errors.ts';
import type { OnceLogger } from '../../src/log/logger.ts';
import { ApiCallError, type TailscaleApiClient } from '../tailscale_api/client.ts';
import type { LogType, TailscaleLogsConfig } from './config.ts';
import { flowIdentity, IdentitySet, recordIdentity } from './dedup.ts';
import { isObject, logsOf } from './decode.ts';
import { auditTimes, flowTimes, mapAudit, mapFlow, type DropReason, type MapContext } from './mapping.ts';
import type { TypeState } from './storage.ts';
import { nextFrom, planWindows, type Window } from './window.ts';

const DAY = 86_400_000;

/** What each log type is: its endpoint, scope and how long Tailscale keeps it. */
export const LOG_TYPE_INFO: Readonly<Record<LogType, { path: string; scope: string; retentionMs: number; what: string }>> = {
  network: { path: 'logging/network', scope: 'logs:network:read', retentionMs: 30 * DAY, what: 'network flow logs' },
  configuration: { path: 'logging/configuration', scope: 'logs:configuration:read', retentionMs: 90 * DAY, what: 'configuration audit logs' },
};

/** The receiver's own counters, shared by its log types. */
export interface LogCounters {
  readonly received: Counter;
  readonly deduplicated: Counter;
  readonly late: Counter;
  readonly dropped: Counter;
}

export interface PollResult {
  readonly ok: boolean;
  /** The credential may not read this log type (403, or 404 without the scope). */
  readonly unavailable?: boolean;
  readonly error?: string;
  /** The records not yet handed to `deliver` (all of them without one). */
  readonly records: ReadableLogRecord[];
  /** The tailnet name the configuration endpoint reported, when it did. */
  readonly tailnet?: string;
}

/** Shortest window a too-large answer is split down to before that window is given up. */
const MIN_SPLIT_MS = 1000;

/**
 * Work done between two turns of the event loop, in records read plus log records made. One
 * answer can hold millions of records (max_body_size of tiny ones); handled in one go they would
 * stall every other receiver, /metrics and the exporters for seconds. A turn per 2048 units is
 * ~15 ms of work on a loaded 2-core machine and costs nothing measurable.
 */
export const WORK_PER_TURN = 2048;

/**
 * Records a poll holds before it hands them on at the end of a window (when the caller takes
 * them as they come). Handed on early, records are encoded and die young: a poll of 90,000
 * records kept whole was ~15 % garbage collection, every record marked and moved with the rest
 * (bench `flow_logs`). Below this a poll's records go on together, as one batch.
 */
export const DELIVER_AT = 4096;

/** Takes a poll's records as they are ready; throws (the abort) when they cannot be taken. */
export type Deliver = (records: ReadableLogRecord[]) => Promise<void>;

/**
 * One log type of a `tailscale_logs` receiver: its read position, the identities of the records
 * it emitted inside the re-read horizon, and one poll at a time. What a poll has handed on is
 * remembered at once (identities and position); where the next poll starts changes only when a
 * poll finishes, so an aborted poll's windows are read again and what it had handed on is
 * recognised there and not emitted twice.
 */
export class LogSource {
  readonly type: LogType;
  readonly sourceId: string;
  private readonly _s: Settings;
  private readonly _c: TailscaleLogsConfig;
  private readonly _client: TailscaleApiClient;
  private readonly _counters: LogCounters;
  private readonly _once: OnceLogger;
  private readonly _attrs: { component_id: string; source: LogType };
  private _from: number | undefined;
  private _position: number | undefined;
  private _ids: IdentitySet;
  private _evictedLogged = 0;

  constructor(o: { type: LogType; settings: Settings; config: TailscaleLogsConfig; client: TailscaleApiClient; counters: LogCounters; once: OnceLogger }) {
    this.type = o.type;
    this.sourceId = `${o.settings.id.key}:${o.type}`;
    this._s = o.settings;
    this._c = o.config;
    this._client = o.client;
    this._counters = o.counters;
    this._once = o.once;
    this._attrs = { component_id: o.settings.id.key, source: o.type };
    this._ids = new IdentitySet(o.config.dedup_capacity);
    o.settings.telemetry.registerSource(this.sourceId);
  }

  /** Resumes from saved state. */
  restore(t: TypeState): void {
    this._from = t.from;
    this._position = t.position;
    this._ids = new IdentitySet(this._c.dedup_capacity);
    for (const [id, ms] of t.ids) this._ids.add(id, ms);
  }

  /** The state to save, or undefined before the first successful read. */
  snapshot(): TypeState | undefined {
    if (this._from === undefined || this._position === undefined) return undefined;
    return { from: this._from, position: this._position, ids: this._ids.entries() };
  }

  /** Identities remembered now (tests, README measurement). */
  get remembered(): number {
    return this._ids.size;
  }

  private _drop(reason: DropReason, n = 1): void {
    if (n > 0) this._counters.dropped.add(n, { ...this._attrs, reason });
  }

  /**
   * Reads the windows due now and returns the new records as log records (state updated). With
   * `deliver`, records are handed to it at the end of each window once `DELIVER_AT` have
   * gathered, and remembered as emitted when it returns; the result holds the rest.
   */
  async poll(signal: AbortSignal, ctx: Omit<MapContext, 'drop'>, deliver?: Deliver): Promise<PollResult> {
    const c = this._c;
    const info = LOG_TYPE_INFO[this.type];
    const now = this._s.clock.now();
    const deadlineMs = now + Math.max(5000, c.interval * 0.9);
    let from = this._from ?? now - c.initial_window;
    if (from < now - info.retentionMs) {
      // Tailscale clamps older starts silently; saying so is all that can be done about it.
      this._once.fail(`retention:${this.type}`, 'clamped', `tailscale_logs: the saved position of the ${info.what} is older than Tailscale keeps them (${info.retentionMs / DAY} days); reading from the retention limit, the records before it are gone`, { source: this.type });
      from = now - info.retentionMs;
    }
    const queue: Window[] = planWindows(from, now, c.max_window, c.max_windows_per_poll);
    const maxRequests = c.max_windows_per_poll * 2;
    /** Drops of the whole poll (for its log lines) and those not yet counted (see `count`). */
    const drops = new Map<DropReason, number>();
    const pendingDrops = new Map<DropReason, number>();
    const drop = (reason: DropReason, n = 1): void => {
      drops.set(reason, (drops.get(reason) ?? 0) + n);
      pendingDrops.set(reason, (pendingDrops.get(reason) ?? 0) + n);
    };
    const mctx: MapContext = { ...ctx, drop };
    // What this poll saw, kept to dedup_capacity like the set it is merged into: a hostile answer
    // of millions of distinct malformed records must not grow it without bound.
    let seenNow = new IdentitySet(c.dedup_capacity);
    let out: ReadableLogRecord[] = [];
    /** Records handed on already in this poll. */
    let emitted = 0;
    // Lateness is judged against where reading stood before this poll, not against the windows
    // this poll has handed on already.
    const positionBefore = this._position;
    let received = 0;
    let work = 0;
    let deduplicated = 0;
    let late = 0;
    let reached: number | undefined;
    let requests = 0;
    let failure: ApiCallError | undefined;
    let tailnet: string | undefined;
    let truncated = false;
    let cut = false;
    // Counts what was read so far. Called when the windows read are remembered (a part handed on,
    // the poll's end): a poll cut off later re-reads only the rest, and what a part's windows
    // dropped or found again is otherwise never counted (after a restart it is "deduplicated").
    const count = (): void => {
      if (received) this._counters.received.add(received, this._attrs);
      if (deduplicated) this._counters.deduplicated.add(deduplicated, this._attrs);
      if (late) this._counters.late.add(late, this._attrs);
      for (const [reason, n] of pendingDrops) this._drop(reason, n);
      received = deduplicated = late = 0;
      pendingDrops.clear();
    };
    while (queue.length && !truncated) {
      if (requests >= maxRequests || this._s.clock.now() >= deadlineMs) {
        cut = true;
        break;
      }
      const w = queue.shift() as Window;
      requests++;
      let text: string;
      try {
        const q = new URLSearchParams({ start: new Date(w.start).toISOString(), end: new Date(w.end).toISOString() });
        text = (await this._client.get(`${this._client.tailnetPath}/${info.path}?${q.toString()}`, { signal, deadlineMs, scope: info.scope, tag: `logs_${this.type}` })).text;
      } catch (err) {
        if (signal.aborted) throw err;
        const e = err instanceof ApiCallError ? err : new ApiCallError('network', errorMessage(err));
        if (e.kind === 'too_large') {
          this._s.telemetry.error(this.sourceId, 'too_large');
          this._once.fail(`split:${this.type}`, 'split', `tailscale_logs: an answer of the ${info.what} was larger than max_body_size; its window is split in halves`, { source: this.type, max_body_size: c.max_body_size });
          if (w.end - w.start >= 2 * MIN_SPLIT_MS) {
            const mid = w.start + Math.floor((w.end - w.start) / 2);
            queue.unshift({ start: w.start, end: mid }, { start: mid, end: w.end });
            continue;
          }
          // One second of logs larger than max_body_size: that second is given up, visibly.
          drop('too_large');
          this._once.fail(`too_large:${this.type}`, 'window', `tailscale_logs: one second of ${info.what} is larger than max_body_size; that second is skipped`, { source: this.type, start: new Date(w.start).toISOString(), max_body_size: c.max_body_size });
          reached = w.end;
          continue;
        }
        failure = e;
        break;
      }
      const parsed = logsOf(text);
      if ('error' in parsed) {
        failure = new ApiCallError('decode', `${info.what}: ${parsed.error}`);
        break;
      }
      tailnet ??= parsed.tailnet;
      const logs = parsed.logs;
      for (let i = 0; i < logs.length; i++) {
        const raw = logs[i];
        // Let go of what mapping does not keep (the record, its node lists), so it is not marked
        // and moved again by every collection while the rest of a large answer is handled.
        logs[i] = undefined;
        received++;
        if (++work >= WORK_PER_TURN) {
          work = 0;
          await nextTurn();
          signal.throwIfAborted();
        }
        const { id, size, tooDeep } = this.type === 'network' ? flowIdentity(raw) : recordIdentity(raw);
        if (this._ids.has(id) || seenNow.has(id)) {
          deduplicated++;
          continue;
        }
        const times = tooDeep ? undefined : this.type === 'network' ? flowTimes(raw) : auditTimes(raw);
        if (!times) {
          // Remembered with the window's end, so a re-read does not count it again.
          drop('malformed');
          seenNow.add(id, w.end);
          continue;
        }
        const filterMs = 'logged' in times ? times.logged.ms : times.event.ms;
        const latestMs = 'logged' in times ? Math.max(times.logged.ms, times.end.ms) : times.latestMs;
        // No timestamp reaches the window: the server sent something not asked for, and it
        // could come back on every poll once its identity is pruned.
        if (latestMs < w.start) {
          drop('outside_window');
          continue;
        }
        if (size > c.max_event_size) {
          drop('too_large');
          seenNow.add(id, latestMs);
          continue;
        }
        const rec = raw as Record<string, unknown>;
        const mapped = 'logged' in times ? mapFlow(rec, times, mctx) : isObject(rec) ? mapAudit(rec, times.event, mctx) : undefined;
        if (mapped === undefined) {
          drop('malformed');
          seenNow.add(id, latestMs);
          continue;
        }
        const list = Array.isArray(mapped) ? mapped : [mapped];
        if (emitted + out.length > 0 && emitted + out.length + list.length > c.max_records_per_poll) {
          // The rest of this window is read again next poll; what was emitted is remembered.
          truncated = true;
          break;
        }
        if (positionBefore !== undefined && filterMs <= positionBefore) late++;
        seenNow.add(id, latestMs);
        for (const r of list) out.push(r);
        work += list.length;
      }
      if (!truncated) reached = w.end;
      if (deliver && out.length >= DELIVER_AT && reached !== undefined) {
        const handed = out;
        out = [];
        await deliver(handed);
        emitted += handed.length;
        // Handed on: a re-read of these windows (this poll's, or after an abort) skips them.
        this._ids.absorb(seenNow);
        seenNow = new IdentitySet(c.dedup_capacity);
        this._position = Math.max(this._position ?? reached, reached);
        // A first poll cut off after this still has a start to re-read from (and to save).
        this._from ??= from;
        count();
      }
    }
    if (truncated) this._once.fail(`max_records:${this.type}`, 'cut', `tailscale_logs: a poll of ${info.what} reached max_records_per_poll; the rest follows on the next polls`, { source: this.type, max_records_per_poll: c.max_records_per_poll });
    else this._once.ok(`max_records:${this.type}`);
    // The poll is complete (or failed part-way): everything up to `reached` has been emitted.
    this._ids.absorb(seenNow);
    this._position = reached === undefined ? this._position : Math.max(this._position ?? reached, reached);
    // A poll cut short (request budget, deadline, max_records_per_poll) continues where it
    // stopped; otherwise the next one re-reads the last `lag`.
    this._from = cut || truncated ? Math.max(from, reached ?? from) : nextFrom(from, reached, now, c.lag);
    if (cut) this._once.fail(`cut:${this.type}`, 'cut', `tailscale_logs: a poll of ${info.what} used its request budget (max_windows_per_poll) or deadline before reaching now; the next poll continues from there`, { source: this.type, reached: reached === undefined ? null : new Date(reached).toISOString() });
    else this._once.ok(`cut:${this.type}`);
    if (this._position !== undefined) this._ids.prune(this._from);
    if (this._ids.evicted > this._evictedLogged) {
      this._evictedLogged = this._ids.evicted;
      this._once.fail(`dedup:${this.type}`, 'full', 'tailscale_logs: dedup_capacity reached; the oldest remembered records were forgotten, and a re-read could repeat them', { source: this.type, dedup_capacity: c.dedup_capacity });
    }
    count();
    for (const reason of ['malformed', 'limit'] as const) {
      const n = drops.get(reason);
      if (n) this._once.fail(`drop:${reason}:${this.type}`, reason, `tailscale_logs: ${reason === 'malformed' ? 'malformed records or entries were skipped' : 'lists longer than max_list_length were cut'} in the ${info.what}`, { source: this.type, count: n });
      else this._once.ok(`drop:${reason}:${this.type}`);
    }
    if (failure) return { ok: false, error: this._report(failure), records: out, ...(this._unavailable(failure) ? { unavailable: true } : {}), ...(tailnet ? { tailnet } : {}) };
    this._once.ok(`api:${this.type}`, `tailscale_logs: ${info.what} readable again`, { source: this.type });
    return { ok: true, records: out, ...(tailnet ? { tailnet } : {}) };
  }

  /** A 403, or a 404 the granted scopes do not explain: the credential may not read this type. */
  private _unavailable(e: ApiCallError): boolean {
    return e.status === 403 || (e.status === 404 && this._client.hasScope(LOG_TYPE_INFO[this.type].scope) !== true);
  }

  /** Logs a failed poll once per kind and returns the message for /health. */
  private _report(e: ApiCallError): string {
    const info = LOG_TYPE_INFO[this.type];
    const message = this._s.secrets.scrub(e.message);
    this._s.telemetry.error(this.sourceId, e.kind);
    if (this._unavailable(e) && this._c.missing_scope === 'disable') {
      // Reading logs only where the credential allows it is the configuration's intent, not a fault.
      this._s.logger.info(`tailscale_logs: ${info.what} are off: the credential may not read them (HTTP ${e.status}; they need the scope ${info.scope}); missing_scope is disable, so they are not read again until a restart or reload`, { source: this.type, status: e.status, needs_scope: info.scope });
    } else if (e.status === 403 || e.status === 404) {
      const has = this._client.hasScope(info.scope);
      const why =
        e.status === 404 && has === true
          ? 'this control server does not offer the endpoint, or logging is off for the tailnet (HTTP 404)'
          : `the credential may not read them (HTTP ${e.status}, missing scope ${info.scope})`;
      this._once.fail(`api:${this.type}`, `unavailable:${e.status}`, `tailscale_logs: ${info.what} are off: ${why}; nothing is emitted for them until they can be read (remove ${this.type} from types to stop trying)`, { source: this.type, status: e.status, needs_scope: info.scope, error: message });
    } else {
      this._once.fail(`api:${this.type}`, e.kind, `tailscale_logs: reading ${info.what} failed; the same windows are read again next poll`, { source: this.type, kind: e.kind, error: message });
    }
    return message;
  }
}
