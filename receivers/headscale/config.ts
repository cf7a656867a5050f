import { defineSchema } from '../../src/config/schema.ts';
import { errorMessage } from '../../src/errors.ts';
import { readKeyFileSync } from './client.ts';

export interface HeadscaleConfig {
  url: string;
  api_key: string;
  api_key_file: string;
  tailnet_label: string;
  base_domain: string;
  interval: number;
  timeout: number;
  max_body_size: number;
  max_retries: number;
  max_retry_after: number;
  max_nodes: number;
  max_entries: number;
  max_node_items: number;
  include_user_email: boolean;
  label_max_length: number;
  emit_metrics: boolean;
  metrics_url: string;
  metrics_namespace: string[];
  metrics_max_body_size: number;
  metrics_max_samples: number;
}

/** Family globs the forwarded `/metrics` page may never match: they would shadow our own series or a device's. */
const FORBIDDEN_NAMESPACE = /^(tailscale|tsmetrics_|\*)/i;

export const configSchema = defineSchema<HeadscaleConfig>(
  {
    url: { doc: 'Headscale base URL (its server_url, or listen_addr behind a proxy); /api/v1 is appended.', format: 'url_or_empty', default: '' },
    api_key: { doc: 'Headscale API key (headscale apikeys create), sent as a Bearer token.', format: 'secret', default: '' },
    api_key_file: { doc: 'File holding the API key instead of api_key; re-read every cycle, so a rotated key is picked up.', format: String, default: '' },
    tailnet_label: { doc: 'Value of a `tailnet` label on every series (set it when one process watches several tailnets).', format: String, default: '' },
    base_domain: { doc: 'Headscale’s dns.base_domain: device names become <givenName>.<base_domain> as MagicDNS names (empty = bare givenName).', format: String, default: '' },
    interval: { doc: 'How often the API is read.', format: 'positive_duration', default: 30_000 },
    timeout: { doc: 'Timeout of one HTTP request (connect, headers and body).', format: 'positive_duration', default: 10_000 },
    max_body_size: { doc: 'Largest API response body accepted, bytes.', format: 'nat', default: 64 * 1024 * 1024 },
    max_retries: { doc: 'Retries of a failed call within one interval (network errors, 429, 5xx).', format: 'nat', default: 4 },
    max_retry_after: { doc: 'Longest wait a Retry-After header can impose; longer requests are cut to this (and logged once).', format: 'positive_duration', default: 5 * 60_000 },
    max_nodes: { doc: 'Most nodes the node list may hold; a longer list is rejected (too_large) and the last good inventory kept.', format: 'nat', default: 100_000 },
    max_entries: { doc: 'Most users, pre-auth keys or API keys one list may hold; a longer list is rejected (too_large) and its last good data kept.', format: 'nat', default: 100_000 },
    max_node_items: { doc: 'Most addresses, tags or routes taken from one node or key; the rest are dropped and counted (decode).', format: 'nat', default: 256 },
    include_user_email: { doc: 'Emit user e-mail addresses (tailscale_device_user{user_email}, headscale_user_info{user_email}); turn off for privacy.', format: Boolean, default: true },
    label_max_length: { doc: 'Label values are cut to this many characters.', format: 'nat', default: 128 },
    emit_metrics: { doc: 'Emit metrics (false: only publish the inventory and read only the node list, e.g. on shards other than 0).', format: Boolean, default: true },
    metrics_url: { doc: 'Headscale’s own /metrics (metrics_listen_addr, e.g. http://127.0.0.1:9090/metrics); its families are forwarded. Empty = not scraped.', format: 'url_or_empty', default: '' },
    metrics_namespace: {
      doc: 'Families of metrics_url that are forwarded (globs); anything else is dropped and counted, and our own names can never be taken.',
      format: 'string_list',
      default: ['headscale_*', 'go_*', 'process_*'],
    },
    metrics_max_body_size: { doc: 'Largest (decompressed) metrics_url body accepted, bytes.', format: 'nat', default: 10 * 1024 * 1024 },
    metrics_max_samples: { doc: 'Most samples accepted from metrics_url per scrape.', format: 'nat', default: 50_000 },
  },
  (c) => {
    const p: Array<{ path: string; message: string }> = [];
    if (!c.url) p.push({ path: 'url', message: 'must be set (the Headscale server URL, e.g. https://headscale.example.com)' });
    if (c.api_key && c.api_key_file) p.push({ path: 'api_key', message: 'set either api_key or api_key_file, not both' });
    if (!c.api_key && !c.api_key_file) p.push({ path: 'api_key', message: 'missing credential: set api_key or api_key_file (headscale apikeys create)' });
    if (c.api_key_file) {
      // Read now, so a missing or empty file stops the start, naming the key (not its contents).
      try {
        readKeyFileSync(c.api_key_file);
      } catch (err) {
        p.push({ path: 'api_key_file', message: `cannot read the API key: ${errorMessage(err)}` });
      }
    }
    if (c.max_nodes < 1) p.push({ path: 'max_nodes', message: 'must be at least 1' });
    if (c.max_entries < 1) p.push({ path: 'max_entries', message: 'must be at least 1' });
    if (c.max_node_items < 1) p.push({ path: 'max_node_items', message: 'must be at least 1' });
    if (c.base_domain && !/^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/i.test(c.base_domain)) p.push({ path: 'base_domain', message: 'must be a DNS domain such as example.net' });
    if (c.metrics_url && c.metrics_namespace.length === 0) p.push({ path: 'metrics_namespace', message: 'must name at least one glob (e.g. headscale_*)' });
    for (const g of c.metrics_namespace) if (FORBIDDEN_NAMESPACE.test(g)) p.push({ path: 'metrics_namespace', message: `"${g}" would let the Headscale page write tailscale*, tsmetrics_* or any series; choose a narrower glob` });
    return p;
  },
);
