import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { LogsBatch } from '../model/logs.ts';
import type { Dispatcher } from 'undici';
import type { Logger, Redactor } from '../log/logger.ts';
import type { ComponentId } from './id.ts';
import type { ConfigSchema } from '../config/schema.ts';
import type { InventoryHub, DeviceSelector } from '../pipeline/inventory.ts';
import type { SelfTelemetry } from '../telemetry/self.ts';
import { parseIp } from '../util/cidr.ts';

export type ComponentKind = 'receiver' | 'processor' | 'exporter' | 'connector';

/**
 * The kinds of data a pipeline carries, as in the Collector: a pipeline's id names its signal
 * (`metrics`, `metrics/<name>`, `logs`, `logs/<name>`), and every component in it must support it.
 */
export type Signal = 'metrics' | 'logs';
export const SIGNALS: readonly Signal[] = ['metrics', 'logs'];
export type Stability = 'development' | 'alpha' | 'beta' | 'stable';

/** Time source; injected so tests and the simulator can reason about time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** What the host injects into every component (never read from globals). */
export interface Settings {
  readonly id: ComponentId;
  readonly logger: Logger;
  readonly clock: Clock;
  /** HTTP dispatcher for outbound calls (connection reuse, proxies in tsnet mode). */
  readonly dispatcher: Dispatcher;
  /** Meter for the component's own instruments. */
  readonly meter: Meter;
  /** Shared self-telemetry helpers (received/sent/dropped/errors, source up). */
  readonly telemetry: SelfTelemetry;
  /** Device inventory published by `tailscale_api` receivers. */
  readonly inventory: InventoryHub;
  /**
   * Device selectors of the pipelines this component feeds (from their `device_filter`
   * processors). A receiver that dials devices must only dial those every selector of at least
   * one pipeline accepts.
   */
  readonly deviceSelectors: readonly (readonly DeviceSelector[])[];
  /**
   * Where secrets learned at run time (OAuth access tokens, the Basic form of an API key, tokens
   * read from files) are registered the moment they are known, so no printout can carry them.
   */
  readonly secrets: Redactor;
  /** The addresses this process itself listens on; receivers never dial these. */
  readonly selfEndpoints: SelfEndpoints;
}

/**
 * The process's own listening sockets, filled in once the HTTP server is bound. A device whose
 * address and port are one of these is this process, and scraping it would loop.
 */
export class SelfEndpoints {
  private readonly _list: Array<{ address: string; port: number }> = [];
  /**
   * Answers already given, for the interface addresses they were given with: every device is
   * asked about once per cycle, and parsing its address and ours each time was ~2 % of a
   * 10,000-device cycle's busy time. Bounded (device addresses come from the API).
   */
  private _memo = new Map<string, boolean>();
  private _memoFor: ReadonlySet<string> | undefined;

  add(address: string, port: number): void {
    this._list.push({ address, port });
    this._memo = new Map();
  }

  /** True when dialing `address:port` would reach this process (wildcard binds included). */
  isSelf(address: string, port: number, localAddresses: () => ReadonlySet<string>): boolean {
    if (this._list.length === 0) return false;
    const local = localAddresses();
    if (local !== this._memoFor || this._memo.size >= 100_000) {
      this._memo = new Map();
      this._memoFor = local;
    }
    const key = `${port} ${address}`;
    let v = this._memo.get(key);
    if (v === undefined) {
      v = this._isSelf(address, port, local);
      this._memo.set(key, v);
    }
    return v;
  }

  private _isSelf(address: string, port: number, local: ReadonlySet<string>): boolean {
    // Compared as numbers, not text: `::ffff:7f00:1` and `::ffff:127.0.0.1` are 127.0.0.1.
    const ip = parseIp(address);
    const same = (a: string): boolean => {
      const b = parseIp(a);
      return ip !== undefined && b !== undefined ? ip.family === b.family && ip.value === b.value : a === address;
    };
    for (const e of this._list) {
      if (e.port !== port) continue;
      if (same(e.address)) return true;
      if (e.address === '0.0.0.0' || e.address === '::') {
        if ((ip?.family === 4 && ip.value >> 24n === 127n) || same('::1')) return true;
        for (const a of local) if (same(a)) return true;
      }
    }
    return false;
  }
}

/** Per-batch facts that travel beside the data. */
export interface BatchInfo {
  /** Id of the receiver that produced the batch (`tailscale_api/prod`). */
  readonly source: string;
  /** Collection time, ms since epoch. */
  readonly time: number;
  /** How long until the next batch from this source is expected, ms. */
  readonly interval: number;
  /** The pipeline the batch travels in (set by the runtime; exporters key snapshots by it). */
  readonly pipeline?: string;
  /**
   * More of the same collection follows in further batches (a log poll handed on window by
   * window; its last batch, possibly empty, says false). A consumer that summarises a collection
   * (a connector's snapshot) may wait for the last part; an exporter may join the parts.
   */
  readonly more?: boolean;
  /**
   * Which collection the batch is a part of, when one source hands on several at once (a
   * `tailscale_logs` receiver's log types, `<id>:<type>`); else the source's only one.
   */
  readonly collection?: string;
}

/** Lifecycle every component shares. */
export interface Component {
  /** Starts background work and returns quickly. */
  start(): Promise<void>;
  /**
   * Stops and flushes. Idempotent, safe to call before `start`, and finishes (or gives up) by
   * the time `deadline` aborts.
   */
  shutdown(deadline: AbortSignal): Promise<void>;
}

