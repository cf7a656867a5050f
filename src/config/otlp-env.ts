/**
 * The OpenTelemetry exporter variables (OTEL_EXPORTER_OTLP_*, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_SERVICE_NAME) and how they build the environment pipeline's `otlp` exporter. A
 * signal-specific variable (`OTEL_EXPORTER_OTLP_METRICS_<X>`, `OTEL_EXPORTER_OTLP_LOGS_<X>`) wins
 * over the general one (`OTEL_EXPORTER_OTLP_<X>`) for its signal only, as the specification says. Every value is passed to the exporter
 * explicitly, so the official exporters never read the process environment on their own.
 */
import type { ConfigProblem } from '../errors.ts';
import { splitList, type SettingSchema } from './schema.ts';

/** The variables of this module (part of `EnvSettings`). */
export interface OtlpEnvSettings {
  OTEL_EXPORTER_OTLP_ENDPOINT: string;
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: string;
  OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: string;
  OTEL_EXPORTER_OTLP_LOGS_HEADERS: string;
  OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: string;
  OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: string;
  OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: number;
  OTEL_EXPORTER_OTLP_HEADERS: string;
  OTEL_EXPORTER_OTLP_METRICS_HEADERS: string;
  OTEL_EXPORTER_OTLP_PROTOCOL: string;
  OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: string;
  OTEL_EXPORTER_OTLP_COMPRESSION: string;
  OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: string;
  OTEL_EXPORTER_OTLP_TIMEOUT: number;
  OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: number;
  OTEL_EXPORTER_OTLP_CERTIFICATE: string;
  OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: string;
  OTEL_EXPORTER_OTLP_CLIENT_KEY: string;
  OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: string;
  OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: string;
  OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: string;
  OTEL_EXPORTER_OTLP_INSECURE: string;
  OTEL_EXPORTER_OTLP_METRICS_INSECURE: string;
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: string;
  OTEL_METRIC_EXPORT_INTERVAL: number;
  OTEL_RESOURCE_ATTRIBUTES: string;
  OTEL_SERVICE_NAME: string;
  OTLP_SELF_TELEMETRY: boolean;
}

const str = (env: string, doc: string, dflt = ''): SettingSchema<string> => ({ env, doc, format: String, default: dflt });
const protocols = ['http/protobuf', 'http/json', 'grpc'];

