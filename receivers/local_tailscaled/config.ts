import { defineSchema } from '../../src/config/schema.ts';

export interface LocalTailscaledConfig {
  socket_path: string;
  interval: number;
  timeout: number;
  max_body_size: number;
}

export const configSchema = defineSchema<LocalTailscaledConfig>({
  socket_path: { doc: 'LocalAPI socket of the tailscaled to read (in tsnet mode: the supervised node’s).', format: String, default: '/var/run/tailscale/tailscaled.sock' },
  interval: { doc: 'Collection interval.', format: 'positive_duration', default: 30_000 },
  timeout: { doc: 'Timeout of one LocalAPI call.', format: 'positive_duration', default: 5_000 },
  max_body_size: { doc: 'Largest usermetrics body accepted, bytes.', format: 'nat', default: 10 * 1024 * 1024 },
});
