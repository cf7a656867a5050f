import type { ExporterFactory } from '../../src/component/types.ts';
import { configSchema, type OtlpExporterConfig } from './config.ts';
import { OtlpExporterComponent } from './otlp.ts';

export type { OtlpExporterConfig } from './config.ts';
export { OtlpExporterComponent } from './otlp.ts';
export { encodeMetricsRequest } from './protobuf.ts';

/** `otlp`: OTLP push (HTTP or gRPC) of metrics and logs to an OpenTelemetry Collector. */
export const otlpExporterFactory: ExporterFactory<OtlpExporterConfig> = {
  kind: 'exporter',
  type: 'otlp',
  stability: 'beta',
  signals: ['metrics', 'logs'],
  description: 'Pushes each batch over OTLP/HTTP (protobuf or JSON) or OTLP/gRPC with staleness markers, bounded retries, delta temporality on request and tsmetrics’ own metrics; logs pipelines’ records too.',
  configSchema,
  createExporter: (settings, config) => new OtlpExporterComponent(settings, config),
};
