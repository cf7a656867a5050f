import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import type { ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporterBase } from '@opentelemetry/exporter-metrics-otlp-http';
import { CompressionAlgorithm, type IOtlpExportDelegate } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { JsonLogsSerializer, LogsExporterMetricsHelper, MetricsExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { LogsBatch } from '../../src/model/logs.ts';
import type { SignalSettings } from './config.ts';
import { protobufLogsSerializer } from './logs-protobuf.ts';
import { jsonSerializer, protobufSerializer } from './serializer.ts';
import type { TlsMaterial } from './tls.ts';
import type { OtlpTransport } from './transport.ts';

/**
 * The HTTP agents of the official transport, with a hand on every socket they open. The transport
 * bounds a request only by socket idleness (a peer that trickles a byte a second keeps it open
 * for ever) and cannot cancel one, so giving up on an exchange means destroying its socket here.
 * Sockets are destroyed with an error the transport does not retry.
 */
class SocketKeeper {
  private readonly _sockets = new Set<Duplex>();
  private readonly _agents: Array<HttpAgent | HttpsAgent> = [];
  private readonly _tls: TlsMaterial | undefined;
  private _closedBy: Error | undefined;

  constructor(tls: TlsMaterial | undefined) {
    this._tls = tls;
  }

  /** The transport's `agentFactory` (keep-alive, as the transport's default agent). */
  readonly factory = (protocol: string): HttpAgent | HttpsAgent => {
    const agent = protocol === 'https:' ? new HttpsAgent({ keepAlive: true, ...this._tls }) : new HttpAgent({ keepAlive: true });
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

  cancel(err: Error): void {
    for (const s of this._sockets) s.destroy(err);
  }

  close(err: Error): void {
    this._closedBy = err;
    this.cancel(err);
    for (const a of this._agents) a.destroy();
  }
}

/** The official transport's options for one signal, every one of them given explicitly. */
function httpOptions(s: SignalSettings, sockets: SocketKeeper): ReturnType<typeof convertLegacyHttpOptions> {
  const json = s.protocol === 'http/json';
  return convertLegacyHttpOptions(
    {
      url: s.endpoint,
      headers: { ...s.headers },
      timeoutMillis: s.timeout,
      compression: s.compression === 'gzip' ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE,
      httpAgentOptions: sockets.factory,
    },
    s.signal === 'logs' ? 'LOGS' : 'METRICS',
    s.signal === 'logs' ? 'v1/logs' : 'v1/metrics',
    { 'Content-Type': json ? 'application/json' : 'application/x-protobuf' },
  );
}

/** The official OTLP/HTTP exporter (retries, Retry-After, timeout, gzip) with our serializer. */
class TsmetricsOtlpHttpExporter extends OTLPMetricExporterBase {
  constructor(s: SignalSettings, sockets: SocketKeeper) {
    const json = s.protocol === 'http/json';
    super(createOtlpHttpExportDelegate(httpOptions(s, sockets), json ? jsonSerializer : protobufSerializer, 'otlp_http_metric_exporter', MetricsExporterMetricsHelper, undefined));
  }
}

/**
 * The official logs delivery: the same node transport. Protobuf is written by our logs encoder
 * (the official serializer's bytes, at a fraction of its cost, from the size split's
 * measurement); JSON by the stock serializer.
 */
function logsDelegate(s: SignalSettings, sockets: SocketKeeper): IOtlpExportDelegate<LogsBatch> {
  const options = httpOptions(s, sockets);
  // The stock serializer takes a mutable array type but only reads it.
  if (s.protocol === 'http/json') return createOtlpHttpExportDelegate(options, JsonLogsSerializer, 'otlp_http_log_exporter', LogsExporterMetricsHelper, undefined) as unknown as IOtlpExportDelegate<LogsBatch>;
  return createOtlpHttpExportDelegate(options, protobufLogsSerializer, 'otlp_http_log_exporter', LogsExporterMetricsHelper, undefined);
}

/** OTLP/HTTP (protobuf or JSON) of one signal through the official transport. */
export class HttpTransport<T = ResourceMetrics> implements OtlpTransport<T> {
  private readonly _sockets: SocketKeeper;
  private readonly _exporter: { export(items: T, done: (r: ExportResult) => void): void; shutdown(): Promise<void> };

  constructor(s: SignalSettings, tls: TlsMaterial | undefined) {
    this._sockets = new SocketKeeper(tls);
    this._exporter = (s.signal === 'logs' ? logsDelegate(s, this._sockets) : new TsmetricsOtlpHttpExporter(s, this._sockets)) as unknown as typeof this._exporter;
  }

  export(items: T): Promise<ExportResult> {
    return new Promise((resolve) => this._exporter.export(items, resolve));
  }

  cancel(err: Error): void {
    this._sockets.cancel(err);
  }

  close(err: Error): void {
    this._sockets.close(err);
  }

  shutdown(): Promise<void> {
    return this._exporter.shutdown();
  }
}
