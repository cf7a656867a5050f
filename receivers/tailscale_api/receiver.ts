import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import type { ShutdownReporter } from '../../src/util/abort.ts';
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
import { CollectorTask } from './collectors/runner.ts';

/**
 * `tailscale_api`: collectors sharing one authenticated client (token, `Retry-After` state, body
 * limit, requests in flight), each on its own interval and reporting as its own source, delivered
 * together as one batch per tick. `devices` makes one `GET …/devices?fields=all` per interval,
 * publishes the inventory for the device-metrics receiver and the device filter, and emits
 * `tailscale_device_*`; a failed call keeps serving the last good snapshot (marked by
 * `tsmetrics_source_up` = 0). The other collectors run after the inventory of their tick, so
 * joins (Service hosts) see its devices.
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

  const devicesOn = collectorSettings.devices.enabled;
  const base: Attributes = config.tailnet_label ? { tailnet: config.tailnet_label } : {};
  const createdMs = settings.clock.now();
  // On shards other than 0 (emit_metrics false) only the inventory is read: the other
  // collectors' data would be the same on every replica.
  const tasks: CollectorTask[] = [];
  for (const name of COLLECTOR_NAMES) {
    if (name === 'devices' || !collectorSettings[name].enabled || !config.emit_metrics) continue;
    tasks.push(
      new CollectorTask({
        parent: settings,
        name,
        collector: createCollector(name, createdMs),
        config,
        settings: collectorSettings[name],
        client,
        resource,
        base,
        devices: () => settings.inventory.get(id)?.devices ?? [],
      }),
    );
  }
  let runAll = false;

  /**
   * One tick of the receiver (every `interval`): devices (the inventory is published at once),
   * then every collector whose own interval is due. What each collector last produced is
   * delivered with the tick, as one batch from this receiver; a collector still running after a
   * short wait goes with a later tick. `collectNow` runs and waits for all of them.
   */
  const tick = async (signal: AbortSignal): Promise<ScrapeResult> => {
    const r: ScrapeResult | undefined = devicesOn ? await scrapeDevices(signal) : undefined;
    const now = settings.clock.now();
    const due = tasks.filter((t) => runAll || t.due(now, config.interval / 2));
    const running = Promise.all(due.map((t) => (runAll ? t.runNow() : t.run())));
    // The inventory is already published; the batch waits a little for the collectors that are
    // due, so their data goes out with this tick. One that is slow (retrying, a large tailnet)
    // goes with a later tick instead of holding up the devices' series.
    if (runAll || !devicesOn) await running;
    else if (due.length) await settlesWithin(running, Math.min(config.interval / 2, COLLECTOR_WAIT_MS));
    const parts = [r?.batch, ...tasks.map((t) => t.latest)].filter((b): b is ResourceMetrics => b !== undefined);
    const batch = parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : { resource: (parts[0] as ResourceMetrics).resource, scopeMetrics: parts.flatMap((b) => b.scopeMetrics) };
    if (r) return { ...r, batch };
    // Readiness and /health know receivers by id: without devices, the id says whether any
    // collector's latest cycle succeeded (the API is reachable with this credential).
    const ok = tasks.some((t) => t.lastOk === true);
    return { batch, ok, ...(ok ? {} : { error: 'no collector has succeeded yet' }) };
  };

  const loop = createScrapingReceiver(
    settings,
    {
      interval: config.interval,
      scrape: tick,
      onShutdown: async () => {
        const deadline = AbortSignal.timeout(1000);
        const stopped = await Promise.all(tasks.map((t) => t.stop(deadline)));
        if (stopped.includes(false)) collectorsCut = 'a collector cycle did not stop in time and was abandoned';
      },
    },
    next,
  );
  let collectorsCut: string | undefined;
  return {
    start: () => loop.start(),
    async collectNow() {
      runAll = true;
      try {
        await loop.collectNow();
      } finally {
        runAll = false;
      }
    },
    shutdown: (deadline: AbortSignal) => loop.shutdown(deadline),
    shutdownCutOff: () => loop.shutdownCutOff() ?? collectorsCut,
  };
}

/** Longest a tick waits for its collectors before it delivers without the slow ones. */
const COLLECTOR_WAIT_MS = 10_000;

/** Resolves when `p` settles or `ms` pass, whichever comes first. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