/** The single edge between pipeline nodes (metrics). */
export interface MetricsConsumer {
  /**
   * Takes one cycle's batch. Its points hold their values for the call and until the source's
   * next cycle only: a receiver may write a series' point in place when it scrapes the series
   * again. A consumer that keeps a batch longer (a queue) copies it with `snapshotPoints`.
   */
  consume(batch: ResourceMetrics, info: BatchInfo): Promise<void>;
}

/** The edge between pipeline nodes for logs: OpenTelemetry log records (see model/logs.ts). */
export interface LogsConsumer {
  consumeLogs(batch: LogsBatch, info: BatchInfo): Promise<void>;
}

export interface Receiver extends Component {
  /** Runs one collection cycle now (tests, `--once`); resolves when it has been delivered. */
  collectNow(): Promise<void>;
  /** Routes to mount on the shared HTTP server (device_metrics' service discovery). */
  routes?(): readonly HttpRoute[];
}

/**
 * A processor's batch is shared with the other pipelines and with state kept across cycles:
 * a processor never changes a batch, a point or an attributes object in place; it returns new
 * objects for what it changes. Receivers keep each series' attributes object from cycle to cycle,
 * and the exporters cache what they derive from one on the object itself (label text, encoded
 * OTLP attributes), so an object changed in place would be served with its old labels.
 */
export interface Processor extends Component {
  /** Returns the transformed batch, or null to drop it whole. */
  process(batch: ResourceMetrics, info: BatchInfo): ResourceMetrics | null | Promise<ResourceMetrics | null>;
  /** The same for logs; present exactly when the factory lists the `logs` signal. */
  processLogs?(batch: LogsBatch, info: BatchInfo): LogsBatch | null | Promise<LogsBatch | null>;
}

/** An HTTP route an exporter wants mounted on the shared server. */
export interface HttpRoute {
  readonly path: string;
  readonly protected: boolean;
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

export interface Exporter extends Component, MetricsConsumer {
  /** Routes to mount on the shared HTTP server (the Prometheus exporter's `/metrics`). */
  routes?(): readonly HttpRoute[];
  /** Takes a logs batch; present exactly when the factory lists the `logs` signal. */
  consumeLogs?(batch: LogsBatch, info: BatchInfo): Promise<void>;
}

/**
 * A connector, as in the Collector: the exporter of one pipeline and the receiver of another
 * (`flow_metrics` turns the logs it is handed into metrics it emits). It is created once, with
 * the consumer of every pipeline it feeds.
 */
export interface Connector extends Component {
  /** Takes a batch from a pipeline of the `from` signal (logs). */
  consumeLogs?(batch: LogsBatch, info: BatchInfo): Promise<void>;
  consume?(batch: ResourceMetrics, info: BatchInfo): Promise<void>;
}

/** What a connector emits into: one consumer per signal it feeds. */
export interface ConnectorOutputs {
  readonly metrics?: MetricsConsumer;
  readonly logs?: LogsConsumer;
}

interface FactoryBase<K extends ComponentKind, C> {
  readonly kind: K;
  /** Type id, `lower_snake_case`, unique per kind. */
  readonly type: string;
  readonly stability: Stability;
  /** One-line description for `tsmetrics components`. */
  readonly description: string;
  readonly configSchema: ConfigSchema<C>;
}

/** The signals a receiver, processor or exporter factory supports (default: metrics only). */
export function signalsOf(f: { readonly signals?: readonly Signal[] }): readonly Signal[] {
  return f.signals ?? ['metrics'];
}

export interface ReceiverFactory<C = unknown> extends FactoryBase<'receiver', C> {
  /** Signals the receiver produces; absent = `['metrics']`. */
  readonly signals?: readonly Signal[];
  /** Creates the metrics receiver (factories that list `metrics`). */
  createReceiver(settings: Settings, config: C, next: MetricsConsumer): Receiver;
  /** Creates the logs receiver (factories that list `logs`). */
  createLogsReceiver?(settings: Settings, config: C, next: LogsConsumer): Receiver;
}

export interface ProcessorFactory<C = unknown> extends FactoryBase<'processor', C> {
  /** Signals the processor handles; absent = `['metrics']`. `logs` means it has `processLogs`. */
  readonly signals?: readonly Signal[];
  createProcessor(settings: Settings, config: C): Processor;
  /** Processors that select devices also tell receivers which devices they may dial. */
  deviceSelector?(config: C): DeviceSelector;
  /**
   * True when the processor can rename or drop labels and metrics (not just whole devices);
   * validation keeps such processors after `staleness`.
   */
  rewritesData?(config: C): boolean;
}

export interface ExporterFactory<C = unknown> extends FactoryBase<'exporter', C> {
  /** Signals the exporter takes; absent = `['metrics']`. `logs` means it has `consumeLogs`. */
  readonly signals?: readonly Signal[];
  createExporter(settings: Settings, config: C): Exporter;
}

export interface ConnectorFactory<C = unknown> extends FactoryBase<'connector', C> {
  /** The (exporter-side signal → receiver-side signal) pairs it joins, e.g. logs → metrics. */
  readonly pairs: ReadonlyArray<{ readonly from: Signal; readonly to: Signal }>;
  createConnector(settings: Settings, config: C, next: ConnectorOutputs): Connector;
}

// Factories are stored side by side whatever their config type, so the type parameter is erased.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFactory = ReceiverFactory<any> | ProcessorFactory<any> | ExporterFactory<any> | ConnectorFactory<any>;
