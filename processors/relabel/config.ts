import { defineSchema } from '../../src/config/schema.ts';
import { compileRelabelConfigs, RelabelConfigError, type NameValidationScheme, type RelabelConfig } from './engine.ts';

export interface RelabelProcessorConfig {
  rules: RelabelConfig[];
  name_validation_scheme: NameValidationScheme;
}

export const configSchema = defineSchema<RelabelProcessorConfig>(
  {
    rules: { doc: 'Prometheus relabel rules (metric_relabel_configs syntax), applied in order to every series.', format: 'any_list', default: [] },
    name_validation_scheme: {
      doc: 'Which label names rules may read and write: utf8 (any non-empty text, Prometheus 3’s default) or legacy ([a-zA-Z_][a-zA-Z0-9_]*).',
      format: ['utf8', 'legacy'],
      default: 'utf8',
    },
  },
  (c) => {
    try {
      compileRelabelConfigs(c.rules, c.name_validation_scheme);
      return [];
    } catch (err) {
      if (err instanceof RelabelConfigError) return [{ path: 'rules', message: err.message }];
      throw err;
    }
  },
);
