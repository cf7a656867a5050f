import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { Agent, type Dispatcher } from 'undici';
import type { ComponentRegistry } from '../component/registry.ts';
import type {
  BatchInfo,
  Clock,
  Connector,
  ConnectorFactory,
  Exporter,
  ExporterFactory,
  HttpRoute,
  LogsConsumer,
  MetricsConsumer,
  Processor,
  ProcessorFactory,
  Receiver,
  ReceiverFactory,
  Settings,
  Signal,
} from '../component/types.ts';
import { SelfEndpoints, systemClock } from '../component/types.ts';
import type { ResolvedComponent, ServiceConfig } from '../config/service.ts';
import { errorMessage } from '../errors.ts';
import { nopLogger, OnceLogger, Redactor, type Logger } from '../log/logger.ts';
import { countPoints } from '../model/batch.ts';
import { countRecords, type LogsBatch } from '../model/logs.ts';
import { SelfTelemetry } from '../telemetry/self.ts';
import { InventoryHub, type DeviceSelector } from './inventory.ts';
import { settlesBy, shutdownCutOffOf } from '../util/abort.ts';

/**
 * How long receivers get to stop after they are aborted. An aborted receiver delivers nothing
 * new, so time spent waiting for one is taken from the exporters' final flush.
 */
const RECEIVER_STOP_GRACE_MS = 1000;
/**
 * A component that honours its deadline finishes within a few microtasks of it; this much longer
 * lets it report what it cut off before it is called stuck.
 */
export const PAST_DEADLINE_GRACE_MS = 200;

/** What a shutdown left undone and what failed, one `id: what` entry each. */
export interface ShutdownReport {
  /** Work the deadline cut off, e.g. `otlp: 3 batches not sent`. */
  readonly cutOff: readonly string[];
  /** Steps that threw, e.g. `otlp: socket hang up`. */
  readonly failed: readonly string[];
}

/** Options for building a service (everything a component gets is passed in here). */
export interface ServiceOptions {
  logger?: Logger;
  clock?: Clock;
  /** Outbound HTTP dispatcher shared by components; one undici Agent by default. */
  dispatcher?: Dispatcher;
  telemetry?: SelfTelemetry;
  inventory?: InventoryHub;
  /** Adds resource attributes to self-telemetry and OTLP batches (service.version…). */
  version?: string;
  /** Registry of secrets to scrub from every printout; components add runtime secrets to it. */
  secrets?: Redactor;
  /** This process's listening sockets (filled in after the HTTP server binds). */
  selfEndpoints?: SelfEndpoints;
}

/** Where a pipeline ends: an exporter, or a connector that starts other pipelines. */
interface PipelineExit {
  readonly id: string;
  readonly consumer: Exporter | Connector;
}

interface PipelineNode {
  readonly name: string;
  readonly signal: Signal;
  readonly processors: Array<{ id: string; processor: Processor }>;
  readonly exporters: PipelineExit[];
}

/** Either signal's batch, as it travels one pipeline. */
type AnyBatch = ResourceMetrics | LogsBatch;

/**
 * The pipeline runtime: builds receivers → processors → exporters from a validated config,
 * fans each receiver out to every pipeline that lists it (a receiver runs once however many
 * pipelines use it), and owns start/shutdown order.
 */
export class PipelineService {
  readonly config: ServiceConfig;
  readonly logger: Logger;
  readonly telemetry: SelfTelemetry;
  readonly inventory: InventoryHub;
  readonly clock: Clock;
  readonly secrets: Redactor;
  readonly selfEndpoints: SelfEndpoints;
  readonly receivers = new Map<string, Receiver>();
  readonly exporters = new Map<string, Exporter>();
  readonly connectors = new Map<string, Connector>();
  readonly pipelines: PipelineNode[] = [];
  private readonly _dispatcher: Dispatcher;
  private readonly _ownsDispatcher: boolean;
  private readonly _ownsTelemetry: boolean;
  private readonly _once: OnceLogger;
  private _state: 'new' | 'started' | 'stopped' = 'new';
  private _stopping: Promise<ShutdownReport> | undefined;

