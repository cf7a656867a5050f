import { defineSchema } from '../../src/config/schema.ts';

export interface OtlpExporterConfig {
  endpoint: string;
  protocol: 'http/protobuf' | 'http/json';
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  timeout: number;
  interval: number;
  max_queue_batches: number;
  resource_attributes: Record<string, string>;
}

export const configSchema = defineSchema<OtlpExporterConfig>(
  {
    endpoint: { doc: 'Full OTLP/HTTP metrics URL, e.g. http://collector:4318/v1/metrics.', format: String, default: 'http://localhost:4318/v1/metrics' },
    protocol: { doc: 'http/protobuf or http/json.', format: ['http/protobuf', 'http/json'], default: 'http/protobuf' },
    headers: { doc: 'Headers sent with every request (secrets are redacted in output).', format: 'string_map', default: {}, sensitive: true },
    compression: { doc: 'gzip or none.', format: ['gzip', 'none'], default: 'none' },
    timeout: { doc: 'Deadline of one export including retries and the whole response.', format: 'positive_duration', default: 10_000 },
    interval: { doc: 'Send queued batches on this interval (0 = as each cycle completes).', format: 'duration', default: 0 },
    max_queue_batches: { doc: 'Batches waiting while the endpoint is slow or down; the oldest are dropped (and counted) beyond this.', format: 'nat', default: 16 },
    resource_attributes: { doc: 'Extra resource attributes (service.namespace, deployment.environment, …).', format: 'string_map', default: {} },
  },
  (c) => {
    if (!URL.canParse(c.endpoint)) return [{ path: 'endpoint', message: 'must be an absolute http(s) URL' }];
    const u = new URL(c.endpoint);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return [{ path: 'endpoint', message: 'must be an http:// or https:// URL' }];
    if (c.max_queue_batches < 1) return [{ path: 'max_queue_batches', message: 'must be at least 1' }];
    return [];
  },
);
