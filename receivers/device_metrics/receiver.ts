import type { Attributes } from '@opentelemetry/api';
import { ProxyAgent, type Dispatcher } from 'undici';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import { BatchBuilder } from '../../src/model/batch.ts';
import { boundLabel } from '../../src/model/labels.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import type { Device } from '../../src/pipeline/inventory.ts';
import { createScrapingReceiver, type ScrapeResult } from '../../src/pipeline/scraper.ts';
import type { ErrorKind } from '../../src/telemetry/self.ts';
import { parseCidr, ipInNetworks, type Cidr } from '../../src/util/cidr.ts';
import { hashmod } from '../../src/util/hashmod.ts';
import { globMatcher } from '../../src/util/glob.ts';
import { Limiter } from '../../src/util/limiter.ts';
import { USER_AGENT, VERSION } from '../../src/version.ts';
import type { DeviceMetricsConfig } from './config.ts';
import { convertFamilies, StartTimeTracker } from './convert.ts';
import { ExpositionParseError, parseExposition } from './exposition.ts';
import { ScrapeError, classify, createGuardedAgent, fetchMetrics } from './fetch.ts';

export const SCRAPE_METRICS = {
  up: ['tsmetrics_device_scrape_up', 'Whether the last scrape of the device’s client metrics succeeded (1) or not (0).'],
  duration: ['tsmetrics_device_scrape_duration_seconds', 'Duration of the last scrape of the device.'],
  samples: ['tsmetrics_device_scrape_samples', 'Samples the last successful scrape of the device returned.'],
  errors: ['tsmetrics_device_scrape_errors_total', 'Failed scrapes of the device by kind (timeout, refused, http_status, too_large, parse, not_allowed, network).'],
  backoff: ['tsmetrics_device_scrape_backoff_cycles', 'Cycles the device will still be skipped after repeated failures.'],
} as const;

/** Per-device state that lives across cycles. */
interface DeviceState {
  tracker: StartTimeTracker;
  failures: number;
  skip: number;
  errors: Map<ErrorKind, number>;
  errorsStartMs: number;
  lastSamples: number;
}

/** Picks the address to dial: only ever one inside the allowed networks. */
export function chooseAddress(d: Device, mode: DeviceMetricsConfig['address'], allowed: readonly Cidr[], cache?: Map<string, boolean>): string | undefined {
  if (mode === 'magicdns') return d.name ? d.name.replace(/\.$/, '') : undefined;
  const inside = d.addresses.filter((a) => {
    let ok = cache?.get(a);
    if (ok === undefined) {
      ok = ipInNetworks(a, allowed);
      if (cache && cache.size < 100_000) cache.set(a, ok);
    }
    return ok;
  });
  const v4 = inside.filter((a) => !a.includes(':'));
  const v6 = inside.filter((a) => a.includes(':'));
  return mode === 'ipv6' ? (v6[0] ?? v4[0]) : (v4[0] ?? v6[0]);
}

/**
 * `device_metrics`: scrapes every allowed device's tailscaled client metrics with bounded
 * concurrency, converts them to the OpenTelemetry model and adds per-device scrape telemetry.
 */
