import { defineSchema } from '../../src/config/schema.ts';
import { secretFileProblem } from '../../src/config/secrets-file.ts';
import { defaultCollectorsConfig, resolveCollectors } from './collectors/spec.ts';

export interface TailscaleApiConfig {
  api_url: string;
  tailnet: string;
  api_key: string;
  api_key_file: string;
  oauth_client_id: string;
  oauth_client_secret: string;
  oauth_client_secret_file: string;
  oauth_id_token_file: string;
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
  collectors: Record<string, unknown>;
  max_items: number;
  max_values: number;
  max_concurrent_requests: number;
}

export const configSchema = defineSchema<TailscaleApiConfig>(
  {
    api_url: { doc: 'Tailscale API base URL.', format: 'url_or_empty', default: 'https://api.tailscale.com' },
    tailnet: { doc: 'Tailnet ID or name; "-" is the credential’s own tailnet.', format: String, default: '-' },
    api_key: { doc: 'API access token (Basic auth). Alternative to OAuth.', format: 'secret', default: '' },
    oauth_client_id: { doc: 'OAuth client ID (client-credentials flow).', format: String, default: '' },
    oauth_client_secret: { doc: 'OAuth client secret.', format: 'secret', default: '' },
    api_key_file: { doc: 'File holding the API access token (read at start and again after a 401).', format: String, default: '' },
    oauth_client_secret_file: { doc: 'File holding the OAuth client secret (read at start and on every token renewal).', format: String, default: '' },
    oauth_id_token_file: {
      doc: 'Workload identity federation: file holding an OIDC ID token (e.g. a Kubernetes projected service-account token), exchanged with oauth_client_id (the federated identity) for an access token; read again on every renewal.',
      format: String,
      default: '',
    },
    oauth_scopes: { doc: 'Scopes to request (empty = all the client has; needs devices:core:read).', format: 'string_list', default: [] },
    interval: { doc: 'How often the device list is fetched.', format: 'positive_duration', default: 30_000 },
    timeout: { doc: 'Timeout of one HTTP request (connect, headers and body).', format: 'positive_duration', default: 10_000 },
    max_body_size: { doc: 'Largest device-list body accepted, bytes.', format: 'nat', default: 64 * 1024 * 1024 },
    max_retries: { doc: 'Retries of a failed list call within one interval.', format: 'nat', default: 4 },
    max_retry_after: { doc: 'Longest wait a Retry-After header can impose; longer requests are cut to this (and logged once).', format: 'positive_duration', default: 5 * 60_000 },
    max_devices: { doc: 'Most devices a list may hold; a longer list is rejected (too_large) and the last good inventory kept.', format: 'nat', default: 100_000 },
    include_user_email: { doc: 'Emit people’s logins and names: tailscale_device_user{user_email}, login_name/display_name on tailscale_user_info, email on tailscale_user_invite_info (off: ids only, for privacy).', format: Boolean, default: true },
    tailnet_label: { doc: 'Value of a `tailnet` label on every series (set it when scraping several tailnets).', format: String, default: '' },
    label_max_length: { doc: 'Label values are cut to this many characters.', format: 'nat', default: 128 },
    emit_metrics: { doc: 'Emit tailscale_device_* and run the other collectors (false: only publish the inventory, e.g. on shards other than 0).', format: Boolean, default: true },
    collectors: {
      doc: 'Collectors and their intervals: devices, users, keys, dns, settings, posture, services, service_hosts, policy, log_streaming, webhooks, invites; each true/false or {enabled, interval} (service_hosts and keys also take max_calls and max_concurrent for their per-entity calls). All are on by default.',
      format: Object,
      default: defaultCollectorsConfig(),
    },
    max_items: { doc: 'Most entries a list other than devices may hold (users, keys, services, hosts, integrations, webhooks, invites); a longer list fails that collector (too_large) and its last good data is kept.', format: 'nat', default: 100_000 },
    max_values: { doc: 'Most values kept from one list inside a record or a DNS/settings list (tags, scopes, ports, subscriptions, nameservers…); the rest are dropped and counted (limit). Counts stay exact.', format: 'nat', default: 256 },
    max_concurrent_requests: { doc: 'API requests in flight at once across all collectors of this receiver.', format: 'nat', default: 4 },
  },
  (c) => {
    const p: Array<{ path: string; message: string }> = [];
    if (!c.api_url) p.push({ path: 'api_url', message: 'must be set' });
    const apiKey = c.api_key || c.api_key_file;
    // The client side of OAuth: a secret, a file with the secret, or an ID token to exchange.
    const proofs = [c.oauth_client_secret && 'oauth_client_secret', c.oauth_client_secret_file && 'oauth_client_secret_file', c.oauth_id_token_file && 'oauth_id_token_file'].filter(Boolean);
    if (c.api_key && c.api_key_file) p.push({ path: 'api_key_file', message: 'set either api_key or api_key_file, not both' });
    if (apiKey && (c.oauth_client_id || proofs.length)) p.push({ path: 'api_key', message: 'set either api_key or oauth_client_id/oauth_client_secret, not both' });
    if (!apiKey && !c.oauth_client_id && !proofs.length) p.push({ path: 'api_key', message: 'missing credential: set api_key, or oauth_client_id and oauth_client_secret' });
    if (c.oauth_client_id && !proofs.length) p.push({ path: 'oauth_client_secret', message: 'missing credential: required with oauth_client_id' });
    if (!c.oauth_client_id && proofs.length) p.push({ path: 'oauth_client_id', message: `missing credential: required with ${proofs[0] as string}` });
    if (proofs.length > 1) p.push({ path: proofs[1] as string, message: `set one of oauth_client_secret, oauth_client_secret_file or oauth_id_token_file, not ${proofs.join(' and ')}` });
    // A file that cannot be read stops the start here, named, rather than failing every call later.
    for (const key of ['api_key_file', 'oauth_client_secret_file', 'oauth_id_token_file'] as const) {
      const problem = c[key] ? secretFileProblem(c[key]) : undefined;
      if (problem) p.push({ path: key, message: problem });
    }
    p.push(...resolveCollectors(c.collectors, c.interval).problems);
    if (c.max_items < 1) p.push({ path: 'max_items', message: 'must be at least 1' });
    if (c.max_concurrent_requests < 1) p.push({ path: 'max_concurrent_requests', message: 'must be at least 1' });
    if (c.max_devices < 1) p.push({ path: 'max_devices', message: 'must be at least 1' });
    if (!c.tailnet) p.push({ path: 'tailnet', message: 'must be set ("-" for the credential’s own tailnet)' });
    return p;
  },
);
