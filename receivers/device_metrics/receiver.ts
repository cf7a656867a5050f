import type { Attributes } from '@opentelemetry/api';
import { ProxyAgent, type Dispatcher } from 'undici';
import type { MetricsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import { BatchBuilder } from '../../src/model/batch.ts';
import { boundLabel } from '../../src/model/labels.ts';
import { BoundedCache } from '../../src/model/names.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { errorMessage } from '../../src/errors.ts';
import type { Device, InventorySnapshot } from '../../src/pipeline/inventory.ts';
import { createScrapingReceiver, type ScrapeResult } from '../../src/pipeline/scraper.ts';
import type { ErrorKind } from '../../src/telemetry/self.ts';
import { setMaxListeners } from 'node:events';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseCidr, parseIp, ipInNetworks, type Cidr } from '../../src/util/cidr.ts';
import { hashmod } from '../../src/util/hashmod.ts';
import { globMatcher } from '../../src/util/glob.ts';
import { USER_AGENT, VERSION } from '../../src/version.ts';
import type { DeviceMetricsConfig } from './config.ts';
import { convertFamilies, StartTimeTracker, type ConvertContext, type ConvertReport } from './convert.ts';
import { ReplayTemplate } from './replay.ts';
import { ExpositionLimitError, ExpositionParseError, parseExposition, type ExpositionLimits } from './exposition.ts';
import { FamilyRegistry } from './families.ts';
import { discoveryRoute, type DiscoveredTarget } from './sd.ts';
import { ScrapeError, classify, createGuardedAgent, decodeBody, fetchMetricsBody } from './fetch.ts';

export const SCRAPE_METRICS = {
  up: ['tsmetrics_device_scrape_up', 'Whether the last scrape of the device’s client metrics succeeded (1) or not (0).'],
  duration: ['tsmetrics_device_scrape_duration_seconds', 'Duration of the last scrape of the device.'],
  samples: ['tsmetrics_device_scrape_samples', 'Samples the last successful scrape of the device returned.'],
  errors: ['tsmetrics_device_scrape_errors_total', 'Failed scrapes of the device by kind (timeout, refused, http_status, too_large, parse, not_allowed, network).'],
  backoff: ['tsmetrics_device_scrape_backoff_cycles', 'Cycles the device will still be skipped after repeated failures.'],
} as const;

/** Longest comma-joined list label (tags, addresses) in the discovery document, characters. */
const SD_LIST_MAX_LENGTH = 1024;

/** Per-device state that lives across cycles. */
interface DeviceState {
  tracker: StartTimeTracker;
  /** The last scrape's body cut at its values, while the next one may repeat it (replay.ts). */
  template?: ReplayTemplate | undefined;
  failures: number;
  skip: number;
  errors: Map<ErrorKind, number>;
  errorsStartMs: number;
  lastSamples: number;
  /**
   * The device's own labels, kept while its id, name and tailnet stay the same: downstream
   * state (staleness) is keyed by attributes objects, and a new object every cycle for the
   * same series would make each scrape metric look ended and re-added.
   */
  labels?: Attributes;
  /** Its `tsmetrics_device_scrape_errors_total` labels per error kind (same reason). */
  errorLabels?: Map<ErrorKind, Attributes>;
  /**
   * The address and URL chosen for the record's addresses and name, kept while they stay the
   * same: choosing them parses every address and builds a URL (a tenth of what a replayed
   * scrape allocated).
   */
  dial?: { addresses: readonly unknown[]; name: unknown; target: DialTarget };
}

type DialTarget = { addr: string; url: URL } | { reason: string };

