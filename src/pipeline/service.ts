import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { Agent, type Dispatcher } from 'undici';
import type { ComponentRegistry } from '../component/registry.ts';
import type {
  BatchInfo,
  Clock,
  Component,
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
import { beforeDeadline, settlesBy, shutdownCutOffOf } from '../util/abort.ts';
import { connectorWiring, deepEqual, feedsOf, processorWiring, receiverWiring, sameComponent } from './reload.ts';
import type { CycleSchedule } from './scraper.ts';

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
  /** Receiver (and connector) ids that feed this pipeline; fan-out consumers look them up. */
  readonly receivers: readonly string[];
  readonly processors: Array<{ id: string; processor: Processor }>;
  readonly exporters: PipelineExit[];
}

/** Either signal's batch, as it travels one pipeline. */
type AnyBatch = ResourceMetrics | LogsBatch;

/** One running receiver: the id it was configured under and the signal it produces. */
interface ReceiverEntry {
  readonly id: string;
  readonly signal: Signal;
  readonly receiver: Receiver;
}

/** Every component instance of one configuration, before or after it is installed. */
interface Graph {
  readonly config: ServiceConfig;
  readonly exporters: Map<string, Exporter>;
  readonly connectors: Map<string, Connector>;
  readonly pipelines: PipelineNode[];
  /** Keyed as `receivers` is: the id, or `id (logs)` for the second signal of one id. */
  readonly receivers: Map<string, ReceiverEntry>;
  /** Instances this graph created (the rest were taken over from the running graph). */
  readonly fresh: Set<object>;
}

/** What a reload changed, by component id (`pipeline/processor` for processors). */
export interface ReloadChanges {
  readonly added: readonly string[];
  readonly replaced: readonly string[];
  readonly removed: readonly string[];
  /** Components whose instance (and state) was kept. */
  readonly kept: readonly string[];
}

/** A failure to build or start the components of a reloaded configuration (the old one keeps running). */
export class ReloadBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReloadBuildError';
  }
}

/**
 * The pipeline runtime: builds receivers → processors → exporters from a validated config,
 * fans each receiver out to every pipeline that lists it (a receiver runs once however many
 * pipelines use it), and owns start/shutdown order. {@link reload} swaps in a new configuration
 * and rebuilds only the components it changed.
 */
export class PipelineService {
  readonly logger: Logger;
  readonly telemetry: SelfTelemetry;
  readonly inventory: InventoryHub;
  readonly clock: Clock;
  readonly secrets: Redactor;
  readonly selfEndpoints: SelfEndpoints;
  /** Running receivers by key; a reload changes this map in place, in one synchronous step. */
  readonly receivers = new Map<string, Receiver>();
  readonly exporters = new Map<string, Exporter>();
  readonly connectors = new Map<string, Connector>();
  readonly pipelines: PipelineNode[] = [];
  private _config: ServiceConfig;
  private _graph: Graph;
  private _routes: ReadonlyMap<string, HttpRoute> = new Map();
  private readonly _dispatcher: Dispatcher;
  private readonly _ownsDispatcher: boolean;
  private readonly _ownsTelemetry: boolean;
  private readonly _once: OnceLogger;
  private _state: 'new' | 'started' | 'stopped' = 'new';
  private _stopping: Promise<ShutdownReport> | undefined;
  private _reloading: Promise<unknown> | undefined;
  /** Settles when the reload in progress has installed its graph or given up (never rejects). */
  private _swapping: Promise<void> | undefined;
  /** Replacement receivers waiting for the moment their predecessor's next cycle was due. */
  private readonly _deferred = new Map<Receiver, NodeJS.Timeout>();

  constructor(registry: ComponentRegistry, config: ServiceConfig, opts: ServiceOptions = {}) {
    this._config = config;
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
    this._graph = this._build(config, undefined);
    this._install(this._graph);
  }

  /** The configuration running now (a successful {@link reload} replaces it). */
  get config(): ServiceConfig {
    return this._config;
  }

