import { defineSchema } from '../../src/config/schema.ts';

export interface AuditMetricsConfig {
  max_values: number;
  max_series: number;
}

export const configSchema = defineSchema<AuditMetricsConfig>(
  {
    max_values: { doc: 'Values of each label beyond the documented Tailscale ones that are kept as they are; later new values become "other".', format: 'nat', default: 20 },
    max_series: { doc: 'Distinct label combinations kept; beyond it new combinations are counted with every label but tailnet set to "other".', format: 'nat', default: 2000 },
  },
  (c) => (c.max_series < 1 ? [{ path: 'max_series', message: 'must be at least 1' }] : []),
);
