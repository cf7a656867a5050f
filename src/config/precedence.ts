/**
 * One precedence rule for the service settings, whatever builds the pipeline:
 *
 *   command-line flag  >  environment variable  >  pipeline file  >  default
 *
 * The Go exporter's service variables (`PORT`, `BIND_HOST`, `METRICS_TOKEN`, `LOG_LEVEL`, `LOG_FORMAT`)
 * therefore take effect with a pipeline file too — a set `METRICS_TOKEN` is never silently
 * dropped. `ENV=production` only changes the default bind address (0.0.0.0), below a file's
 * `service.http.address` and `BIND_HOST`. Variables that configure receivers (`SHARD_COUNT`,
 * `CLIENT_METRICS_ALLOWED_CIDRS`, credentials…) build the environment pipeline; a pipeline file
 * uses them where it writes `${env:NAME}`, and one that is set but not used by the file is
 * reported, never ignored in silence.
 */
import type { EnvSettings } from './env.ts';
import { otlpEnvSchema, type OtlpEnvSettings } from './otlp-env.ts';

/** Where an effective service setting came from. */
export type Origin = `flag ${string}` | `env ${string}` | 'file' | 'default';

/** Settings given on the command line (they win over everything). */
export interface ServiceFlags {
  port?: number;
  address?: string;
  logLevel?: string;
  logFormat?: string;
}

interface Rule {
  readonly path: readonly string[];
  readonly variable: keyof EnvSettings;
  readonly flag?: keyof ServiceFlags;
  readonly flagName?: string;
}

/** The service settings that have an environment variable (and maybe a flag). */
export const SERVICE_VARIABLES: readonly Rule[] = [
  { path: ['http', 'port'], variable: 'PORT', flag: 'port', flagName: '--port' },
  { path: ['http', 'address'], variable: 'BIND_HOST', flag: 'address', flagName: '--bind' },
  { path: ['http', 'metrics_token'], variable: 'METRICS_TOKEN' },
  { path: ['telemetry', 'logs', 'level'], variable: 'LOG_LEVEL', flag: 'logLevel', flagName: '--log-level' },
  { path: ['telemetry', 'logs', 'format'], variable: 'LOG_FORMAT', flag: 'logFormat', flagName: '--log-format' },
];

/** Variables that only mean something to the pipeline built from the environment. */
const PIPELINE_VARIABLES: ReadonlyArray<keyof EnvSettings> = [
  'OAUTH_CLIENT_ID',
  'OAUTH_CLIENT_SECRET',
  'OAUTH_TOKEN',
  'TS_API_KEY',
  'TAILNET_NAME',
  'TAILSCALE_API_URL',
  'SCRAPE_INTERVAL',
  'CLIENT_METRICS_PORT',
  'CLIENT_METRICS_TIMEOUT',
  'CLIENT_METRICS_ALLOWED_CIDRS',
  'MAX_CONCURRENT_SCRAPES',
  'REQUIRE_EXPORTER_TAG',
  'SCRAPE_TAG',
  'TARGET_DEVICES',
  'EXCLUDE_DEVICES',
  'DEVICE_TAGS',
  'SHARD_COUNT',
  'SHARD_INDEX',
  // Every OTEL_* variable (otlp-env.ts) only builds the env pipeline's otlp exporter.
  ...(Object.keys(otlpEnvSchema) as Array<keyof OtlpEnvSettings>),
  'TS_PROXY_URL',
  'TS_LOCALAPI_SOCKET',
];

const isSet = (env: Readonly<Record<string, string | undefined>>, k: string): boolean => env[k] !== undefined && env[k] !== '';

function getPath(obj: unknown, path: readonly string[]): unknown {
  let o = obj;
  for (const p of path) {
    if (!o || typeof o !== 'object') return undefined;
    o = (o as Record<string, unknown>)[p];
  }
  return o;
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let o = obj;
  for (const p of path.slice(0, -1)) {
    const next = o[p];
    if (!next || typeof next !== 'object' || Array.isArray(next)) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[path[path.length - 1] as string] = value;
}

export interface AppliedPrecedence {
  /** The file's `service` map with flags and variables applied. */
  readonly service: Record<string, unknown>;
  /** Origin of every setting in SERVICE_VARIABLES, by dotted path (`service.http.port`). */
  readonly origins: Readonly<Record<string, Origin>>;
}

/**
 * Applies flags and the service variables over a pipeline file's `service` map (`fileService`
 * as written in the file, after `${env:…}` substitution). `env` is the raw environment: only
 * variables that are set count, not their defaults.
 */
export function applyServicePrecedence(fileService: unknown, env: Readonly<Record<string, string | undefined>>, e: EnvSettings, flags: ServiceFlags = {}): AppliedPrecedence {
  const service = structuredClone((fileService && typeof fileService === 'object' && !Array.isArray(fileService) ? fileService : {}) as Record<string, unknown>);
  const origins: Record<string, Origin> = {};
  for (const r of SERVICE_VARIABLES) {
    const key = `service.${r.path.join('.')}`;
    const flag = r.flag ? flags[r.flag] : undefined;
    if (flag !== undefined) {
      setPath(service, r.path, flag);
      origins[key] = `flag ${r.flagName as string}`;
    } else if (isSet(env, r.variable) || (r.variable === 'METRICS_TOKEN' && isSet(env, 'METRICS_TOKEN_FILE'))) {
      // METRICS_TOKEN_FILE counts as METRICS_TOKEN being set: readEnv filled `e` from the file.
      setPath(service, r.path, e[r.variable]);
      origins[key] = isSet(env, r.variable) ? `env ${r.variable}` : `env ${r.variable}_FILE`;
    } else if (getPath(service, r.path) !== undefined && getPath(service, r.path) !== '') {
      origins[key] = 'file';
    } else if (r.variable === 'BIND_HOST' && ['production', 'prod'].includes(e.ENV.toLowerCase())) {
      setPath(service, r.path, '0.0.0.0');
      origins[key] = 'env ENV';
    } else origins[key] = 'default';
  }
  return { service, origins };
}

/**
 * Variables that are set but that a pipeline file does not use: they would otherwise be
 * ignored in silence. `fileText` is the file as written (before substitution).
 */
export function unusedVariables(fileText: string, env: Readonly<Record<string, string | undefined>>): string[] {
  const used = new Set([...fileText.matchAll(/\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] as string));
  return PIPELINE_VARIABLES.filter((v) => isSet(env, v) && !used.has(v));
}

/** Origins of the service settings when the environment builds the pipeline. */
export function envOrigins(env: Readonly<Record<string, string | undefined>>, e: EnvSettings, flags: ServiceFlags = {}): Record<string, Origin> {
  return applyServicePrecedence({}, env, e, flags).origins;
}