/** Whether `a` holds exactly the elements of `b` (both read as untrusted arrays). */
function sameElements(a: readonly unknown[], b: unknown): boolean {
  if (!Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A plain DNS hostname (MagicDNS mode): letters, digits and hyphens in dot-separated labels. */
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A plain IPv4 or IPv6 address as `node:net` reads it: no zone, no brackets, no port. */
function isPlainIp(a: string): boolean {
  return isIP(a) !== 0 && !a.includes('%');
}

/**
 * Picks the address to dial: only ever a plain IP inside the allowed networks, or (MagicDNS
 * mode) a plain hostname, which the dialer resolves and checks. Anything else in the API record
 * — a zone id, brackets, a port or path, userinfo — is never turned into a URL.
 */
export function chooseAddress(d: Device, mode: DeviceMetricsConfig['address'], allowed: readonly Cidr[], cache?: { get(k: string): boolean | undefined; set(k: string, v: boolean): void }): string | undefined {
  if (mode === 'magicdns') {
    const name = typeof d.name === 'string' ? d.name.replace(/\.$/, '') : '';
    return HOSTNAME.test(name) ? name.toLowerCase() : undefined;
  }
  const inside = d.addresses.filter((a) => {
    if (typeof a !== 'string' || a.length > 45) return false;
    let ok = cache?.get(a);
    if (ok === undefined) {
      ok = isPlainIp(a) && ipInNetworks(a, allowed);
      cache?.set(a, ok);
    }
    return ok;
  });
  const v4 = inside.filter((a) => !a.includes(':'));
  const v6 = inside.filter((a) => a.includes(':'));
  return mode === 'ipv6' ? (v6[0] ?? v4[0]) : (v4[0] ?? v6[0]);
}

/**
 * The URL for a chosen address, built so that its host is exactly the address that was checked
 * (compared after the URL parser's own normalisation); undefined when it is not.
 */
export function deviceUrl(address: string, port: number, path: string): URL | undefined {
  const ip = isPlainIp(address);
  const host = ip && address.includes(':') ? `[${address}]` : address;
  if (!URL.canParse(`http://${host}:${port}/`)) return undefined;
  const url = new URL(`http://${host}:${port}/`);
  url.pathname = path;
  if (url.username || url.password || url.port !== String(port)) return undefined;
  if (ip) {
    const want = parseIp(address);
    const got = parseIp(url.hostname);
    if (!want || !got || want.family !== got.family || want.value !== got.value) return undefined;
  } else if (url.hostname !== address) return undefined;
  return url;
}

/** This host's interface addresses (for "never dial ourselves"), refreshed once a minute. */
let localAddrs: { at: number; set: Set<string> } | undefined;
function localAddresses(): ReadonlySet<string> {
  const now = Date.now();
  if (!localAddrs || now - localAddrs.at > 60_000) {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(i.address);
    localAddrs = { at: now, set };
  }
  return localAddrs.set;
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
  // One connection per device: a device gets one request per cycle, and with one connection
  // undici keeps a plain Client per origin instead of a Pool, whose fixed 2,048-slot queue cost
  // 16 KB per device (160 MB of heap for a 10,000-device tailnet, measured with a heap snapshot).
  const agent: Dispatcher = config.proxy_url
    ? new ProxyAgent({ uri: config.proxy_url, proxyTunnel: true, connections: 64, keepAliveTimeout: 120_000 })
    : createGuardedAgent(allowed, config.timeout, 1, (address, port) => settings.selfEndpoints.isSelf(address, port, localAddresses));
  const once = new OnceLogger(settings.logger);
  const dropOnce = new OnceLogger(settings.logger);
  const states = new Map<string, DeviceState>();
  /** Whether an address is inside allowed_cidrs (addresses rarely change; parsing them does). */
  const allowedCache = new BoundedCache<boolean>({ maxChars: 4 * 1024 * 1024, maxEntries: 100_000, sizeOf: () => 1 });
  const include = config.include_families.length ? globMatcher(config.include_families) : () => true;
  const exclude = config.exclude_families.length ? globMatcher(config.exclude_families) : () => false;
  // Both are asked once per family per device per cycle, with names every device repeats: the
  // verdicts are remembered (bounded: devices choose the names).
  const verdicts = (test: (name: string) => boolean): ((name: string) => boolean) => {
    const known = new BoundedCache<boolean>({ maxChars: 1024 * 1024, maxEntries: 20_000, sizeOf: () => 1 });
    return (name) => known.getOrSet(name, test);
  };
  const familyAllowed = verdicts((name) => include(name) && !exclude(name));
  // `tailscaled_clientmetric_*` is what local_tailscaled names a node's own clientmetrics; a
  // device may not write into it (each receiver keeps its own type registry).
  const inNamespace = globMatcher(config.family_namespace);
  const namespace = verdicts((name) => inNamespace(name) && !name.startsWith('tailscaled_clientmetric_'));
  const families = new FamilyRegistry();
  const limits: ExpositionLimits = {
    maxSamples: config.max_samples,
    maxNameLength: config.max_name_length,
    maxLabelNameLength: config.max_label_name_length,
    maxLabels: config.max_labels,
    maxHelpLength: config.max_help_length,
  };
  const isSelf = (address: string, port: number): boolean => settings.selfEndpoints.isSelf(address, port, localAddresses);
  const resource: Attributes = { 'service.name': 'tsmetrics', 'service.version': VERSION };

  const wanted = (d: Device): boolean => {
    // A record with a field of the wrong shape fails this device's selection only.
    try {
      if (!d.online || d.isExternal || !d.authorized) return false;
      if (config.require_tag && !d.tags.includes(config.scrape_tag)) return false;
      if (config.shard_count > 1 && hashmod(d.id, config.shard_count) !== config.shard_index) return false;
      const sel = settings.deviceSelectors;
      return sel.length === 0 || sel.some((pipe) => pipe.every((s) => s(d)));
    } catch {
      return false;
    }
  };

  const snapshots = (): InventorySnapshot[] => (config.inventory ? [settings.inventory.get(config.inventory)].filter((s) => s !== undefined) : settings.inventory.all());

  /** The devices a cycle targets, each with the snapshot that listed it first. */
  const selected = (): Array<{ device: Device; snapshot: InventorySnapshot }> => {
    const out: Array<{ device: Device; snapshot: InventorySnapshot }> = [];
    const seen = new Set<string>();
    for (const s of snapshots()) for (const d of s.devices) if (!seen.has(d.id) && wanted(d)) {
      seen.add(d.id);
      out.push({ device: d, snapshot: s });
    }
    return out;
  };
  const targets = (): Device[] => selected().map((t) => t.device);

  /** Where a targeted device is dialed, or why it cannot be (the scrape and discovery both ask). */
  const dialTarget = (d: Device, s?: DeviceState): DialTarget => {
    let target: DialTarget;
    const kept = s?.dial;
    // The choice depends on the record's addresses and name only (the rest is configuration).
    if (kept && kept.name === d.name && sameElements(kept.addresses, d.addresses)) target = kept.target;
    else {
      const addr = chooseAddress(d, config.address, allowed, allowedCache);
      const url = addr === undefined ? undefined : deviceUrl(addr, config.port, config.path);
      target = addr && url ? { addr, url } : { reason: addr ? 'the device address cannot be dialed as given' : config.address === 'magicdns' ? 'the device name is not a plain DNS hostname' : 'no plain IP address inside the allowed networks' };
      if (s) s.dial = { addresses: Array.isArray(d.addresses) ? [...(d.addresses as unknown[])] : [], name: d.name, target };
    }
    // Our own listen addresses can change (a reload), so this is asked every time.
    if ('addr' in target && config.address !== 'magicdns' && isSelf(target.addr, config.port)) return { reason: 'the device address is this exporter’s own listen address' };
    return target;
  };

  /** What a scrape would dial now: the targeted devices that have an address it may dial. */
  const discovered = (): DiscoveredTarget[] => {
    const out: DiscoveredTarget[] = [];
    for (const { device, snapshot } of selected()) {
      try {
        const dial = dialTarget(device);
        if ('url' in dial) out.push({ device, tailnet: device.tailnet || snapshot.tailnet, address: `${dial.url.hostname}:${config.port}` });
      } catch {
        // A malformed record fails its own selection, as in the scrape.
      }
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

    // One abort listener per scrape in flight (up to max_concurrent) is expected, not a leak.
    setMaxListeners(Math.max(10, config.max_concurrent + 10), signal);
    const dropKeys = new Set<string>();
    /** `release` frees the device's request slot; it is called once the answer is in (or there is no request). */
    const scrapeOne = async (d: Device, release: () => void): Promise<void> => {
      const s = stateOf(d);
      live.add(d.id);
      const deviceId = boundLabel(d.id, config.label_max_length);
      const deviceName = boundLabel(d.name, config.label_max_length);
      const tailnet = d.tailnet ? boundLabel(d.tailnet, config.label_max_length) : undefined;
      const kept = s.labels;
      if (kept === undefined || kept.device_id !== deviceId || kept.device_name !== deviceName || kept.tailnet !== tailnet) {
        s.labels = { device_id: deviceId, device_name: deviceName, ...(tailnet !== undefined ? { tailnet } : {}) };
        s.errorLabels = undefined;
      }
      const labels = s.labels as Attributes;
      const errorLabels = (s.errorLabels ??= new Map());
      const finish = (ok: boolean, ms: number): void => {
        const now = settings.clock.now();
        up.add(labels, ok ? 1 : 0, now);
        duration.add(labels, ms / 1000, now);
        if (ok) samples.add(labels, s.lastSamples, now);
        for (const [kind, n] of s.errors) {
          let el = errorLabels.get(kind);
          if (!el) {
            el = { ...labels, kind };
            errorLabels.set(kind, el);
          }
          errors.add(el, n, now, s.errorsStartMs);
        }
        backoff.add(labels, s.skip, now);
      };
      if (s.skip > 0) {
        s.skip--;
        finish(false, 0);
        return;
      }
      const dial = dialTarget(d, s);
      if ('reason' in dial) {
        fail(d, s, 'not_allowed', dial.reason);
        finish(false, 0);
        return;
      }
      const { url } = dial;
      const began = performance.now();
      try {
        let body: Uint8Array;
        try {
          body = await fetchMetricsBody({ dispatcher: agent, url, timeoutMs: config.timeout, maxBytes: config.max_body_size, signal, userAgent: USER_AGENT });
        } finally {
          // The slot goes to the next device before this answer is read (see `scrape`).
          release();
        }
        // Parsing waits for the event loop's next turn: answers that arrived together are all
        // read, and their slots handed to the next devices' requests, before any of them is
        // parsed — otherwise the last answer of a burst waits for every parse before it.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const report: ConvertReport = { typeConflicts: 0, outsideNamespace: 0, registryFull: 0 };
        const ctx: ConvertContext = { out: bb, deviceLabels: labels, timeMs: settings.clock.now(), tracker: s.tracker, familyAllowed, maxLabel: config.label_max_length, families, namespace, report, maxFamilies: config.max_families };
        // The same lines as last time with new numbers are written straight into the points,
        // from the bytes when the template is ASCII (no text is made of a replayed body).
        const template = s.template;
        let text: string | undefined;
        let replayed = template?.ascii ? template.replay(body, ctx) : undefined;
        if (replayed === undefined && template && !template.ascii) replayed = template.replay((text = decodeBody(body)), ctx);
        if (replayed !== undefined) {
          s.lastSamples = replayed;
          if (!s.template?.valid) s.template = undefined;
        } else {
          s.template = undefined;
          text ??= decodeBody(body);
          let parsed;
          try {
            parsed = parseExposition(text, limits);
          } catch (err) {
            if (err instanceof ExpositionLimitError) throw new ScrapeError(err.limit === 'samples' ? 'too_large' : 'limit', err.message);
            throw new ScrapeError('parse', err instanceof ExpositionParseError ? err.message : String(err));
          }
          s.lastSamples = convertFamilies(parsed, ctx);
          s.tracker.commit();
          if (config.replay) s.template = ReplayTemplate.build(text, parsed, ctx);
        }
        // Samples left out are counted once per scrape by reason; the scrape itself succeeded.
        const dropped: Array<[ErrorKind, number]> = report.typeConflicts + report.outsideNamespace + report.registryFull === 0 ? [] : [['type_conflict', report.typeConflicts], ['namespace', report.outsideNamespace], ['limit', report.registryFull]];
        for (const [kind, n] of dropped) {
          if (n === 0) continue;
          s.errors.set(kind, (s.errors.get(kind) ?? 0) + 1);
          settings.telemetry.error(id, kind);
          dropKeys.add(`${d.id}\u0000${kind}`);
          dropOnce.fail(`${d.id}\u0000${kind}`, kind, 'device samples left out', { device: d.name, kind, samples: n });
        }
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
    };

    // Devices are started as request slots free up, not all at once: a scrape started early
    // would wait with its closures and promises for most of the cycle, long enough for the
    // collector to move them to the old generation (at 10,000 devices, two thirds of what a
    // cycle promoted). A slot is freed when its answer arrives, before the answer is parsed, so
    // the next request overlaps the parsing instead of waiting for it.
    await new Promise<void>((allDone) => {
      const total = list.length;
      let next = 0;
      let active = 0;
      let settled = 0;
      const settle = (n: number): void => {
        settled += n;
        if (settled === total) allDone();
      };
      const launch = (): void => {
        while (active < config.max_concurrent && next < total) {
          if (signal.aborted) {
            // Shutdown: devices not started yet are not started (but not forgotten either).
            settle(total - next);
            for (; next < total; next++) live.add((list[next] as Device).id);
            return;
          }
          const d = list[next++] as Device;
          active++;
          let released = false;
          const release = (): void => {
            if (released) return;
            released = true;
            active--;
            launch();
          };
          scrapeOne(d, release)
            .catch((err: unknown) => {
              // Nothing a device record holds may fail the cycle for the others.
              if (signal.aborted) return;
              settings.telemetry.error(id, 'exception');
              once.fail(d.id, 'exception', 'device could not be scraped', { device: String(d.name), error: errorMessage(err) });
            })
            .finally(() => {
              release();
              settle(1);
            });
        }
      };
      if (total === 0) allDone();
      else launch();
    });
    families.endCycle();
    // Devices no longer targeted are forgotten: their state must not outlive them.
    for (const k of states.keys()) if (!live.has(k)) states.delete(k);
    once.forgetExcept(live);
    // A device that stops sending such samples is forgotten, so its next offence logs again.
    dropOnce.forgetExcept(dropKeys);
    // A source whose targeted devices mostly fail is down, even though each failure is its
    // device's own: `/health` and `tsmetrics_source_up` must not call that healthy.
    const ok = list.length === 0 || scraped * 2 >= list.length;
    return {
      batch: bb.build(),
      ok,
      ...(ok ? {} : { error: `${list.length - scraped} of ${list.length} targeted devices failed their last scrape` }),
      details: { devices_scraped: scraped, devices_targeted: list.length },
    };
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

  const receiver = createScrapingReceiver(settings, {
    interval: config.interval,
    beforeFirst,
    scrape,
    onShutdown: async () => {
      await agent.destroy().catch(() => undefined);
    },
  }, next);
  const sd = config.service_discovery;
  const routes = sd.enabled
    ? [
        discoveryRoute({
          path: sd.path,
          select: discovered,
          version: snapshots,
          metricsPath: config.path,
          limits: { labelMaxLength: config.label_max_length, listMaxLength: SD_LIST_MAX_LENGTH, maxBytes: sd.max_response_bytes },
          logger: settings.logger,
          onTooLarge: () => settings.telemetry.error(id, 'too_large'),
          now: () => settings.clock.now(),
        }),
      ]
    : [];
  return { ...receiver, routes: () => routes };
}
