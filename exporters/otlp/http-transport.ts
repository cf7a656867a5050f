import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import type { ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporterBase } from '@opentelemetry/exporter-metrics-otlp-http';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { MetricsExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { defaultEndpoint, type OtlpExporterConfig } from './config.ts';
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

/** The official OTLP/HTTP exporter (retries, Retry-After, timeout, gzip) with our serializer. */
class TsmetricsOtlpHttpExporter extends OTLPMetricExporterBase {
  constructor(c: OtlpExporterConfig, sockets: SocketKeeper) {
    const json = c.protocol === 'http/json';
    const options = convertLegacyHttpOptions(
      {
        url: c.endpoint || defaultEndpoint(c.protocol),
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

/** OTLP/HTTP (protobuf or JSON) through the official transport. */
export class HttpTransport implements OtlpTransport {
  private readonly _sockets: SocketKeeper;
  private readonly _exporter: TsmetricsOtlpHttpExporter;

  constructor(c: OtlpExporterConfig, tls: TlsMaterial | undefined) {
    this._sockets = new SocketKeeper(tls);
    this._exporter = new TsmetricsOtlpHttpExporter(c, this._sockets);
  }

  export(rm: ResourceMetrics): Promise<ExportResult> {
    return new Promise((resolve) => this._exporter.export(rm, resolve));
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