  constructor(registry: ComponentRegistry, config: ServiceConfig, opts: ServiceOptions = {}) {
    this.config = config;
    this.logger = opts.logger ?? nopLogger;
    this.clock = opts.clock ?? systemClock;
    this._ownsTelemetry = !opts.telemetry;
    this.telemetry = opts.telemetry ?? new SelfTelemetry({ 'service.name': 'tsmetrics', ...(opts.version ? { 'service.version': opts.version } : {}) });
    this.inventory = opts.inventory ?? new InventoryHub();
    this._ownsDispatcher = !opts.dispatcher;
    this._dispatcher = opts.dispatcher ?? new Agent({ keepAliveTimeout: 60_000, connections: 256 });
    this._once = new OnceLogger(this.logger);
    this.secrets = opts.secrets ?? new Redactor();
    this.selfEndpoints = opts.selfEndpoints ?? new SelfEndpoints();

    const settingsFor = (c: ResolvedComponent, selectors: DeviceSelector[][] = []): Settings => ({
      id: c.id,
      logger: this.logger.child({ component: c.id.key }),
      clock: this.clock,
      dispatcher: this._dispatcher,
      meter: this.telemetry.meter,
      telemetry: this.telemetry,
      inventory: this.inventory,
      deviceSelectors: selectors,
      secrets: this.secrets,
      selfEndpoints: this.selfEndpoints,
    });

    // Exporters are shared between pipelines, as in the Collector.
    const usedExporters = new Set(config.pipelines.flatMap((p) => p.exporters.filter((id) => !config.connectors.has(id))));
    for (const id of usedExporters) {
      const c = config.exporters.get(id) as ResolvedComponent;
      this.exporters.set(id, (c.factory as ExporterFactory<unknown>).createExporter(settingsFor(c), c.config));
    }
    // A connector emits into every pipeline that lists it as a receiver; those pipelines are
    // looked up when data flows, so a chain of connectors needs no particular build order.
    const usedConnectors = new Set(config.pipelines.flatMap((p) => [...p.exporters, ...p.receivers].filter((id) => config.connectors.has(id))));
    for (const id of usedConnectors) {
      const c = config.connectors.get(id) as ResolvedComponent;
      const into = (signal: Signal): PipelineNode[] => this.pipelines.filter((p) => p.signal === signal && config.pipelines.find((x) => x.name === p.name)?.receivers.includes(id));
      const outputs = { metrics: this._fanOut(() => into('metrics')), logs: this._fanOutLogs(() => into('logs')) };
      this.connectors.set(id, (c.factory as ConnectorFactory<unknown>).createConnector(settingsFor(c), c.config, outputs));
    }
    // Processors are per pipeline, so stateful ones (staleness) never mix pipelines.
    for (const p of config.pipelines) {
      const processors = p.processors.map((id) => {
        const c = config.processors.get(id) as ResolvedComponent;
        return { id, processor: (c.factory as ProcessorFactory<unknown>).createProcessor(settingsFor(c), c.config) };
      });
      const exporters = p.exporters.map((id) => ({ id, consumer: (this.exporters.get(id) ?? this.connectors.get(id)) as Exporter | Connector }));
      this.pipelines.push({ name: p.name, signal: p.signal, processors, exporters });
    }
    // Receivers once per signal; their consumer fans out to every pipeline listing them.
    for (const signal of ['metrics', 'logs'] as const) {
      const usedReceivers = new Set(config.pipelines.filter((p) => p.signal === signal).flatMap((p) => p.receivers.filter((id) => !config.connectors.has(id))));
      for (const id of usedReceivers) {
        const c = config.receivers.get(id) as ResolvedComponent;
        const listing = config.pipelines.filter((p) => p.signal === signal && p.receivers.includes(id));
        const pipes = this.pipelines.filter((p) => listing.some((x) => x.name === p.name));
        const selectors = listing.map((p) =>
          p.processors.flatMap((pid) => {
            const pc = config.processors.get(pid) as ResolvedComponent;
            const f = pc.factory as ProcessorFactory<unknown>;
            return f.deviceSelector ? [f.deviceSelector(pc.config)] : [];
          }),
        );
        const f = c.factory as ReceiverFactory<unknown>;
        const settings = settingsFor(c, selectors);
        const receiver = signal === 'metrics' ? f.createReceiver(settings, c.config, this._fanOut(() => pipes)) : (f.createLogsReceiver as NonNullable<ReceiverFactory<unknown>['createLogsReceiver']>)(settings, c.config, this._fanOutLogs(() => pipes));
        // One id feeding pipelines of both signals is two receivers; the second is named apart.
        this.receivers.set(this.receivers.has(id) ? `${id} (${signal})` : id, receiver);
      }
    }
  }

