import type { Attributes } from '@opentelemetry/api';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import { ConfigError, errorMessage } from '../../src/errors.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { BatchBuilder } from '../../src/model/batch.ts';
import { AttributeInterner } from '../../src/model/intern.ts';
import type { Device } from '../../src/pipeline/inventory.ts';
import { createScrapingReceiver, type ScrapeResult } from '../../src/pipeline/scraper.ts';
import type { ErrorKind } from '../../src/telemetry/self.ts';
import { globMatcher } from '../../src/util/glob.ts';
import { USER_AGENT, VERSION } from '../../src/version.ts';
import { convertFamilies, StartTimeTracker, type ConvertReport } from '../device_metrics/convert.ts';
import { DEFAULT_EXPOSITION_LIMITS, ExpositionLimitError, ExpositionParseError, parseExposition, type ExpositionLimits } from '../device_metrics/exposition.ts';
import { FamilyRegistry } from '../device_metrics/families.ts';
import { classify, fetchMetrics } from '../device_metrics/fetch.ts';
import { ApiCallError, HeadscaleClient, readKeyFile, readKeyFileSync } from './client.ts';
import type { HeadscaleConfig } from './config.ts';
import { decodeApiKeys, decodeHealth, decodeNodes, decodePreAuthKeys, decodeUsers, HeadscaleDecodeError, type Decoded, type DecodeLimits, type HeadscaleNode } from './decode.ts';
import { addCollectionUp, addHeadscaleMetrics, nodeName, ownerLogin, reservedNames, type HeadscaleSnapshot } from './metrics.ts';

/** The API collections read each cycle, in the order they are reported. */
const COLLECTIONS = ['nodes', 'users', 'preauth_keys', 'api_keys', 'health'] as const;
type Collection = (typeof COLLECTIONS)[number];

/** The key to start with; a key file is read now, so a missing one fails at start, naming the key. */
function initialKey(config: HeadscaleConfig, id: string): string {
  if (!config.api_key_file) return config.api_key;
  try {
    return readKeyFileSync(config.api_key_file);
  } catch (err) {
    throw new ConfigError([{ source: 'config', path: `receivers.${id}.api_key_file`, message: `cannot read the API key: ${errorMessage(err)}` }]);
  }
}

/**
 * `headscale`: reads a Headscale control server's REST API (`/api/v1`, Bearer API key) once
 * per interval — nodes, users, pre-auth keys, API keys, health — publishes the nodes as the
 * inventory (so `device_metrics` scrapes them under its usual rules and `device_filter` selects
 * them), emits `tailscale_device_*` where the meaning carries over and `headscale_*` for
 * Headscale-only facts, and optionally forwards Headscale's own `/metrics` families through the
 * device scrape's parser and limits. Each collection keeps its last good data when a read fails.
 */
