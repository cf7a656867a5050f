import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type MetricProducer, type CollectionResult } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';

/** Error kinds are a closed set so the error counter's cardinality stays bounded. */
export type ErrorKind =
  | 'http_429'
  | 'http_5xx'
  | 'http_status'
  | 'network'
  | 'auth'
  | 'decode'
  | 'timeout'
  | 'refused'
  | 'too_large'
  | 'parse'
  | 'not_allowed'
  | 'type_conflict'
  | 'namespace'
  | 'limit'
  | 'exception'
  | 'export';

/** What a source (receiver) last reported; read by `/health`, `/ready` and `/debug`. */
export interface SourceStatus {
  up: boolean;
  cycles: number;
  lastCycleMs: number | undefined;
  lastSuccessMs: number | undefined;
  lastDurationMs: number | undefined;
  lastError: string | undefined;
  details: Record<string, number>;
}

/** A reader that only collects on demand (serves `/metrics`); no timers of its own. */
class OnDemandReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The process's own telemetry: a MeterProvider with the instruments every component shares
 * (received/sent/dropped/errors per component, cycle duration, last success, source up), and the
 * status table behind `/health`.
 */
export class SelfTelemetry {
  readonly meterProvider: MeterProvider;
  readonly meter: Meter;
  private readonly _reader = new OnDemandReader();
  private readonly _received: Counter;
  private readonly _sent: Counter;
  private readonly _dropped: Counter;
  private readonly _receivedLogs: Counter;
  private readonly _sentLogs: Counter;
  private readonly _droppedLogs: Counter;
  private readonly _errors: Counter;
  private readonly _cycle: Histogram;
  private readonly _status = new Map<string, SourceStatus>();
  private readonly _reloads: Counter;
  /** Outcome of the last configuration load or reload; undefined until one is recorded. */
  private _reload: { ok: boolean; lastSuccessMs: number | undefined } | undefined;

