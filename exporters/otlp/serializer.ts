import type { ResourceMetrics, DataPoint } from '@opentelemetry/sdk-metrics';
import { JsonMetricsSerializer, ProtobufMetricsSerializer, type IExportMetricsServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import { isStale } from '../../src/model/stale.ts';
import { encodeMetricsRequest } from './protobuf.ts';

interface JsonPoint {
  asDouble?: unknown;
  asInt?: unknown;
  flags?: number;
  count?: unknown;
  sum?: unknown;
  bucketCounts?: unknown;
  explicitBounds?: unknown;
}

function finite(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/**
 * OTLP/JSON with two fixes over the stock serializer: points marked stale get `flags: 1` and no
 * value (NO_RECORDED_VALUE), and NaN/±Inf are written as the strings the Collector accepts
 * instead of `null`.
 */
export const jsonSerializer: ISerializer<ResourceMetrics, IExportMetricsServiceResponse> = {
  serializeRequest(rm: ResourceMetrics) {
    const raw = JsonMetricsSerializer.serializeRequest(rm);
    if (!raw) return raw;
    const body = JSON.parse(Buffer.from(raw).toString('utf8')) as {
      resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<Record<string, { dataPoints?: JsonPoint[] } | undefined>> }> }>;
    };
    const out = body.resourceMetrics[0];
    if (out) {
      rm.scopeMetrics.forEach((sm, si) => {
        sm.metrics.forEach((m, mi) => {
          const jm = out.scopeMetrics[si]?.metrics[mi];
          if (!jm) return;
          const data = jm.gauge ?? jm.sum ?? jm.histogram;
          const jps = data?.dataPoints ?? [];
          (m.dataPoints as DataPoint<unknown>[]).forEach((p, pi) => {
            const jp = jps[pi];
            if (!jp) return;
            if (isStale(p)) {
              delete jp.asDouble;
              delete jp.asInt;
              if (jm.histogram) {
                jp.count = 0;
                delete jp.sum;
                jp.bucketCounts = [];
              }
              jp.flags = 1;
            } else if (typeof p.value === 'number' && !Number.isFinite(p.value)) {
              jp.asDouble = finite(p.value);
            }
          });
        });
      });
    }
    return new TextEncoder().encode(JSON.stringify(body));
  },
  deserializeResponse: (data) => JsonMetricsSerializer.deserializeResponse(data),
};

/** OTLP/protobuf written by our encoder (it carries `flags`); responses use the stock decoder. */
export const protobufSerializer: ISerializer<ResourceMetrics, IExportMetricsServiceResponse> = {
  serializeRequest: (rm) => encodeMetricsRequest(rm),
  deserializeResponse: (data) => ProtobufMetricsSerializer.deserializeResponse(data),
};
