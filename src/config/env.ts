import convict from 'convict';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { addConfigFormats, type SettingSchema } from './schema.ts';
import type { RawServiceConfig } from './service.ts';
import { applySecretFiles } from './secrets-file.ts';
import { OTLP_ENV_PATHS, otlpCarriesMetrics, otlpEnvProblems, otlpEnvSchema, otlpExporterFromEnv, type OtlpEnvSettings } from './otlp-env.ts';
import { COLLECTOR_NAMES } from '../../receivers/tailscale_api/collectors/spec.ts';

/** Environment variables tsmetrics reads (the Go exporter's names and meanings, plus additions). */
// The OTEL_* variables live in otlp-env.ts.
export interface EnvSettings extends OtlpEnvSettings {
  OAUTH_CLIENT_ID: string;
  OAUTH_CLIENT_SECRET: string;
  OAUTH_TOKEN: string;
  TS_API_KEY: string;
  TAILNET_NAME: string;
  TAILSCALE_API_URL: string;
  PORT: number;
  ENV: string;
  BIND_HOST: string;
  METRICS_TOKEN: string;
  LOG_LEVEL: string;
  LOG_FORMAT: string;
  SCRAPE_INTERVAL: number;
  CLIENT_METRICS_PORT: number;
  CLIENT_METRICS_TIMEOUT: number;
  CLIENT_METRICS_ALLOWED_CIDRS: string[];
  MAX_CONCURRENT_SCRAPES: number;
  REQUIRE_EXPORTER_TAG: boolean;
  SCRAPE_TAG: string;
  TARGET_DEVICES: string[];
  EXCLUDE_DEVICES: string[];
  DEVICE_TAGS: string[];
  TEST_DEVICES: string[];
  USE_TSNET: boolean;
  TSNET_HOSTNAME: string;
  TSNET_STATE_DIR: string;
  TSNET_TAGS: string[];
  TS_AUTHKEY: string;
  CONFIG_FILE: string;
  DEMO_DEVICES: number;
  SHARD_COUNT: number;
  SHARD_INDEX: number;
  TAILSCALED_PATH: string;
  TAILSCALE_PATH: string;
  TS_PROXY_URL: string;
  TS_LOCALAPI_SOCKET: string;
  TSNET_SERVE: boolean;
  TSNET_STARTUP_TIMEOUT: number;
  // Headscale (receivers/headscale)
  HEADSCALE_URL: string;
  HEADSCALE_API_KEY: string;
  HEADSCALE_API_KEY_FILE: string;
  HEADSCALE_METRICS_URL: string;
  HEADSCALE_TAILNET: string;
  DEMO_HEADSCALE: boolean;
  // Secrets from files (secrets-file.ts) and the tailscale_api collectors
  TS_API_KEY_FILE: string;
  OAUTH_TOKEN_FILE: string;
  OAUTH_CLIENT_SECRET_FILE: string;
  OAUTH_ID_TOKEN_FILE: string;
  METRICS_TOKEN_FILE: string;
  TS_AUTHKEY_FILE: string;
  OTEL_EXPORTER_OTLP_HEADERS_FILE: string;
  TS_API_COLLECTORS: string[];
  // Logs (receivers/tailscale_logs, connectors, exporters/debug)
  TS_LOG_TYPES: string[];
  TS_LOG_INTERVAL: number;
  TS_LOG_LAG: number;
  TS_LOG_INITIAL_WINDOW: number;
  STORAGE_DIR: string;
  TS_LOG_PRIVACY_ACTORS: string;
  TS_LOG_PRIVACY_EXTERNAL_ADDRESSES: string;
  TS_LOG_HASH_KEY: string;
  FLOW_METRICS_MAX_SERIES: number;
  DEBUG_EXPORTER: string;
  DEBUG_VERBOSITY: string;
}

addConfigFormats();
convict.addFormats({
  bool_text: {
    validate(v: unknown) {
      if (typeof v !== 'boolean') throw new Error('must be true or false');
    },
    coerce(v: unknown) {
      const s = String(v).trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off', ''].includes(s)) return false;
      return v;
    },
  },
  ms_number: {
    // The OTel spec gives OTEL_EXPORTER_OTLP_TIMEOUT and OTEL_METRIC_EXPORT_INTERVAL in milliseconds.
    validate(v: unknown) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error('must be a positive whole number of milliseconds');
    },
    coerce(v: unknown) {
      return /^\d+$/.test(String(v)) ? Number(v) : v;
    },
  },
});

