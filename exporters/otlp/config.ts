import type { Signal } from '../../src/component/types.ts';
import { defineSchema } from '../../src/config/schema.ts';
import { pemFileProblem } from './tls.ts';

/** How sums and histograms are sent (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE). */
export type TemporalityPreference = 'cumulative' | 'delta' | 'lowmemory';

export interface OtlpTlsConfig {
  /** Plaintext for a scheme-less gRPC endpoint (`collector:4317`); the scheme decides otherwise. */
  insecure: boolean;
  ca_file: string;
  cert_file: string;
  key_file: string;
}

export interface OtlpSelfTelemetryConfig {
  enabled: boolean;
  interval: number;
}

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export interface OtlpExporterConfig {
  endpoint: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  timeout: number;
  /** Headers of metrics requests only, merged over `headers`. */
  metrics_headers: Record<string, string>;
  logs_endpoint: string;
  /** '' = `protocol`. */
  logs_protocol: OtlpProtocol | '';
  /** Headers of logs requests only, merged over `headers`. */
  logs_headers: Record<string, string>;
  /** '' = `compression`. */
  logs_compression: 'gzip' | 'none' | '';
  /** 0 = `timeout`. */
  logs_timeout: number;
  interval: number;
  max_queue_batches: number;
  max_request_bytes: number;
  resource_attributes: Record<string, string>;
  tls: OtlpTlsConfig;
  temporality_preference: TemporalityPreference | 'low_memory';
  self_telemetry: OtlpSelfTelemetryConfig;
  instance_id: string;
  shard_index: number;
  shard_count: number;
}

/** The endpoint used when none is configured, per protocol (the OTLP specification's defaults). */
export function defaultEndpoint(protocol: OtlpProtocol, signal: Signal = 'metrics'): string {
  return protocol === 'grpc' ? 'http://localhost:4317' : `http://localhost:4318/v1/${signal}`;
}

/** Where and how one signal's requests go, after the logs_* keys have fallen back. */
export interface SignalSettings {
  readonly signal: Signal;
  readonly endpoint: string;
  readonly protocol: OtlpProtocol;
  readonly headers: Record<string, string>;
  readonly compression: 'gzip' | 'none';
  readonly timeout: number;
  readonly insecure: boolean;
}

/**
 * The logs endpoint when `logs_endpoint` is empty: over HTTP, `endpoint` with its `/v1/metrics`
 * replaced by `/v1/logs` (any other path is the metrics' own, so the default instead); over gRPC,
 * the metrics' endpoint when that is gRPC too (one service per host:port), else the default.
 */
function derivedLogsEndpoint(c: OtlpExporterConfig, protocol: OtlpProtocol): string {
  if (protocol === 'grpc') return c.protocol === 'grpc' && c.endpoint ? c.endpoint : defaultEndpoint('grpc');
  if (c.protocol !== 'grpc' && /\/v1\/metrics\/?$/.test(c.endpoint)) return c.endpoint.replace(/\/v1\/metrics\/?$/, '/v1/logs');
  return defaultEndpoint(protocol, 'logs');
}

/** The settings requests of `signal` use. */
export function signalSettings(c: OtlpExporterConfig, signal: Signal): SignalSettings {
  if (signal === 'metrics') {
    return { signal, endpoint: c.endpoint || defaultEndpoint(c.protocol), protocol: c.protocol, headers: { ...c.headers, ...c.metrics_headers }, compression: c.compression, timeout: c.timeout, insecure: c.tls.insecure };
  }
  const protocol = c.logs_protocol || c.protocol;
  return {
    signal,
    endpoint: c.logs_endpoint || derivedLogsEndpoint(c, protocol),
    protocol,
    headers: { ...c.headers, ...c.logs_headers },
    compression: c.logs_compression || c.compression,
    timeout: c.logs_timeout || c.timeout,
    insecure: c.tls.insecure,
  };
}

/** `low_memory` (the SDK configuration file's spelling) is `lowmemory` (the variable's). */
export function temporalityOf(c: Pick<OtlpExporterConfig, 'temporality_preference'>): TemporalityPreference {
  return c.temporality_preference === 'low_memory' ? 'lowmemory' : c.temporality_preference;
}

