import type { InstrumentationScope } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsConsumer, Receiver, Settings } from '../../src/component/types.ts';
import { errorMessage } from '../../src/errors.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { createScrapingReceiver, type ScrapeResult } from '../../src/pipeline/scraper.ts';
import type { ShutdownReporter } from '../../src/util/abort.ts';
import { USER_AGENT, VERSION } from '../../src/version.ts';
import { TailscaleApiClient } from '../tailscale_api/client.ts';
import { toApiConfig, type LogType, type TailscaleLogsConfig } from './config.ts';
import { hrFromMs } from './decode.ts';
import { gzipDispatcher } from './gzip.ts';
import { DeviceIndex } from './mapping.ts';
import { Privacy } from './privacy.ts';
import { LogSource, type LogCounters } from './source.ts';
import { loadState, saveState, stateFile, type TypeState } from './storage.ts';

/** Resource attribute naming the tailnet (the OTLP exporter's TAILNET_ATTRIBUTE). */
const TAILNET_ATTRIBUTE = 'tailscale.tailnet';
export const SCOPE_NAME = 'tsmetrics/tailscale_logs';

/** Bytes a saved identity takes in the state file, at most (for the file size bound). */
const STATE_BYTES_PER_ID = 48;

/**
 * `tailscale_logs`: polls the network flow log and configuration audit log endpoints, each as its
 * own source (`<id>:network`, `<id>:configuration`), and emits what is new as OpenTelemetry log
 * records. Both share one authenticated API client. The loop is the shared scraper's; the
 * receiver's own id reports whether any log type could be read.
 */