const s = (env: string, doc: string, dflt = ''): SettingSchema<string> => ({ env, doc, format: String, default: dflt });
const secret = (env: string, doc: string): SettingSchema<string> => ({ env, doc, format: 'secret', default: '', sensitive: true });
const list = (env: string, doc: string, dflt: string[] = []): SettingSchema<string[]> => ({ env, doc, format: 'string_list', default: dflt });

/** The environment schema; its docs are the README's configuration reference. */
// Typed with our own SettingSchema so the published declarations do not need @types/convict.
export const envSchema: { [K in keyof EnvSettings]: SettingSchema<EnvSettings[K]> } = {
  OAUTH_CLIENT_ID: s('OAUTH_CLIENT_ID', 'Tailscale OAuth client ID (client-credentials flow).'),
  OAUTH_CLIENT_SECRET: secret('OAUTH_CLIENT_SECRET', 'Tailscale OAuth client secret.'),
  OAUTH_TOKEN: secret('OAUTH_TOKEN', 'Alias of TS_API_KEY (the Go exporter’s static token).'),
  TS_API_KEY: secret('TS_API_KEY', 'Tailscale API access token (tskey-api-…).'),
  TAILNET_NAME: s('TAILNET_NAME', 'Tailnet ID or name; "-" is the credential’s own tailnet.', '-'),
  TAILSCALE_API_URL: { env: 'TAILSCALE_API_URL', doc: 'Tailscale API base URL.', format: 'url_or_empty', default: 'https://api.tailscale.com' },
  PORT: { env: 'PORT', doc: 'HTTP server port.', format: 'port', default: 9100 },
  ENV: s('ENV', '`production`/`prod` binds 0.0.0.0, anything else 127.0.0.1.', 'development'),
  BIND_HOST: s('BIND_HOST', 'Explicit bind address (overrides ENV).'),
  METRICS_TOKEN: secret('METRICS_TOKEN', 'Bearer token required on /metrics and /debug.'),
  LOG_LEVEL: { env: 'LOG_LEVEL', doc: 'debug, info, warn or error.', format: ['debug', 'info', 'warn', 'error'], default: 'info' },
  LOG_FORMAT: { env: 'LOG_FORMAT', doc: 'text or json.', format: ['text', 'json'], default: 'text' },
  SCRAPE_INTERVAL: { env: 'SCRAPE_INTERVAL', doc: 'Collection interval of both receivers.', format: 'positive_duration', default: 30_000 },
  CLIENT_METRICS_PORT: { env: 'CLIENT_METRICS_PORT', doc: 'Port of the devices’ client metrics (tailscaled web client).', format: 'port', default: 5252 },
  CLIENT_METRICS_TIMEOUT: { env: 'CLIENT_METRICS_TIMEOUT', doc: 'Per-device scrape timeout.', format: 'positive_duration', default: 10_000 },
  CLIENT_METRICS_ALLOWED_CIDRS: { env: 'CLIENT_METRICS_ALLOWED_CIDRS', doc: 'Networks device scrapes may dial.', format: 'cidr_list', default: ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'] },
  MAX_CONCURRENT_SCRAPES: { env: 'MAX_CONCURRENT_SCRAPES', doc: 'Parallel device scrapes.', format: 'nat', default: 10 },
  REQUIRE_EXPORTER_TAG: { env: 'REQUIRE_EXPORTER_TAG', doc: 'Only scrape devices carrying SCRAPE_TAG.', format: 'bool_text', default: true },
  SCRAPE_TAG: s('SCRAPE_TAG', 'Tag a device needs to be scraped (with or without the tag: prefix).', 'exporter'),
  TARGET_DEVICES: list('TARGET_DEVICES', 'Only these devices (name, hostname or id; * globs).'),
  EXCLUDE_DEVICES: list('EXCLUDE_DEVICES', 'Never these devices (* globs).'),
  DEVICE_TAGS: list('DEVICE_TAGS', 'Only devices with one of these tags.'),
  TEST_DEVICES: list('TEST_DEVICES', 'Demo mode: names of the simulated devices.'),
  USE_TSNET: { env: 'USE_TSNET', doc: 'Run as a tailnet node through a userspace tailscaled.', format: 'bool_text', default: false },
  TSNET_HOSTNAME: s('TSNET_HOSTNAME', 'Hostname of the exporter’s node.', 'tsmetrics'),
  TSNET_STATE_DIR: s('TSNET_STATE_DIR', 'State directory of the exporter’s node.', '/tmp/tsnet-tsmetrics'),
  TSNET_TAGS: list('TSNET_TAGS', 'Tags the exporter’s node advertises.'),
  TS_AUTHKEY: secret('TS_AUTHKEY', 'Auth key for the exporter’s node.'),
  CONFIG_FILE: s('CONFIG_FILE', 'YAML pipeline file; replaces the env-built pipeline.'),
  ...otlpEnvSchema,
  DEMO_DEVICES: { env: 'DEMO_DEVICES', doc: 'Demo mode: number of simulated devices.', format: 'nat', default: 12 },
  SHARD_COUNT: { env: 'SHARD_COUNT', doc: 'Replicas sharing the device scrape (stable hash of the device id).', format: 'nat', default: 1 },
  TAILSCALED_PATH: s('TAILSCALED_PATH', 'tsnet mode: tailscaled binary (default: found on PATH).'),
  TAILSCALE_PATH: s('TAILSCALE_PATH', 'tsnet mode: tailscale CLI (default: beside tailscaled, else on PATH).'),
  TS_PROXY_URL: { env: 'TS_PROXY_URL', doc: 'Reach devices through an already-running tailscaled’s HTTP proxy (sidecar), e.g. http://127.0.0.1:1055.', format: 'url_or_empty', default: '' },
  TS_LOCALAPI_SOCKET: s('TS_LOCALAPI_SOCKET', 'Read this tailscaled’s own metrics from its LocalAPI socket (local_tailscaled receiver).'),
  TSNET_SERVE: { env: 'TSNET_SERVE', doc: 'tsnet mode: offer the HTTP endpoints on the tailnet (tailscale serve).', format: 'bool_text', default: true },
  TSNET_STARTUP_TIMEOUT: { env: 'TSNET_STARTUP_TIMEOUT', doc: 'tsnet mode: how long to wait for the node to be Running.', format: 'positive_duration', default: 120_000 },
  SHARD_INDEX: { env: 'SHARD_INDEX', doc: 'This replica’s shard, 0 … SHARD_COUNT−1; only shard 0 exports the API metrics.', format: 'nat', default: 0 },
  // Headscale (receivers/headscale)
  HEADSCALE_URL: { env: 'HEADSCALE_URL', doc: 'Headscale server URL; watches its tailnet (headscale receiver), beside or instead of a Tailscale one.', format: 'url_or_empty', default: '' },
  HEADSCALE_API_KEY: secret('HEADSCALE_API_KEY', 'Headscale API key (headscale apikeys create).'),
  HEADSCALE_API_KEY_FILE: s('HEADSCALE_API_KEY_FILE', 'File holding the Headscale API key (re-read every cycle), instead of HEADSCALE_API_KEY.'),
  HEADSCALE_METRICS_URL: { env: 'HEADSCALE_METRICS_URL', doc: 'Headscale’s own /metrics (metrics_listen_addr) to forward, e.g. http://127.0.0.1:9090/metrics.', format: 'url_or_empty', default: '' },
  HEADSCALE_TAILNET: s('HEADSCALE_TAILNET', 'tailnet label of the Headscale series (default: none, or the server’s host when a Tailscale tailnet is watched too).'),
  DEMO_HEADSCALE: { env: 'DEMO_HEADSCALE', doc: 'Demo mode: watch the simulated tailnet through a simulated Headscale server instead of the Tailscale API.', format: 'bool_text', default: false },
  // Secrets from files (secrets-file.ts) and the tailscale_api collectors
  TS_API_KEY_FILE: s('TS_API_KEY_FILE', 'File holding TS_API_KEY (read at start and again after a 401).'),
  OAUTH_TOKEN_FILE: s('OAUTH_TOKEN_FILE', 'File holding OAUTH_TOKEN (alias of TS_API_KEY_FILE).'),
  OAUTH_CLIENT_SECRET_FILE: s('OAUTH_CLIENT_SECRET_FILE', 'File holding OAUTH_CLIENT_SECRET (read at start and on every token renewal).'),
  OAUTH_ID_TOKEN_FILE: s('OAUTH_ID_TOKEN_FILE', 'Workload identity federation: file holding an OIDC ID token (e.g. a projected service-account token), exchanged with OAUTH_CLIENT_ID for an access token; read again on every renewal.'),
  METRICS_TOKEN_FILE: s('METRICS_TOKEN_FILE', 'File holding METRICS_TOKEN (read at start).'),
  TS_AUTHKEY_FILE: s('TS_AUTHKEY_FILE', 'File holding TS_AUTHKEY (read at start).'),
  OTEL_EXPORTER_OTLP_HEADERS_FILE: s('OTEL_EXPORTER_OTLP_HEADERS_FILE', 'File holding OTEL_EXPORTER_OTLP_HEADERS (read at start).'),
  TS_LOG_TYPES: list('TS_LOG_TYPES', 'Tailscale log types to read through the API (tailscale_logs receiver): auto (network and configuration, when an OTLP endpoint for logs is set or DEBUG_EXPORTER shows logs; a type the credential may not read is switched off with one info line), none, or a list of network, configuration (read whatever the exporters are; a missing scope is a failing source).', ['auto']),
  TS_LOG_INTERVAL: { env: 'TS_LOG_INTERVAL', doc: 'How often the log types are polled.', format: 'positive_duration', default: 60_000 },
  TS_LOG_LAG: { env: 'TS_LOG_LAG', doc: 'How far behind the last position each log poll re-reads, for records that arrive late (de-duplicated; nothing is held back).', format: 'long_duration', default: 900_000 },
  TS_LOG_INITIAL_WINDOW: { env: 'TS_LOG_INITIAL_WINDOW', doc: 'How far back the first log poll reads when nothing is saved in STORAGE_DIR.', format: 'long_positive_duration', default: 3_600_000 },
  STORAGE_DIR: s('STORAGE_DIR', 'Directory for state kept across restarts (the log read positions); empty = memory only.'),
  TS_LOG_PRIVACY_ACTORS: { env: 'TS_LOG_PRIVACY_ACTORS', doc: 'Audit actor identities: keep, hash or drop.', format: ['keep', 'hash', 'drop'], default: 'keep' },
  TS_LOG_PRIVACY_EXTERNAL_ADDRESSES: { env: 'TS_LOG_PRIVACY_EXTERNAL_ADDRESSES', doc: 'Flow-log addresses outside the tailnet: keep, hash or drop.', format: ['keep', 'hash', 'drop'], default: 'keep' },
  TS_LOG_HASH_KEY: secret('TS_LOG_HASH_KEY', 'Key of the hash privacy mode (at least 16 characters).'),
  FLOW_METRICS_MAX_SERIES: { env: 'FLOW_METRICS_MAX_SERIES', doc: 'Most flow series on /metrics (flow_metrics); the rest are added up as src_device/dst_device "other".', format: 'nat', default: 5000 },
  DEBUG_EXPORTER: { env: 'DEBUG_EXPORTER', doc: 'Write pipeline data to stdout (debug exporter): none, logs, metrics or all.', format: ['none', 'logs', 'metrics', 'all'], default: 'none' },
  DEBUG_VERBOSITY: { env: 'DEBUG_VERBOSITY', doc: 'debug exporter: basic (a line per batch), normal (a line per record or metric) or detailed.', format: ['basic', 'normal', 'detailed'], default: 'basic' },
  TS_API_COLLECTORS: list('TS_API_COLLECTORS', 'tailscale_api collectors to run (devices, users, keys, dns, settings, posture, services, service_hosts, policy, log_streaming, webhooks, invites); all = every one.', ['all']),
};

/** Reads and validates the environment; every bad variable is reported by name. */
export function readEnv(env: Readonly<Record<string, string | undefined>>): EnvSettings {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && Object.hasOwn(envSchema, k) && v !== '') clean[k] = v;
  // `<NAME>_FILE` fills `<NAME>`; an unreadable file stops the start here, named.
  const fileProblems = applySecretFiles(clean);
  if (fileProblems.length) throw new ConfigError(fileProblems);
  try {
    const conf = convict(envSchema as convict.Schema<EnvSettings>, { env: clean, args: [] });
    conf.validate({ allowed: 'warn' });
    return conf.getProperties() as EnvSettings;
  } catch (err) {
    const problems: ConfigProblem[] = [];
    for (const line of (err instanceof Error ? err.message : String(err)).split('\n')) {
      const idx = line.indexOf(': ');
      if (idx > 0) problems.push({ source: 'env', path: line.slice(0, idx).trim(), message: line.slice(idx + 2).replace(/: value was .*$/s, '') });
    }
    throw new ConfigError(problems.length ? problems : [{ source: 'env', path: '(env)', message: String(err) }]);
  }
}