  private _fanOut(pipes: () => PipelineNode[]): MetricsConsumer {
    return {
      consume: async (batch, info) => {
        await Promise.all(pipes().map((p) => this._runPipeline(p, batch, info)));
      },
    };
  }

  private _fanOutLogs(pipes: () => PipelineNode[]): LogsConsumer {
    return {
      consumeLogs: async (batch, info) => {
        await Promise.all(pipes().map((p) => this._runPipeline(p, batch, info)));
      },
    };
  }

  private async _runPipeline(p: PipelineNode, input: AnyBatch, sourceInfo: BatchInfo): Promise<void> {
    const info: BatchInfo = { ...sourceInfo, pipeline: p.name };
    const logs = p.signal === 'logs';
    const count = (b: AnyBatch | null): number => (logs ? countRecords(b as LogsBatch | null) : b ? countPoints(b as ResourceMetrics) : 0);
    let batch: AnyBatch | null = input;
    for (const { id, processor } of p.processors) {
      const before = count(batch);
      this.telemetry.received(id, before, p.signal);
      try {
        batch = logs ? await (processor.processLogs as NonNullable<Processor['processLogs']>).call(processor, batch as LogsBatch, info) : await processor.process(batch as ResourceMetrics, info);
      } catch (err) {
        // A processor that throws loses this batch for this pipeline only; the process goes on.
        this.telemetry.error(id, 'exception');
        this._once.fail(`processor:${id}`, 'exception', 'processor failed; batch dropped for this pipeline', { component: id, pipeline: p.name, error: errorMessage(err) });
        this.telemetry.dropped(id, before, p.signal);
        return;
      }
      this._once.ok(`processor:${id}`);
      if (!batch) {
        this.telemetry.dropped(id, before, p.signal);
        return;
      }
      const after = count(batch);
      this.telemetry.sent(id, after, p.signal);
      if (after < before) this.telemetry.dropped(id, before - after, p.signal);
    }
    const out = batch;
    await Promise.all(
      p.exporters.map(async ({ id, consumer }) => {
        const n = count(out);
        this.telemetry.received(id, n, p.signal);
        try {
          if (logs) await (consumer.consumeLogs as NonNullable<Exporter['consumeLogs']>).call(consumer, out as LogsBatch, info);
          else await (consumer.consume as NonNullable<Connector['consume']>).call(consumer, out as ResourceMetrics, info);
          this._once.ok(`exporter:${id}`);
        } catch (err) {
          this.telemetry.error(id, 'exception');
          this._once.fail(`exporter:${id}`, 'exception', 'exporter failed to take a batch', { component: id, error: errorMessage(err) });
        }
      }),
    );
  }

  /** HTTP routes the exporters and receivers want mounted (`/metrics`, `/sd/devices`). */
  routes(): HttpRoute[] {
    return [...this.exporters.values(), ...this.receivers.values()].flatMap((e) => e.routes?.() ?? []);
  }

  /** Starts exporters, then processors, then receivers (data never flows into a stopped node). */
  async start(): Promise<void> {
    if (this._state !== 'new') return;
    this._state = 'started';
    for (const e of this.exporters.values()) await e.start();
    for (const p of this.pipelines) for (const { processor } of p.processors) await processor.start();
    for (const c of this.connectors.values()) await c.start();
    for (const r of this.receivers.values()) await r.start();
    this.logger.info('pipelines started', {
      pipelines: this.pipelines.map((p) => p.name).join(','),
      receivers: [...this.receivers.keys()].join(','),
      exporters: [...this.exporters.keys()].join(','),
      ...(this.connectors.size ? { connectors: [...this.connectors.keys()].join(',') } : {}),
    });
  }

  /** Runs one cycle of every receiver now and waits for delivery (tests, `--once`). */
  async collectNow(): Promise<void> {
    // The inventory comes first so device scrapes use this cycle's list.
    const ordered = [...this.receivers.entries()].sort(([a], [b]) => Number(b.startsWith('tailscale_api')) - Number(a.startsWith('tailscale_api')));
    for (const [, r] of ordered) await r.collectNow();
  }

