import type { Socket } from 'node:net';
import { ChannelCredentials } from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { IOtlpExportDelegate } from '@opentelemetry/otlp-exporter-base';
import { createEmptyMetadata, createInsecureCredentials, createOtlpGrpcExportDelegate, createSslCredentials } from '@opentelemetry/otlp-grpc-exporter-base';
import { LogsExporterMetricsHelper, type IExporterMetricsHelper, type ISerializer, MetricsExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { VERSION } from '../../src/version.ts';
import { signalSettings, type OtlpExporterConfig, type SignalSettings } from './config.ts';
import { MAX_RETRIES, retryDelayMs } from './grpc-retry.ts';
import { protobufLogsSerializer } from './logs-protobuf.ts';
import { protobufSerializer } from './serializer.ts';
import type { TlsMaterial } from './tls.ts';
import type { OtlpTransport } from './transport.ts';

/** The OTLP metrics service method (opentelemetry-proto). */
export const GRPC_METRICS_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
/** The OTLP logs service method (opentelemetry-proto). */
export const GRPC_LOGS_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

/** Where a gRPC endpoint points and whether the channel is TLS (the specification's rules). */
export function grpcTarget(endpoint: string, insecure: boolean): { target: string; secure: boolean } {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint);
  const u = new URL(hasScheme ? endpoint : `https://${endpoint}`);
  // With a scheme, the scheme decides; without one, `insecure` does.
  const secure = hasScheme ? u.protocol === 'https:' : !insecure;
  return { target: `${u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`, secure };
}

type SecureConnector = ReturnType<ChannelCredentials['_createSecureConnector']>;

/**
 * Channel credentials that hand every connection of the channel to a keeper. grpc-js bounds a
 * call by its deadline but gives the official transport's caller no way to end one early, and a
 * closed channel lets calls in flight run on; destroying their connection is how an exchange
 * is given up at our deadline or at shutdown, as the HTTP transport's sockets are.
 */
class KeptCredentials extends ChannelCredentials {
  readonly #inner: ChannelCredentials;
  readonly #keeper: GrpcConnections;

  constructor(inner: ChannelCredentials, keeper: GrpcConnections) {
    super();
    this.#inner = inner;
    this.#keeper = keeper;
  }

  _isSecure(): boolean {
    return this.#inner._isSecure();
  }

  // Only itself: grpc-js shares connections between equal credentials, and these are ours alone.
  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(...args: Parameters<ChannelCredentials['_createSecureConnector']>): SecureConnector {
    const inner = this.#inner._createSecureConnector(...args);
    const keeper = this.#keeper;
    return {
      connect(socket: Socket) {
        const refused = keeper.admit(socket);
        return refused ? Promise.reject(refused) : inner.connect(socket);
      },
      waitForReady: () => inner.waitForReady(),
      getCallCredentials: () => inner.getCallCredentials(),
      destroy: () => inner.destroy(),
    };
  }
}

/** Every TCP connection the gRPC channel has open. */
class GrpcConnections {
  private readonly _sockets = new Set<Socket>();
  private _closedBy: Error | undefined;

  /** Takes a new connection in, or refuses it (with the error) once closed. */
  admit(socket: Socket): Error | undefined {
    if (this._closedBy) {
      socket.destroy();
      return this._closedBy;
    }
    this._sockets.add(socket);
    socket.once('close', () => this._sockets.delete(socket));
    return undefined;
  }

  cancel(err: Error): void {
    for (const s of this._sockets) s.destroy(err);
  }

  close(err: Error): void {
    this._closedBy = err;
    this.cancel(err);
  }
}

/**
 * OTLP/gRPC of one signal through the official gRPC exporter base
 * (`@opentelemetry/otlp-grpc-exporter-base`: grpc-js channel, deadline, gzip, metadata, user
 * agent). Metrics are written by our protobuf encoder, so staleness flags survive; logs by our
 * logs encoder (the stock serializer's bytes, faster). Every option is passed explicitly: nothing is taken from the process
 * environment behind the configuration's back. The official transport treats every failure as
 * final; retries on the codes the specification calls retryable happen here.
 */
export class GrpcTransport<T = ResourceMetrics> implements OtlpTransport<T> {
  private readonly _connections = new GrpcConnections();
  private readonly _delegate: IOtlpExportDelegate<T>;
  private readonly _timeout: number;
  /** Bumped by {@link cancel}: an export started before it stops retrying. */
  private _generation = 0;
  private readonly _waits = new Set<() => void>();

  /** `settings`: a signal's settings, or a whole exporter configuration (its metrics). */
  constructor(settings: SignalSettings | OtlpExporterConfig, tls: TlsMaterial | undefined) {
    const s = 'signal' in settings ? settings : signalSettings(settings, 'metrics');
    const { target, secure } = grpcTarget(s.endpoint, s.insecure);
    const channel = secure ? createSslCredentials(tls?.ca, tls?.key, tls?.cert) : createInsecureCredentials();
    const credentials = new KeptCredentials(channel, this._connections);
    const headers = { ...s.headers };
    this._timeout = s.timeout;
    const logs = s.signal === 'logs';
    // One delegate type for both signals: the serializer and the helper are what differ.
    const delegate = createOtlpGrpcExportDelegate<unknown, unknown>(
      {
        url: target,
        credentials: () => credentials,
        metadata: () => {
          const md = createEmptyMetadata();
          for (const [k, v] of Object.entries(headers)) md.set(k.toLowerCase(), v);
          return md;
        },
        compression: s.compression,
        timeoutMillis: s.timeout,
        // Sends are one at a time; a few more let a cancelled call finish while the next starts.
        concurrencyLimit: 4,
        userAgent: `tsmetrics/${VERSION}`,
      },
      (logs ? protobufLogsSerializer : protobufSerializer) as ISerializer<unknown, unknown>,
      logs ? 'otlp_grpc_log_exporter' : 'otlp_grpc_metric_exporter',
      (logs ? LogsExporterMetricsHelper : MetricsExporterMetricsHelper) as IExporterMetricsHelper<unknown>,
      undefined,
      logs ? 'LogsExportService' : 'MetricsExportService',
      logs ? GRPC_LOGS_PATH : GRPC_METRICS_PATH,
    );
    this._delegate = delegate as IOtlpExportDelegate<T>;
  }

  private _once(rm: T): Promise<ExportResult> {
    return new Promise((resolve) => this._delegate.export(rm, resolve));
  }

  /** Waits `ms`, or less when {@link cancel} comes first. */
  private _wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this._waits.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this._waits.add(done);
    });
  }

  async export(rm: T): Promise<ExportResult> {
    const generation = this._generation;
    const deadline = performance.now() + this._timeout;
    for (let n = 0; ; n++) {
      const r = await this._once(rm);
      if (r.code === ExportResultCode.SUCCESS || generation !== this._generation || n >= MAX_RETRIES) return r;
      const wait = retryDelayMs(r.error, n);
      // A wait past the deadline would only end in the deadline: stop now, as the HTTP transport does.
      if (wait === undefined || wait >= deadline - performance.now()) return r;
      await this._wait(wait);
      if (generation !== this._generation) return r;
    }
  }

  cancel(err: Error): void {
    this._generation++;
    for (const w of [...this._waits]) w();
    this._connections.cancel(err);
  }

  close(err: Error): void {
    this._generation++;
    for (const w of [...this._waits]) w();
    this._connections.close(err);
  }

  async shutdown(): Promise<void> {
    await this._delegate.shutdown();
  }
}
