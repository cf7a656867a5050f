import { defineSchema } from '../../src/config/schema.ts';

export interface FlowMetricsConfig {
  max_series: number;
  series_ttl: number;
  destination_addresses: 'keep' | 'drop';
  max_label_length: number;
}

export const configSchema = defineSchema<FlowMetricsConfig>(
  {
    max_series: { doc: 'Distinct (source, destination, traffic type, protocol, tailnet) series kept; beyond it new combinations are summed into src_device/dst_device "other".', format: 'nat', default: 5000 },
    series_ttl: { doc: 'A series not updated for this long is forgotten (frees memory; if it comes back it starts again from zero with a new start time).', format: 'long_positive_duration', default: 3_600_000 },
    destination_addresses: { doc: 'keep: a destination that is not a tailnet device is labelled by its address; drop: it is labelled "external" (bounds cardinality on exit nodes and subnet routers).', format: ['keep', 'drop'], default: 'keep' },
    max_label_length: { doc: 'Longest src_device/dst_device value; longer names and addresses are cut.', format: 'nat', default: 256 },
  },
  (c) => [
    ...(c.max_series < 1 ? [{ path: 'max_series', message: 'must be at least 1' }] : []),
    ...(c.max_label_length < 16 || c.max_label_length > 4096 ? [{ path: 'max_label_length', message: 'must be between 16 and 4096' }] : []),
  ],
);
