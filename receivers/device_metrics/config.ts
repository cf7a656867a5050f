import { defineSchema } from '../../src/config/schema.ts';

export interface DeviceMetricsConfig {
  inventory: string;
  interval: number;
  port: number;
  path: string;
  timeout: number;
  max_concurrent: number;
  max_body_size: number;
  max_samples: number;
  allowed_cidrs: string[];
  address: 'ipv4' | 'ipv6' | 'magicdns';
  require_tag: boolean;
  scrape_tag: string;
  family_namespace: string[];
  max_name_length: number;
  max_label_name_length: number;
  max_labels: number;
  max_help_length: number;
  max_families: number;
  include_families: string[];
  exclude_families: string[];
  backoff_max_cycles: number;
  label_max_length: number;
  replay: boolean;
  shard_count: number;
  shard_index: number;
  proxy_url: string;
  service_discovery: ServiceDiscoveryConfig;
}

/** `service_discovery`: the targets as a Prometheus HTTP SD document (see sd.ts). */
export interface ServiceDiscoveryConfig {
  enabled: boolean;
  path: string;
  max_response_bytes: number;
}

/** Paths the server itself answers; a discovery route on one of them would never be reached. */
const RESERVED_PATHS = ['/metrics', '/health', '/healthz', '/livez', '/ready', '/readyz', '/debug', '/-/reload'];

