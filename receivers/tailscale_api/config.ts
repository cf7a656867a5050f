import { defineSchema } from '../../src/config/schema.ts';

export interface TailscaleApiConfig {
  api_url: string;
  tailnet: string;
  api_key: string;
  oauth_client_id: string;
  oauth_client_secret: string;
  oauth_scopes: string[];
  interval: number;
  timeout: number;
  max_body_size: number;
  max_retries: number;
  max_retry_after: number;
  max_devices: number;
  include_user_email: boolean;
  tailnet_label: string;
  label_max_length: number;
  emit_metrics: boolean;
}

export const configSchema = defineSchema<TailscaleApiConfig>(
  {
    api_url: { doc: 'Tailscale API base URL.', format: 'url_or_empty', default: 'https://api.tailscale.com' },
    tailnet: { doc: 'Tailnet ID or name; "-" is the credential’s own tailnet.', format: String, default: '-' },
    api_key: { doc: 'API access token (Basic auth). Alternative to OAuth.', format: 'secret', default: '' },
    oauth_client_id: { doc: 'OAuth client ID (client-credentials flow).', format: String, default: '' },
    oauth_client_secret: { doc: 'OAuth client secret.', format: 'secret', default: '' },
    oauth_scopes: { doc: 'Scopes to request (empty = all the client has; needs devices:core:read).', format: 'string_list', default: [] },
    interval: { doc: 'How often the device list is fetched.', format: 'positive_duration', default: 30_000 },
    timeout: { doc: 'Timeout of one HTTP request (connect, headers and body).', format: 'positive_duration', default: 10_000 },
    max_body_size: { doc: 'Largest device-list body accepted, bytes.', format: 'nat', default: 64 * 1024 * 1024 },
    max_retries: { doc: 'Retries of a failed list call within one interval.', format: 'nat', default: 4 },
    max_retry_after: { doc: 'Longest wait a Retry-After header can impose; longer requests are cut to this (and logged once).', format: 'positive_duration', default: 5 * 60_000 },
    max_devices: { doc: 'Most devices a list may hold; a longer list is rejected (too_large) and the last good inventory kept.', format: 'nat', default: 100_000 },
    include_user_email: { doc: 'Emit tailscale_device_user{user_email} (turn off for privacy).', format: Boolean, default: true },
    tailnet_label: { doc: 'Value of a `tailnet` label on every series (set it when scraping several tailnets).', format: String, default: '' },
    label_max_length: { doc: 'Label values are cut to this many characters.', format: 'nat', default: 128 },
    emit_metrics: { doc: 'Emit tailscale_device_* (false: only publish the inventory, e.g. on shards other than 0).', format: Boolean, default: true },
  },
  (c) => {
    const p: Array<{ path: string; message: string }> = [];
    if (!c.api_url) p.push({ path: 'api_url', message: 'must be set' });
    if (c.api_key && (c.oauth_client_id || c.oauth_client_secret)) p.push({ path: 'api_key', message: 'set either api_key or oauth_client_id/oauth_client_secret, not both' });
    if (!c.api_key && !c.oauth_client_id && !c.oauth_client_secret) p.push({ path: 'api_key', message: 'missing credential: set api_key, or oauth_client_id and oauth_client_secret' });
    if (c.oauth_client_id && !c.oauth_client_secret) p.push({ path: 'oauth_client_secret', message: 'missing credential: required with oauth_client_id' });
    if (!c.oauth_client_id && c.oauth_client_secret) p.push({ path: 'oauth_client_id', message: 'missing credential: required with oauth_client_secret' });
    if (c.max_devices < 1) p.push({ path: 'max_devices', message: 'must be at least 1' });
    if (!c.tailnet) p.push({ path: 'tailnet', message: 'must be set ("-" for the credential’s own tailnet)' });
    return p;
  },
);
