import { defineSchema } from '../../src/config/schema.ts';

export interface StalenessConfig {
  grace_period: number;
  grace_intervals: number;
  markers: boolean;
}

export const configSchema = defineSchema<StalenessConfig>({
  grace_period: { doc: 'How long a failing device’s client series are kept (0 = grace_intervals × the source’s interval).', format: 'long_duration', default: 0 },
  grace_intervals: { doc: 'Grace period in source intervals when grace_period is 0.', format: 'nat', default: 2 },
  markers: { doc: 'Emit one NO_RECORDED_VALUE point for every series that ends (OTLP staleness).', format: Boolean, default: true },
});
