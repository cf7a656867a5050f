import type { Attributes } from '@opentelemetry/api';
import type { MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { Agent } from 'undici';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import { errorMessage } from '../../src/errors.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { BatchBuilder } from '../../src/model/batch.ts';
import { AttributeInterner } from '../../src/model/intern.ts';
import type { Device } from '../../src/pipeline/inventory.ts';
import { createScrapingReceiver, type ScrapeResult } from '../../src/pipeline/scraper.ts';
import type { ErrorKind } from '../../src/telemetry/self.ts';
import { globMatcher } from '../../src/util/glob.ts';
import { USER_AGENT, VERSION } from '../../src/version.ts';
import { convertFamilies, StartTimeTracker, type ConvertReport } from '../device_metrics/convert.ts';
import { DEFAULT_EXPOSITION_LIMITS, ExpositionLimitError, ExpositionParseError, parseExposition, type ExpositionFamily } from '../device_metrics/exposition.ts';
import { FamilyRegistry } from '../device_metrics/families.ts';
import { ScrapeError, classify, fetchMetrics } from '../device_metrics/fetch.ts';
import { MAX_CLIENT_METRIC_SAMPLES, selectClientMetrics } from './clientmetrics.ts';
import type { LocalTailscaledConfig } from './config.ts';
import { buildStatusMetrics, displayName, label, type Identity } from './metrics.ts';
import { decodeStatus, StatusDecodeError, type LocalStatus, type PeerRecord } from './status.ts';

/** tailscaled refuses any other Host header on its socket (403 "invalid localapi request"). */
const ORIGIN = 'http://local-tailscaled.sock';

/** One optional part of a cycle (usermetrics, clientmetrics) and its last good metrics. */
interface Part {
  readonly name: string;
  readonly tracker: StartTimeTracker;
  /** The node labels the last good metrics were built with, and the metrics. */
  last: { signature: string; metrics: MetricData[] } | undefined;
}

function failureKind(err: unknown): ErrorKind {
  if (err instanceof StatusDecodeError) return err.kind;
  if (err instanceof ScrapeError) return err.kind;
  if (err instanceof ExpositionLimitError) return err.limit === 'samples' ? 'too_large' : 'limit';
  if (err instanceof ExpositionParseError) return 'parse';
  return classify(err).kind;
}

const metricsOf = (bb: BatchBuilder): MetricData[] => bb.build().scopeMetrics[0]?.metrics ?? [];

/**
 * `local_tailscaled`: one tailscaled seen from inside, over its LocalAPI socket. Every cycle reads
 * `/localapi/v0/status` (the node's state and every peer it knows: path, handshake, bytes, key
 * expiry), and optionally the node's own client metrics (`/localapi/v0/usermetrics`) and an
 * allow-listed part of its internal clientmetrics (`/localapi/v0/metrics`).
 *
 * Identity: the node and its peers are named as the `tailscale_api` receiver names devices (API
 * `id` and `name`, joined on the stable node id) when an inventory knows them, else by stable
 * node id and MagicDNS name. A failed status read keeps serving the last good snapshot
 * (`tsmetrics_source_up` 0), as `tailscale_api` does; a failed optional part keeps its own last
 * good metrics beside fresh status data.
 */
export function createLocalTailscaledReceiver(settings: Settings, config: LocalTailscaledConfig, next: MetricsConsumer): Receiver {
  const id = settings.id.key;
  const agent = new Agent({ connect: { socketPath: config.socket_path }, keepAliveTimeout: 60_000, connections: 2 });
  const once = new OnceLogger(settings.logger);
  const peerTracker = new StartTimeTracker();
  const interner = new AttributeInterner();
  // What the node's tailscaled says about itself lives in the device namespace; nothing it sends
  // may shadow the API's series or ours.
  const registry = new FamilyRegistry();
  const namespace = globMatcher(['tailscaled_*']);
  const resource: Attributes = { 'service.name': 'tsmetrics', 'service.version': VERSION };
  const scope = { name: 'tsmetrics/local_tailscaled', version: VERSION };
  const user: Part = { name: 'usermetrics', tracker: new StartTimeTracker(), last: undefined };
  const client: Part = { name: 'clientmetrics', tracker: new StartTimeTracker(), last: undefined };
  let lastGood: ResourceMetrics | undefined;
  const L = (v: string): string => label(v, config.label_max_length);

  const get = (path: string, maxBytes: number, signal: AbortSignal): Promise<string> =>
    fetchMetrics({ dispatcher: agent, url: new URL(path, ORIGIN), timeoutMs: config.timeout, maxBytes, signal, userAgent: USER_AGENT });

  /** Reads and converts one optional exposition part; on failure keeps its last good metrics. */
  const readPart = async (
    part: Part,
    path: string,
    pick: (f: ExpositionFamily[]) => ExpositionFamily[],
    ctx: { deviceLabels: Attributes; signature: string; timeMs: number; signal: AbortSignal; failures: string[] },
  ): Promise<MetricData[]> => {
    try {
      const text = await get(path, config.max_body_size, ctx.signal);
      const families = pick(parseExposition(text, { ...DEFAULT_EXPOSITION_LIMITS, maxSamples: part === client ? MAX_CLIENT_METRIC_SAMPLES : DEFAULT_EXPOSITION_LIMITS.maxSamples }));
      const bb = new BatchBuilder(resource, scope);
      const report: ConvertReport = { typeConflicts: 0, outsideNamespace: 0, registryFull: 0 };
      convertFamilies(families, { out: bb, deviceLabels: ctx.deviceLabels, timeMs: ctx.timeMs, tracker: part.tracker, familyAllowed: () => true, maxLabel: config.label_max_length, families: registry, namespace, report });
      part.tracker.commit();
      if (report.outsideNamespace) settings.telemetry.error(id, 'namespace');
      if (report.typeConflicts) settings.telemetry.error(id, 'type_conflict');
      if (report.registryFull) settings.telemetry.error(id, 'limit');
      const metrics = metricsOf(bb);
      part.last = { signature: ctx.signature, metrics };
      once.ok(part.name, `LocalAPI ${path} readable again`);
      return metrics;
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      part.tracker.abandon();
      const kind = failureKind(err);
      settings.telemetry.error(id, kind);
      const hint = part === client && kind === 'http_status' ? ' (clientmetrics need LocalAPI write access: root or the --operator user)' : '';
      once.fail(part.name, kind, `reading the LocalAPI ${path} failed${hint}; serving its last good data`, { socket: config.socket_path, kind, error: errorMessage(err) });
      ctx.failures.push(`${path}: ${errorMessage(err)}`);
      // Last good data, but never under another node's labels.
      return part.last?.signature === ctx.signature ? part.last.metrics : [];
    }
  };

  const scrape = async (signal: AbortSignal): Promise<ScrapeResult> => {
    let status: LocalStatus;
    try {
      status = decodeStatus(await get('/localapi/v0/status', config.max_status_size, signal));
    } catch (err) {
      if (signal.aborted) throw err;
      peerTracker.abandon();
      const kind = failureKind(err);
      settings.telemetry.error(id, kind);
      const what = lastGood ? 'serving the last good data' : 'nothing to serve yet';
      once.fail('status', kind, `reading the LocalAPI status failed; ${what}`, { socket: config.socket_path, kind, error: errorMessage(err) });
      return { batch: lastGood, ok: false, error: `/localapi/v0/status: ${errorMessage(err)}` };
    }
    once.ok('status', 'LocalAPI reachable again');
    const timeMs = settings.clock.now();

    // One map per cycle: the inventory can hold tens of thousands of devices.
    const byNodeId = new Map<string, Device>();
    for (const d of settings.inventory.devices()) if (d.nodeId) byNodeId.set(d.nodeId, d);
    const identify = (p: PeerRecord): Identity => {
      const d = byNodeId.get(p.id);
      return d ? { id: d.id, name: d.name } : { id: p.id, name: displayName(p) };
    };
    const me = status.self ? identify(status.self) : { id: '', name: '' };
    const observer: Attributes = { observer_id: L(me.id), observer_name: L(me.name) };
    const deviceLabels: Attributes = { device_id: observer.observer_id, device_name: observer.observer_name };
    const signature = JSON.stringify(observer);

    const bb = new BatchBuilder(resource, scope);
    peerTracker.device(signature);
    const report = buildStatusMetrics(status, { out: bb, timeMs, observer, maxPeers: config.max_peers, maxLabel: config.label_max_length, identify, tracker: peerTracker, interner });
    peerTracker.commit();
    interner.commit();
    if (report.overLimit > 0) {
      settings.telemetry.error(id, 'limit');
      once.fail('max_peers', 'limit', 'the node has more peers than max_peers; the rest are only counted in the aggregates', { peers: status.peers.length, max_peers: config.max_peers });
    } else once.ok('max_peers');
    if (report.malformed > 0) {
      settings.telemetry.error(id, 'decode');
      once.fail('malformed', 'decode', 'some peer entries of the LocalAPI status could not be used; they were skipped', { malformed: report.malformed });
    } else once.ok('malformed');

    const failures: string[] = [];
    const ctx = { deviceLabels, signature, timeMs, signal, failures };
    const built = bb.build();
    const metrics = built.scopeMetrics[0]?.metrics ?? [];
    if (config.usermetrics) metrics.push(...(await readPart(user, '/localapi/v0/usermetrics', (f) => f, ctx)));
    if (config.client_metrics.length) {
      metrics.push(
        ...(await readPart(client, '/localapi/v0/metrics', (f) => {
          const sel = selectClientMetrics(f, config.client_metrics);
          if (sel.refused) settings.telemetry.error(id, 'type_conflict');
          return sel.families;
        }, ctx)),
      );
    }
    registry.endCycle();
    lastGood = { resource: built.resource, scopeMetrics: [{ scope, metrics }] };
    return { batch: lastGood, ok: failures.length === 0, ...(failures.length ? { error: failures.join('; ') } : {}) };
  };

  return createScrapingReceiver(
    settings,
    {
      interval: config.interval,
      scrape,
      onShutdown: async () => {
        await agent.destroy().catch(() => undefined);
      },
    },
    next,
  );
}
