import type { ProcessorFactory } from '../../src/component/types.ts';
import { configSchema, type RelabelProcessorConfig } from './config.ts';
import { createRelabelProcessor } from './processor.ts';

export type { RelabelProcessorConfig } from './config.ts';
export { relabel, validateRelabelConfig, expandTemplate, isValidLabelName, RelabelConfigError, type RelabelConfig, type RelabelAction, type NameValidationScheme } from './engine.ts';
export { relabelBatch } from './processor.ts';

/** `relabel`: Prometheus relabel rules applied to every series. */
export const relabelProcessorFactory: ProcessorFactory<RelabelProcessorConfig> = {
  kind: 'processor',
  type: 'relabel',
  stability: 'beta',
  description: 'Applies Prometheus relabel rules (keep, drop, replace, labelmap, hashmod, …) with RE2 semantics.',
  configSchema,
  rewritesData: (config) => config.rules.length > 0,
  createProcessor: (_settings, config) => createRelabelProcessor(config),
};
