import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import { shutdownCutOffOf, type ShutdownReporter } from '../../src/util/abort.ts';
import { errorMessage } from '../../src/errors.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { AttributeInterner } from '../../src/model/intern.ts';
import type { Device } from '../../src/pipeline/inventory.ts';
import { createScrapingReceiver, type ScrapeResult } from '../../src/pipeline/scraper.ts';
import { USER_AGENT, VERSION } from '../../src/version.ts';
import { ApiCallError, TailscaleApiClient } from './client.ts';
import type { TailscaleApiConfig } from './config.ts';
import { ApiDecodeError, decodeDeviceList, type ApiDeviceRecord } from './decode.ts';
import { buildApiBatch, isOnline } from './metrics.ts';
import { COLLECTOR_NAMES, createCollector, resolveCollectors } from './collectors/index.ts';
import { createCollectorReceiver } from './collectors/runner.ts';

/**
 * `tailscale_api`: collectors sharing one authenticated client (token, `Retry-After` state, body
 * limit, requests in flight), each on its own interval and reporting as its own source. `devices`
 * makes one `GET …/devices?fields=all` per interval, publishes the inventory for the
 * device-metrics receiver and the device filter, and emits `tailscale_device_*`; a failed call
 * keeps serving the last good snapshot (marked by `tsmetrics_source_up` = 0). The other
 * collectors start after the first inventory cycle, so joins (Service hosts) have devices.
 */
