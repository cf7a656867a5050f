import type { Attributes } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, type DataPoint, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { BatchInfo, Exporter, Settings } from '../../src/component/types.ts';
import { streamWriter, type OutputStream } from '../../src/log/logger.ts';
import { countPoints } from '../../src/model/batch.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { isStale } from '../../src/model/stale.ts';
import type { DebugExporterConfig } from './config.ts';
import { boundLine, isoNanos, jsonLine, jsonMap, jsonValue, textPairs, textValue } from './format.ts';

/** Where the exporter may write (tests hand in their own streams). */
export interface DebugOutputs {
  readonly stdout?: OutputStream;
  readonly stderr?: OutputStream;
}

const TYPE_NAMES: Record<DataPointType, string> = {
  [DataPointType.HISTOGRAM]: 'histogram',
  [DataPointType.EXPONENTIAL_HISTOGRAM]: 'exponential_histogram',
  [DataPointType.GAUGE]: 'gauge',
  [DataPointType.SUM]: 'sum',
};

/** One line's fields; rendered as `key=value` text or as a JSON object. */
type Fields = Record<string, unknown>;

/**
 * `debug`: writes what reaches it to stdout or stderr, as the Collector's debug exporter does, to
 * see a pipeline's output without a backend. Output goes through the guarded writer of the
 * process log (src/log/logger.ts): a closed pipe ends the output without an error, and a reader
 * that does not keep up loses lines (counted in a line of their own) instead of growing memory or
 * stalling the pipeline. Every value is escaped and bounded (format.ts).
 */
export class DebugExporterComponent implements Exporter {
  private readonly _s: Settings;
  private readonly _c: DebugExporterConfig;
  private readonly _write: (line: string) => void;
  private _window = -1;
  private _inWindow = 0;
  /** Batches written and batches the sampler skipped. */
  readonly stats = { written: 0, sampledOut: 0, lines: 0 };

  constructor(settings: Settings, config: DebugExporterConfig, outputs: DebugOutputs = {}) {
    this._s = settings;
    this._c = config;
    const stream = config.output === 'stderr' ? (outputs.stderr ?? process.stderr) : (outputs.stdout ?? process.stdout);
    this._write = streamWriter(stream);
  }

  async start(): Promise<void> {}

  async shutdown(_deadline: AbortSignal): Promise<void> {}

  /** The Collector's sampler: the first `sampling_initial` batches of each second, then every `sampling_thereafter`th. */
  private _sampled(): boolean {
    const second = Math.floor(this._s.clock.now() / 1000);
    if (second !== this._window) {
      this._window = second;
      this._inWindow = 0;
    }
    const n = ++this._inWindow;
    const keep = n <= this._c.sampling_initial || (n - this._c.sampling_initial) % this._c.sampling_thereafter === 0;
    if (keep) this.stats.written++;
    else this.stats.sampledOut++;
    return keep;
  }

  private _line(kind: string, fields: Fields): void {
    let line: string;
    if (this._c.format === 'json') line = jsonLine({ kind, ...jsonFields(fields) });
    else {
      const parts = [kind];
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) parts.push(`${k}=${k === 'attributes' ? `{${textPairs(v as Attributes)}}` : textValue(v)}`);
      line = boundLine(parts.join(' '));
    }
    this.stats.lines++;
    // Learnt secrets never leave the process, whatever a device or the API echoed back.
    this._write(this._s.secrets.scrub(line));
  }

  async consume(batch: ResourceMetrics, info: BatchInfo): Promise<void> {
    const points = countPoints(batch);
    this._s.telemetry.sent(this._s.id.key, points);
    if (!this._sampled()) return;
    const metrics = batch.scopeMetrics.reduce((n, sm) => n + sm.metrics.length, 0);
    this._line('metrics', { pipeline: info.pipeline, source: info.source, resource_metrics: 1, metrics, data_points: points });
    if (this._c.verbosity === 'basic') return;
    const detailed = this._c.verbosity === 'detailed';
    if (detailed) this._line('resource', { attributes: batch.resource.attributes });
    for (const sm of batch.scopeMetrics) {
      if (detailed) this._line('scope', { name: sm.scope.name, version: sm.scope.version });
      for (const m of sm.metrics) {
        this._line('metric', metricFields(m));
        if (!detailed) continue;
        for (const p of m.dataPoints as DataPoint<unknown>[]) this._line('point', pointFields(m, p));
      }
    }
  }

  async consumeLogs(batch: LogsBatch, info: BatchInfo): Promise<void> {
    this._s.telemetry.sent(this._s.id.key, batch.length, 'logs');
    // The empty last part of a collection handed on in parts says nothing to a reader.
    if (batch.length === 0 || !this._sampled()) return;
    // Records of one resource share the object, so this is one lookup per record.
    const resources = new Map<Resource, number>();
    for (const r of batch) if (!resources.has(r.resource)) resources.set(r.resource, resources.size);
    this._line('logs', { pipeline: info.pipeline, source: info.source, resource_logs: resources.size, log_records: batch.length });
    if (this._c.verbosity === 'basic') return;
    const detailed = this._c.verbosity === 'detailed';
    if (detailed) for (const [res, index] of resources) this._line('resource', { index, attributes: res.attributes });
    for (const r of batch) this._line('log', recordFields(r, detailed ? resources.get(r.resource) : undefined));
  }
}

function metricFields(m: MetricData): Fields {
  return {
    name: m.descriptor.name,
    type: TYPE_NAMES[m.dataPointType] ?? 'unknown',
    ...(m.dataPointType === DataPointType.SUM ? { monotonic: m.isMonotonic } : {}),
    ...(m.dataPointType !== DataPointType.GAUGE ? { temporality: m.aggregationTemporality === AggregationTemporality.DELTA ? 'delta' : 'cumulative' } : {}),
    unit: m.descriptor.unit || undefined,
    data_points: m.dataPoints.length,
  };
}

function pointFields(m: MetricData, p: DataPoint<unknown>): Fields {
  const v = p.value;
  const value =
    typeof v === 'number'
      ? { value: v }
      : v && typeof v === 'object' && 'count' in v
        ? { count: (v as { count: number }).count, sum: (v as { sum?: number }).sum }
        : {};
  return { metric: m.descriptor.name, time: isoNanos(p.endTime), start: isoNanos(p.startTime), ...(isStale(p) ? { stale: true } : value), attributes: p.attributes };
}

function recordFields(r: ReadableLogRecord, resource: number | undefined): Fields {
  const base: Fields = {
    time: isoNanos(r.hrTime),
    severity: r.severityText || undefined,
    severity_number: r.severityNumber || undefined,
    event: r.eventName || undefined,
    body: r.body,
  };
  if (resource === undefined) return base;
  return {
    ...base,
    observed: isoNanos(r.hrTimeObserved),
    resource_index: resource,
    scope: r.instrumentationScope.name,
    trace_id: r.spanContext?.traceId,
    span_id: r.spanContext?.spanId,
    attributes: r.attributes,
  };
}

/** Fields as bounded JSON data, absent ones left out. */
function jsonFields(fields: Fields): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = k === 'attributes' ? jsonMap(v as Attributes) : jsonValue(v);
  }
  return out;
}
