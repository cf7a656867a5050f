/**
 * Two pipelines side by side for the replay tests: one replaying device bodies, one parsing
 * every body (`replay: false`), scraping the same simulated devices with one manual clock, each
 * with its own Prometheus exporter and loopback OTLP receiver.
 */
import type { TestContext } from 'node:test';
import type { TailnetSimulator } from '../../src/simulator/simulator.ts';
import type { PrometheusExporterComponent } from '../../exporters/prometheus/prometheus.ts';
import { buildService, fixtureDevices, type manualClock, memoryLogger } from './index.ts';
import { OtlpReceiver } from './otlp-receiver.ts';

export type ApiDevice = Record<string, unknown>;

/** A tagged, online device record shaped like the fixture's gateway, at `address`. */
export function replayDevice(id: string, address: string, name = `dev-${id}.tail4c8e1a.ts.net`): ApiDevice {
  const base = { ...(fixtureDevices()[0] as ApiDevice) };
  return { ...base, id, nodeId: `n${id}`, name, hostname: `dev-${id}`, addresses: [address], connectedToControl: true, lastSeen: new Date().toISOString() };
}

export interface Side {
  rx: OtlpReceiver;
  /** One cycle of every receiver, then OTLP flushed. */
  cycle: () => Promise<void>;
  page: () => Promise<string>;
}

/** A pipeline (staleness unless `processors` says otherwise) with `device_metrics.replay` set. */
export async function replaySide(t: TestContext, sim: TailnetSimulator, replay: boolean, clock: ReturnType<typeof manualClock>, extra: Record<string, unknown> = {}, processors: Record<string, unknown> = { staleness: {} }): Promise<Side> {
  const rx = new OtlpReceiver();
  await rx.start();
  const service = buildService(
    {
      receivers: {
        tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' },
        device_metrics: { interval: '1h', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s', replay, ...extra },
      },
      processors,
      exporters: { prometheus: {}, otlp: { endpoint: rx.url } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: Object.keys(processors), exporters: ['prometheus', 'otlp'] } } },
    },
    { logger: memoryLogger().logger, clock },
  );
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(2000));
    await rx.stop();
  });
  const otlp = service.exporters.get('otlp') as unknown as { flush(): Promise<void> };
  const prom = service.exporters.get('prometheus') as PrometheusExporterComponent;
  return {
    rx,
    cycle: async () => {
      await service.collectNow();
      await otlp.flush();
    },
    page: async () => (await prom.render()) ?? '',
  };
}

/** The page's device lines, sorted: client families and scrape status, not durations (timing). */
export const deviceLines = (page: string): string[] =>
  page
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?(tailscaled_|tsmetrics_device_scrape_)/.test(l) && !l.includes('scrape_duration_seconds'))
    .sort();

/** The OTLP points of device families as sent, in order: name, kind, attributes, times, value, flags. */
export const sentDevicePoints = (rx: OtlpReceiver): string[] =>
  rx.requests.flatMap((r) =>
    r.metrics
      .filter((m) => m.name.startsWith('tailscaled_'))
      .flatMap((m) => m.points.map((p) => JSON.stringify([m.name, m.kind, m.isMonotonic, p.attributes, String(p.startTimeUnixNano), String(p.timeUnixNano), p.value, p.flags]))),
  );
