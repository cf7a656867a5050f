import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Settings } from '../../../src/component/types.ts';
import { errorMessage } from '../../../src/errors.ts';
import { OnceLogger } from '../../../src/log/logger.ts';
import { BatchBuilder } from '../../../src/model/batch.ts';
import type { Device } from '../../../src/pipeline/inventory.ts';
import { VERSION } from '../../../src/version.ts';
import { ApiCallError, type TailscaleApiClient } from '../client.ts';
import type { TailscaleApiConfig } from '../config.ts';
import { ApiDecodeError } from '../decode.ts';
import { Emitter, type Collector, type CollectorContext } from './common.ts';
import { COLLECTORS, type CollectorName, type CollectorSettings } from './spec.ts';

/**
 * The source id a collector reports under: `<receiver id>:<collector>` (`tailscale_api/prod:users`)
 * in `tsmetrics_source_up{source}`, `tsmetrics_component_errors_total{component_id}`, `/health` and
 * `/debug`. `devices` keeps the receiver's own id, so what existed before collectors is unchanged.
 */
export function collectorSourceId(receiverId: string, name: CollectorName): string {
  return name === 'devices' ? receiverId : `${receiverId}:${name}`;
}

export interface CollectorTaskOptions {
  readonly parent: Settings;
  readonly name: Exclude<CollectorName, 'devices'>;
  readonly collector: Collector;
  readonly config: TailscaleApiConfig;
  readonly settings: CollectorSettings;
  readonly client: TailscaleApiClient;
  readonly resource: Attributes;
  /** Labels every series gets (`tailnet`). */
  readonly base: Attributes;
  readonly devices: () => readonly Device[];
}

/** What to tell an operator whose credential cannot read a collector's endpoint. */
function unavailable(o: CollectorTaskOptions, status: number): { msg: string; fields: Record<string, unknown> } {
  const info = COLLECTORS[o.name];
  const has = info.scopes.map((s) => o.client.hasScope(s));
  const fields: Record<string, unknown> = { collector: o.name, status, needs_scope: info.scopes.join(' ') };
  if (status === 404 && has.every((h) => h === true)) {
    return { msg: `Tailscale API collector ${o.name} is off: this control server does not offer its endpoint (HTTP 404); its metrics are left out`, fields: { ...fields, calls: info.calls } };
  }
  const missing = info.scopes.filter((_, i) => has[i] !== true);
  const write = o.name === 'service_hosts' ? ' (write scopes: Tailscale requires them even to list hosts)' : '';
  const how =
    o.client.credential.type === 'api_key'
      ? `API access tokens act as their user: use a user whose role may read this, or an OAuth client with ${info.scopes.join(' and ')}${write}; or set collectors.${o.name}.enabled: false`
      : `add ${missing.join(' and ')}${write} to the OAuth client or federated identity (admin console → Settings → Trust credentials; all:read covers every read scope), or set collectors.${o.name}.enabled: false`;
  // Tailscale answers 404 instead of 403 for a missing scope on several endpoints.
  return { msg: `Tailscale API collector ${o.name} is off: the credential may not read it (HTTP ${status}, missing scope ${missing.join(' ') || info.scopes.join(' ')}); its metrics are left out until it can`, fields: { ...fields, how } };
}

/**
 * One collector of a `tailscale_api` receiver: runs a cycle when its interval is due (the
 * receiver's loop asks), reports under its own source id, and keeps its latest batch for the
 * receiver to deliver. A cycle that fails for a missing scope or a missing endpoint (403/404)
 * keeps only what it produced before the denial — never the previous values and never zeros —
 * and logs once which scope is missing and how to grant it; any other failure keeps the last
 * good data. Cycles never overlap, and shutdown aborts the one in flight.
 */
export class CollectorTask {
  readonly name: Exclude<CollectorName, 'devices'>;
  readonly sourceId: string;
  /** The batch to deliver: the last good one, or what a denied cycle produced. */
  latest: ResourceMetrics | undefined;
  /** Whether the latest finished cycle succeeded (undefined before the first). */
  lastOk: boolean | undefined;
  private readonly _o: CollectorTaskOptions;
  private readonly _settings: Settings;
  private readonly _once: OnceLogger;
  private readonly _abort = new AbortController();
  private _running: Promise<void> | undefined;
  private _lastStartMs: number | undefined;
  private _lastDropKeys = new Set<string>();

  constructor(o: CollectorTaskOptions) {
    this._o = o;
    this.name = o.name;
    this.sourceId = collectorSourceId(o.parent.id.key, o.name);
    const logger = o.parent.logger.child({ collector: o.name });
    this._settings = { ...o.parent, id: { ...o.parent.id, key: this.sourceId }, logger };
    this._once = new OnceLogger(logger);
    this._settings.telemetry.registerSource(this.sourceId);
  }

  /**
   * Whether a cycle should start at `nowMs`: none is running and its interval has passed, give or
   * take `slackMs` (half the receiver's tick, so a tick a moment early does not skip a whole one).
   */
  due(nowMs: number, slackMs = 0): boolean {
    return !this._running && !this._abort.signal.aborted && (this._lastStartMs === undefined || nowMs - this._lastStartMs >= this._o.settings.interval - slackMs);
  }

