import type { ExporterFactory } from '../../src/component/types.ts';
import { configSchema, type PrometheusExporterConfig } from './config.ts';
import { PrometheusExporterComponent } from './prometheus.ts';

export type { PrometheusExporterConfig } from './config.ts';
export { PrometheusExporterComponent } from './prometheus.ts';

/** `prometheus`: serves the pipelines' latest state on the shared HTTP server. */
export const prometheusExporterFactory: ExporterFactory<PrometheusExporterConfig> = {
  kind: 'exporter',
  type: 'prometheus',
  stability: 'beta',
  description: 'Serves the latest pipeline state on GET /metrics as Prometheus text or, when the scraper asks, OpenMetrics.',
  configSchema,
  createExporter: (settings, config) => new PrometheusExporterComponent(settings, config),
};
