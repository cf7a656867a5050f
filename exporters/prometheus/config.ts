import { defineSchema } from '../../src/config/schema.ts';

export interface PrometheusExporterConfig {
  path: string;
  gzip: boolean;
  target_info: boolean;
  scope_info: boolean;
  self_telemetry: boolean;
}

export const configSchema = defineSchema<PrometheusExporterConfig>(
  {
    path: { doc: 'HTTP path served on the shared server.', format: String, default: '/metrics' },
    gzip: { doc: 'Compress the body when the client accepts gzip.', format: Boolean, default: true },
    target_info: { doc: 'Add the OpenTelemetry `target_info` series.', format: Boolean, default: false },
    scope_info: { doc: 'Add `otel_scope_*` labels to every series.', format: Boolean, default: false },
    self_telemetry: { doc: 'Serve tsmetrics’ own metrics on the same page.', format: Boolean, default: true },
  },
  (c) => (c.path.startsWith('/') ? [] : [{ path: 'path', message: 'must start with /' }]),
);
