import { parseDuration } from '../../../src/config/duration.ts';

/** The collectors of `tailscale_api`, in the order they run. */
export const COLLECTOR_NAMES = ['devices', 'users', 'keys', 'dns', 'settings', 'posture', 'services', 'service_hosts', 'policy', 'log_streaming', 'webhooks', 'invites'] as const;
export type CollectorName = (typeof COLLECTOR_NAMES)[number];

/** What a collector calls and what it needs: the README's tables are written from this. */
export interface CollectorInfo {
  /** Default interval, ms; `devices` uses the receiver's `interval`. */
  readonly interval: number;
  /** The OAuth scopes the calls need (any one of them for a list of alternatives is not enough: all are needed). */
  readonly scopes: readonly string[];
  /** The calls of one cycle. */
  readonly calls: string;
}

const MIN = 60_000;

export const COLLECTORS: Readonly<Record<CollectorName, CollectorInfo>> = {
  devices: { interval: 30_000, scopes: ['devices:core:read'], calls: 'GET /tailnet/{t}/devices?fields=all' },
  users: { interval: 5 * MIN, scopes: ['users:read'], calls: 'GET /tailnet/{t}/users?type=all' },
  keys: {
    interval: 5 * MIN,
    scopes: ['auth_keys:read', 'oauth_keys:read', 'api_access_tokens:read', 'federated_keys:read'],
    calls: 'GET /tailnet/{t}/keys?all=true (+ GET /tailnet/{t}/keys/{own key} when the list lacks it; + GET …/keys/{id} for list entries that carry only an id, bounded)',
  },
  dns: { interval: 10 * MIN, scopes: ['dns:read'], calls: 'GET /tailnet/{t}/dns/configuration (on 404: the four legacy DNS endpoints)' },
  settings: { interval: 10 * MIN, scopes: ['feature_settings:read'], calls: 'GET /tailnet/{t}/settings' },
  posture: { interval: 5 * MIN, scopes: ['feature_settings:read'], calls: 'GET /tailnet/{t}/posture/integrations' },
  services: { interval: 5 * MIN, scopes: ['services:read'], calls: 'GET /tailnet/{t}/services' },
  service_hosts: {
    interval: 5 * MIN,
    scopes: ['services', 'devices:core'],
    calls: 'GET /tailnet/{t}/services + GET /tailnet/{t}/services/{svc}/devices per Service (at most max_calls, max_concurrent at once)',
  },
  policy: { interval: 5 * MIN, scopes: ['policy_file:read'], calls: 'GET /tailnet/{t}/acl?details=true' },
  log_streaming: { interval: 5 * MIN, scopes: ['log_streaming:read'], calls: 'GET /tailnet/{t}/logging/{configuration,network}/stream/status' },
  webhooks: { interval: 15 * MIN, scopes: ['webhooks:read'], calls: 'GET /tailnet/{t}/webhooks' },
  invites: { interval: 15 * MIN, scopes: ['user_invites:read'], calls: 'GET /tailnet/{t}/user-invites' },
};

/** One collector's effective settings. */
export interface CollectorSettings {
  readonly enabled: boolean;
  readonly interval: number;
  /** Per-entity calls allowed in one cycle (service_hosts, key details). */
  readonly max_calls: number;
  /** Per-entity calls in flight at once. */
  readonly max_concurrent: number;
}

const EXTRA_KEYS = new Set(['enabled', 'interval', 'max_calls', 'max_concurrent']);
const DEFAULT_MAX_CALLS = 50;
const DEFAULT_MAX_CONCURRENT = 4;

/** The schema default of `collectors`: every collector on, at its default interval. */
export function defaultCollectorsConfig(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of COLLECTOR_NAMES) out[n] = n === 'devices' ? { enabled: true } : { enabled: true, interval: COLLECTORS[n].interval };
  return out;
}

/**
 * Reads the `collectors` map as written (each entry may be omitted, `true`/`false`, or a map of
 * `enabled`, `interval`, `max_calls`, `max_concurrent`) and fills in the defaults. `devices` runs
 * at the receiver's `interval`. Problems carry paths relative to the receiver.
 */
export function resolveCollectors(raw: unknown, devicesInterval: number): { settings: Record<CollectorName, CollectorSettings>; problems: Array<{ path: string; message: string }> } {
  const problems: Array<{ path: string; message: string }> = [];
  const given = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  if (raw !== undefined && raw !== null && given !== raw) problems.push({ path: 'collectors', message: 'must be a map of collector names' });
  for (const k of Object.keys(given)) {
    if (!(COLLECTOR_NAMES as readonly string[]).includes(k)) problems.push({ path: `collectors.${k}`, message: `unknown collector (known: ${COLLECTOR_NAMES.join(', ')})` });
  }
  const settings = {} as Record<CollectorName, CollectorSettings>;
  for (const name of COLLECTOR_NAMES) {
    const path = `collectors.${name}`;
    const v = given[name];
    let enabled = true;
    let interval = name === 'devices' ? devicesInterval : COLLECTORS[name].interval;
    let maxCalls = DEFAULT_MAX_CALLS;
    let maxConcurrent = DEFAULT_MAX_CONCURRENT;
    if (typeof v === 'boolean') enabled = v;
    else if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!EXTRA_KEYS.has(k)) problems.push({ path: `${path}.${k}`, message: 'unknown key' });
      if (o.enabled !== undefined) {
        if (typeof o.enabled === 'boolean') enabled = o.enabled;
        else problems.push({ path: `${path}.enabled`, message: 'must be true or false' });
      }
      if (o.interval !== undefined) {
        const d = parseDuration(o.interval);
        if (name === 'devices') problems.push({ path: `${path}.interval`, message: 'the devices collector runs at the receiver’s interval; set interval instead' });
        else if (d === undefined || d <= 0) problems.push({ path: `${path}.interval`, message: 'must be a positive duration such as 30s, 1m or 500ms' });
        else interval = d;
      }
      for (const [k, set] of [
        ['max_calls', (n: number) => (maxCalls = n)],
        ['max_concurrent', (n: number) => (maxConcurrent = n)],
      ] as const) {
        if (o[k] === undefined) continue;
        if (Number.isInteger(o[k]) && (o[k] as number) >= 1) set(o[k] as number);
        else problems.push({ path: `${path}.${k}`, message: 'must be a whole number, at least 1' });
      }
    } else if (v !== undefined && v !== null) problems.push({ path, message: 'must be true, false or a map of enabled and interval' });
    settings[name] = { enabled, interval, max_calls: maxCalls, max_concurrent: maxConcurrent };
  }
  return { settings, problems };
}
