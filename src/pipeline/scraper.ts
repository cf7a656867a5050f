import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MetricsConsumer, Receiver, Settings } from '../component/types.ts';
import { countPoints } from '../model/batch.ts';
import { errorMessage } from '../errors.ts';
import { beforeDeadline, type ShutdownReporter } from '../util/abort.ts';

/** What one cycle of a scraping receiver produced. */
export interface ScrapeResult {
  /** The snapshot to deliver; undefined delivers nothing this cycle. */
  readonly batch: ResourceMetrics | undefined;
  /** False when the source failed this cycle (what is delivered is then the last good data). */
  readonly ok: boolean;
  readonly error?: string;
  /** Numbers for `/health` (`devices_discovered`, `devices_scraped`). */
  readonly details?: Record<string, number>;
}

export interface ScraperOptions {
  /** Cycle interval, ms. */
  readonly interval: number;
  /** Runs one cycle; must honour `signal` (aborted on shutdown). */
  scrape(signal: AbortSignal): Promise<ScrapeResult>;
  /** Waits before the first cycle (tsnet: until the node is up). */
  beforeFirst?(signal: AbortSignal): Promise<void>;
  /** Extra cleanup on shutdown (close connections). */
  onShutdown?(): Promise<void>;
}

/** A receiver that can say when its next cycle is due, so a replacement can keep its rhythm. */
export interface CycleSchedule {
  /** Wall-clock ms of the next cycle; undefined before the first is scheduled or after shutdown. */
  nextCycleDueMs(): number | undefined;
}

/**
 * Receiver helper that owns the interval loop, as the Collector's scraper controller does:
 * cycles never overlap (the next one is scheduled when the previous one ends), a throwing scrape
 * is counted and contained, self-telemetry is recorded, and shutdown aborts the cycle in flight.
 */
export function createScrapingReceiver(settings: Settings, opts: ScraperOptions, next: MetricsConsumer): Receiver & ShutdownReporter & CycleSchedule {
  const id = settings.id.key;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let started = false;
  let stopped = false;
  let cutOff: string | undefined;
  /** Wall-clock ms when the next cycle is due (what a replacement takes over on reload). */
  let dueMs: number | undefined;
  settings.telemetry.registerSource(id);

  const runCycle = async (): Promise<void> => {
    const startMs = settings.clock.now();
    let result: ScrapeResult;
    try {
      result = await opts.scrape(abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return;
      settings.telemetry.error(id, 'exception');
      settings.logger.error('collection cycle failed unexpectedly', { error: errorMessage(err) });
      result = { batch: undefined, ok: false, error: errorMessage(err) };
    }
    const endMs = settings.clock.now();
    settings.logger.debug('collection cycle done', { ok: result.ok, duration_ms: endMs - startMs, ...(result.details ?? {}) });
    settings.telemetry.cycle(id, { ok: result.ok, startMs, endMs, ...(result.error ? { error: result.error } : {}), ...(result.details ? { details: result.details } : {}) });
    if (result.batch && !abort.signal.aborted) {
      settings.telemetry.received(id, countPoints(result.batch));
      try {
        await next.consume(result.batch, { source: id, time: endMs, interval: opts.interval });
        settings.telemetry.sent(id, countPoints(result.batch));
      } catch (err) {
        settings.telemetry.error(id, 'exception');
        settings.logger.error('delivering a batch failed', { error: errorMessage(err) });
      }
    }
  };

  const cycleOnce = (): Promise<void> => {
    if (running) return running;
    running = runCycle().finally(() => {
      running = undefined;
    });
    return running;
  };

  const schedule = (delay: number): void => {
    if (stopped) return;
    dueMs = Date.now() + delay;
    timer = setTimeout(() => {
      const began = Date.now();
      dueMs = began + opts.interval;
      void cycleOnce().then(() => schedule(Math.max(0, opts.interval - (Date.now() - began))));
    }, delay);
  };

  return {
    async start() {
      if (started || stopped) return;
      started = true;
      if (opts.beforeFirst) {
        void opts.beforeFirst(abort.signal).then(
          () => schedule(0),
          (err) => {
            if (!abort.signal.aborted) settings.logger.error('receiver could not start', { error: errorMessage(err) });
          },
        );
      } else schedule(0);
    },
    async collectNow() {
      if (running) await running;
      await cycleOnce();
    },
    async shutdown(deadline: AbortSignal) {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      abort.abort();
      const inFlight = running;
      // An aborted cycle delivers nothing new, so waiting for it past the deadline would only keep
      // the process up.
      if (inFlight && (await beforeDeadline(inFlight, deadline)).state === 'cut') cutOff = 'a collection cycle did not stop in time and was abandoned';
      // Cleanup runs even when the deadline has passed: closing connections is what ends work that
      // ignored the abort. It is not waited for beyond the deadline.
      if (opts.onShutdown) await beforeDeadline(opts.onShutdown(), deadline);
    },
    shutdownCutOff: () => cutOff,
    nextCycleDueMs: () => (stopped ? undefined : dueMs),
  };
}
