import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporterBase } from '@opentelemetry/exporter-metrics-otlp-http';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { MetricsExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { BatchInfo, Exporter, Settings } from '../../src/component/types.ts';
import { countPoints } from '../../src/model/batch.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { VERSION } from '../../src/version.ts';
import type { OtlpExporterConfig } from './config.ts';
import { jsonSerializer, protobufSerializer } from './serializer.ts';

/** The official OTLP/HTTP exporter (retries, Retry-After, timeout, gzip) with our serializer. */
class TsmetricsOtlpExporter extends OTLPMetricExporterBase {
  constructor(c: OtlpExporterConfig) {
    const json = c.protocol === 'http/json';
    const options = convertLegacyHttpOptions(
      {
        url: c.endpoint,
        headers: { ...c.headers },
        timeoutMillis: c.timeout,
        compression: c.compression === 'gzip' ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE,
        keepAlive: true,
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
export class OtlpExporterComponent implements Exporter {
  private readonly _s: Settings;
  private readonly _c: OtlpExporterConfig;
  private readonly _exporter: TsmetricsOtlpExporter;
  private readonly _queue: ResourceMetrics[] = [];
  private readonly _once: OnceLogger;
  private _sending: Promise<void> | undefined;
  private _timer: NodeJS.Timeout | undefined;
  private _stopped = false;
  /** Batches and points delivered, and dropped (for tests and /debug). */
  readonly stats = { sentBatches: 0, sentPoints: 0, droppedBatches: 0, droppedPoints: 0 };

  constructor(settings: Settings, config: OtlpExporterConfig) {
    this._s = settings;
    this._c = config;
    this._exporter = new TsmetricsOtlpExporter(config);
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

  private _drop(batch: ResourceMetrics, why: string): void {
    const n = countPoints(batch);
    this.stats.droppedBatches++;
    this.stats.droppedPoints += n;
    this._s.telemetry.dropped(this._s.id.key, n);
    this._s.telemetry.error(this._s.id.key, 'export');
    this._once.fail('export', why, 'OTLP export failed; batch dropped', { reason: why, endpoint: this._c.endpoint });
  }

  private _kick(): void {
    if (this._sending) return;
    this._sending = this._drain().finally(() => {
      this._sending = undefined;
    });
  }

  private async _drain(): Promise<void> {
    while (this._queue.length) {
      const batch = this._queue.shift() as ResourceMetrics;
      const r = await new Promise<ExportResult>((resolve) => this._exporter.export(batch, resolve));
      if (r.code === ExportResultCode.SUCCESS) {
        const n = countPoints(batch);
        this.stats.sentBatches++;
        this.stats.sentPoints += n;
        this._s.telemetry.sent(this._s.id.key, n);
        this._once.ok('export', 'OTLP export recovered', { endpoint: this._c.endpoint });
      } else {
        this._drop(batch, r.error?.message ?? 'failed');
      }
    }
  }

  /** Sends what is queued and waits for it (tests, shutdown). */
  async flush(): Promise<void> {
    this._kick();
    while (this._sending) await this._sending;
  }

  async shutdown(deadline: AbortSignal): Promise<void> {
    if (this._stopped) return;
    this._stopped = true;
    if (this._timer) clearInterval(this._timer);
    await Promise.race([this.flush(), new Promise<void>((r) => deadline.addEventListener('abort', () => r(), { once: true }))]);
    await this._exporter.shutdown().catch(() => undefined);
  }
}