export function createTailscaleApiReceiver(settings: Settings, config: TailscaleApiConfig, next: MetricsConsumer): Receiver & ShutdownReporter {
  const id = settings.id.key;
  const requests = settings.meter.createCounter('tsmetrics_api_requests', { description: 'Requests sent to the Tailscale API, by receiver and collector (oauth: token requests).' });
  const client = new TailscaleApiClient({
    config,
    dispatcher: settings.dispatcher,
    clock: settings.clock,
    userAgent: USER_AGENT,
    secrets: settings.secrets,
    logger: settings.logger,
    onRequest: (collector) => requests.add(1, { component_id: id, collector }),
  });
  const collectorSettings = resolveCollectors(config.collectors, config.interval).settings;
  let firstInventory: () => void = () => undefined;
  const inventoryDone = new Promise<void>((resolve) => (firstInventory = resolve));
  const once = new OnceLogger(settings.logger);
  const tailnet = config.tailnet_label || config.tailnet;
  const resource: Attributes = { 'service.name': 'tsmetrics', 'service.version': VERSION, 'tailscale.tailnet': tailnet };
  let lastGood: ResourceMetrics | undefined;
  const interner = new AttributeInterner();
  let lastDevices: readonly Device[] = [];
  /** Whether any call ever succeeded, i.e. whether there is a last good inventory to serve. */
  let everGood = false;

  const toDevice = (d: ApiDeviceRecord, nowMs: number): Device => ({
    id: d.id,
    nodeId: d.nodeId ?? '',
    name: d.name ?? d.hostname ?? d.id,
    hostname: d.hostname ?? '',
    addresses: d.addresses ?? [],
    tags: d.tags ?? [],
    online: isOnline(d, nowMs),
    os: d.os ?? '',
    authorized: d.authorized ?? true,
    isExternal: d.isExternal ?? false,
    user: d.user ?? '',
    tailnet: config.tailnet_label,
  });

  const scrapeDevices = async (signal: AbortSignal): Promise<ScrapeResult> => {
    try {
      return await scrape(signal);
    } finally {
      firstInventory();
    }
  };

  const scrape = async (signal: AbortSignal): Promise<ScrapeResult> => {
    const start = settings.clock.now();
    // Retries must end before the next cycle is due.
    const deadline = start + Math.max(1000, config.interval * 0.9);
    try {
      const body = await client.listDevices(signal, deadline);
      const { devices, skipped } = decodeDeviceList(body, config.max_devices);
      if (skipped) {
        settings.telemetry.error(id, 'decode', skipped);
        once.fail('skipped', String(skipped), 'device list had entries without a usable id; they were skipped', { skipped });
      } else once.ok('skipped');
      const now = settings.clock.now();
      lastDevices = devices.map((d) => toDevice(d, now));
      settings.inventory.publish({ source: id, tailnet, devices: lastDevices, fetchedMs: now, fresh: true });
      everGood = true;
      lastGood = !config.emit_metrics ? undefined : buildApiBatch(devices, {
        nowMs: now,
        includeUserEmail: config.include_user_email,
        tailnetLabel: config.tailnet_label,
        maxLabel: config.label_max_length,
        resource,
        scopeVersion: VERSION,
        interner,
      });
      once.ok('api', 'Tailscale API reachable again', { devices: devices.length });
      return { batch: lastGood, ok: true, details: { devices_discovered: devices.length } };
    } catch (err) {
      if (signal.aborted) throw err;
      const e = err instanceof ApiCallError ? err : err instanceof ApiDecodeError ? new ApiCallError(err.kind, err.message) : new ApiCallError('network', errorMessage(err));
      // The message goes to /health and the logs; whatever produced it, no secret travels on.
      const message = settings.secrets.scrub(e.message);
      settings.telemetry.error(id, e.kind);
      const what = everGood ? 'serving the last good inventory' : 'no inventory yet (nothing is served until a call succeeds)';
      once.fail('api', e.kind, `Tailscale API call failed; ${what}`, { kind: e.kind, error: message, devices: lastDevices.length });
      // Keep the last good inventory (marked stale) rather than turning an outage into zero devices.
      const prev = settings.inventory.get(id);
      if (prev) settings.inventory.publish({ ...prev, fresh: false });
      return { batch: lastGood, ok: false, error: message, details: { devices_discovered: lastDevices.length } };
    }
  };

  const parts: Array<Receiver & ShutdownReporter> = [];
  const devicesOn = collectorSettings.devices.enabled;
  if (devicesOn) parts.push(createScrapingReceiver(settings, { interval: config.interval, scrape: scrapeDevices }, next));
  else {
    // Readiness and /health know receivers by id: without devices, the id reports whether any
    // collector's latest cycle succeeded (the API is reachable with this credential).
    settings.telemetry.registerSource(id);
    firstInventory();
  }
  const latest = new Map<string, boolean>();
  const base: Attributes = config.tailnet_label ? { tailnet: config.tailnet_label } : {};
  const createdMs = settings.clock.now();
  // On shards other than 0 (emit_metrics false) only the inventory is read: the other
  // collectors' data would be the same on every replica.
  for (const name of COLLECTOR_NAMES) {
    if (name === 'devices' || !collectorSettings[name].enabled || !config.emit_metrics) continue;
    parts.push(
      createCollectorReceiver(
        {
          parent: settings,
          name,
          collector: createCollector(name, createdMs),
          config,
          settings: collectorSettings[name],
          client,
          resource,
          base,
          devices: () => settings.inventory.get(id)?.devices ?? [],
          beforeFirst: (signal) => untilAborted(inventoryDone, signal),
          ...(devicesOn
            ? {}
            : {
                onCycle: (ok: boolean) => {
                  latest.set(name, ok);
                  const now = settings.clock.now();
                  settings.telemetry.cycle(id, { ok: [...latest.values()].some(Boolean), startMs: now, endMs: now });
                },
              }),
        },
        next,
      ),
    );
  }
  const [first, ...rest] = parts;
  return {
    async start() {
      for (const p of parts) await p.start();
    },
    async collectNow() {
      // The inventory first, so collectors that join with it see this cycle's devices.
      if (devicesOn) await first?.collectNow();
      await Promise.all((devicesOn ? rest : parts).map((p) => p.collectNow()));
    },
    async shutdown(deadline: AbortSignal) {
      await Promise.all(parts.map((p) => p.shutdown(deadline)));
    },
    shutdownCutOff: () => {
      const cut = parts.map((p) => shutdownCutOffOf(p)).filter((c): c is string => c !== undefined);
      return cut.length ? [...new Set(cut)].join('; ') : undefined;
    },
  };
}

/** Resolves with `p`, or when `signal` aborts (the collector then never starts). */
function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
