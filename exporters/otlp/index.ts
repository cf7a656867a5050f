import type { ExporterFactory } from '../../src/component/types.ts';
import { configSchema, type OtlpExporterConfig } from './config.ts';
import { OtlpExporterComponent } from './otlp.ts';

export type { OtlpExporterConfig } from './config.ts';
export { OtlpExporterComponent } from './otlp.ts';
export { encodeMetricsRequest } from './protobuf.ts';

/** `otlp`: OTLP/HTTP push to an OpenTelemetry Collector. */
export const otlpExporterFactory: ExporterFactory<OtlpExporterConfig> = {
  kind: 'exporter',
  type: 'otlp',
  stability: 'beta',
  description: 'Pushes each batch over OTLP/HTTP (protobuf or JSON) with staleness markers and bounded retries.',
  configSchema,
  createExporter: (settings, config) => new OtlpExporterComponent(settings, config),
};