  private _settingsFor(c: ResolvedComponent, selectors: DeviceSelector[][] = []): Settings {
    return {
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
    };
  }

  /** The pipelines of `signal` that list `id` as a receiver, as installed now. */
  private _pipesOf(id: string, signal: Signal): PipelineNode[] {
    return this.pipelines.filter((p) => p.signal === signal && p.receivers.includes(id));
  }

  /**
   * Builds the components of `config`. With `prev` (the running graph), every component whose
   * settings and wiring are unchanged is taken over instead of created; see reload.ts for what
   * counts as wiring. Throws when a factory throws, after shutting down what it created.
   */
  private _build(config: ServiceConfig, prev: Graph | undefined): Graph {
    const g: Graph = { config, exporters: new Map(), connectors: new Map(), pipelines: [], receivers: new Map(), fresh: new Set() };
    const make = <T extends object>(what: string, create: () => T): T => {
      let made: T;
      try {
        made = create();
      } catch (err) {
        throw new ReloadBuildError(`${what}: ${errorMessage(err)}`);
      }
      g.fresh.add(made);
      return made;
    };
    try {
      // Exporters are shared between pipelines, as in the Collector.
      const usedExporters = new Set(config.pipelines.flatMap((p) => p.exporters.filter((id) => !config.connectors.has(id))));
      for (const id of usedExporters) {
        const c = config.exporters.get(id) as ResolvedComponent;
        const old = prev?.exporters.get(id);
        const lostNoFeed = prev ? [...feedsOf(prev.config, id)].every((f) => feedsOf(config, id).has(f)) : false;
        if (old && sameComponent(prev?.config.exporters.get(id), c) && lostNoFeed) g.exporters.set(id, old);
        else g.exporters.set(id, make(id, () => (c.factory as ExporterFactory<unknown>).createExporter(this._settingsFor(c), c.config)));
      }
      // A connector emits into every pipeline that lists it as a receiver; those pipelines are
      // looked up when data flows, so a chain of connectors needs no particular build order and a
      // reload re-points a kept connector by installing new pipelines.
      const usedConnectors = new Set(config.pipelines.flatMap((p) => [...p.exporters, ...p.receivers].filter((id) => config.connectors.has(id))));
      for (const id of usedConnectors) {
        const c = config.connectors.get(id) as ResolvedComponent;
        const old = prev?.connectors.get(id);
        if (old && prev && sameComponent(prev.config.connectors.get(id), c) && deepEqual(connectorWiring(prev.config, id), connectorWiring(config, id))) {
          g.connectors.set(id, old);
          continue;
        }
        const outputs = { metrics: this._fanOut(() => this._pipesOf(id, 'metrics')), logs: this._fanOutLogs(() => this._pipesOf(id, 'logs')) };
        g.connectors.set(id, make(id, () => (c.factory as ConnectorFactory<unknown>).createConnector(this._settingsFor(c), c.config, outputs)));
      }
      // Processors are per pipeline, so stateful ones (staleness) never mix pipelines.
      for (const p of config.pipelines) {
        const before = prev?.pipelines.find((x) => x.name === p.name);
        const sameFeed = !!prev && deepEqual(processorWiring(prev.config, p.name), processorWiring(config, p.name));
        const processors = p.processors.map((id) => {
          const c = config.processors.get(id) as ResolvedComponent;
          const old = before?.processors.find((x) => x.id === id);
          if (old && sameFeed && sameComponent(prev?.config.processors.get(id), c)) return old;
          return { id, processor: make(`${p.name}/${id}`, () => (c.factory as ProcessorFactory<unknown>).createProcessor(this._settingsFor(c), c.config)) };
        });
        const exporters = p.exporters.map((id) => ({ id, consumer: (g.exporters.get(id) ?? g.connectors.get(id)) as Exporter | Connector }));
        g.pipelines.push({ name: p.name, signal: p.signal, receivers: [...p.receivers], processors, exporters });
      }
      // Receivers once per signal; their consumer fans out to every pipeline listing them, looked
      // up per batch, so a kept receiver feeds the pipelines of whatever config is installed.
      for (const signal of ['metrics', 'logs'] as const) {
        const usedReceivers = new Set(config.pipelines.filter((p) => p.signal === signal).flatMap((p) => p.receivers.filter((id) => !config.connectors.has(id))));
        for (const id of usedReceivers) {
          const c = config.receivers.get(id) as ResolvedComponent;
          const key = g.receivers.has(id) ? `${id} (${signal})` : id;
          const old = prev ? [...prev.receivers.values()].find((e) => e.id === id && e.signal === signal) : undefined;
          if (old && prev && sameComponent(prev.config.receivers.get(id), c) && deepEqual(receiverWiring(prev.config, id, signal), receiverWiring(config, id, signal))) {
            g.receivers.set(key, old);
            continue;
          }
          const listing = config.pipelines.filter((p) => p.signal === signal && p.receivers.includes(id));
          const selectors = listing.map((p) =>
            p.processors.flatMap((pid) => {
              const pc = config.processors.get(pid) as ResolvedComponent;
              const f = pc.factory as ProcessorFactory<unknown>;
              return f.deviceSelector ? [f.deviceSelector(pc.config)] : [];
            }),
          );
          const f = c.factory as ReceiverFactory<unknown>;
          const settings = this._settingsFor(c, selectors);
          const receiver = make(id, () =>
            signal === 'metrics' ? f.createReceiver(settings, c.config, this._fanOut(() => this._pipesOf(id, 'metrics'))) : (f.createLogsReceiver as NonNullable<ReceiverFactory<unknown>['createLogsReceiver']>)(settings, c.config, this._fanOutLogs(() => this._pipesOf(id, 'logs'))),
          );
          // One id feeding pipelines of both signals is two receivers; the second is named apart.
          g.receivers.set(key, { id, signal, receiver });
        }
      }
    } catch (err) {
      // Nothing built here has started; shutting it down releases whatever its constructor took.
      for (const x of g.fresh) void Promise.resolve((x as Component).shutdown(AbortSignal.timeout(1000))).catch(() => undefined);
      throw err;
    }
    return g;
  }

