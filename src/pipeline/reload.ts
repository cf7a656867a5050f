import type { ProcessorFactory, Signal } from '../component/types.ts';
import type { ResolvedComponent, ServiceConfig, ServiceSettings } from '../config/service.ts';

/**
 * Structural equality of validated config values: primitives, arrays, plain objects, and the few
 * value objects a schema produces (RegExp, Date, Map, Set). Any other object compares by its own
 * enumerable fields and its class, so two loads of the same text compare equal.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof RegExp) return a.source === (b as RegExp).source && a.flags === (b as RegExp).flags;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => deepEqual(x, (b as unknown[])[i]));
  if (a instanceof Map) {
    const m = b as Map<unknown, unknown>;
    return a.size === m.size && [...a].every(([k, v]) => m.has(k) && deepEqual(v, m.get(k)));
  }
  if (a instanceof Set) {
    const s = b as Set<unknown>;
    return a.size === s.size && [...a].every((x) => s.has(x));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** True when two resolved components are the same type with equal validated settings. */
export function sameComponent(a: ResolvedComponent | undefined, b: ResolvedComponent | undefined): boolean {
  return !!a && !!b && a.factory === b.factory && deepEqual(a.config, b.config);
}

/**
 * What a receiver's construction depends on besides its own settings: for every pipeline of
 * `signal` it feeds, the device selectors (device_filter…) of that pipeline's processors. A
 * device-scraping receiver chooses its targets from these, so a change rebuilds it; a change in
 * which exporters those pipelines end in only re-points it.
 */
export function receiverWiring(config: ServiceConfig, id: string, signal: Signal): unknown {
  return config.pipelines
    .filter((p) => p.signal === signal && p.receivers.includes(id))
    .map((p) => [
      p.name,
      p.processors.flatMap((pid) => {
        const c = config.processors.get(pid);
        return c && (c.factory as ProcessorFactory<unknown>).deviceSelector ? [[pid, c.id.type, c.config]] : [];
      }),
    ])
    .sort((x, y) => String(x[0]).localeCompare(String(y[0])));
}

/**
 * What feeds an exporter or a connector: `pipeline <- receiver` for every pipeline that lists it
 * as an exporter. Exporters keep one snapshot per pipeline and source, so one that loses a feed
 * would serve that feed's last data forever: it is rebuilt then. Gaining a feed needs no rebuild.
 */
export function feedsOf(config: ServiceConfig, id: string): Set<string> {
  const out = new Set<string>();
  for (const p of config.pipelines) if (p.exporters.includes(id)) for (const r of p.receivers) out.add(`${p.name} <- ${r}`);
  return out;
}

/** Where a connector sits: the pipelines it exports from and those it receives into. */
export function connectorWiring(config: ServiceConfig, id: string): unknown {
  const names = (pred: (p: ServiceConfig['pipelines'][number]) => boolean): string[] => config.pipelines.filter(pred).map((p) => p.name).sort();
  return { from: names((p) => p.exporters.includes(id)), into: names((p) => p.receivers.includes(id)), feeds: [...feedsOf(config, id)].sort() };
}

/**
 * What a processor of `pipeline` depends on besides its own settings: the receivers that feed
 * the pipeline (a stateful processor such as staleness tracks their devices).
 */
export function processorWiring(config: ServiceConfig, pipeline: string): unknown {
  return [...(config.pipelines.find((p) => p.name === pipeline)?.receivers ?? [])].sort();
}

/** Service settings that only take effect at start; a reload reports them and keeps the old ones. */
export const RESTART_ONLY_SETTINGS = ['service.http.address', 'service.http.port', 'service.tsnet'] as const;

/**
 * Compares the restart-only service settings of the running and the reloaded configuration and
 * returns the keys that differ, with the settings to run: the reloaded ones, with the
 * restart-only values of the running configuration put back.
 */
export function restartOnly(running: ServiceSettings, reloaded: ServiceSettings): { keys: string[]; service: ServiceSettings } {
  const keys: string[] = [];
  if (running.http.address !== reloaded.http.address) keys.push('service.http.address');
  if (running.http.port !== reloaded.http.port) keys.push('service.http.port');
  for (const k of Object.keys({ ...running.tsnet, ...reloaded.tsnet }) as Array<keyof ServiceSettings['tsnet']>) {
    if (!deepEqual(running.tsnet[k], reloaded.tsnet[k])) keys.push(`service.tsnet.${k}`);
  }
  return {
    keys,
    service: { ...reloaded, http: { ...reloaded.http, address: running.http.address, port: running.http.port }, tsnet: running.tsnet },
  };
}

/**
 * Runs reloads one at a time. A request that arrives while one runs waits for the next run (the
 * file may have changed after the running one read it), and every request waiting then shares
 * that run: a burst of requests costs at most two loads, however long it is.
 */
export class ReloadQueue<T> {
  private _running: Promise<T> | undefined;
  private _next: Promise<T> | undefined;
  private readonly _run: () => Promise<T>;

  constructor(run: () => Promise<T>) {
    this._run = run;
  }

  /** Resolves with the outcome of a run that started after this call. */
  request(): Promise<T> {
    if (!this._running) return this._start();
    this._next ??= this._running.then(
      () => this._start(),
      () => this._start(),
    );
    return this._next;
  }

  private _start(): Promise<T> {
    this._next = undefined;
    const p = this._run();
    this._running = p;
    const clear = (): void => {
      if (this._running === p) this._running = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /** The run in progress or waiting, if any (shutdown waits for it). */
  get pending(): Promise<T> | undefined {
    return this._next ?? this._running;
  }
}