  /** Starts a cycle unless one is running; resolves when the running or new cycle ends. */
  run(): Promise<void> {
    if (this._abort.signal.aborted) return Promise.resolve();
    this._running ??= this._cycle().finally(() => {
      this._running = undefined;
    });
    return this._running;
  }

  /** Waits for a cycle in flight, then runs a fresh one (`collectNow`). */
  async runNow(): Promise<void> {
    if (this._running) await this._running;
    await this.run();
  }

  /** Aborts the cycle in flight and resolves when it has ended (or `deadline` fires). */
  async stop(deadline: AbortSignal): Promise<boolean> {
    this._abort.abort();
    const r = this._running;
    if (!r) return true;
    return new Promise((resolve) => {
      const onAbort = (): void => resolve(false);
      if (deadline.aborted) return resolve(false);
      deadline.addEventListener('abort', onAbort, { once: true });
      void r.then(() => {
        deadline.removeEventListener('abort', onAbort);
        resolve(true);
      });
    });
  }

  private async _cycle(): Promise<void> {
    const s = this._settings;
    const startMs = s.clock.now();
    this._lastStartMs = startMs;
    let r: { ok: boolean; error?: string };
    try {
      r = await this._collect(this._abort.signal, startMs);
    } catch (err) {
      if (this._abort.signal.aborted) return;
      // A collector bug costs its own cycle, counted and logged, never the receiver.
      s.telemetry.error(this.sourceId, 'exception');
      s.logger.error('collector cycle failed unexpectedly', { collector: this.name, error: errorMessage(err) });
      r = { ok: false, error: errorMessage(err) };
    }
    if (this._abort.signal.aborted) return;
    const endMs = s.clock.now();
    this.lastOk = r.ok;
    s.telemetry.cycle(this.sourceId, { ok: r.ok, startMs, endMs, ...(r.error ? { error: r.error } : {}) });
  }

  private async _collect(signal: AbortSignal, nowMs: number): Promise<{ ok: boolean; error?: string }> {
    const o = this._o;
    const s = this._settings;
    const deadlineMs = nowMs + Math.max(1000, o.settings.interval * 0.9);
    const bb = new BatchBuilder(o.resource, { name: 'tsmetrics/tailscale_api', version: VERSION });
    const drops = new Map<string, { kind: 'decode' | 'limit' | 'parse'; n: number }>();
    const drop = (kind: 'decode' | 'limit' | 'parse', what: string, n: number): void => {
      const d = drops.get(what) ?? { kind, n: 0 };
      d.n += n;
      drops.set(what, d);
    };
    const tag = { collector: o.name };
    const scopeText = COLLECTORS[o.name].scopes.join('/');
    const ctx: CollectorContext = {
      client: o.client,
      signal,
      deadlineMs,
      nowMs,
      out: new Emitter(bb, o.base, o.config.label_max_length, nowMs, (name) => drop('decode', `${name}: a series repeated (values equal after the label cut, or listed twice)`, 1)),
      limits: { maxItems: o.config.max_items, maxValues: o.config.max_values, maxLabel: o.config.label_max_length },
      includeUserEmail: o.config.include_user_email,
      settings: o.settings,
      devices: o.devices,
      drop,
      logger: s.logger,
      secrets: s.secrets,
      get: (path, g = {}) => o.client.get(path, { signal, deadlineMs, tag: o.name, scope: g.scope ?? scopeText, ...(g.accept !== undefined ? { accept: g.accept } : {}) }),
    };
    const report = (): void => {
      for (const [what, d] of drops) {
        s.telemetry.error(this.sourceId, d.kind, d.n);
        this._once.fail(`drop:${what}`, d.kind, `Tailscale API collector ${o.name}: ${what}`, { ...tag, kind: d.kind, entries: d.n });
      }
      for (const k of this._lastDropKeys) if (!drops.has(k.slice(5))) this._once.ok(k);
      this._lastDropKeys = new Set([...drops.keys()].map((w) => `drop:${w}`));
    };
    try {
      await o.collector.collect(ctx);
      report();
      this.latest = bb.build();
      this._once.ok('collector', `Tailscale API collector ${o.name} working again`, tag);
      return { ok: true };
    } catch (err) {
      if (signal.aborted) throw err;
      report();
      const e = err instanceof ApiCallError ? err : err instanceof ApiDecodeError ? new ApiCallError(err.kind, err.message) : new ApiCallError('network', errorMessage(err));
      const message = s.secrets.scrub(e.message);
      s.telemetry.error(this.sourceId, e.kind);
      if (e.status === 403 || e.status === 404) {
        // The values from before the denial must go: a scope that was removed makes them unknown.
        this.latest = bb.build();
        const u = unavailable(o, e.status);
        this._once.fail('collector', `unavailable:${e.status}`, u.msg, { ...u.fields, error: message });
        return { ok: false, error: message };
      }
      this._once.fail('collector', e.kind, `Tailscale API collector ${o.name} failed; ${this.latest ? 'serving its last good data' : 'nothing to serve until a call succeeds'}`, { ...tag, kind: e.kind, error: message });
      return { ok: false, error: message };
    }
  }
}