/** True when no Tailscale credential is configured. */
function hasNoTailscaleCredentials(e: EnvSettings): boolean {
  return !e.OAUTH_CLIENT_ID && !e.OAUTH_CLIENT_SECRET && !e.TS_API_KEY && !e.OAUTH_TOKEN && !e.OAUTH_ID_TOKEN_FILE;
}

/** True when neither a Tailscale credential nor a Headscale server is configured (demo mode candidate). */
export function hasNoCredentials(e: EnvSettings): boolean {
  return hasNoTailscaleCredentials(e) && !e.HEADSCALE_URL && !e.HEADSCALE_API_KEY && !e.HEADSCALE_API_KEY_FILE;
}

function bindAddress(e: EnvSettings): string {
  if (e.BIND_HOST) return e.BIND_HOST;
  return ['production', 'prod'].includes(e.ENV.toLowerCase()) ? '0.0.0.0' : '127.0.0.1';
}


/**
 * Which variable a key of the environment-built pipeline comes from, so a problem found while
 * validating that pipeline is reported by the name the user set (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * not `exporters.otlp.endpoint`).
 */
const ENV_PATHS: ReadonlyArray<[RegExp, string]> = [
  ...OTLP_ENV_PATHS,
  [/^receivers\.tailscale_api\.api_url$/, 'TAILSCALE_API_URL'],
  [/^receivers\.tailscale_api\.tailnet$/, 'TAILNET_NAME'],
  [/^receivers\.tailscale_api\.interval$/, 'SCRAPE_INTERVAL'],
  [/^receivers\.tailscale_api\.api_key_file$/, 'TS_API_KEY_FILE or OAUTH_TOKEN_FILE'],
  [/^receivers\.tailscale_api\.oauth_client_secret_file$/, 'OAUTH_CLIENT_SECRET_FILE'],
  [/^receivers\.tailscale_api\.oauth_id_token_file$/, 'OAUTH_ID_TOKEN_FILE'],
  [/^receivers\.tailscale_api\.collectors/, 'TS_API_COLLECTORS'],
  [/^receivers\.device_metrics\.interval$/, 'SCRAPE_INTERVAL'],
  [/^receivers\.tailscale_logs\.types/, 'TS_LOG_TYPES'],
  [/^receivers\.tailscale_logs\.interval$/, 'TS_LOG_INTERVAL'],
  [/^receivers\.tailscale_logs\.lag$/, 'TS_LOG_LAG'],
  [/^receivers\.tailscale_logs\.initial_window$/, 'TS_LOG_INITIAL_WINDOW'],
  [/^receivers\.tailscale_logs\.storage_dir$/, 'STORAGE_DIR'],
  [/^receivers\.tailscale_logs\.privacy\.actors$/, 'TS_LOG_PRIVACY_ACTORS'],
  [/^receivers\.tailscale_logs\.privacy\.external_addresses$/, 'TS_LOG_PRIVACY_EXTERNAL_ADDRESSES'],
  [/^receivers\.tailscale_logs\.privacy\.hash_key$/, 'TS_LOG_HASH_KEY'],
  [/^connectors\.flow_metrics\.max_series$/, 'FLOW_METRICS_MAX_SERIES'],
  [/^receivers\.headscale\.url$/, 'HEADSCALE_URL'],
  [/^receivers\.headscale\.api_key$/, 'HEADSCALE_API_KEY'],
  [/^receivers\.headscale\.api_key_file$/, 'HEADSCALE_API_KEY_FILE'],
  [/^receivers\.headscale\.metrics_url$/, 'HEADSCALE_METRICS_URL'],
  [/^receivers\.headscale\.interval$/, 'SCRAPE_INTERVAL'],
  [/^receivers\.device_metrics\.port$/, 'CLIENT_METRICS_PORT'],
  [/^receivers\.device_metrics\.timeout$/, 'CLIENT_METRICS_TIMEOUT'],
  [/^receivers\.device_metrics\.allowed_cidrs/, 'CLIENT_METRICS_ALLOWED_CIDRS'],
  [/^receivers\.device_metrics\.max_concurrent$/, 'MAX_CONCURRENT_SCRAPES'],
  [/^receivers\.device_metrics\.scrape_tag$/, 'SCRAPE_TAG'],
  [/^receivers\.device_metrics\.proxy_url$/, 'TS_PROXY_URL'],
  [/^receivers\.device_metrics\.shard_/, 'SHARD_COUNT / SHARD_INDEX'],
  [/^processors\.device_filter\.include_devices/, 'TARGET_DEVICES'],
  [/^processors\.device_filter\.exclude_devices/, 'EXCLUDE_DEVICES'],
  [/^processors\.device_filter\.required_tags/, 'DEVICE_TAGS'],
  [/^service\.http\.address$/, 'BIND_HOST'],
  [/^service\.http\.port$/, 'PORT'],
  [/^service\.tsnet\.hostname$/, 'TSNET_HOSTNAME'],
  [/^service\.tsnet\.state_dir$/, 'TSNET_STATE_DIR'],
];