/** The schema of these variables; spread into the environment schema. */
export const otlpEnvSchema: { [K in keyof OtlpEnvSettings]: SettingSchema<OtlpEnvSettings[K]> } = {
  OTEL_EXPORTER_OTLP_ENDPOINT: str('OTEL_EXPORTER_OTLP_ENDPOINT', 'OTLP endpoint; enables OTLP push. HTTP: base URL (/v1/metrics is appended). gRPC: http(s)://host:port or host:port.'),
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: str('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'OTLP metrics endpoint, used as given (HTTP: the full URL).'),
  OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: str('OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', 'OTLP logs endpoint of logs pipelines, used as given (HTTP: the full URL; default: OTEL_EXPORTER_OTLP_ENDPOINT + /v1/logs).'),
  OTEL_EXPORTER_OTLP_LOGS_HEADERS: { env: 'OTEL_EXPORTER_OTLP_LOGS_HEADERS', doc: 'Headers for logs only; merged over OTEL_EXPORTER_OTLP_HEADERS.', format: 'secret', default: '', sensitive: true },
  OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: { env: 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', doc: 'Protocol for logs (default: OTEL_EXPORTER_OTLP_PROTOCOL).', format: ['', ...protocols], default: '' },
  OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: { env: 'OTEL_EXPORTER_OTLP_LOGS_COMPRESSION', doc: 'Compression for logs (default: OTEL_EXPORTER_OTLP_COMPRESSION).', format: ['', 'gzip', 'none'], default: '' },
  OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: { env: 'OTEL_EXPORTER_OTLP_LOGS_TIMEOUT', doc: 'Deadline for logs, ms (default: OTEL_EXPORTER_OTLP_TIMEOUT).', format: 'nat', default: 0 },
  OTEL_EXPORTER_OTLP_HEADERS: { env: 'OTEL_EXPORTER_OTLP_HEADERS', doc: 'key=value,… headers (gRPC: metadata) sent with OTLP requests.', format: 'secret', default: '', sensitive: true },
  OTEL_EXPORTER_OTLP_METRICS_HEADERS: { env: 'OTEL_EXPORTER_OTLP_METRICS_HEADERS', doc: 'Headers for metrics only; merged over OTEL_EXPORTER_OTLP_HEADERS.', format: 'secret', default: '', sensitive: true },
  OTEL_EXPORTER_OTLP_PROTOCOL: { env: 'OTEL_EXPORTER_OTLP_PROTOCOL', doc: 'http/protobuf, http/json or grpc.', format: protocols, default: 'http/protobuf' },
  OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: { env: 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', doc: 'Protocol for metrics (default: OTEL_EXPORTER_OTLP_PROTOCOL).', format: ['', ...protocols], default: '' },
  OTEL_EXPORTER_OTLP_COMPRESSION: { env: 'OTEL_EXPORTER_OTLP_COMPRESSION', doc: 'gzip or none.', format: ['gzip', 'none'], default: 'none' },
  OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: { env: 'OTEL_EXPORTER_OTLP_METRICS_COMPRESSION', doc: 'Compression for metrics (default: OTEL_EXPORTER_OTLP_COMPRESSION).', format: ['', 'gzip', 'none'], default: '' },
  OTEL_EXPORTER_OTLP_TIMEOUT: { env: 'OTEL_EXPORTER_OTLP_TIMEOUT', doc: 'OTLP request deadline incl. retries, ms.', format: 'ms_number', default: 10_000 },
  OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: { env: 'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', doc: 'Deadline for metrics, ms (default: OTEL_EXPORTER_OTLP_TIMEOUT).', format: 'nat', default: 0 },
  OTEL_EXPORTER_OTLP_CERTIFICATE: str('OTEL_EXPORTER_OTLP_CERTIFICATE', 'PEM file of the CAs trusted for the OTLP endpoint’s certificate (default: the system’s).'),
  OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: str('OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE', 'CA file for metrics (default: OTEL_EXPORTER_OTLP_CERTIFICATE).'),
  OTEL_EXPORTER_OTLP_CLIENT_KEY: str('OTEL_EXPORTER_OTLP_CLIENT_KEY', 'PEM private key for mutual TLS with the OTLP endpoint.'),
  OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: str('OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY', 'Client key for metrics (default: OTEL_EXPORTER_OTLP_CLIENT_KEY).'),
  OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: str('OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE', 'PEM client certificate (chain) for mutual TLS with the OTLP endpoint.'),
  OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: str('OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE', 'Client certificate for metrics (default: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE).'),
  OTEL_EXPORTER_OTLP_INSECURE: str('OTEL_EXPORTER_OTLP_INSECURE', 'true: plaintext gRPC for an endpoint written without http:// or https://.'),
  OTEL_EXPORTER_OTLP_METRICS_INSECURE: str('OTEL_EXPORTER_OTLP_METRICS_INSECURE', 'Insecure setting for metrics (default: OTEL_EXPORTER_OTLP_INSECURE).'),
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: str('OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE', 'cumulative, delta or lowmemory (OTLP only; /metrics is always cumulative).', 'cumulative'),
  OTEL_METRIC_EXPORT_INTERVAL: { env: 'OTEL_METRIC_EXPORT_INTERVAL', doc: 'OTLP push interval, ms (0 = push as each cycle completes); also the own metrics’ push interval when set.', format: 'nat', default: 0 },
  OTEL_RESOURCE_ATTRIBUTES: str('OTEL_RESOURCE_ATTRIBUTES', 'key=value,… resource attributes of every OTLP batch (e.g. service.instance.id=…, deployment.environment=prod).'),
  OTEL_SERVICE_NAME: str('OTEL_SERVICE_NAME', 'service.name of every OTLP batch (default: tsmetrics).'),
  OTLP_SELF_TELEMETRY: { env: 'OTLP_SELF_TELEMETRY', doc: 'Also push tsmetrics’ own metrics (tsmetrics_source_up, errors, drops) over OTLP.', format: 'bool_text', default: true },
};

/** Which variable a key of the env-built `otlp` exporter comes from (for problem messages). */
export const OTLP_ENV_PATHS: ReadonlyArray<[RegExp, string]> = [
  [/^exporters\.otlp\.endpoint$/, 'OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'],
  [/^exporters\.otlp\.headers/, 'OTEL_EXPORTER_OTLP_HEADERS or OTEL_EXPORTER_OTLP_METRICS_HEADERS'],
  [/^exporters\.otlp\.metrics_headers/, 'OTEL_EXPORTER_OTLP_METRICS_HEADERS'],
  [/^exporters\.otlp\.logs_headers/, 'OTEL_EXPORTER_OTLP_LOGS_HEADERS'],
  [/^exporters\.otlp\.logs_endpoint$/, 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT'],
  [/^exporters\.otlp\.timeout$/, 'OTEL_EXPORTER_OTLP_TIMEOUT or OTEL_EXPORTER_OTLP_METRICS_TIMEOUT'],
  [/^exporters\.otlp\.logs_timeout$/, 'OTEL_EXPORTER_OTLP_LOGS_TIMEOUT or OTEL_EXPORTER_OTLP_TIMEOUT'],
  [/^exporters\.otlp\.interval$/, 'OTEL_METRIC_EXPORT_INTERVAL'],
  [/^exporters\.otlp\.tls\.ca_file$/, 'OTEL_EXPORTER_OTLP_CERTIFICATE or OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE'],
  [/^exporters\.otlp\.tls\.cert_file$/, 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE or OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE'],
  [/^exporters\.otlp\.tls\.key_file$/, 'OTEL_EXPORTER_OTLP_CLIENT_KEY or OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY'],
  [/^exporters\.otlp\.resource_attributes/, 'OTEL_RESOURCE_ATTRIBUTES'],
  [/^exporters\.otlp\.shard_/, 'SHARD_COUNT / SHARD_INDEX'],
];

/** Parses `k=v,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES), URL-decoding as the spec says. */
export function parseKeyValueList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of splitList(text)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return out;
}

/** The metrics-specific value when set, else the general one. */
const pick = (specific: string, general: string): string => (specific !== '' ? specific : general);

/** What the rest of the environment tells the exporter (shards, the cycle interval). */
export interface OtlpEnvContext {
  readonly shardIndex: number;
  readonly shardCount: number;
  /** The receivers' interval, ms: the default for pushing the own metrics. */
  readonly scrapeIntervalMs: number;
}

const temporalityOf = (e: OtlpEnvSettings): string => e.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.trim().toLowerCase();
const insecureOf = (e: OtlpEnvSettings): string => pick(e.OTEL_EXPORTER_OTLP_METRICS_INSECURE, e.OTEL_EXPORTER_OTLP_INSECURE).trim().toLowerCase();

/** Values of these variables the specification does not allow, each named by its variable. */
export function otlpEnvProblems(e: OtlpEnvSettings): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!['cumulative', 'delta', 'lowmemory'].includes(temporalityOf(e))) {
    problems.push({ source: 'env', path: 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE', message: 'must be cumulative, delta or lowmemory' });
  }
  if (!['', 'true', 'false'].includes(insecureOf(e))) {
    problems.push({ source: 'env', path: e.OTEL_EXPORTER_OTLP_METRICS_INSECURE ? 'OTEL_EXPORTER_OTLP_METRICS_INSECURE' : 'OTEL_EXPORTER_OTLP_INSECURE', message: 'must be true or false' });
  }
  return problems;
}

/** Whether the environment names an OTLP endpoint for metrics (a logs endpoint alone does not). */
export function otlpCarriesMetrics(e: OtlpEnvSettings): boolean {
  return e.OTEL_EXPORTER_OTLP_ENDPOINT !== '' || e.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT !== '';
}

/**
 * The env pipeline's `otlp` exporter, or undefined when no endpoint is set (OTLP stays off).
 * Expects {@link otlpEnvProblems} to have found nothing.
 */
export function otlpExporterFromEnv(e: OtlpEnvSettings, ctx: OtlpEnvContext): Record<string, unknown> | undefined {
  const protocol = pick(e.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, e.OTEL_EXPORTER_OTLP_PROTOCOL);
  const temporality = temporalityOf(e);
  const insecureText = insecureOf(e);
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  const specific = e.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT;
  // A logs endpoint alone makes an exporter for logs only: the env pipeline leaves it out of
  // the metrics pipeline (see otlpCarriesMetrics), and it pushes no own metrics anywhere.
  const logsOnly = !otlpCarriesMetrics(e);
  if (logsOnly && e.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT === '') return undefined;
  // HTTP appends the signal path to the general endpoint; gRPC endpoints have no path.
  const endpoint = logsOnly ? '' : specific || (protocol === 'grpc' ? base : `${base.replace(/\/+$/, '')}/v1/metrics`);
  // Logs: their own variables, else the general ones (never the metrics-specific ones).
  const logsProtocol = pick(e.OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, e.OTEL_EXPORTER_OTLP_PROTOCOL);
  // When the metrics endpoint is the general one over the same kind of transport, the exporter
  // derives the same logs endpoint from it (and a bad general endpoint is reported once).
  const sameAsMetrics = !specific && (logsProtocol === 'grpc') === (protocol === 'grpc');
  const logsEndpoint =
    e.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT ||
    (sameAsMetrics ? '' : base ? (logsProtocol === 'grpc' ? base : `${base.replace(/\/+$/, '')}/v1/logs`) : logsProtocol === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318/v1/logs');
  const resource = parseKeyValueList(e.OTEL_RESOURCE_ATTRIBUTES);
  if (e.OTEL_SERVICE_NAME) resource['service.name'] = e.OTEL_SERVICE_NAME;
  return {
    endpoint,
    protocol,
    headers: parseKeyValueList(e.OTEL_EXPORTER_OTLP_HEADERS),
    metrics_headers: parseKeyValueList(e.OTEL_EXPORTER_OTLP_METRICS_HEADERS),
    compression: pick(e.OTEL_EXPORTER_OTLP_METRICS_COMPRESSION, e.OTEL_EXPORTER_OTLP_COMPRESSION),
    timeout: `${e.OTEL_EXPORTER_OTLP_METRICS_TIMEOUT || e.OTEL_EXPORTER_OTLP_TIMEOUT}ms`,
    logs_endpoint: logsEndpoint,
    logs_protocol: logsProtocol,
    logs_headers: parseKeyValueList(e.OTEL_EXPORTER_OTLP_LOGS_HEADERS),
    logs_compression: pick(e.OTEL_EXPORTER_OTLP_LOGS_COMPRESSION, e.OTEL_EXPORTER_OTLP_COMPRESSION),
    logs_timeout: `${e.OTEL_EXPORTER_OTLP_LOGS_TIMEOUT || e.OTEL_EXPORTER_OTLP_TIMEOUT}ms`,
    interval: `${e.OTEL_METRIC_EXPORT_INTERVAL}ms`,
    tls: {
      insecure: insecureText === 'true',
      ca_file: pick(e.OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE, e.OTEL_EXPORTER_OTLP_CERTIFICATE),
      cert_file: pick(e.OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE, e.OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE),
      key_file: pick(e.OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY, e.OTEL_EXPORTER_OTLP_CLIENT_KEY),
    },
    temporality_preference: temporality,
    self_telemetry: { enabled: e.OTLP_SELF_TELEMETRY && !logsOnly, interval: `${e.OTEL_METRIC_EXPORT_INTERVAL || ctx.scrapeIntervalMs}ms` },
    resource_attributes: resource,
    shard_index: ctx.shardIndex,
    shard_count: Math.max(1, ctx.shardCount),
  };
}
