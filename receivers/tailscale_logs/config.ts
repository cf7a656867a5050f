import { defineSchema, type SettingSchema } from '../../src/config/schema.ts';
import { configSchema as apiSchema, type TailscaleApiConfig } from '../tailscale_api/config.ts';

/** The log types the receiver reads, each from its own endpoint and with its own scope. */
export type LogType = 'network' | 'configuration';
export const LOG_TYPES: readonly LogType[] = ['network', 'configuration'];

export type PrivacyMode = 'keep' | 'hash' | 'drop';

export interface PrivacyConfig {
  actors: PrivacyMode;
  external_addresses: PrivacyMode;
  hash_key: string;
}

/** The credential and endpoint keys are `tailscale_api`'s own (see SHARED below). */
export interface TailscaleLogsConfig extends Pick<TailscaleApiConfig, Shared> {
  timeout: number;
  types: string[];
  missing_scope: 'degrade' | 'disable';
  interval: number;
  lag: number;
  initial_window: number;
  max_window: number;
  max_windows_per_poll: number;
  storage_dir: string;
  max_body_size: number;
  max_records_per_poll: number;
  dedup_capacity: number;
  max_string_length: number;
  max_list_length: number;
  max_event_size: number;
  privacy: PrivacyConfig;
}

/** The credential and endpoint keys, shared with `tailscale_api` so both read the same way. */
const SHARED = ['api_url', 'tailnet', 'api_key', 'api_key_file', 'oauth_client_id', 'oauth_client_secret', 'oauth_client_secret_file', 'oauth_id_token_file', 'oauth_scopes', 'max_retries', 'max_retry_after', 'tailnet_label'] as const;
type Shared = (typeof SHARED)[number];

const apiDef = apiSchema.definition as unknown as Record<string, SettingSchema<unknown>>;
const shared = Object.fromEntries(SHARED.map((k) => [k, apiDef[k]])) as { [K in Shared]: SettingSchema<TailscaleLogsConfig[K]> };

const MODES: PrivacyMode[] = ['keep', 'hash', 'drop'];
const MIN = 60_000;

