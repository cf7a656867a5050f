import type { ExporterFactory } from '../../src/component/types.ts';
import { configSchema, type DebugExporterConfig } from './config.ts';
import { DebugExporterComponent, type DebugOutputs } from './debug.ts';

export type { DebugExporterConfig } from './config.ts';
export { DebugExporterComponent, type DebugOutputs } from './debug.ts';

/**
 * A `debug` exporter factory writing to `outputs` instead of the process's stdout and stderr
 * (tests, embedding).
 */
export function createDebugExporterFactory(outputs: DebugOutputs = {}): ExporterFactory<DebugExporterConfig> {
  return {
    kind: 'exporter',
    type: 'debug',
    stability: 'development',
    signals: ['metrics', 'logs'],
    description: 'Writes each batch to stdout or stderr (a summary, one line per metric or log record, or every attribute), sampled, escaped and bounded, as the Collector’s debug exporter.',
    configSchema,
    createExporter: (settings, config) => new DebugExporterComponent(settings, config, outputs),
  };
}

/** `debug`: the Collector's debug exporter, on the process's stdout or stderr. */
export const debugExporterFactory: ExporterFactory<DebugExporterConfig> = createDebugExporterFactory();
