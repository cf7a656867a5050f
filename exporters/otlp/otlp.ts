import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporterBase } from '@opentelemetry/exporter-metrics-otlp-http';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { MetricsExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { BatchInfo, Exporter, Settings } from '../../src/component/types.ts';
import { ErrorCode, TsmetricsError } from '../../src/errors.ts';
import { beforeDeadline, type ShutdownReporter } from '../../src/util/abort.ts';
import { countPoints } from '../../src/model/batch.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { VERSION } from '../../src/version.ts';
import type { OtlpExporterConfig } from './config.ts';
import { jsonSerializer, protobufSerializer } from './serializer.ts';

/**
 * The HTTP agents of the official transport, with a hand on every socket they open. The transport
 * bounds a request only by socket idleness (a peer that trickles a byte a second keeps it open
 * for ever) and cannot cancel one, so giving up on an exchange means destroying its socket here.
 * Sockets are destroyed with an error the transport does not retry.
 */
class SocketKeeper {
  private readonly _sockets = new Set<Duplex>();
  private readonly _agents: Array<HttpAgent | HttpsAgent> = [];
  private _closedBy: Error | undefined;

  /** The transport's `agentFactory` (keep-alive, as the transport's default agent). */
  readonly factory = (protocol: string): HttpAgent | HttpsAgent => {
    const agent = protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (options, callback) => {
      const closedBy = this._closedBy;
      if (closedBy) {
        // The agent hands this error to the request, which fails without a retry.
        process.nextTick(() => callback?.(closedBy, undefined as unknown as Duplex));
        return undefined;
      }
      const socket = create(options, callback);
      if (socket) {
        this._sockets.add(socket);
        socket.once('close', () => this._sockets.delete(socket));
      }
      return socket;
    };
    this._agents.push(agent);
    return agent;
  };

  /** Ends every exchange in flight with `err`. */
  cancel(err: Error): void {
    for (const s of this._sockets) s.destroy(err);
  }

  /** Ends every exchange and refuses new ones, so no socket outlives the exporter. */
  close(err: Error): void {
    this._closedBy = err;
    this.cancel(err);
    for (const a of this._agents) a.destroy();
  }
}

/** The official OTLP/HTTP exporter (retries, Retry-After, timeout, gzip) with our serializer. */
class TsmetricsOtlpExporter extends OTLPMetricExporterBase {
  constructor(c: OtlpExporterConfig, sockets: SocketKeeper) {
    const json = c.protocol === 'http/json';
    const options = convertLegacyHttpOptions(
      {
        url: c.endpoint,
        headers: { ...c.headers },
        timeoutMillis: c.timeout,
        compression: c.compression === 'gzip' ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE,
        httpAgentOptions: sockets.factory,
      },
      'METRICS',
      'v1/metrics',
      { 'Content-Type': json ? 'application/json' : 'application/x-protobuf' },
    );
    super(createOtlpHttpExportDelegate(options, json ? jsonSerializer : protobufSerializer, 'otlp_http_metric_exporter', MetricsExporterMetricsHelper, undefined));
  }
}

/**
 * `otlp`: pushes each batch to an OpenTelemetry Collector. Batches wait in a bounded queue and are
 * sent one at a time, so a slow or down endpoint never blocks the pipeline or grows memory; what
 * the queue or the endpoint drops is counted.
 */
export class OtlpExporterComponent implements Exporter, ShutdownReporter {
  private readonly _s: Settings;
  private readonly _c: OtlpExporterConfig;
  private readonly _exporter: TsmetricsOtlpExporter;
  private readonly _sockets = new SocketKeeper();
  private readonly _queue: ResourceMetrics[] = [];
  private readonly _once: OnceLogger;
  private _sending: Promise<void> | undefined;
  private _timer: NodeJS.Timeout | undefined;
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
    this._exporter = new TsmetricsOtlpExporter(config, this._sockets);
    this._once = new OnceLogger(settings.logger);
  }

  async start(): Promise<void> {
    if (this._c.interval > 0) {
      this._timer = setInterval(() => this._kick(), this._c.interval);
      this._timer.unref();
    }
  }

  async consume(batch: ResourceMetrics, _info: BatchInfo): Promise<void> {
    if (this._stopped) return;
    const resource = resourceFromAttributes({ 'service.name': 'tsmetrics', 'service.version': VERSION, ...batch.resource.attributes, ...this._c.resource_attributes });
    this._queue.push({ resource, scopeMetrics: batch.scopeMetrics });
    while (this._queue.length > this._c.max_queue_batches) {
      const dropped = this._queue.shift() as ResourceMetrics;
      this._drop(dropped, 'queue full');
    }
    if (this._c.interval === 0) this._kick();
  }

  private _drop(batch: ResourceMetrics, why: string, quiet = false): void {
    const n = countPoints(batch);
    this.stats.droppedBatches++;
    this.stats.droppedPoints += n;
    this._s.telemetry.dropped(this._s.id.key, n);
    this._s.telemetry.error(this._s.id.key, 'export');
    // Batches given up at shutdown are named once in the shutdown's own line.
    if (!quiet) this._once.fail('export', why, 'OTLP export failed; batch dropped', { reason: why, endpoint: this._c.endpoint });
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
      const r = await this._send(batch);
      if (r.code === ExportResultCode.SUCCESS) {
        const n = countPoints(batch);
        this.stats.sentBatches++;
        this.stats.sentPoints += n;
        this._s.telemetry.sent(this._s.id.key, n);
        this._once.ok('export', 'OTLP export recovered', { endpoint: this._c.endpoint });
      } else {
        this._drop(batch, r.error?.message ?? 'failed', this._abandoned);
      }
    }
  }

  /**
   * One export through the official exporter, bounded as a whole (connect, retries, response
   * headers and body) by `timeout`: at the limit the socket is destroyed and the batch fails.
   */
  private _send(batch: ResourceMetrics): Promise<ExportResult> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: ExportResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this._inFlight = undefined;
        resolve(r);
      };
      const giveUp = (why: string): void => {
        const err = new TsmetricsError(ErrorCode.EXPORT, why);
        this._sockets.cancel(err);
        finish({ code: ExportResultCode.FAILED, error: err });
      };
      const timer = setTimeout(() => giveUp(`no complete answer within ${this._c.timeout} ms`), this._c.timeout);
      this._inFlight = { batch, giveUp };
      this._exporter.export(batch, finish);
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
    if ((await beforeDeadline(this.flush(), deadline)).state === 'cut') {
      this._abandoned = true;
      const left = this._queue.splice(0);
      const n = left.length + (this._inFlight ? 1 : 0);
      if (n > 0) this._cutOff = n === 1 ? '1 batch not sent (the endpoint had not taken it by the deadline)' : `${n} batches not sent (the endpoint had not taken them by the deadline)`;
      for (const b of left) this._drop(b, 'shutdown deadline', true);
      this._inFlight?.giveUp('cut off by the shutdown deadline');
    }
    this._sockets.close(new TsmetricsError(ErrorCode.EXPORT, 'the OTLP exporter is shut down'));
    await beforeDeadline(this._exporter.shutdown(), deadline).catch(() => undefined);
  }

  /** What the last shutdown gave up on, e.g. `3 batches not sent (…)`. */
  shutdownCutOff(): string | undefined {
    return this._cutOff;
  }
}
