import type { ProcessorFactory } from '../../src/component/types.ts';
import { configSchema, type StalenessConfig } from './config.ts';
import { createStalenessProcessor } from './staleness.ts';

export type { StalenessConfig } from './config.ts';
export { createStalenessProcessor } from './staleness.ts';

/** `staleness`: grace for failing devices and end-of-series markers. */
export const stalenessProcessorFactory: ProcessorFactory<StalenessConfig> = {
  kind: 'processor',
  type: 'staleness',
  stability: 'beta',
  description: 'Keeps a failing device’s series for a grace period and marks ended series stale (NO_RECORDED_VALUE) for OTLP.',
  configSchema,
  createProcessor: (_settings, config) => createStalenessProcessor(config),
};