  /** Makes `g` the running graph in one synchronous step: maps, pipelines and routes together. */
  private _install(g: Graph): void {
    this._graph = g;
    this._config = g.config;
    this.exporters.clear();
    for (const [k, v] of g.exporters) this.exporters.set(k, v);
    this.connectors.clear();
    for (const [k, v] of g.connectors) this.connectors.set(k, v);
    this.receivers.clear();
    for (const [k, v] of g.receivers) this.receivers.set(k, v.receiver);
    this.pipelines.splice(0, this.pipelines.length, ...g.pipelines);
    const routes = new Map<string, HttpRoute>();
    for (const r of [...this.exporters.values(), ...this.receivers.values()].flatMap((e) => e.routes?.() ?? [])) if (!routes.has(r.path)) routes.set(r.path, r);
    this._routes = routes;
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
    // Every exporter takes the same batch: it is counted once, not once per exporter.
    const n = count(out);
    await Promise.all(
      p.exporters.map(async ({ id, consumer }) => {
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
    return [...this._routes.values()];
  }

  /**
   * The routes of the running graph by path. A reload replaces the whole table in the step that
   * installs the new components, so a server that looks it up per request never sees a mix.
   */
  routeTable(): ReadonlyMap<string, HttpRoute> {
    return this._routes;
  }

  /** Starts exporters, then processors, then receivers (data never flows into a stopped node). */
  async start(): Promise<void> {
    if (this._state !== 'new') return;
    this._state = 'started';
    for (const e of this.exporters.values()) await e.start();
    for (const p of this.pipelines) for (const { processor } of p.processors) await processor.start();
    for (const c of this.connectors.values()) await c.start();
    for (const r of this.receivers.values()) await r.start();
    this.telemetry.configLoaded(true, this.clock.now(), false);
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
    // A reload in progress finishes its swap first, so what is stopped is one whole graph.
    if (this._swapping) await beforeDeadline(this._swapping, deadline);
    this._state = 'stopped';
    for (const t of this._deferred.values()) clearTimeout(t);
    this._deferred.clear();
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
   * Swaps in `next`, a configuration already validated (loadConfig), rebuilding only what it
   * changed: a component whose validated settings and wiring (reload.ts) are equal keeps its
   * instance and state, and kept receivers feed the new pipelines from their next batch on.
   *
   * Order: new exporters, processors and connectors are created and started; then, in one
   * synchronous step, the maps, pipelines and route table are replaced; then receivers: a new
   * one starts at once, a replaced one is stopped and its successor's first cycle runs when the
   * old one's next cycle was due (so no device is scraped twice in one interval); last, removed
   * and replaced processors, connectors and exporters are shut down.
   *
   * Throws {@link ReloadBuildError} when a factory or a start fails; the running graph is then
   * untouched. Reloads are serialized; one that comes during shutdown throws.
   */
  async reload(next: ServiceConfig): Promise<ReloadChanges> {
    const prior = this._reloading ?? Promise.resolve();
    const run = prior.catch(() => undefined).then(() => this._reload(next));
    this._reloading = run;
    try {
      return await run;
    } finally {
      if (this._reloading === run) this._reloading = undefined;
    }
  }

  private async _reload(next: ServiceConfig): Promise<ReloadChanges> {
    if (this._state === 'stopped') throw new ReloadBuildError('the service is shutting down');
    let swapped = (): void => undefined;
    this._swapping = new Promise<void>((resolve) => (swapped = resolve));
    try {
      return await this._swap(next, () => {
        swapped();
        this._swapping = undefined;
      });
    } finally {
      swapped();
      this._swapping = undefined;
    }
  }

  private async _swap(next: ServiceConfig, installed: () => void): Promise<ReloadChanges> {
    const prev = this._graph;
    const g = this._build(next, prev);
    const started = this._state === 'started';
    if (started) {
      try {
        for (const e of g.exporters.values()) if (g.fresh.has(e)) await e.start();
        for (const p of g.pipelines) for (const { processor } of p.processors) if (g.fresh.has(processor)) await processor.start();
        for (const c of g.connectors.values()) if (g.fresh.has(c)) await c.start();
      } catch (err) {
        await Promise.all([...g.fresh].map((x) => (x as Component).shutdown(AbortSignal.timeout(1000)).catch(() => undefined)));
        throw new ReloadBuildError(`starting the new components failed: ${errorMessage(err)}`);
      }
      if (this._state !== 'started') {
        await Promise.all([...g.fresh].map((x) => (x as Component).shutdown(AbortSignal.timeout(1000)).catch(() => undefined)));
        throw new ReloadBuildError('the service is shutting down');
      }
    }
    const changes = diff(prev, g);
    this._install(g);
    installed();
    // Sources a reload removed are forgotten, so /health, /ready and tsmetrics_source_up stop
    // naming them and device receivers stop scraping the devices of a removed inventory.
    const stillThere = new Set([...g.receivers.values()].map((e) => e.id));
    for (const e of prev.receivers.values()) {
      if (stillThere.has(e.id)) continue;
      this.telemetry.forgetSource(e.id);
      this.inventory.remove(e.id);
    }
    if (!started) return changes;
    const deadline = AbortSignal.timeout(this._config.service.shutdown_timeout);
    const stop = async (what: string, c: Component): Promise<void> => {
      try {
        await beforeDeadline(c.shutdown(deadline), deadline);
      } catch (err) {
        this.logger.warn('reload: stopping a replaced component failed', { component: what, error: errorMessage(err) });
      }
    };
    const idSignal = (e: ReceiverEntry): string => `${e.id}\u0000${e.signal}`;
    const oldByIdSignal = new Map([...prev.receivers.values()].map((e) => [idSignal(e), e.receiver]));
    await Promise.all(
      [...g.receivers.values()].map(async (e) => {
        if (!g.fresh.has(e.receiver)) return;
        const old = oldByIdSignal.get(idSignal(e));
        const due = old ? nextDueOf(old) : undefined;
        if (due === undefined) {
          // Nothing to keep in step with: the new one starts, then the old one (if any) stops.
          await this._startReceiver(e.id, e.receiver);
          if (old) await stop(e.id, old);
          return;
        }
        // The old one stops now (its pending cycle is cancelled), and the new one's first cycle
        // takes that cycle's place: every device is scraped at most once per interval.
        if (old) await stop(e.id, old);
        const wait = Math.max(0, due - Date.now());
        if (wait === 0) return this._startReceiver(e.id, e.receiver);
        const timer = setTimeout(() => {
          this._deferred.delete(e.receiver);
          void this._startReceiver(e.id, e.receiver);
        }, wait);
        timer.unref();
        this._deferred.set(e.receiver, timer);
      }),
    );
    const stillRunning = new Set([...g.receivers.values()].map(idSignal));
    await Promise.all([...prev.receivers.values()].filter((e) => !stillRunning.has(idSignal(e))).map((e) => stop(e.id, e.receiver)));
    const liveProcessors = new Set(g.pipelines.flatMap((p) => p.processors.map((x) => x.processor)));
    await Promise.all([...prev.connectors].filter(([, c]) => ![...g.connectors.values()].includes(c)).map(([id, c]) => stop(id, c)));
    await Promise.all(prev.pipelines.flatMap((p) => p.processors.filter((x) => !liveProcessors.has(x.processor)).map((x) => stop(`${p.name}/${x.id}`, x.processor))));
    const liveExporters = new Set(g.exporters.values());
    await Promise.all([...prev.exporters].filter(([, e]) => !liveExporters.has(e)).map(([id, e]) => stop(id, e)));
    return changes;
  }

  private async _startReceiver(id: string, r: Receiver): Promise<void> {
    if (this._state !== 'started' || ![...this.receivers.values()].includes(r)) return;
    try {
      await r.start();
    } catch (err) {
      this.telemetry.error(id, 'exception');
      this.logger.error('reload: a new receiver failed to start', { component: id, error: errorMessage(err) });
    }
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

/** When a receiver's next cycle is due (receivers built on the scraper say; others do not). */
function nextDueOf(r: Receiver): number | undefined {
  const f = (r as Partial<CycleSchedule>).nextCycleDueMs;
  return typeof f === 'function' ? f.call(r) : undefined;
}

/** The component ids a swap from `prev` to `next` adds, replaces, removes and keeps. */
function diff(prev: Graph, next: Graph): ReloadChanges {
  const added: string[] = [];
  const replaced: string[] = [];
  const removed: string[] = [];
  const kept: string[] = [];
  const compare = (before: ReadonlyMap<string, object>, after: ReadonlyMap<string, object>): void => {
    for (const [k, v] of after) {
      if (!before.has(k)) added.push(k);
      else if (before.get(k) === v) kept.push(k);
      else replaced.push(k);
    }
    for (const k of before.keys()) if (!after.has(k)) removed.push(k);
  };
  const recv = (g: Graph): Map<string, object> => new Map([...g.receivers].map(([k, e]) => [k, e.receiver]));
  const procs = (g: Graph): Map<string, object> => new Map(g.pipelines.flatMap((p) => p.processors.map((x) => [`${p.name}/${x.id}`, x.processor] as const)));
  compare(recv(prev), recv(next));
  compare(procs(prev), procs(next));
  compare(prev.connectors, next.connectors);
  compare(prev.exporters, next.exporters);
  return { added, replaced, removed, kept };
}
