import type { ReceiverFactory } from '../../src/component/types.ts';
import { configSchema, type LocalTailscaledConfig } from './config.ts';
import { createLocalTailscaledReceiver } from './receiver.ts';

export type { LocalTailscaledConfig } from './config.ts';

/**
 * `local_tailscaled`: one tailscaled seen from inside, over its LocalAPI socket: the node's state
 * and every peer's connection path, handshake, bytes and key expiry, plus its own client metrics.
 */
export const localTailscaledReceiverFactory: ReceiverFactory<LocalTailscaledConfig> = {
  kind: 'receiver',
  type: 'local_tailscaled',
  stability: 'alpha',
  description: 'Reads a tailscaled’s LocalAPI over its unix socket: node state and per-peer connectivity (/localapi/v0/status), its own client metrics (usermetrics) and opt-in clientmetrics.',
  configSchema,
  createReceiver: createLocalTailscaledReceiver,
};
