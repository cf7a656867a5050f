import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Attributes } from '@opentelemetry/api';
import type { BatchInfo, Exporter, Settings } from '../../src/component/types.ts';
import { ErrorCode, errorMessage, TsmetricsError } from '../../src/errors.ts';
import { beforeDeadline, type ShutdownReporter } from '../../src/util/abort.ts';
import { countPoints, snapshotPoints } from '../../src/model/batch.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { signalSettings, temporalityOf, type OtlpExporterConfig, type SignalSettings } from './config.ts';
import { GrpcTransport } from './grpc-transport.ts';
import { HttpTransport } from './http-transport.ts';
import { identityAttributes, resourceGroups } from './identity.ts';
import { logsWithIdentity, type ResourceCache } from './logs-resource.ts';
import { splitLogsByEncodedSize } from './logs-size.ts';
import { DeltaConverter } from './temporality.ts';
import { splitByEncodedSize } from './protobuf.ts';
import { SendQueue } from './send-queue.ts';
import { loadTls, type TlsMaterial } from './tls.ts';
import type { OtlpTransport } from './transport.ts';

/** The delta stream of tsmetrics' own metrics (pipeline streams are `<pipeline>\u0000<receiver>`). */
const SELF_SOURCE = '\u0000self';

/**
 * Most log records a waiting batch grows to by taking in the batches that follow it (see
 * `SendQueueOptions.merge`): the queue's bound stays `max_queue_batches` batches, and a batch
 * stays about what one poll of the default max_records_per_poll (50,000) makes.
 */
const LOGS_MERGE_MAX = 65_536;

interface LogPart {
  readonly source: string;
  readonly more: boolean;
}

function transportFor<T>(s: SignalSettings, tls: TlsMaterial | undefined): OtlpTransport<T> {
  return s.protocol === 'grpc' ? new GrpcTransport<T>(s, tls) : new HttpTransport<T>(s, tls);
}

/** `n batches not sent (…)`, with `what` naming the kind of batch. */
function notSent(n: number, what: string): string {
  return n === 1 ? `1 ${what} not sent (the endpoint had not taken it by the deadline)` : `${n} ${what}es not sent (the endpoint had not taken them by the deadline)`;
}

/**
 * `otlp`: pushes each batch to an OpenTelemetry Collector over OTLP/HTTP or OTLP/gRPC: metrics
 * pipelines' batches and logs pipelines' log records, each signal with its own transport and
 * queue. Batches wait in a bounded queue and are sent one at a time, so a slow or down endpoint
 * never blocks the pipeline or grows memory; what the queue or the endpoint drops is counted.
 * Every batch carries the instance's identity and its tailnet on the resource (identity.ts,
 * logs-resource.ts), metrics go out in the configured temporality (temporality.ts), and
 * tsmetrics' own metrics follow the same way.
 */
export class OtlpExporterComponent implements Exporter, ShutdownReporter {
  private readonly _s: Settings;
  private readonly _c: OtlpExporterConfig;
  private readonly _tls: TlsMaterial | undefined;
  private readonly _transport: OtlpTransport<ResourceMetrics>;
  private _logsTransport: OtlpTransport<LogsBatch> | undefined;
  private readonly _delta: DeltaConverter;
  private readonly _identity: Attributes;
  private readonly _metrics: SendQueue<ResourceMetrics>;
  private _logs: SendQueue<LogsBatch> | undefined;
  /** The outgoing log resources this exporter built (see `logsWithIdentity`). */
  private readonly _logResources: ResourceCache = new WeakMap();
  /** Which collection each queued logs batch belongs to, and whether more of it follows. */
  private readonly _logParts = new WeakMap<LogsBatch, LogPart>();
  private readonly _once: OnceLogger;
  private _timer: NodeJS.Timeout | undefined;
  private _selfTimer: NodeJS.Timeout | undefined;
  private _stopped = false;
  private _cutOff: string | undefined;
  /** Batches, points and log records delivered, and dropped (for tests and /debug). */
  readonly stats = { sentBatches: 0, sentPoints: 0, droppedBatches: 0, droppedPoints: 0, sentLogBatches: 0, sentLogRecords: 0, droppedLogBatches: 0, droppedLogRecords: 0 };