export function createHeadscaleReceiver(settings: Settings, config: HeadscaleConfig, next: MetricsConsumer): Receiver {
  const id = settings.id.key;
  const once = new OnceLogger(settings.logger);
  const tailnet = config.tailnet_label || new URL(config.url).host;
  const resource: Attributes = { 'service.name': 'tsmetrics', 'service.version': VERSION, 'tailscale.tailnet': tailnet };
  let apiKey = initialKey(config, id);
  const remember = (key: string): void => {
    // Registered before first use: no log line, /health or /debug may ever show it.
    settings.secrets.add(key);
    settings.secrets.add(`Bearer ${key}`);
  };
  if (apiKey) remember(apiKey);
  const client = new HeadscaleClient({ config, dispatcher: settings.dispatcher, clock: settings.clock, userAgent: USER_AGENT, apiKey: () => apiKey, secrets: settings.secrets, logger: settings.logger });
  const limits: DecodeLimits = { maxEntries: config.max_entries, maxItems: config.max_node_items };
  const nodeLimits: DecodeLimits = { maxEntries: config.max_nodes, maxItems: config.max_node_items };
  const interner = new AttributeInterner();
  const last: { -readonly [K in keyof HeadscaleSnapshot]: HeadscaleSnapshot[K] } = {};
  let lastDevices: readonly Device[] = [];

  const url = new URL(config.url);
  if (url.protocol === 'http:' && !/^(localhost|127\.|\[::1\])/.test(url.host)) {
    settings.logger.warn('the Headscale API key will travel unencrypted (url is http:// and not loopback); use https://', { url: url.origin });
  }

  // Headscale's own /metrics: the device scrape's parser, limits and converter, in a namespace
  // that can never hold tailscale*, tsmetrics_* or this receiver's own names.
  const reserved = reservedNames();
  const inNamespace = globMatcher(config.metrics_namespace);
  const namespace = (name: string): boolean => inNamespace(name) && !reserved.has(name);
  const families = new FamilyRegistry();
  const tracker = new StartTimeTracker();
  const expoLimits: ExpositionLimits = { ...DEFAULT_EXPOSITION_LIMITS, maxSamples: config.metrics_max_samples };
  const metricsUrl = config.metrics_url ? new URL(config.metrics_url) : undefined;

  const toDevice = (n: HeadscaleNode): Device => ({
    id: n.id,
    // LocalAPI's PeerStatus.ID of a Headscale node is its decimal node id: the join key.
    nodeId: n.id,
    name: nodeName(n, config.base_domain),
    hostname: n.hostname,
    addresses: n.addresses,
    tags: n.tags,
    online: n.online === true,
    os: '',
    // Headscale has no device approval: every node it lists may use the tailnet.
    authorized: true,
    isExternal: false,
    user: ownerLogin(n.user),
    tailnet: config.tailnet_label,
  });

  const refreshKey = async (): Promise<void> => {
    if (!config.api_key_file) return;
    try {
      const key = await readKeyFile(config.api_key_file);
      if (key !== apiKey) remember(key);
      apiKey = key;
      once.ok('key_file', 'API key file readable again');
    } catch (err) {
      once.fail('key_file', 'unreadable', apiKey ? 'API key file cannot be read; using the key read before' : 'API key file cannot be read', { file: config.api_key_file, error: settings.secrets.scrub(errorMessage(err)) });
    }
  };

  /** Counts what a decoder left out (no usable id, duplicate, lists cut by max_node_items). */
  const noteDropped = (c: Collection, d: Decoded<unknown>): void => {
    const n = d.skipped + d.truncated;
    if (n) {
      settings.telemetry.error(id, 'decode', n);
      once.fail(`dropped:${c}`, 'decode', 'Headscale entries were left out (no usable id, a repeated id, or more items than max_node_items)', { collection: c, skipped: d.skipped, truncated: d.truncated });
    } else once.ok(`dropped:${c}`);
  };

  const read = async <T>(path: string, signal: AbortSignal, deadline: number, decode: (text: string) => T, retry = true): Promise<T> => decode(await client.get(path, signal, deadline, { retry }));

  const readHealth = async (signal: AbortSignal, deadline: number): Promise<boolean> => {
    try {
      return await read('/api/v1/health', signal, deadline, decodeHealth, false);
    } catch (err) {
      // Headscale answers its health check with a 5xx when the database ping fails: that is the
      // measurement, not a failed read.
      if (err instanceof ApiCallError && err.kind === 'http_5xx') return false;
      throw err;
    }
  };

  const scrapeMetricsPage = async (bb: BatchBuilder, signal: AbortSignal): Promise<boolean> => {
    if (!metricsUrl) return true;
    try {
      const text = await fetchMetrics({ dispatcher: settings.dispatcher, url: metricsUrl, timeoutMs: config.timeout, maxBytes: config.metrics_max_body_size, signal, userAgent: USER_AGENT });
      let parsed;
      try {
        parsed = parseExposition(text, expoLimits);
      } catch (err) {
        const kind: ErrorKind = err instanceof ExpositionLimitError ? (err.limit === 'samples' ? 'too_large' : 'limit') : 'parse';
        throw Object.assign(new Error(err instanceof ExpositionParseError ? err.message : String(err)), { kind });
      }
      const report: ConvertReport = { typeConflicts: 0, outsideNamespace: 0, registryFull: 0 };
      const labels: Attributes = config.tailnet_label ? { tailnet: config.tailnet_label } : {};
      convertFamilies(parsed, { out: bb, deviceLabels: labels, timeMs: settings.clock.now(), tracker, familyAllowed: () => true, maxLabel: config.label_max_length, families, namespace, report });
      tracker.commit();
      families.endCycle();
      // Families outside the namespace are left out by configuration (promhttp_* by default), not
      // by fault: they are counted as dropped, not as errors.
      settings.telemetry.dropped(id, report.outsideNamespace);
      const dropped: Array<[ErrorKind, number]> = [['type_conflict', report.typeConflicts], ['limit', report.registryFull]];
      for (const [kind, n] of dropped) {
        if (n === 0) {
          once.ok(`metrics:${kind}`);
          continue;
        }
        settings.telemetry.error(id, kind);
        once.fail(`metrics:${kind}`, kind, 'Headscale /metrics samples left out', { kind, samples: n });
      }
      once.ok('metrics', 'Headscale /metrics readable again');
      return true;
    } catch (err) {
      if (signal.aborted) throw err;
      tracker.abandon();
      const kind: ErrorKind = (err as { kind?: ErrorKind }).kind ?? classify(err).kind;
      settings.telemetry.error(id, kind);
      once.fail('metrics', kind, 'Headscale /metrics could not be read; its families are left out until it answers', { kind, error: settings.secrets.scrub(errorMessage(err)) });
      return false;
    }
  };

  const scrape = async (signal: AbortSignal): Promise<ScrapeResult> => {
    const start = settings.clock.now();
    // Retries must end before the next cycle is due.
    const deadline = start + Math.max(1000, config.interval * 0.9);
    await refreshKey();
    const up = new Map<string, boolean>();
    const failures: string[] = [];
    const attempt = async <T>(c: Collection, work: () => Promise<T>, keep: (v: T) => void): Promise<void> => {
      try {
        keep(await work());
        up.set(c, true);
        once.ok(`api:${c}`, 'Headscale collection readable again', { collection: c });
      } catch (err) {
        if (signal.aborted) throw err;
        const e = err instanceof ApiCallError ? err : err instanceof HeadscaleDecodeError ? new ApiCallError(err.kind, err.message) : new ApiCallError('network', errorMessage(err));
        const message = settings.secrets.scrub(e.message);
        settings.telemetry.error(id, e.kind);
        up.set(c, false);
        failures.push(`${c}: ${message}`);
        const had = last[snapshotKey(c)] !== undefined;
        once.fail(`api:${c}`, e.kind, `Headscale ${c} could not be read; ${had ? 'serving the last good data' : 'nothing to serve for it yet'}`, { collection: c, kind: e.kind, error: message });
      }
    };
    const work: Array<Promise<void>> = [
      attempt('nodes', () => read('/api/v1/node', signal, deadline, (t) => decodeNodes(t, nodeLimits)), (d) => {
        noteDropped('nodes', d);
        last.nodes = d.items;
        const now = settings.clock.now();
        lastDevices = d.items.map(toDevice);
        settings.inventory.publish({ source: id, tailnet, devices: lastDevices, fetchedMs: now, fresh: true });
      }),
    ];
    // Shards other than 0 only need the inventory.
    if (config.emit_metrics) {
      work.push(
        attempt('users', () => read('/api/v1/user', signal, deadline, (t) => decodeUsers(t, limits)), (d) => {
          noteDropped('users', d);
          last.users = d.items;
        }),
        attempt('preauth_keys', () => read('/api/v1/preauthkey', signal, deadline, (t) => decodePreAuthKeys(t, limits)), (d) => {
          noteDropped('preauth_keys', d);
          last.preAuthKeys = d.items;
        }),
        attempt('api_keys', () => read('/api/v1/apikey', signal, deadline, (t) => decodeApiKeys(t, limits)), (d) => {
          noteDropped('api_keys', d);
          last.apiKeys = d.items;
        }),
        attempt('health', () => readHealth(signal, deadline), (h) => {
          last.health = h;
        }),
      );
    }
    const bb = new BatchBuilder(resource, { name: 'tsmetrics/headscale', version: VERSION });
    const metricsPage = config.emit_metrics ? scrapeMetricsPage(bb, signal) : Promise.resolve(true);
    await Promise.all(work);
    const pageOk = await metricsPage;
    if (metricsUrl && config.emit_metrics) up.set('metrics', pageOk);

    if (!up.get('nodes')) {
      // Keep the last good inventory (marked stale) rather than turning an outage into zero devices.
      const prev = settings.inventory.get(id);
      if (prev) settings.inventory.publish({ ...prev, fresh: false });
    }
    const now = settings.clock.now();
    let batch;
    if (config.emit_metrics) {
      addHeadscaleMetrics(bb, last, { nowMs: now, includeUserEmail: config.include_user_email, tailnetLabel: config.tailnet_label, maxLabel: config.label_max_length, baseDomain: config.base_domain, interner });
      interner.commit();
      addCollectionUp(bb, new Map([...COLLECTIONS.filter((c) => up.has(c)).map((c) => [c, up.get(c) as boolean] as const), ...(up.has('metrics') ? [['metrics', up.get('metrics') as boolean] as const] : [])]), { nowMs: now, tailnetLabel: config.tailnet_label, maxLabel: config.label_max_length });
      batch = bb.build();
    }
    const ok = failures.length === 0;
    return { batch, ok, ...(ok ? {} : { error: failures.join('; ') }), details: { devices_discovered: lastDevices.length } };
  };

  return createScrapingReceiver(settings, { interval: config.interval, scrape }, next);
}

function snapshotKey(c: Collection): keyof HeadscaleSnapshot {
  return c === 'preauth_keys' ? 'preAuthKeys' : c === 'api_keys' ? 'apiKeys' : c;
}