export const configSchema = defineSchema<DeviceMetricsConfig>(
  {
    inventory: { doc: 'Id of the tailscale_api receiver whose inventory gives the targets (empty = all).', format: String, default: '' },
    interval: { doc: 'Scrape interval.', format: 'positive_duration', default: 30_000 },
    port: { doc: 'Port of the devices’ client metrics (tailscaled web client).', format: 'port', default: 5252 },
    path: { doc: 'HTTP path of the client metrics.', format: String, default: '/metrics' },
    timeout: { doc: 'Per-device bound on connect, headers and the whole body.', format: 'positive_duration', default: 10_000 },
    max_concurrent: { doc: 'Parallel scrapes.', format: 'nat', default: 10 },
    // tailscaled sends about 10 KB and 80 samples; the bounds leave a wide margin without letting
    // one device cost the process hundreds of megabytes per cycle.
    max_body_size: { doc: 'Largest body accepted from a device, bytes (checked on the compressed and the decompressed size).', format: 'nat', default: 4 * 1024 * 1024 },
    max_samples: { doc: 'Most samples accepted from one device per scrape.', format: 'nat', default: 20_000 },
    allowed_cidrs: { doc: 'Only addresses inside these networks are ever dialed.', format: 'cidr_list', default: ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'] },
    address: { doc: 'Which device address to dial: ipv4 (first IPv4 inside allowed_cidrs, else IPv6), ipv6, or magicdns (the name, resolved and checked).', format: ['ipv4', 'ipv6', 'magicdns'], default: 'ipv4' },
    require_tag: { doc: 'Only scrape devices carrying scrape_tag (the security rule).', format: Boolean, default: true },
    scrape_tag: { doc: 'Tag a device needs to be scraped.', format: String, default: 'tag:exporter' },
    family_namespace: {
      doc: 'Metric families a device may send (globs on the Prometheus name). Anything else is dropped and counted, so no device can emit or shadow tailscale_* or tsmetrics_* series.',
      format: 'string_list',
      default: ['tailscaled_*'],
    },
    max_name_length: { doc: 'Longest metric name accepted from a device, characters (longer: the scrape fails with kind "limit").', format: 'nat', default: 256 },
    max_label_name_length: { doc: 'Longest label name accepted from a device, characters (longer: the scrape fails with kind "limit").', format: 'nat', default: 128 },
    max_labels: { doc: 'Most labels on one sample (more: the scrape fails with kind "limit").', format: 'nat', default: 32 },
    max_help_length: { doc: 'HELP texts are cut to this many characters.', format: 'nat', default: 1024 },
    max_families: { doc: 'Most metric families one device may contribute per scrape (tailscaled sends about 20); the rest are dropped and counted as kind "limit".', format: 'nat', default: 500 },
    include_families: { doc: 'Only these metric families (exact names or * globs; empty = all).', format: 'string_list', default: [] },
    exclude_families: { doc: 'Never these metric families (exact names or * globs).', format: 'string_list', default: [] },
    backoff_max_cycles: { doc: 'A failing device is skipped for 1, 2, 4 … cycles, at most this many.', format: 'nat', default: 8 },
    label_max_length: { doc: 'Label values are cut to this many characters.', format: 'nat', default: 128 },
    replay: { doc: 'Write a body that repeats the last scrape’s lines with new numbers straight into the series (no parse); anything else is parsed. Same output either way; off only to compare.', format: Boolean, default: true },
    shard_count: { doc: 'Number of replicas sharing the device scrape.', format: 'nat', default: 1 },
    shard_index: { doc: 'This replica’s shard (0 … shard_count−1).', format: 'nat', default: 0 },
    proxy_url: { doc: 'HTTP proxy that reaches the tailnet (tailscaled --outbound-http-proxy-listen; set automatically in tsnet mode). Empty = dial directly.', format: 'url_or_empty', default: '' },
    service_discovery: {
      enabled: { doc: 'Serve the scrape targets as a Prometheus HTTP service discovery document (http_sd_configs).', format: Boolean, default: true },
      path: { doc: 'Path of the discovery document on the shared HTTP server (behind METRICS_TOKEN when set).', format: String, default: '/sd/devices' },
      max_response_bytes: { doc: 'Largest discovery document served, bytes; a larger one is answered 503 and Prometheus keeps its last targets.', format: 'nat', default: 64 * 1024 * 1024 },
    },
  },
  (c) => {
    const p: Array<{ path: string; message: string }> = [];
    if (c.family_namespace.length === 0) p.push({ path: 'family_namespace', message: 'must name at least one glob (e.g. tailscaled_*)' });
    for (const g of c.family_namespace) if (/^(tailscale_|tsmetrics_|\*)/i.test(g) && !/^tailscaled_/i.test(g)) p.push({ path: 'family_namespace', message: `"${g}" would let devices write tailscale_* or tsmetrics_* series; choose a narrower glob` });
    for (const k of ['max_name_length', 'max_label_name_length', 'max_labels', 'max_help_length', 'max_families'] as const) if (c[k] < 1) p.push({ path: k, message: 'must be at least 1' });
    if (c.max_concurrent < 1) p.push({ path: 'max_concurrent', message: 'must be at least 1' });
    if (!c.path.startsWith('/')) p.push({ path: 'path', message: 'must start with /' });
    if (c.shard_count < 1) p.push({ path: 'shard_count', message: 'must be at least 1' });
    if (c.shard_index >= c.shard_count) p.push({ path: 'shard_index', message: `must be below shard_count (${c.shard_count})` });
    if (c.require_tag && !c.scrape_tag.startsWith('tag:')) p.push({ path: 'scrape_tag', message: 'must start with "tag:"' });
    // Through a proxy the name would be resolved by the proxy, where the allowed-CIDR rule cannot
    // check the address actually dialed.
    const sd = c.service_discovery;
    if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(sd.path)) p.push({ path: 'service_discovery.path', message: 'must start with / and be a plain URL path (no query, fragment or spaces)' });
    else if (RESERVED_PATHS.includes(sd.path.replace(/(.)\/+$/, '$1'))) p.push({ path: 'service_discovery.path', message: `${sd.path} is served by tsmetrics itself; choose another path such as /sd/devices` });
    if (sd.max_response_bytes < 1024) p.push({ path: 'service_discovery.max_response_bytes', message: 'must be at least 1024' });
    if (c.proxy_url && c.address === 'magicdns') p.push({ path: 'address', message: 'magicdns cannot be used with proxy_url; use ipv4 or ipv6 so the allowed-CIDR rule checks the dialed address' });
    return p;
  },
);
