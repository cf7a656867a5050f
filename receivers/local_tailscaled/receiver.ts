import type { Attributes } from '@opentelemetry/api';
import { Agent } from 'undici';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import { errorMessage } from '../../src/errors.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { BatchBuilder } from '../../src/model/batch.ts';
import { boundLabel } from '../../src/model/labels.ts';
import { createScrapingReceiver } from '../../src/pipeline/scraper.ts';
import { VERSION } from '../../src/version.ts';
import { readBodyLimited } from '../../src/util/body.ts';
import { convertFamilies, StartTimeTracker } from '../device_metrics/convert.ts';
import { DEFAULT_EXPOSITION_LIMITS, parseExposition } from '../device_metrics/exposition.ts';
import { FamilyRegistry } from '../device_metrics/families.ts';
import { globMatcher } from '../../src/util/glob.ts';
import type { LocalTailscaledConfig } from './config.ts';

const ORIGIN = 'http://local-tailscaled.sock';

/**
 * `local_tailscaled`: a node's own client metrics from its LocalAPI
 * (`GET /localapi/v0/usermetrics` over the unix socket), so the exporter's node — or the host's
 * tailscaled — reports itself without opening port 5252. The node is identified from
 * `/localapi/v0/status`; its API `id` comes from the inventory when a `tailscale_api` receiver
 * runs, otherwise its stable node id is used.
 */
export function createLocalTailscaledReceiver(settings: Settings, config: LocalTailscaledConfig, next: MetricsConsumer): Receiver {
  const agent = new Agent({ connect: { socketPath: config.socket_path }, keepAliveTimeout: 60_000 });
  const tracker = new StartTimeTracker();
  // The node's user metrics are tailscaled_*; nothing it sends may shadow the API's or ours.
  const registry = new FamilyRegistry();
  const namespace = globMatcher(['tailscaled_*']);
  const once = new OnceLogger(settings.logger);
  const get = async (path: string, signal: AbortSignal): Promise<string> => {
    const res = await agent.request({ origin: ORIGIN, path, method: 'GET', headersTimeout: config.timeout, bodyTimeout: config.timeout, signal });
    const text = await readBodyLimited(res.body, config.max_body_size);
    if (res.statusCode !== 200) throw new Error(`LocalAPI ${path} answered ${res.statusCode}`);
    return text;
  };

  return createScrapingReceiver(
    settings,
    {
      interval: config.interval,
      scrape: async (signal) => {
        try {
          const status = JSON.parse(await get('/localapi/v0/status', signal)) as { Self?: { ID?: string; DNSName?: string; HostName?: string } };
          const nodeId = status.Self?.ID ?? '';
          const known = settings.inventory.devices().find((d) => d.nodeId === nodeId && nodeId !== '');
          const labels: Attributes = {
            device_id: boundLabel(known?.id ?? nodeId),
            device_name: boundLabel(known?.name ?? (status.Self?.DNSName ?? status.Self?.HostName ?? '').replace(/\.$/, '')),
          };
          const families = parseExposition(await get('/localapi/v0/usermetrics', signal), DEFAULT_EXPOSITION_LIMITS);
          const bb = new BatchBuilder({ 'service.name': 'tsmetrics', 'service.version': VERSION }, { name: 'tsmetrics/local_tailscaled', version: VERSION });
          convertFamilies(families, { out: bb, deviceLabels: labels, timeMs: settings.clock.now(), tracker, familyAllowed: () => true, maxLabel: 128, families: registry, namespace });
          registry.endCycle();
          tracker.commit();
          once.ok('local', 'LocalAPI reachable again');
          return { batch: bb.build(), ok: true };
        } catch (err) {
          if (signal.aborted) throw err;
          tracker.abandon();
          settings.telemetry.error(settings.id.key, 'network');
          once.fail('local', 'network', 'reading the LocalAPI failed', { socket: config.socket_path, error: errorMessage(err) });
          return { batch: undefined, ok: false, error: errorMessage(err) };
        }
      },
      onShutdown: async () => {
        await agent.close().catch(() => undefined);
      },
    },
    next,
  );
}
