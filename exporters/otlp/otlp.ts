import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Attributes } from '@opentelemetry/api';
import type { BatchInfo, Exporter, Settings } from '../../src/component/types.ts';
import { ErrorCode, errorMessage, TsmetricsError } from '../../src/errors.ts';
import { beforeDeadline, type ShutdownReporter } from '../../src/util/abort.ts';
import { countPoints } from '../../src/model/batch.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { defaultEndpoint, temporalityOf, type OtlpExporterConfig } from './config.ts';
import { GrpcTransport } from './grpc-transport.ts';
import { HttpTransport } from './http-transport.ts';
import { identityAttributes, resourceGroups } from './identity.ts';
import { DeltaConverter } from './temporality.ts';
import { splitByEncodedSize } from './protobuf.ts';
import { loadTls } from './tls.ts';
import type { OtlpTransport } from './transport.ts';

/** The delta stream of tsmetrics' own metrics (pipeline streams are `<pipeline>\0<receiver>`). */
const SELF_SOURCE = '\u0000self';

/**
 * `otlp`: pushes each batch to an OpenTelemetry Collector over OTLP/HTTP or OTLP/gRPC. Batches
 * wait in a bounded queue and are sent one at a time, so a slow or down endpoint never blocks
 * the pipeline or grows memory; what the queue or the endpoint drops is counted. Every batch
 * carries the instance's identity and its tailnet on the resource (identity.ts), goes out in the
 * configured temporality (temporality.ts), and tsmetrics' own metrics follow the same way.
 */
export class OtlpExporterComponent implements Exporter, ShutdownReporter {
  private readonly _s: Settings;
  private readonly _c: OtlpExporterConfig;
  private readonly _transport: OtlpTransport;
  private readonly _delta: DeltaConverter;
  private readonly _identity: Attributes;
  private readonly _endpoint: string;
  private readonly _queue: ResourceMetrics[] = [];
  private readonly _once: OnceLogger;
  private _sending: Promise<void> | undefined;
  private _timer: NodeJS.Timeout | undefined;
  private _selfTimer: NodeJS.Timeout | undefined;
  private _stopped = false;
  /** The batch on the wire, and how to give up on it. */
  private _inFlight: { batch: ResourceMetrics; giveUp: (why: string) => void } | undefined;
  /** Set when shutdown gave up on what was left; nothing more is sent. */
  private _abandoned = false;
  private _cutOff: string | undefined;
  /** Batches and points delivered, and dropped (for tests and /debug). */
  readonly stats = { sentBatches: 0, sentPoints: 0, droppedBatches: 0, droppedPoints: 0 };

  constructor(settings: Settings, config: OtlpExporterConfig) {
    this._s = settings;
    this._c = config;
    const tls = loadTls(config.tls);
    this._transport = config.protocol === 'grpc' ? new GrpcTransport(config, tls) : new HttpTransport(config, tls);
    this._delta = new DeltaConverter(temporalityOf(config));
    this._identity = identityAttributes(config);
    this._endpoint = config.endpoint || defaultEndpoint(config.protocol);
    this._once = new OnceLogger(settings.logger);
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
    for (const rm of resourceGroups(out, this._identity, this._c.resource_attributes, this._s.inventory)) this._enqueue(rm);
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
    this._queue.push(rm);
    while (this._queue.length > this._c.max_queue_batches) {
      const dropped = this._queue.shift() as ResourceMetrics;
      this._drop(dropped, 'queue full');
    }
    if (this._c.interval === 0) this._kick();
  }

  /** Series whose last point the delta conversion holds (0 with cumulative temporality). */
  trackedDeltaSeries(): number {
    return this._delta.trackedSeries();
  }

  private _drop(batch: ResourceMetrics, why: string, quiet = false, n = countPoints(batch)): void {
    this.stats.droppedBatches++;
    this.stats.droppedPoints += n;
    this._s.telemetry.dropped(this._s.id.key, n);
    this._s.telemetry.error(this._s.id.key, 'export');
    // Batches given up at shutdown are named once in the shutdown's own line.
    if (!quiet) this._once.fail('export', why, 'OTLP export failed; batch dropped', { reason: why, endpoint: this._endpoint, protocol: this._c.protocol });
  }

  private _kick(): void {
    if (this._sending || this._abandoned) return;
    this._sending = this._drain().finally(() => {
      this._sending = undefined;
    });
  }

  private async _drain(): Promise<void> {
    while (this._queue.length && !this._abandoned) {
      const batch = this._queue.shift() as ResourceMetrics;
      const { result: r, delivered } = await this._send(batch);
      if (delivered > 0) {
        this.stats.sentPoints += delivered;
        this._s.telemetry.sent(this._s.id.key, delivered);
      }
      if (r.code === ExportResultCode.SUCCESS) {
        this.stats.sentBatches++;
        this._once.ok('export', 'OTLP export recovered', { endpoint: this._endpoint });
      } else {
        this._drop(batch, r.error?.message ?? 'failed', this._abandoned, countPoints(batch) - delivered);
      }
    }
  }

  /**
   * One batch through the official transport, bounded as a whole (connect, retries, response
   * headers and body) by `timeout`: at the limit the connection is destroyed and the batch fails.
   * A batch larger than `max_request_bytes` goes as several requests, one after the other, under
   * the same deadline; the points of those that arrived before a failure count as delivered.
   */
  private _send(batch: ResourceMetrics): Promise<{ result: ExportResult; delivered: number }> {
    return new Promise((resolve) => {
      let done = false;
      let delivered = 0;
      const finish = (r: ExportResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this._inFlight = undefined;
        resolve({ result: r, delivered });
      };
      const giveUp = (why: string): void => {
        const err = new TsmetricsError(ErrorCode.EXPORT, why);
        this._transport.cancel(err);
        finish({ code: ExportResultCode.FAILED, error: err });
      };
      const timer = setTimeout(() => giveUp(`no complete answer within ${this._c.timeout} ms`), this._c.timeout);
      this._inFlight = { batch, giveUp };
      const pieces = this._c.max_request_bytes > 0 ? splitByEncodedSize(batch, this._c.max_request_bytes) : [batch];
      void (async () => {
        for (const piece of pieces) {
          const r = await this._transport.export(piece);
          if (done) return;
          if (r.code !== ExportResultCode.SUCCESS) return finish(r);
          if (pieces.length > 1) delivered += countPoints(piece);
        }
        delivered = countPoints(batch);
        finish({ code: ExportResultCode.SUCCESS });
      })();
    });
  }

  /** Sends what is queued and waits for it (tests, shutdown). */
  async flush(): Promise<void> {
    this._kick();
    while (this._sending) await this._sending;
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
      this._abandoned = true;
      const left = this._queue.splice(0);
      const n = left.length + (this._inFlight ? 1 : 0);
      if (n > 0) this._cutOff = n === 1 ? '1 batch not sent (the endpoint had not taken it by the deadline)' : `${n} batches not sent (the endpoint had not taken them by the deadline)`;
      for (const b of left) this._drop(b, 'shutdown deadline', true);
      this._inFlight?.giveUp('cut off by the shutdown deadline');
    }
    this._transport.close(new TsmetricsError(ErrorCode.EXPORT, 'the OTLP exporter is shut down'));
    this._delta.clear();
    await beforeDeadline(this._transport.shutdown(), deadline).catch(() => undefined);
  }

  /** What the last shutdown gave up on, e.g. `3 batches not sent (…)`. */
  shutdownCutOff(): string | undefined {
    return this._cutOff;
  }
}
