import { defineSchema } from '../../src/config/schema.ts';

export interface LocalTailscaledConfig {
  socket_path: string;
  interval: number;
  timeout: number;
  max_body_size: number;
  max_status_size: number;
  usermetrics: boolean;
  max_peers: number;
  client_metrics: string[];
  label_max_length: number;
}

export const configSchema = defineSchema<LocalTailscaledConfig>(
  {
    socket_path: { doc: 'LocalAPI socket of the tailscaled to read (in tsnet mode: the supervised node’s).', format: String, default: '/var/run/tailscale/tailscaled.sock' },
    interval: { doc: 'Collection interval.', format: 'positive_duration', default: 30_000 },
    timeout: { doc: 'Bound on one LocalAPI call: connect, headers and the whole body.', format: 'positive_duration', default: 5_000 },
    max_body_size: { doc: 'Largest usermetrics or clientmetrics body accepted, bytes.', format: 'nat', default: 10 * 1024 * 1024 },
    max_status_size: { doc: 'Largest /localapi/v0/status body accepted, bytes (about 1.6 KiB per peer).', format: 'nat', default: 32 * 1024 * 1024 },
    usermetrics: { doc: 'Also read the node’s own client metrics (/localapi/v0/usermetrics, tailscaled 1.78+).', format: Boolean, default: true },
    max_peers: { doc: 'Peers reported one by one (sorted by stable node id); the rest are only counted in the aggregates and tsmetrics_localapi_peers_over_limit. 0 = aggregates only.', format: 'nat', default: 1000 },
    client_metrics: {
      doc: 'Globs of tailscaled clientmetric names to read from /localapi/v0/metrics (unstable names; needs LocalAPI write access). Empty = the endpoint is never called.',
      format: 'string_list',
      default: [],
    },
    label_max_length: { doc: 'Label values are cut to this many characters.', format: 'nat', default: 128 },
  },
  (c) => {
    const problems: Array<{ path: string; message: string }> = [];
    if (c.socket_path === '') problems.push({ path: 'socket_path', message: 'must name the LocalAPI socket' });
    if (c.label_max_length < 16) problems.push({ path: 'label_max_length', message: 'must be at least 16' });
    if (c.max_status_size < 1024) problems.push({ path: 'max_status_size', message: 'must be at least 1024 bytes' });
    return problems;
  },
);
