import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
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

/**
 * `tailscale_api`: one `GET …/devices?fields=all` per interval. Publishes the inventory for the
 * device-metrics receiver and the device filter, and emits the `tailscale_device_*` metrics. A
 * failed call keeps serving the last good snapshot (marked by `tsmetrics_source_up` = 0).
 */
export function createTailscaleApiReceiver(settings: Settings, config: TailscaleApiConfig, next: MetricsConsumer): Receiver {
  const id = settings.id.key;
  const client = new TailscaleApiClient({ config, dispatcher: settings.dispatcher, clock: settings.clock, userAgent: USER_AGENT, secrets: settings.secrets, logger: settings.logger });
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

  return createScrapingReceiver(settings, { interval: config.interval, scrape }, next);
}