  constructor(resource: Attributes = {}) {
    this.meterProvider = new MeterProvider({ resource: resourceFromAttributes(resource), readers: [this._reader] });
    this.meter = this.meterProvider.getMeter('tsmetrics');
    this._received = this.meter.createCounter('tsmetrics_component_received_points', {
      description: 'Data points a component received (receivers: produced) per batch.',
    });
    this._sent = this.meter.createCounter('tsmetrics_component_sent_points', {
      description: 'Data points a component passed on to the next component or destination.',
    });
    this._dropped = this.meter.createCounter('tsmetrics_component_dropped_points', {
      description: 'Data points a component dropped on purpose (filters) or could not deliver.',
    });
    // Log records are counted apart from points: one sum of both would mean nothing.
    this._receivedLogs = this.meter.createCounter('tsmetrics_component_received_log_records', {
      description: 'Log records a component received (receivers: produced) per batch.',
    });
    this._sentLogs = this.meter.createCounter('tsmetrics_component_sent_log_records', {
      description: 'Log records a component passed on to the next component or destination.',
    });
    this._droppedLogs = this.meter.createCounter('tsmetrics_component_dropped_log_records', {
      description: 'Log records a component dropped on purpose (filters, redaction) or could not deliver.',
    });
    this._errors = this.meter.createCounter('tsmetrics_component_errors', {
      description: 'Errors per component, by bounded error type.',
    });
    this._cycle = this.meter.createHistogram('tsmetrics_cycle_duration_seconds', {
      description: 'Duration of a receiver collection cycle.',
      advice: { explicitBucketBoundaries: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
    });
    const lastSuccess = this.meter.createObservableGauge('tsmetrics_last_successful_cycle_timestamp_seconds', {
      description: 'Unix time of the last successful collection cycle per receiver.',
    });
    const up = this.meter.createObservableGauge('tsmetrics_source_up', {
      description: '1 when the source’s last cycle succeeded, 0 when it failed (last good data is still served).',
    });
    // Named as Prometheus and Alertmanager name theirs, so the same alert rules carry over.
    const reloadOk = this.meter.createObservableGauge('tsmetrics_config_last_reload_successful', {
      description: '1 when the last configuration reload (or the load at start) succeeded, 0 when it failed and the previous configuration is still running.',
    });
    const reloadAt = this.meter.createObservableGauge('tsmetrics_config_last_reload_success_timestamp_seconds', {
      description: 'Unix time of the last successful configuration load (start or reload).',
    });
    this._reloads = this.meter.createCounter('tsmetrics_config_reloads', {
      description: 'Configuration reloads attempted, by result (success, failure).',
    });
    reloadOk.addCallback((obs) => {
      if (this._reload) obs.observe(this._reload.ok ? 1 : 0);
    });
    reloadAt.addCallback((obs) => {
      if (this._reload?.lastSuccessMs !== undefined) obs.observe(this._reload.lastSuccessMs / 1000);
    });
    lastSuccess.addCallback((obs) => {
      for (const [id, s] of this._status) if (s.lastSuccessMs !== undefined) obs.observe(s.lastSuccessMs / 1000, { component_id: id });
    });
    up.addCallback((obs) => {
      for (const [id, s] of this._status) if (s.cycles > 0) obs.observe(s.up ? 1 : 0, { source: id });
    });
  }

  /** Counts what a component took in: data points, or log records when `signal` is `logs`. */
  received(id: string, n: number, signal: 'metrics' | 'logs' = 'metrics'): void {
    if (n > 0) (signal === 'logs' ? this._receivedLogs : this._received).add(n, { component_id: id });
  }
  sent(id: string, n: number, signal: 'metrics' | 'logs' = 'metrics'): void {
    if (n > 0) (signal === 'logs' ? this._sentLogs : this._sent).add(n, { component_id: id });
  }
  dropped(id: string, n: number, signal: 'metrics' | 'logs' = 'metrics'): void {
    if (n > 0) (signal === 'logs' ? this._droppedLogs : this._dropped).add(n, { component_id: id });
  }
  error(id: string, kind: ErrorKind, n = 1): void {
    this._errors.add(n, { component_id: id, error_type: kind });
  }

  /** Registers a source so `/ready` waits for it. */
  registerSource(id: string): void {
    if (!this._status.has(id)) {
      this._status.set(id, { up: false, cycles: 0, lastCycleMs: undefined, lastSuccessMs: undefined, lastDurationMs: undefined, lastError: undefined, details: {} });
    }
  }

  /** Forgets a source that no longer exists (a receiver a reload removed). */
  forgetSource(id: string): void {
    this._status.delete(id);
  }

  /** Records the configuration loaded at start (`reload` false) or the outcome of a reload. */
  configLoaded(ok: boolean, atMs: number, reload = true): void {
    if (reload) this._reloads.add(1, { result: ok ? 'success' : 'failure' });
    this._reload = { ok, lastSuccessMs: ok ? atMs : this._reload?.lastSuccessMs };
  }

  /** Records the end of a receiver cycle. */
  cycle(id: string, r: { ok: boolean; startMs: number; endMs: number; error?: string; details?: Record<string, number> }): void {
    this.registerSource(id);
    const s = this._status.get(id) as SourceStatus;
    s.cycles++;
    s.up = r.ok;
    s.lastCycleMs = r.endMs;
    s.lastDurationMs = r.endMs - r.startMs;
    if (r.ok) {
      s.lastSuccessMs = r.endMs;
      s.lastError = undefined;
    } else s.lastError = r.error;
    if (r.details) Object.assign(s.details, r.details);
    this._cycle.record((r.endMs - r.startMs) / 1000, { component_id: id });
  }

  status(): ReadonlyMap<string, SourceStatus> {
    return this._status;
  }

  /** Collects the self-telemetry for serving beside pipeline data. */
  collect(): Promise<CollectionResult> {
    return this._reader.collect();
  }

  /** A MetricProducer view, for readers that want self-telemetry (OTLP). */
  producer(): MetricProducer {
    return { collect: () => this.collect() };
  }

  async shutdown(): Promise<void> {
    await this.meterProvider.shutdown().catch(() => undefined);
  }
}