  constructor(settings: Settings, config: OtlpExporterConfig) {
    this._s = settings;
    this._c = config;
    this._tls = loadTls(config.tls);
    const metrics = signalSettings(config, 'metrics');
    this._transport = transportFor<ResourceMetrics>(metrics, this._tls);
    this._delta = new DeltaConverter(temporalityOf(config));
    this._identity = identityAttributes(config);
    this._once = new OnceLogger(settings.logger);
    const id = settings.id.key;
    this._metrics = new SendQueue<ResourceMetrics>({
      signal: 'metrics',
      transport: this._transport,
      timeout: metrics.timeout,
      maxBatches: config.max_queue_batches,
      count: countPoints,
      split: (rm) => (config.max_request_bytes > 0 ? splitByEncodedSize(rm, config.max_request_bytes) : [rm]),
      counters: {
        sent: (n) => {
          this.stats.sentPoints += n;
          settings.telemetry.sent(id, n);
        },
        batchSent: () => this.stats.sentBatches++,
        dropped: (n) => {
          this.stats.droppedBatches++;
          this.stats.droppedPoints += n;
          settings.telemetry.dropped(id, n);
          settings.telemetry.error(id, 'export');
        },
      },
      once: this._once,
      logFields: { endpoint: metrics.endpoint, protocol: metrics.protocol },
    });
  }

  /**
   * The logs queue and transport, made on the first logs batch: an exporter only metrics
   * pipelines use holds no second connection.
   */
  private _logsQueue(): SendQueue<LogsBatch> {
    if (this._logs) return this._logs;
    const c = this._c;
    const s = signalSettings(c, 'logs');
    const id = this._s.id.key;
    const telemetry = this._s.telemetry;
    this._logsTransport = transportFor<LogsBatch>(s, this._tls);
    this._logs = new SendQueue<LogsBatch>({
      signal: 'logs',
      transport: this._logsTransport,
      timeout: s.timeout,
      maxBatches: c.max_queue_batches,
      count: (b) => b.length,
      merge: (waiting, next) => {
        // Only the parts of one collection are joined (BatchInfo.more): an unrelated batch that
        // cannot be encoded must still fail alone.
        const w = this._logParts.get(waiting);
        const n = this._logParts.get(next);
        if (!w?.more || !n || w.source !== n.source || waiting.length + next.length > LOGS_MERGE_MAX) return undefined;
        const joined = waiting.concat(next);
        this._logParts.set(joined, n);
        return joined;
      },
      split: (b) => (c.max_request_bytes > 0 ? splitLogsByEncodedSize(b, c.max_request_bytes) : [b]),
      counters: {
        sent: (n) => {
          this.stats.sentLogRecords += n;
          telemetry.sent(id, n, 'logs');
        },
        batchSent: () => this.stats.sentLogBatches++,
        dropped: (n) => {
          this.stats.droppedLogBatches++;
          this.stats.droppedLogRecords += n;
          telemetry.dropped(id, n, 'logs');
          telemetry.error(id, 'export');
        },
      },
      once: this._once,
      logFields: { endpoint: s.endpoint, protocol: s.protocol },
    });
    return this._logs;
  }

  async start(): Promise<void> {
    if (this._c.interval > 0) {
      this._timer = setInterval(() => this._kick(), this._c.interval);
      this._timer.unref();
    }
    if (this._c.self_telemetry.enabled) {
      this._selfTimer = setInterval(() => void this.pushSelfTelemetry(), this._c.self_telemetry.interval);
      this._selfTimer.unref();
    }
  }

  async consume(batch: ResourceMetrics, info: BatchInfo): Promise<void> {
    if (this._stopped) return;
    // Deltas are taken in arrival order, per pipeline and receiver (each batch is that source's
    // whole snapshot); the Prometheus side keeps the cumulative original.
    const out = this._delta.convert(batch, `${info.pipeline ?? ''}\u0000${info.source}`, 'pipeline');
    // Queued batches wait for the transport, maybe for cycles: their values are fixed now.
    for (const rm of resourceGroups(snapshotPoints(out), this._identity, this._c.resource_attributes, this._s.inventory)) this._enqueue(rm);
  }