export function createDeviceMetricsReceiver(settings: Settings, config: DeviceMetricsConfig, next: MetricsConsumer): Receiver {
  const id = settings.id.key;
  const allowed = config.allowed_cidrs.map((c) => parseCidr(c) as Cidr);
  // Through a proxy (tsnet mode, a sidecar) the connector only reaches the proxy; the address is
  // checked before the request instead (chooseAddress only returns IPs inside allowed_cidrs).
  const agent: Dispatcher = config.proxy_url
    ? new ProxyAgent({ uri: config.proxy_url, proxyTunnel: true, connections: 64, keepAliveTimeout: 120_000 })
    : createGuardedAgent(allowed, config.timeout, 2);
  const limiter = new Limiter(config.max_concurrent);
  const once = new OnceLogger(settings.logger);
  const states = new Map<string, DeviceState>();
  /** Whether an address is inside allowed_cidrs (addresses rarely change; parsing them does). */
  const allowedCache = new Map<string, boolean>();
  const include = config.include_families.length ? globMatcher(config.include_families) : () => true;
  const exclude = config.exclude_families.length ? globMatcher(config.exclude_families) : () => false;
  const familyAllowed = (name: string): boolean => include(name) && !exclude(name);
  const resource: Attributes = { 'service.name': 'tsmetrics', 'service.version': VERSION };

  const wanted = (d: Device): boolean => {
    if (!d.online || d.isExternal || !d.authorized) return false;
    if (config.require_tag && !d.tags.includes(config.scrape_tag)) return false;
    if (config.shard_count > 1 && hashmod(d.id, config.shard_count) !== config.shard_index) return false;
    const sel = settings.deviceSelectors;
    return sel.length === 0 || sel.some((pipe) => pipe.every((s) => s(d)));
  };

  const targets = (): Device[] => {
    const snaps = config.inventory ? [settings.inventory.get(config.inventory)].filter((s) => s !== undefined) : settings.inventory.all();
    const out: Device[] = [];
    const seen = new Set<string>();
    for (const s of snaps) for (const d of s.devices) if (!seen.has(d.id) && wanted(d)) {
      seen.add(d.id);
      out.push(d);
    }
    return out;
  };

  const stateOf = (d: Device): DeviceState => {
    let s = states.get(d.id);
    if (!s) {
      s = { tracker: new StartTimeTracker(), failures: 0, skip: 0, errors: new Map(), errorsStartMs: settings.clock.now(), lastSamples: 0 };
      states.set(d.id, s);
    }
    return s;
  };

  const scrape = async (signal: AbortSignal): Promise<ScrapeResult> => {
    const list = targets();
    const bb = new BatchBuilder(resource, { name: 'tsmetrics/device_metrics', version: VERSION });
    const up = bb.gauge(...SCRAPE_METRICS.up);
    const duration = bb.gauge(...SCRAPE_METRICS.duration);
    const samples = bb.gauge(...SCRAPE_METRICS.samples);
    const errors = bb.counter(...SCRAPE_METRICS.errors);
    const backoff = bb.gauge(...SCRAPE_METRICS.backoff);
    let scraped = 0;
    const live = new Set<string>();

    const fail = (d: Device, s: DeviceState, kind: ErrorKind, message: string): void => {
      s.failures++;
      s.skip = Math.min(config.backoff_max_cycles, 2 ** (s.failures - 1));
      s.errors.set(kind, (s.errors.get(kind) ?? 0) + 1);
      settings.telemetry.error(id, kind);
      once.fail(d.id, kind, 'device scrape failed', { device: d.name, kind, error: message, backoff_cycles: s.skip });
      s.tracker.abandon();
    };

    await Promise.all(
      list.map(async (d) => {
        const s = stateOf(d);
        live.add(d.id);
        const labels: Attributes = { device_id: boundLabel(d.id, config.label_max_length), device_name: boundLabel(d.name, config.label_max_length), ...(d.tailnet ? { tailnet: d.tailnet } : {}) };
        const finish = (ok: boolean, ms: number): void => {
          const now = settings.clock.now();
          up.add(labels, ok ? 1 : 0, now);
          duration.add(labels, ms / 1000, now);
          if (ok) samples.add(labels, s.lastSamples, now);
          for (const [kind, n] of s.errors) errors.add({ ...labels, kind }, n, now, s.errorsStartMs);
          backoff.add(labels, s.skip, now);
        };
        if (s.skip > 0) {
          s.skip--;
          finish(false, 0);
          return;
        }
        const addr = chooseAddress(d, config.address, allowed, allowedCache);
        if (!addr) {
          fail(d, s, 'not_allowed', 'no address inside the allowed networks');
          finish(false, 0);
          return;
        }
        const host = addr.includes(':') ? `[${addr}]` : addr;
        const url = new URL(`http://${host}:${config.port}${config.path}`);
        const began = performance.now();
        try {
          const text = await limiter.schedule(() => fetchMetrics({ dispatcher: agent, url, timeoutMs: config.timeout, maxBytes: config.max_body_size, signal, userAgent: USER_AGENT }));
          let families;
          try {
            families = parseExposition(text);
          } catch (err) {
            throw new ScrapeError('parse', err instanceof ExpositionParseError ? err.message : String(err));
          }
          let count = 0;
          for (const f of families) count += f.samples.length;
          if (count > config.max_samples) throw new ScrapeError('too_large', `${count} samples exceed the limit of ${config.max_samples}`);
          const now = settings.clock.now();
          s.lastSamples = convertFamilies(families, { out: bb, deviceLabels: labels, timeMs: now, tracker: s.tracker, familyAllowed, maxLabel: config.label_max_length });
          s.tracker.commit();
          s.failures = 0;
          s.skip = 0;
          scraped++;
          once.ok(d.id, 'device scrape recovered', { device: d.name });
          finish(true, performance.now() - began);
        } catch (err) {
          if (signal.aborted) return;
          const e = classify(err);
          fail(d, s, e.kind, e.message);
          finish(false, performance.now() - began);
        }
      }),
    );
    // Devices no longer targeted are forgotten: their state must not outlive them.
    for (const k of states.keys()) if (!live.has(k)) states.delete(k);
    once.forgetExcept(live);
    return { batch: bb.build(), ok: true, details: { devices_scraped: scraped, devices_targeted: list.length } };
  };

  /** The first cycle waits (bounded by one interval) for an inventory to scrape. */
  const beforeFirst = (signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      if (settings.inventory.all().length > 0) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, config.interval);
      const unsubscribe = settings.inventory.subscribe(done);
      signal.addEventListener('abort', done, { once: true });
    });

  return createScrapingReceiver(settings, {
    interval: config.interval,
    beforeFirst,
    scrape,
    onShutdown: async () => {
      limiter.stop();
      await agent.destroy().catch(() => undefined);
    },
  }, next);
}