// gRPC metadata keys and printable values (grpc-js throws on anything else, at send time).
const GRPC_KEY = /^[0-9a-z_.-]+$/;
const GRPC_VALUE = /^[\x20-\x7e]*$/;

export const configSchema = defineSchema<OtlpExporterConfig>(
  {
    endpoint: {
      doc: 'OTLP/HTTP: the full metrics URL (http://collector:4318/v1/metrics). gRPC: http(s)://host:port or host:port, no path. Empty = the protocol’s default (localhost:4318/v1/metrics or localhost:4317).',
      format: String,
      default: '',
    },
    protocol: { doc: 'http/protobuf, http/json or grpc.', format: ['http/protobuf', 'http/json', 'grpc'], default: 'http/protobuf' },
    headers: { doc: 'Headers (gRPC: metadata) sent with every request (secrets are redacted in output).', format: 'string_map', default: {}, sensitive: true },
    compression: { doc: 'gzip or none.', format: ['gzip', 'none'], default: 'none' },
    timeout: { doc: 'Deadline of one export including retries and the whole response.', format: 'positive_duration', default: 10_000 },
    metrics_headers: { doc: 'Headers of metrics requests only, merged over headers (OTEL_EXPORTER_OTLP_METRICS_HEADERS).', format: 'string_map', default: {}, sensitive: true },
    logs_endpoint: {
      doc: 'Logs pipelines: the full logs URL (http://collector:4318/v1/logs), or for gRPC host:port. Empty = endpoint with /v1/metrics replaced by /v1/logs (gRPC: endpoint), else the protocol’s default (localhost:4318/v1/logs or localhost:4317).',
      format: String,
      default: '',
    },
    logs_protocol: { doc: 'Protocol of logs requests (empty = protocol).', format: ['', 'http/protobuf', 'http/json', 'grpc'], default: '' },
    logs_headers: { doc: 'Headers of logs requests only, merged over headers.', format: 'string_map', default: {}, sensitive: true },
    logs_compression: { doc: 'Compression of logs requests (empty = compression).', format: ['', 'gzip', 'none'], default: '' },
    logs_timeout: { doc: 'Deadline of one logs export (0 = timeout).', format: 'duration', default: 0 },
    interval: { doc: 'Send queued batches on this interval (0 = as each cycle completes).', format: 'duration', default: 0 },
    max_queue_batches: { doc: 'Batches waiting while the endpoint is slow or down; the oldest are dropped (and counted) beyond this.', format: 'nat', default: 16 },
    max_request_bytes: {
      doc: 'Largest request, encoded (protobuf); a bigger batch goes out as several requests of whole points. The Collector’s OTLP receiver refuses gRPC messages over 4 MiB by default. 0 = no limit.',
      format: 'nat',
      default: 4 * 1024 * 1024,
    },
    resource_attributes: { doc: 'Extra resource attributes (service.namespace, deployment.environment, …); they win over the ones tsmetrics sets.', format: 'string_map', default: {} },
    tls: {
      insecure: { doc: 'gRPC with a scheme-less endpoint: plaintext instead of TLS (an http:// or https:// endpoint decides by its scheme).', format: Boolean, default: false },
      ca_file: { doc: 'PEM file of the CAs that may sign the endpoint’s certificate (default: the system’s).', format: String, default: '' },
      cert_file: { doc: 'PEM client certificate (chain) for mutual TLS; needs key_file.', format: String, default: '' },
      key_file: { doc: 'PEM private key of cert_file.', format: String, default: '' },
    },
    temporality_preference: {
      doc: 'cumulative, delta or lowmemory, as the OpenTelemetry specification defines them (delta: monotonic sums and histograms as deltas; lowmemory: only tsmetrics’ own counters and histograms, scraped ones stay cumulative). Prometheus output is always cumulative.',
      format: ['cumulative', 'delta', 'lowmemory', 'low_memory'],
      default: 'cumulative',
    },
    self_telemetry: {
      enabled: { doc: 'Also push tsmetrics’ own metrics (tsmetrics_source_up, errors, drops, cycle durations) through this exporter.', format: Boolean, default: true },
      interval: { doc: 'How often the own metrics are pushed.', format: 'positive_duration', default: 30_000 },
    },
    instance_id: {
      doc: 'service.instance.id of every batch. Empty = this host’s name (the pod name in Kubernetes), plus `/shard-<shard_index>` when shard_count > 1.',
      format: String,
      default: '',
    },
    shard_index: { doc: 'This replica’s shard (resource attribute tsmetrics.shard.index when shard_count > 1).', format: 'nat', default: 0 },
    shard_count: { doc: 'Replicas sharing the device scrape (1 = not sharded).', format: 'nat', default: 1 },
  },
  (c) => {
    const problems: Array<{ path: string; message: string }> = [];
    if (c.endpoint) problems.push(...endpointProblems(c.protocol, c.endpoint));
    if (c.logs_endpoint) problems.push(...endpointProblems(c.logs_protocol || c.protocol, c.logs_endpoint).map((p) => ({ ...p, path: 'logs_endpoint' })));
    if (c.max_queue_batches < 1) problems.push({ path: 'max_queue_batches', message: 'must be at least 1' });
    if (c.shard_count < 1) problems.push({ path: 'shard_count', message: 'must be at least 1' });
    else if (c.shard_index >= c.shard_count) problems.push({ path: 'shard_index', message: `must be below shard_count (${c.shard_count})` });
    if (!!c.tls.cert_file !== !!c.tls.key_file) problems.push({ path: c.tls.cert_file ? 'tls.key_file' : 'tls.cert_file', message: 'mutual TLS needs both cert_file and key_file' });
    for (const k of ['ca_file', 'cert_file', 'key_file'] as const) {
      const p = c.tls[k] ? pemFileProblem(c.tls[k]) : undefined;
      if (p) problems.push({ path: `tls.${k}`, message: p });
    }
    // Headers become gRPC metadata for every signal that goes over gRPC.
    const metricsGrpc = c.protocol === 'grpc';
    const logsGrpc = (c.logs_protocol || c.protocol) === 'grpc';
    const grpcHeaders: Array<['headers' | 'metrics_headers' | 'logs_headers', boolean]> = [
      ['headers', metricsGrpc || logsGrpc],
      ['metrics_headers', metricsGrpc],
      ['logs_headers', logsGrpc],
    ];
    for (const [key, grpc] of grpcHeaders) {
      if (!grpc) continue;
      for (const [k, v] of Object.entries(c[key])) {
        const name = k.toLowerCase();
        if (!GRPC_KEY.test(name) || name.endsWith('-bin') || name.startsWith('grpc-')) problems.push({ path: `${key}.${k}`, message: 'not usable as gRPC metadata: letters, digits, _ . - only, not ending in -bin, not starting with grpc-' });
        else if (!GRPC_VALUE.test(v)) problems.push({ path: `${key}.${k}`, message: 'gRPC metadata values must be printable ASCII' });
      }
    }
    return problems;
  },
);

function endpointProblems(protocol: OtlpProtocol, endpoint: string): Array<{ path: string; message: string }> {
  if (protocol === 'grpc') {
    // The specification allows a gRPC endpoint without a scheme; `tls.insecure` then decides.
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`;
    if (!URL.canParse(withScheme)) return [{ path: 'endpoint', message: 'must be http(s)://host:port or host:port' }];
    const u = new URL(withScheme);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return [{ path: 'endpoint', message: 'gRPC endpoints are http://host:port (plaintext), https://host:port or host:port' }];
    if (!u.hostname) return [{ path: 'endpoint', message: 'names no host' }];
    if (u.pathname !== '/' && u.pathname !== '') return [{ path: 'endpoint', message: `a gRPC endpoint has no path (got ${u.pathname}); the service path is fixed by OTLP` }];
    return [];
  }
  if (!URL.canParse(endpoint)) return [{ path: 'endpoint', message: 'must be an absolute http(s) URL' }];
  const u = new URL(endpoint);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return [{ path: 'endpoint', message: 'must be an http:// or https:// URL' }];
  return [];
}
