import type { ReceiverFactory } from '../../src/component/types.ts';
import { configSchema, type HeadscaleConfig } from './config.ts';
import { createHeadscaleReceiver } from './receiver.ts';

export type { HeadscaleConfig } from './config.ts';
export { HEADSCALE_METRICS } from './metrics.ts';

/** `headscale`: inventory and metrics from a self-hosted Headscale control server. */
export const headscaleReceiverFactory: ReceiverFactory<HeadscaleConfig> = {
  kind: 'receiver',
  type: 'headscale',
  stability: 'alpha',
  description: 'Inventory, tailscale_device_* and headscale_* metrics from a Headscale control server (REST /api/v1), plus its own /metrics.',
  configSchema,
  createReceiver: createHeadscaleReceiver,
};
