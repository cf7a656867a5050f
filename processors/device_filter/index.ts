import type { ProcessorFactory } from '../../src/component/types.ts';
import { configSchema, type DeviceFilterConfig } from './config.ts';
import { createDeviceFilter, deviceSelector } from './filter.ts';

export type { DeviceFilterConfig } from './config.ts';
export { deviceSelector } from './filter.ts';

/** `device_filter`: keeps or drops whole devices; also limits which devices are dialed. */
export const deviceFilterProcessorFactory: ProcessorFactory<DeviceFilterConfig> = {
  kind: 'processor',
  type: 'device_filter',
  stability: 'beta',
  description: 'Keeps or drops whole devices by name, tag and online state; devices it drops are never scraped.',
  configSchema,
  signals: ['metrics', 'logs'],
  createProcessor: (settings, config) => createDeviceFilter(settings, config),
  deviceSelector,
};