export function createTailscaleLogsReceiver(settings: Settings, config: TailscaleLogsConfig, next: LogsConsumer): Receiver & ShutdownReporter {
  const id = settings.id.key;
  const requests = settings.meter.createCounter('tsmetrics_api_requests', { description: 'Requests sent to the Tailscale API, by receiver and collector (oauth: token requests).' });
  if (config.privacy.hash_key) settings.secrets.add(config.privacy.hash_key);
  const client = new TailscaleApiClient({
    config: toApiConfig(config),
    dispatcher: gzipDispatcher(settings.dispatcher, config.max_body_size),
    clock: settings.clock,
    userAgent: USER_AGENT,
    secrets: settings.secrets,
    logger: settings.logger,
    onRequest: (collector) => requests.add(1, { component_id: id, collector }),
  });
  const m = settings.meter;
  const counters: LogCounters = {
    received: m.createCounter('tsmetrics_logs_records_received', { description: 'Records (flow records, audit events) read from the Tailscale logging API, re-reads included.' }),
    deduplicated: m.createCounter('tsmetrics_logs_records_deduplicated', { description: 'Records read again (overlapping windows, restarts) and not emitted a second time.' }),
    late: m.createCounter('tsmetrics_logs_records_late', { description: 'Records that showed up only after the span holding their timestamp had been read once.' }),
    dropped: m.createCounter('tsmetrics_logs_records_dropped', { description: 'Records or entries not emitted, by reason (malformed, too_large, limit, outside_window).' }),
  };
  const once = new OnceLogger(settings.logger);
  const privacy = new Privacy(config.privacy);
  const sources = (config.types as LogType[]).map((type) => new LogSource({ type, settings, config, client, counters, once }));
  const scope: InstrumentationScope = { name: SCOPE_NAME, version: VERSION };
  const resources = new Map<string, Resource>();
  let learnedTailnet: string | undefined;
  const tailnetName = (): string => config.tailnet_label || (config.tailnet !== '-' ? config.tailnet : (learnedTailnet ?? '-'));
  const resourceFor = (tailnet: string): Resource => {
    let r = resources.get(tailnet);
    if (!r) {
      r = resourceFromAttributes({ 'service.name': 'tsmetrics', 'service.version': VERSION, [TAILNET_ATTRIBUTE]: tailnet });
      resources.clear();
      resources.set(tailnet, r);
    }
    return r;
  };

  const file = config.storage_dir ? stateFile(config.storage_dir, id) : undefined;
  let loaded = false;
  const load = async (): Promise<void> => {
    loaded = true;
    if (!file) return;
    const r = await loadState(file, { maxIds: config.dedup_capacity, maxBytes: 1024 * 1024 + sources.length * config.dedup_capacity * STATE_BYTES_PER_ID, nowMs: settings.clock.now() });
    const back = `reading back initial_window (${config.initial_window / 1000}s)`;
    if ('missing' in r) {
      settings.logger.info(`tailscale_logs: no saved position yet; ${back}`, { file });
      return;
    }
    if ('corrupt' in r) {
      settings.logger.warn(`tailscale_logs: the saved position cannot be used (${r.corrupt}); ${back}, and records of that span may repeat`, { file });
      return;
    }
    const mine = config.tailnet_label || config.tailnet;
    if (r.state.tailnet !== mine) {
      settings.logger.warn(`tailscale_logs: the saved position belongs to another tailnet; ${back}`, { file, saved_tailnet: r.state.tailnet.slice(0, 100), tailnet: mine });
      return;
    }
    for (const s of sources) {
      const t = r.state.types[s.type];
      if (t) s.restore(t);
    }
  };
  const persist = async (): Promise<void> => {
    if (!file) return;
    const types: Record<string, TypeState> = {};
    for (const s of sources) {
      const snap = s.snapshot();
      if (snap) types[s.type] = snap;
    }
    try {
      await saveState(file, { tailnet: config.tailnet_label || config.tailnet, types });
      once.ok('storage', 'tailscale_logs: saving the position works again', { file });
    } catch (err) {
      once.fail('storage', 'write', 'tailscale_logs: the position could not be saved; a restart may read some records again', { file, error: errorMessage(err) });
    }
  };

  /** Types switched off because the credential may not read them (`missing_scope: disable`). */
  const disabled = new Set<LogSource>();
  const runSource = async (s: LogSource, signal: AbortSignal): Promise<{ ok: boolean; n: number }> => {
    const startMs = settings.clock.now();
    const devices = new DeviceIndex(settings.inventory.devices());
    let n = 0;
    // Records go on as the poll makes them (see DELIVER_AT), marked as parts of one collection
    // until the last; a batch the pipeline fails on is counted and logged, and the poll goes on.
    const send = async (records: ReadableLogRecord[], more: boolean): Promise<void> => {
      // A part is remembered only once it has gone, so an abort can still stop it (the poll then
      // re-reads it). The last part's records are remembered already: they go on regardless, or
      // an abort landing between the poll's end and this call would lose them.
      if (more) signal.throwIfAborted();
      n += records.length;
      if (records.length) settings.telemetry.received(id, records.length, 'logs');
      try {
        await next.consumeLogs(records, { source: id, time: settings.clock.now(), interval: config.interval, more, collection: s.sourceId });
        if (records.length) settings.telemetry.sent(id, records.length, 'logs');
      } catch (err) {
        settings.telemetry.error(id, 'exception');
        settings.logger.error('delivering a logs batch failed', { source: s.type, error: errorMessage(err) });
      }
    };
    const deliver = (records: ReadableLogRecord[]): Promise<void> => send(records, true);
    const r = await s.poll(signal, { resource: resourceFor(tailnetName()), scope, observed: hrFromMs(startMs), privacy, maxString: config.max_string_length, maxList: config.max_list_length, devices }, deliver);
    if (r.tailnet && s.type === 'configuration') learnedTailnet = r.tailnet;
    const endMs = settings.clock.now();
    // The last part closes the collection, even empty when earlier parts carried everything. It
    // goes on before a refused type is switched off too: what the poll read before the refusal
    // is remembered as emitted.
    if (r.records.length || n > 0) await send(r.records, false);
    if (r.unavailable && config.missing_scope === 'disable') {
      // An off type is not a failing source: it leaves /health, /ready and tsmetrics_source_up.
      disabled.add(s);
      settings.telemetry.forgetSource(s.sourceId);
      return { ok: true, n };
    }
    settings.telemetry.cycle(s.sourceId, { ok: r.ok, startMs, endMs, ...(r.error ? { error: r.error } : {}), details: { log_records: n } });
    return { ok: r.ok, n };
  };

  const tick = async (signal: AbortSignal): Promise<ScrapeResult> => {
    if (!loaded) await load();
    const settled = await Promise.allSettled(sources.filter((s) => !disabled.has(s)).map((s) => runSource(s, signal)));
    // Saved even when the cycle was cut off (shutdown): what a poll handed on before that is
    // remembered, and a restart must not emit it again.
    await persist();
    const results: Array<{ ok: boolean; n: number }> = [];
    for (const r of settled) {
      if (r.status === 'rejected') throw r.reason;
      results.push(r.value);
    }
    // With every type switched off there is nothing to do, which is not a failure.
    const ok = results.length === 0 || results.some((r) => r.ok);
    return { batch: undefined, ok, ...(ok ? {} : { error: 'no log type could be read' }), details: { log_records: results.reduce((a, r) => a + r.n, 0), log_types_active: sources.length - disabled.size } };
  };

  // The shared loop delivers metrics batches; this receiver delivers its logs itself.
  return createScrapingReceiver(settings, { interval: config.interval, scrape: tick }, { consume: async () => undefined });
}
