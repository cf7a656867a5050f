import type { ReceiverFactory } from '../../src/component/types.ts';
import { configSchema, type DeviceMetricsConfig } from './config.ts';
import { createDeviceMetricsReceiver } from './receiver.ts';

export type { DeviceMetricsConfig } from './config.ts';
export { parseExposition, ExpositionParseError, type ExpositionFamily, type ExpositionSample, type FamilyType } from './exposition.ts';

/** `device_metrics`: every allowed device's tailscaled client metrics. */
export const deviceMetricsReceiverFactory: ReceiverFactory<DeviceMetricsConfig> = {
  kind: 'receiver',
  type: 'device_metrics',
  stability: 'beta',
  description: 'Scrapes tailscaled client metrics (http://<device>:5252/metrics) of allowed, tagged, online devices.',
  configSchema,
  createReceiver: createDeviceMetricsReceiver,
};