export const configSchema = defineSchema<TailscaleLogsConfig>(
  {
    ...shared,
    oauth_scopes: { doc: 'Scopes to request (empty = all the client has; needs logs:network:read and/or logs:configuration:read).', format: 'string_list', default: [] },
    tailnet_label: { doc: 'Value of the tailscale.tailnet resource attribute (default: tailnet, or the name the configuration log reports when tailnet is "-").', format: String, default: '' },
    timeout: { doc: 'Timeout of one HTTP request (connect, headers and body); log bodies are large.', format: 'positive_duration', default: 60_000 },
    types: { doc: 'Log types to read: network (flow logs, logs:network:read) and/or configuration (audit logs, logs:configuration:read).', format: 'string_list', default: ['network', 'configuration'] },
    missing_scope: {
      doc: 'When the credential may not read a log type (HTTP 403, or 404 without the scope): degrade (the type stays on, tsmetrics_source_up 0, /health degraded, retried every poll) or disable (one info line, the type is switched off until restart or reload; for pipelines that read logs only when the credential allows it).',
      format: ['degrade', 'disable'],
      default: 'degrade',
    },
    interval: { doc: 'How often each log type is polled.', format: 'positive_duration', default: MIN },
    lag: { doc: 'How far behind the last position each poll re-reads, to catch records that show up late (measured up to ~14 min); re-read records are de-duplicated, nothing is held back.', format: 'long_duration', default: 15 * MIN },
    initial_window: { doc: 'How far back the first poll reads when there is no saved position.', format: 'long_positive_duration', default: 60 * MIN },
    max_window: { doc: 'Longest time span of one request; longer spans are split into windows of this length.', format: 'long_positive_duration', default: 15 * MIN },
    max_windows_per_poll: { doc: 'Most requests one poll makes per log type (catching up after an outage continues on the next polls).', format: 'nat', default: 16 },
    storage_dir: { doc: 'Directory where the read position and recent record identities are kept across restarts (atomic writes); empty = in memory only (a restart reads initial_window again, and may repeat records).', format: String, default: '' },
    max_body_size: { doc: 'Largest response body accepted, bytes (checked on the compressed and on the decompressed size).', format: 'nat', default: 32 * 1024 * 1024 },
    max_records_per_poll: { doc: 'Most log records one poll emits per log type; the rest are read on the next poll (nothing is lost).', format: 'nat', default: 50_000 },
    dedup_capacity: { doc: 'Most record identities remembered per log type for de-duplication (oldest forgotten first).', format: 'nat', default: 200_000 },
    max_string_length: { doc: 'Attribute string values are cut to this many characters (structured old/new values too).', format: 'nat', default: 4096 },
    max_list_length: { doc: 'Most entries kept from one list in a record (traffic entries, dstNodes, tags, addresses); the rest are dropped and counted.', format: 'nat', default: 4096 },
    max_event_size: { doc: 'Largest audit event or flow record accepted, bytes of JSON; larger ones are dropped and counted.', format: 'nat', default: 1024 * 1024 },
    privacy: {
      actors: { doc: 'Audit actor identities (id, login name, display name): keep, hash (keyed HMAC-SHA256) or drop.', format: MODES, default: 'keep' },
      external_addresses: { doc: 'Addresses outside the tailnet (not in 100.64.0.0/10 or fd7a:115c:a1e0::/48 and not a known device address): keep, hash (keyed HMAC-SHA256) or drop.', format: MODES, default: 'keep' },
      hash_key: { doc: 'Key of the hash mode (required with hash: an unkeyed hash of an e-mail address or IP is reversible by guessing).', format: 'secret', default: '' },
    },
  },
  (c) => {
    const p: Array<{ path: string; message: string }> = [];
    // The credential checks are tailscale_api's own, run on the shared keys only.
    const asApi = toApiConfig(c);
    for (const x of apiSchema.validate?.(asApi) ?? []) if ((SHARED as readonly string[]).includes(x.path)) p.push(x);
    if (c.types.length === 0) p.push({ path: 'types', message: 'must name at least one of network, configuration' });
    for (const t of c.types) if (!(LOG_TYPES as readonly string[]).includes(t)) p.push({ path: 'types', message: `"${t}" is not a log type (network, configuration)` });
    if (new Set(c.types).size !== c.types.length) p.push({ path: 'types', message: 'lists a type twice' });
    if (c.max_window < 1000) p.push({ path: 'max_window', message: 'must be at least 1s' });
    if (c.max_windows_per_poll < 1) p.push({ path: 'max_windows_per_poll', message: 'must be at least 1' });
    if (c.max_records_per_poll < 1) p.push({ path: 'max_records_per_poll', message: 'must be at least 1' });
    if (c.dedup_capacity < 1) p.push({ path: 'dedup_capacity', message: 'must be at least 1' });
    if (c.max_body_size < 1024) p.push({ path: 'max_body_size', message: 'must be at least 1024 bytes' });
    if (c.max_string_length < 16) p.push({ path: 'max_string_length', message: 'must be at least 16' });
    if (c.max_list_length < 1) p.push({ path: 'max_list_length', message: 'must be at least 1' });
    if (c.max_event_size < 1024) p.push({ path: 'max_event_size', message: 'must be at least 1024 bytes' });
    // Catching up must make progress: a poll's windows have to reach past the re-read overlap.
    if (c.max_window * c.max_windows_per_poll <= c.lag) p.push({ path: 'max_windows_per_poll', message: `max_window × max_windows_per_poll must be longer than lag (${c.lag / 1000}s), or a poll could never get past the re-read overlap` });
    const hashing = [c.privacy.actors === 'hash' && 'privacy.actors', c.privacy.external_addresses === 'hash' && 'privacy.external_addresses'].filter(Boolean);
    if (hashing.length && c.privacy.hash_key.length < 16) p.push({ path: 'privacy.hash_key', message: `must be set (at least 16 characters) when ${hashing.join(' or ')} is hash` });
    return p;
  },
);

const apiDefaults = (): TailscaleApiConfig => {
  const out: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(apiDef)) out[k] = structuredClone(d.default);
  return out as unknown as TailscaleApiConfig;
};

/** The `tailscale_api` client configuration these settings amount to (its other keys at defaults). */
export function toApiConfig(c: TailscaleLogsConfig): TailscaleApiConfig {
  const base = apiDefaults();
  const out: Record<string, unknown> = { ...base };
  for (const k of SHARED) out[k] = c[k];
  out.timeout = c.timeout;
  out.max_body_size = c.max_body_size;
  out.interval = c.interval;
  // One request in flight per log type is all a poll makes.
  out.max_concurrent_requests = 2;
  return out as unknown as TailscaleApiConfig;
}