  /**
   * Stops receivers first, then processors, then exporters (which flush), within `deadline`, and
   * logs one line naming whatever the deadline cut off. Idempotent and safe before start; it
   * settles by the deadline (plus a moment for components to report) and leaves no connection or
   * timer of its own that keeps the process alive.
   */
  async shutdown(deadline: AbortSignal = AbortSignal.timeout(this.config.service.shutdown_timeout)): Promise<void> {
    const first = !this._stopping;
    const report = await this.shutdownWithReport(deadline);
    if (first && report.cutOff.length) this.logger.warn(`shutdown cut off: ${report.cutOff.join('; ')}`);
  }

  /**
   * {@link shutdown} without the cut-off log line: returns what was cut off and what failed, so a
   * host that stops more than the pipeline can name everything in one line.
   */
  shutdownWithReport(deadline: AbortSignal = AbortSignal.timeout(this.config.service.shutdown_timeout)): Promise<ShutdownReport> {
    this._stopping ??= this._shutdown(deadline);
    return this._stopping;
  }

  private async _shutdown(deadline: AbortSignal): Promise<ShutdownReport> {
    this._state = 'stopped';
    const cutOff: string[] = [];
    const failed: string[] = [];
    const step = async (id: string, component: unknown, until: AbortSignal, fn: () => Promise<void>, reportCut = true): Promise<void> => {
      try {
        const done = await settlesBy(fn(), until, PAST_DEADLINE_GRACE_MS);
        const own = done ? shutdownCutOffOf(component) : 'did not stop by the deadline';
        if (own && reportCut) cutOff.push(`${id}: ${own}`);
      } catch (err) {
        failed.push(`${id}: ${errorMessage(err)}`);
        this.logger.warn('shutdown step failed', { step: id, error: errorMessage(err) });
      }
    };
    const receiversBy = AbortSignal.any([deadline, AbortSignal.timeout(RECEIVER_STOP_GRACE_MS)]);
    await Promise.all([...this.receivers].map(([id, r]) => step(id, r, receiversBy, () => r.shutdown(receiversBy))));
    await Promise.all([...this.connectors].map(([id, c]) => step(id, c, deadline, () => c.shutdown(deadline))));
    for (const p of this.pipelines) await Promise.all(p.processors.map(({ id, processor }) => step(id, processor, deadline, () => processor.shutdown(deadline))));
    await Promise.all([...this.exporters].map(([id, e]) => step(id, e, deadline, () => e.shutdown(deadline))));
    // Closing connections and meters carries no data; it runs even past the deadline.
    if (this._ownsDispatcher) await step('dispatcher', undefined, deadline, () => this._dispatcher.destroy(), false);
    if (this._ownsTelemetry) await step('telemetry', undefined, deadline, () => this.telemetry.shutdown(), false);
    return { cutOff, failed };
  }

  /**
   * Why the pipeline is not ready, or undefined when it is. Ready means: every receiver finished
   * at least one cycle, and every inventory source (receiver ids starting with `tailscale_api`)
   * has had at least one successful cycle. The reason names the source and never carries error
   * text, because `/ready` is served without authentication.
   */
  notReadyReason(): string | undefined {
    if (this.receivers.size === 0) return 'no receivers are configured';
    const status = this.telemetry.status();
    // Inventory sources first: without a device list every other source has nothing to do, so
    // they are the root cause to name.
    const ids = [...this.receivers.keys()].sort((a, b) => Number(b.startsWith('tailscale_api')) - Number(a.startsWith('tailscale_api')));
    for (const id of ids) {
      const s = status.get(id);
      if (!s || s.cycles === 0) return `${id}: the first collection cycle has not completed`;
      // A failed first fetch has finished a cycle but delivered no inventory at all; serving
      // "ready" then would put an exporter with no devices into rotation.
      if (id.startsWith('tailscale_api') && s.lastSuccessMs === undefined) return `${id}: no successful cycle yet (${s.cycles} failed), so there is no device inventory`;
    }
    return undefined;
  }

  /** True when {@link notReadyReason} has nothing to say. */
  ready(): boolean {
    return this.notReadyReason() === undefined;
  }
}