  /** Queues a logs batch, its records' resources merged with the identity (logs-resource.ts). */
  async consumeLogs(batch: LogsBatch, info: BatchInfo): Promise<void> {
    if (this._stopped) return;
    // One source may hand on several collections at once (a receiver's log types).
    const source = info.collection ?? info.source;
    if (batch.length === 0) {
      // An empty last part sends nothing but closes its collection: the part of it still waiting
      // must not take in the next collection's (the next poll's) batches.
      const waiting = info.more ? undefined : this._logs?.last();
      const part = waiting && this._logParts.get(waiting);
      if (waiting && part?.more && part.source === source) this._logParts.set(waiting, { source, more: false });
      return;
    }
    const queue = this._logsQueue();
    const out = logsWithIdentity(batch, this._identity, this._c.resource_attributes, this._s.inventory, this._logResources);
    this._logParts.set(out, { source, more: info.more === true });
    queue.push(out);
    if (this._c.interval === 0) queue.kick();
  }

  /**
   * Queues tsmetrics' own metrics (what `/metrics` serves as `tsmetrics_*`) for this endpoint, so
   * an OTLP-only deployment can alert on `tsmetrics_source_up`, errors and drops. Runs every
   * `self_telemetry.interval`; tests call it directly. Does nothing when `self_telemetry.enabled`
   * is false.
   */
  async pushSelfTelemetry(): Promise<void> {
    if (this._stopped || !this._c.self_telemetry.enabled) return;
    let collected: ResourceMetrics;
    try {
      collected = (await this._s.telemetry.collect()).resourceMetrics;
    } catch (err) {
      this._once.fail('self_telemetry', 'collect', 'collecting the own metrics for OTLP failed', { error: errorMessage(err) });
      return;
    }
    if (this._stopped) return;
    const out = this._delta.convert(collected, SELF_SOURCE, 'self');
    // The process has no tailnet: one process can watch several.
    this._enqueue({ resource: resourceFromAttributes({ ...this._identity, ...this._c.resource_attributes }), scopeMetrics: out.scopeMetrics });
  }

  private _enqueue(rm: ResourceMetrics): void {
    // A request without points says nothing (a delta baseline, an empty snapshot).
    if (countPoints(rm) === 0) return;
    this._metrics.push(rm);
    if (this._c.interval === 0) this._metrics.kick();
  }

  /** Series whose last point the delta conversion holds (0 with cumulative temporality). */
  trackedDeltaSeries(): number {
    return this._delta.trackedSeries();
  }

  private _kick(): void {
    this._metrics.kick();
    this._logs?.kick();
  }

  /** Sends what is queued, of both signals, and waits for it (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([this._metrics.flush(), this._logs?.flush()]);
  }

  /**
   * Flushes until `deadline`, then gives up on what is left (counted as dropped, reported by
   * {@link shutdownCutOff}) and destroys every connection, so nothing of it keeps the process up.
   */
  async shutdown(deadline: AbortSignal): Promise<void> {
    if (this._stopped) return;
    this._stopped = true;
    if (this._timer) clearInterval(this._timer);
    if (this._selfTimer) clearInterval(this._selfTimer);
    if ((await beforeDeadline(this.flush(), deadline)).state === 'cut') {
      const parts: string[] = [];
      const metrics = this._metrics.abandon();
      if (metrics > 0) parts.push(notSent(metrics, 'batch'));
      const logs = this._logs?.abandon() ?? 0;
      if (logs > 0) parts.push(notSent(logs, 'logs batch'));
      if (parts.length) this._cutOff = parts.join(', ');
    }
    const closed = new TsmetricsError(ErrorCode.EXPORT, 'the OTLP exporter is shut down');
    this._transport.close(closed);
    this._logsTransport?.close(closed);
    this._delta.clear();
    await beforeDeadline(Promise.all([this._transport.shutdown(), this._logsTransport?.shutdown()]), deadline).catch(() => undefined);
  }

  /** What the last shutdown gave up on, e.g. `3 batches not sent (…)`. */
  shutdownCutOff(): string | undefined {
    return this._cutOff;
  }
}
