import type { ReceiverFactory } from '../../src/component/types.ts';
import { configSchema, type LocalTailscaledConfig } from './config.ts';
import { createLocalTailscaledReceiver } from './receiver.ts';

export type { LocalTailscaledConfig } from './config.ts';

/** `local_tailscaled`: a node's own client metrics from its LocalAPI socket. */
export const localTailscaledReceiverFactory: ReceiverFactory<LocalTailscaledConfig> = {
  kind: 'receiver',
  type: 'local_tailscaled',
  stability: 'alpha',
  description: 'Reads a tailscaled’s own client metrics from its LocalAPI (/localapi/v0/usermetrics over the unix socket).',
  configSchema,
  createReceiver: createLocalTailscaledReceiver,
};