/** The variable behind a key of the environment-built pipeline, if one is. */
export function variableForPath(path: string): string | undefined {
  return ENV_PATHS.find(([re]) => re.test(path))?.[1];
}

/**
 * The env pipeline's `headscale` receiver (HEADSCALE_URL and a key), or undefined when no
 * Headscale server is set. Beside a Tailscale tailnet its series get a `tailnet` label (and the
 * Tailscale ones one too), so the two tailnets never print the same series.
 */
function headscaleFromEnv(e: EnvSettings, problems: ConfigProblem[]): { headscale: Record<string, unknown>; tailscaleLabel: string } | undefined {
  const key = e.HEADSCALE_API_KEY || e.HEADSCALE_API_KEY_FILE;
  if (!e.HEADSCALE_URL) {
    if (key) problems.push({ source: 'env', path: 'HEADSCALE_URL', message: 'must be set with HEADSCALE_API_KEY or HEADSCALE_API_KEY_FILE (the Headscale server URL)' });
    return undefined;
  }
  if (e.HEADSCALE_API_KEY && e.HEADSCALE_API_KEY_FILE) problems.push({ source: 'env', path: 'HEADSCALE_API_KEY', message: 'set either HEADSCALE_API_KEY or HEADSCALE_API_KEY_FILE, not both' });
  if (!key) problems.push({ source: 'env', path: 'HEADSCALE_API_KEY', message: 'missing credential: required with HEADSCALE_URL (or HEADSCALE_API_KEY_FILE)' });
  const both = !hasNoTailscaleCredentials(e);
  const label = e.HEADSCALE_TAILNET || (both && URL.canParse(e.HEADSCALE_URL) ? new URL(e.HEADSCALE_URL).host : '');
  return {
    headscale: {
      url: e.HEADSCALE_URL,
      ...(e.HEADSCALE_API_KEY_FILE ? { api_key_file: e.HEADSCALE_API_KEY_FILE } : { api_key: e.HEADSCALE_API_KEY }),
      interval: `${e.SCRAPE_INTERVAL}ms`,
      tailnet_label: label,
      emit_metrics: e.SHARD_INDEX === 0,
      ...(e.HEADSCALE_METRICS_URL ? { metrics_url: e.HEADSCALE_METRICS_URL } : {}),
    },
    tailscaleLabel: both ? (e.TAILNET_NAME !== '-' ? e.TAILNET_NAME : 'tailscale') : '',
  };
}

