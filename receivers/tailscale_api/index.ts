import type { ReceiverFactory } from '../../src/component/types.ts';
import { configSchema, type TailscaleApiConfig } from './config.ts';
import { createTailscaleApiReceiver } from './receiver.ts';

export type { TailscaleApiConfig } from './config.ts';
export { API_METRICS } from './metrics.ts';

/** `tailscale_api`: device inventory and metadata from the Tailscale REST API. */
export const tailscaleApiReceiverFactory: ReceiverFactory<TailscaleApiConfig> = {
  kind: 'receiver',
  type: 'tailscale_api',
  stability: 'beta',
  description: 'Device inventory and tailscale_device_* metrics from the Tailscale API (one devices?fields=all call per interval).',
  configSchema,
  createReceiver: createTailscaleApiReceiver,
};
