import type { ProcessorFactory } from '../../src/component/types.ts';
import { createAttributesProcessor } from './attributes.ts';
import { configSchema, type AttributesConfig } from './config.ts';

export type { AttributesConfig, AttributeAction, DropRule } from './config.ts';
export { createAttributesProcessor } from './attributes.ts';

/** `attributes`: deletes, hashes (HMAC) or keeps only chosen attributes; drops matching records. */
export const attributesProcessorFactory: ProcessorFactory<AttributesConfig> = {
  kind: 'processor',
  type: 'attributes',
  stability: 'alpha',
  description: 'Deletes or HMAC-hashes attributes by name, glob or RE2 pattern, keeps only a list, and drops records or points whose attribute matches.',
  configSchema,
  signals: ['metrics', 'logs'],
  createProcessor: (_settings, config) => createAttributesProcessor(config),
  // It renames nothing, but deleting or hashing device_id would blind staleness, so it comes after.
  rewritesData: (c) => c.actions.length > 0 || c.keep_only.length > 0 || c.drop_when.length > 0,
};
