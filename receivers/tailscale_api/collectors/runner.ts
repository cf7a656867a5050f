import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MetricsConsumer, Receiver, Settings } from '../../../src/component/types.ts';
import { errorMessage } from '../../../src/errors.ts';
import { OnceLogger } from '../../../src/log/logger.ts';
import { BatchBuilder } from '../../../src/model/batch.ts';
import type { Device } from '../../../src/pipeline/inventory.ts';
import { createScrapingReceiver, type ScrapeResult } from '../../../src/pipeline/scraper.ts';
import type { ShutdownReporter } from '../../../src/util/abort.ts';
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

export interface CollectorRunnerOptions {
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
  /** Resolves when the first cycle may run (after the inventory's first cycle). */
  readonly beforeFirst?: (signal: AbortSignal) => Promise<void>;
  /** Told the outcome of every cycle. */
  readonly onCycle?: (ok: boolean) => void;
}

/** What to tell an operator whose credential cannot read a collector's endpoint. */
function unavailable(o: CollectorRunnerOptions, status: number): { msg: string; fields: Record<string, unknown> } {
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
 * Runs one collector on its own interval through the shared scraper loop, reporting under its own
 * source id. A cycle that fails for a missing scope or a missing endpoint (403/404) delivers only
 * what it produced before the denial — never the previous values and never zeros — and logs once
 * which scope is missing and how to grant it; any other failure keeps the last good data.
 */
export function createCollectorReceiver(o: CollectorRunnerOptions, next: MetricsConsumer): Receiver & ShutdownReporter {
  const sid = collectorSourceId(o.parent.id.key, o.name);
  const logger = o.parent.logger.child({ collector: o.name });
  const settings: Settings = { ...o.parent, id: { ...o.parent.id, key: sid }, logger };
  const once = new OnceLogger(logger);
  const tag = { collector: o.name };
  const scopeText = COLLECTORS[o.name].scopes.join('/');
  let lastGood: ResourceMetrics | undefined;
  let lastDropKeys = new Set<string>();

  const scrape = async (signal: AbortSignal): Promise<ScrapeResult> => {
    const nowMs = settings.clock.now();
    const deadlineMs = nowMs + Math.max(1000, o.settings.interval * 0.9);
    const bb = new BatchBuilder(o.resource, { name: 'tsmetrics/tailscale_api', version: VERSION });
    const drops = new Map<string, { kind: 'decode' | 'limit' | 'parse'; n: number }>();
    const drop = (kind: 'decode' | 'limit' | 'parse', what: string, n: number): void => {
      const d = drops.get(what) ?? { kind, n: 0 };
      d.n += n;
      drops.set(what, d);
    };
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
      logger,
      secrets: settings.secrets,
      get: (path, g = {}) => o.client.get(path, { signal, deadlineMs, tag: o.name, scope: g.scope ?? scopeText, ...(g.accept !== undefined ? { accept: g.accept } : {}) }),
    };
    const report = (): void => {
      for (const [what, d] of drops) {
        settings.telemetry.error(sid, d.kind, d.n);
        once.fail(`drop:${what}`, d.kind, `Tailscale API collector ${o.name}: ${what}`, { ...tag, kind: d.kind, entries: d.n });
      }
      for (const k of lastDropKeys) if (!drops.has(k.slice(5))) once.ok(k);
      lastDropKeys = new Set([...drops.keys()].map((w) => `drop:${w}`));
    };
    try {
      await o.collector.collect(ctx);
      report();
      lastGood = bb.build();
      once.ok('collector', `Tailscale API collector ${o.name} working again`, tag);
      o.onCycle?.(true);
      return { batch: lastGood, ok: true };
    } catch (err) {
      if (signal.aborted) throw err;
      report();
      const e = err instanceof ApiCallError ? err : err instanceof ApiDecodeError ? new ApiCallError(err.kind, err.message) : new ApiCallError('network', errorMessage(err));
      const message = settings.secrets.scrub(e.message);
      settings.telemetry.error(sid, e.kind);
      o.onCycle?.(false);
      if (e.status === 403 || e.status === 404) {
        // The values from before the denial must go: a scope that was removed makes them unknown.
        lastGood = bb.build();
        const u = unavailable(o, e.status);
        once.fail('collector', `unavailable:${e.status}`, u.msg, { ...u.fields, error: message });
        return { batch: lastGood, ok: false, error: message };
      }
      once.fail('collector', e.kind, `Tailscale API collector ${o.name} failed; ${lastGood ? 'serving its last good data' : 'nothing to serve until a call succeeds'}`, { ...tag, kind: e.kind, error: message });
      return { batch: lastGood, ok: false, error: message };
    }
  };

  return createScrapingReceiver(settings, { interval: o.settings.interval, scrape, ...(o.beforeFirst ? { beforeFirst: o.beforeFirst } : {}) }, next);
}
