import { defineSchema } from '../../src/config/schema.ts';
import { compileRelabelConfigs, RelabelConfigError, type RelabelConfig } from './engine.ts';

export interface RelabelProcessorConfig {
  rules: RelabelConfig[];
}

export const configSchema = defineSchema<RelabelProcessorConfig>(
  {
    rules: { doc: 'Prometheus relabel rules (metric_relabel_configs syntax), applied in order to every series.', format: 'any_list', default: [] },
  },
  (c) => {
    try {
      compileRelabelConfigs(c.rules);
      return [];
    } catch (err) {
      if (err instanceof RelabelConfigError) return [{ path: 'rules', message: err.message }];
      throw err;
    }
  },
);