/**
 * Builds the default pipeline from the environment: API receiver + device-metrics receiver →
 * device_filter → staleness → relabel → Prometheus exporter (+ OTLP when an endpoint is set).
 */
export function envToRawConfig(e: EnvSettings): RawServiceConfig {
  const problems: ConfigProblem[] = [];
  const apiKey = e.TS_API_KEY || e.OAUTH_TOKEN;
  if ((e.OAUTH_CLIENT_ID || e.OAUTH_CLIENT_SECRET) && apiKey) {
    problems.push({ source: 'env', path: 'OAUTH_CLIENT_ID', message: 'set either OAuth client credentials or TS_API_KEY/OAUTH_TOKEN, not both' });
  }
  if (e.OAUTH_CLIENT_ID && !e.OAUTH_CLIENT_SECRET && !e.OAUTH_ID_TOKEN_FILE) problems.push({ source: 'env', path: 'OAUTH_CLIENT_SECRET', message: 'missing credential: required with OAUTH_CLIENT_ID' });
  if (e.OAUTH_CLIENT_SECRET && e.OAUTH_ID_TOKEN_FILE) problems.push({ source: 'env', path: 'OAUTH_ID_TOKEN_FILE', message: 'set either OAUTH_CLIENT_SECRET (client credentials) or OAUTH_ID_TOKEN_FILE (workload identity), not both' });
  if (e.OAUTH_ID_TOKEN_FILE && !e.OAUTH_CLIENT_ID) problems.push({ source: 'env', path: 'OAUTH_CLIENT_ID', message: 'missing credential: required with OAUTH_ID_TOKEN_FILE (the federated identity’s client id)' });
  if (e.OAUTH_CLIENT_SECRET && !e.OAUTH_CLIENT_ID) problems.push({ source: 'env', path: 'OAUTH_CLIENT_ID', message: 'missing credential: required with OAUTH_CLIENT_SECRET' });
  if (hasNoCredentials(e)) {
    problems.push({ source: 'env', path: 'TS_API_KEY', message: 'missing credential: set TS_API_KEY, or OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET, or HEADSCALE_URL and HEADSCALE_API_KEY (or run without any for demo mode outside ENV=production)' });
  }
  const hs = headscaleFromEnv(e, problems);
  const withTailscale = !hasNoTailscaleCredentials(e);
  if (e.USE_TSNET && e.TS_PROXY_URL) problems.push({ source: 'env', path: 'TS_PROXY_URL', message: 'set either USE_TSNET (supervise tailscaled) or TS_PROXY_URL (use a running one), not both' });
  if (e.SHARD_COUNT < 1) problems.push({ source: 'env', path: 'SHARD_COUNT', message: 'must be at least 1' });
  else if (e.SHARD_INDEX >= e.SHARD_COUNT) problems.push({ source: 'env', path: 'SHARD_INDEX', message: `must be below SHARD_COUNT (${e.SHARD_COUNT})` });
  if (e.MAX_CONCURRENT_SCRAPES < 1) problems.push({ source: 'env', path: 'MAX_CONCURRENT_SCRAPES', message: 'must be at least 1' });
  problems.push(...otlpEnvProblems(e));
  const logTypes = e.TS_LOG_TYPES.map((t) => t.toLowerCase());
  const special = logTypes.filter((t) => t === 'auto' || t === 'none');
  if (special.length && logTypes.length > 1) problems.push({ source: 'env', path: 'TS_LOG_TYPES', message: `${special[0] as string} stands alone; give either auto, none, or a list of network, configuration` });
  for (const t of logTypes) if (!['auto', 'none', 'network', 'configuration'].includes(t)) problems.push({ source: 'env', path: 'TS_LOG_TYPES', message: `unknown log type "${t}" (known: network, configuration; or auto, none)` });
  if (problems.length) throw new ConfigError(problems);

  const interval = `${e.SCRAPE_INTERVAL}ms`;
  // With sharding every replica reads the inventory, but only shard 0 exports the API metrics.
  const api: Record<string, unknown> = { api_url: e.TAILSCALE_API_URL, tailnet: e.TAILNET_NAME, interval, emit_metrics: e.SHARD_INDEX === 0 };
  if (hs?.tailscaleLabel) api.tailnet_label = hs.tailscaleLabel;
  // Secrets from files go to the receiver as paths, so it can read them again when they rotate.
  const keyFile = e.TS_API_KEY_FILE || (!e.TS_API_KEY ? e.OAUTH_TOKEN_FILE : '');
  if (keyFile) api.api_key_file = keyFile;
  else if (apiKey) api.api_key = apiKey;
  else {
    api.oauth_client_id = e.OAUTH_CLIENT_ID;
    if (e.OAUTH_ID_TOKEN_FILE) api.oauth_id_token_file = e.OAUTH_ID_TOKEN_FILE;
    else if (e.OAUTH_CLIENT_SECRET_FILE) api.oauth_client_secret_file = e.OAUTH_CLIENT_SECRET_FILE;
    else api.oauth_client_secret = e.OAUTH_CLIENT_SECRET;
  }
  // Only the listed collectors run; an unknown name is reported by the receiver's validation.
  if (!e.TS_API_COLLECTORS.includes('all')) api.collectors = Object.fromEntries([...new Set([...COLLECTOR_NAMES, ...e.TS_API_COLLECTORS])].map((c) => [c, e.TS_API_COLLECTORS.includes(c)]));
  const tag = e.SCRAPE_TAG.startsWith('tag:') ? e.SCRAPE_TAG : `tag:${e.SCRAPE_TAG}`;
  const exporters: Record<string, unknown> = { prometheus: {} };
  const otlp = otlpExporterFromEnv(e, { shardIndex: e.SHARD_INDEX, shardCount: e.SHARD_COUNT, scrapeIntervalMs: e.SCRAPE_INTERVAL });
  if (otlp) exporters.otlp = otlp;
  const debug = e.DEBUG_EXPORTER !== 'none';
  if (debug) exporters.debug = { verbosity: e.DEBUG_VERBOSITY };
  // Logs: read when asked for by type, or (auto) when an OTLP endpoint can take them. Only shard
  // 0 reads them, so replicas never emit the same record twice; the flow and audit connectors
  // turn them into metrics on /metrics.
  const explicitLogs = !logTypes.includes('auto') && !logTypes.includes('none');
  // Only an endpoint meant for logs takes them: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT alone says
  // nothing about where logs go (the specification's default would be localhost).
  const otlpLogs = otlp !== undefined && Boolean(e.OTEL_EXPORTER_OTLP_ENDPOINT || e.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT);
  const readLogs = withTailscale && e.SHARD_INDEX === 0 && (explicitLogs || (logTypes.includes('auto') && (otlpLogs || e.DEBUG_EXPORTER === 'logs' || e.DEBUG_EXPORTER === 'all')));
  const logs: Record<string, unknown> = {
    ...Object.fromEntries(Object.entries(api).filter(([k]) => !['interval', 'emit_metrics', 'collectors'].includes(k))),
    types: explicitLogs ? logTypes : ['network', 'configuration'],
    missing_scope: explicitLogs ? 'degrade' : 'disable',
    interval: `${e.TS_LOG_INTERVAL}ms`,
    lag: `${e.TS_LOG_LAG}ms`,
    initial_window: `${e.TS_LOG_INITIAL_WINDOW}ms`,
    storage_dir: e.STORAGE_DIR,
    privacy: { actors: e.TS_LOG_PRIVACY_ACTORS, external_addresses: e.TS_LOG_PRIVACY_EXTERNAL_ADDRESSES, hash_key: e.TS_LOG_HASH_KEY },
  };
  const logExporters = [...(otlpLogs ? ['otlp'] : []), ...(e.DEBUG_EXPORTER === 'logs' || e.DEBUG_EXPORTER === 'all' ? ['debug'] : []), 'flow_metrics', 'audit_metrics'];
  const metricsExporters = Object.keys(exporters).filter((x) => (x !== 'debug' || e.DEBUG_EXPORTER === 'metrics' || e.DEBUG_EXPORTER === 'all') && (x !== 'otlp' || otlpCarriesMetrics(e)));
  return {
    receivers: {
      ...(withTailscale ? { tailscale_api: api } : {}),
      ...(hs ? { headscale: hs.headscale } : {}),
      device_metrics: {
        interval,
        port: e.CLIENT_METRICS_PORT,
        timeout: `${e.CLIENT_METRICS_TIMEOUT}ms`,
        max_concurrent: e.MAX_CONCURRENT_SCRAPES,
        allowed_cidrs: e.CLIENT_METRICS_ALLOWED_CIDRS,
        require_tag: e.REQUIRE_EXPORTER_TAG,
        scrape_tag: tag,
        shard_count: Math.max(1, e.SHARD_COUNT),
        shard_index: e.SHARD_INDEX,
        ...(e.TS_PROXY_URL ? { proxy_url: e.TS_PROXY_URL } : {}),
      },
      // The node's own metrics: the supervised tailscaled in tsnet mode, or a given socket.
      ...(e.USE_TSNET || e.TS_LOCALAPI_SOCKET
        ? { local_tailscaled: { interval, socket_path: e.TS_LOCALAPI_SOCKET || `${e.TSNET_STATE_DIR.replace(/\/+$/, '')}/tailscaled.sock` } }
        : {}),
      ...(readLogs ? { tailscale_logs: logs } : {}),
    },
    ...(readLogs ? { connectors: { flow_metrics: { max_series: e.FLOW_METRICS_MAX_SERIES }, audit_metrics: {} } } : {}),
    processors: {
      device_filter: { include_devices: e.TARGET_DEVICES, exclude_devices: e.EXCLUDE_DEVICES, required_tags: e.DEVICE_TAGS.map((t) => (t.startsWith('tag:') ? t : `tag:${t}`)) },
      relabel: { rules: [] },
      staleness: {},
    },
    exporters,
    service: {
      http: { address: bindAddress(e), port: e.PORT, metrics_token: e.METRICS_TOKEN },
      tsnet: {
        enabled: e.USE_TSNET,
        hostname: e.TSNET_HOSTNAME,
        state_dir: e.TSNET_STATE_DIR,
        tags: e.TSNET_TAGS,
        auth_key: e.TS_AUTHKEY,
        tailscaled_path: e.TAILSCALED_PATH,
        tailscale_path: e.TAILSCALE_PATH,
        serve: e.TSNET_SERVE,
        startup_timeout: `${e.TSNET_STARTUP_TIMEOUT}ms`,
      },
      telemetry: { logs: { level: e.LOG_LEVEL, format: e.LOG_FORMAT } },
      pipelines: {
        metrics: {
          receivers: [...(withTailscale ? ['tailscale_api'] : []), ...(hs ? ['headscale'] : []), 'device_metrics', ...(e.USE_TSNET || e.TS_LOCALAPI_SOCKET ? ['local_tailscaled'] : []), ...(readLogs ? ['flow_metrics', 'audit_metrics'] : [])],
          processors: ['device_filter', 'staleness', 'relabel'],
          exporters: metricsExporters,
        },
        ...(readLogs ? { logs: { receivers: ['tailscale_logs'], processors: [], exporters: logExporters } } : {}),
      },
    },
  };
}
