import type { DataPoint, MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { BatchInfo, Processor } from '../../src/component/types.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import { isStale, markStale } from '../../src/model/stale.ts';
import type { StalenessConfig } from './config.ts';

const SCRAPE_UP = 'tsmetrics_device_scrape_up';
const SCRAPE_PREFIX = 'tsmetrics_device_scrape_';

/**
 * The series one metric (name + type) has, by attributes object: a slot each, in parallel
 * arrays (its last point, and the cycle that last carried it). Slots persist: a series present
 * again costs one lookup and two array writes; no map is rebuilt (rebuilding one per cycle was
 * the processor's main cost at 10,000 devices) and no object is kept per series.
 */
interface MetricSeries {
  metric: MetricData;
  slots: Map<object, number>;
  points: DataPoint<unknown>[];
  cycles: number[];
}

/** State per source: what it emitted last, and where each device's last good series are. */
interface SourceState {
  prev: Map<string, MetricSeries>;
  /** Number of the batch being processed (the stamp of entries it carries). */
  cycle: number;
  /** Device id → the batch in which it was last scraped successfully, and when. */
  lastGood: Map<string, { okMs: number; batch: ResourceMetrics }>;
}

const metricKey = (m: MetricData): string => `${m.descriptor.name}\u0000${m.dataPointType}`;

/**
 * `staleness`: makes the output describe the tailnet as it is now.
 * - A failing device's client series are carried for a grace period, then dropped (its
 *   `tsmetrics_device_scrape_up` says 0 at once).
 * - Every series that ends gets one point flagged NO_RECORDED_VALUE for OTLP consumers.
 * Memory is bounded by the live series: the state is replaced every cycle, and a failing
 * device only keeps the batch of its last good scrape alive for the grace period.
 */
export function createStalenessProcessor(config: StalenessConfig): Processor & { trackedSeries(): number } {
  const sources = new Map<string, SourceState>();
  return {
    async start() {},
    async shutdown() {
      sources.clear();
    },
    trackedSeries() {
      let n = 0;
      for (const s of sources.values()) for (const ms of s.prev.values()) n += ms.points.length;
      return n;
    },
    process(batch: ResourceMetrics, info: BatchInfo): ResourceMetrics {
      let st = sources.get(info.source);
      if (!st) {
        st = { prev: new Map(), lastGood: new Map(), cycle: 0 };
        sources.set(info.source, st);
      }
      const grace = config.grace_period > 0 ? config.grace_period : config.grace_intervals * info.interval;
      // Which devices this batch says are up or down.
      const up = new Map<string, boolean>();
      for (const sm of batch.scopeMetrics) {
        for (const m of sm.metrics) {
          if (m.descriptor.name !== SCRAPE_UP) continue;
          const points = m.dataPoints;
          for (let i = 0; i < points.length; i++) {
            const p = points[i] as DataPoint<unknown>;
            const id = p.attributes.device_id;
            if (typeof id === 'string') up.set(id, p.value === 1);
          }
        }
      }
      // Metrics we append to are copied first (batches are shared, never mutated).
      const scopeMetrics: ScopeMetrics[] = batch.scopeMetrics.map((sm) => ({ scope: sm.scope, metrics: [...sm.metrics] }));
      const target = scopeMetrics[0];
      const copied = new Map<string, MetricData>();
      const appendTo = (proto: MetricData): DataPoint<unknown>[] => {
        const key = metricKey(proto);
        let m = copied.get(key);
        if (!m && target) {
          const idx = target.metrics.findIndex((x) => metricKey(x) === key);
          const base = idx >= 0 ? (target.metrics[idx] as MetricData) : proto;
          m = { ...base, dataPoints: idx >= 0 ? [...base.dataPoints] : [] } as MetricData;
          if (idx >= 0) target.metrics[idx] = m;
          else target.metrics.push(m);
          copied.set(key, m);
        }
        return (m?.dataPoints ?? []) as DataPoint<unknown>[];
      };

      if (up.size > 0) {
        const nextGood = new Map<string, { okMs: number; batch: ResourceMetrics }>();
        // Failing devices within grace: carry their series from the batch of their last good scrape.
        const carry = new Map<ResourceMetrics, Set<string>>();
        // The entry of this batch is shared by every device up in it (an object per device per
        // cycle was most of what this loop allocated).
        const good = { okMs: info.time, batch };
        up.forEach((isUp, id) => {
          if (isUp) {
            nextGood.set(id, good);
            return;
          }
          const g = (st as SourceState).lastGood.get(id);
          if (!g || info.time - g.okMs > grace) return;
          nextGood.set(id, g);
          let ids = carry.get(g.batch);
          if (!ids) {
            ids = new Set();
            carry.set(g.batch, ids);
          }
          ids.add(id);
        });
        for (const [old, ids] of carry) {
          for (const sm of old.scopeMetrics) {
            for (const m of sm.metrics) {
              if (m.descriptor.name.startsWith(SCRAPE_PREFIX)) continue;
              let dest: DataPoint<unknown>[] | undefined;
              const carried = m.dataPoints as DataPoint<unknown>[];
              for (let q = 0; q < carried.length; q++) {
                const p = carried[q] as DataPoint<unknown>;
                if (isStale(p) || !ids.has(p.attributes.device_id as string)) continue;
                dest ??= appendTo(m);
                dest.push(p);
              }
            }
          }
        }
        st.lastGood = nextGood;
      }

      // What is emitted now. Entries are keyed by the attributes object: receivers keep a
      // series' object from cycle to cycle, so in steady state this costs one lookup per point
      // and no strings. Whatever entry this cycle did not stamp has ended. An object seen for
      // the first time may still be an old series under a new object (a processor that
      // rebuilds attributes); that is settled by comparing signatures, only for entries that
      // changed. A metric key can appear more than once in a batch (several scopes): its parts
      // share one map.
      const cycle = ++st.cycle;
      const current = new Map<string, { ms: MetricSeries; added: object[] | undefined; seen: number }>();
      const now = msToHrTime(info.time);
      for (const sm of scopeMetrics) {
        for (const m of sm.metrics) {
          const key = metricKey(m);
          let c = current.get(key);
          if (!c) {
            let ms = st.prev.get(key);
            if (!ms) {
              ms = { metric: m, slots: new Map(), points: [], cycles: [] };
              st.prev.set(key, ms);
            }
            c = { ms, added: undefined, seen: 0 };
            current.set(key, c);
          }
          c.ms.metric = m;
          const { slots, points, cycles } = c.ms;
          // Indexed, not for-of: this loop runs once per cycle over every point, too rarely for
          // the optimizer to remove the iterator's objects (measured with an allocation profile).
          const incoming = m.dataPoints as DataPoint<unknown>[];
          for (let q = 0; q < incoming.length; q++) {
            const p = incoming[q] as DataPoint<unknown>;
            if (isStale(p)) continue;
            const i = slots.get(p.attributes);
            if (i !== undefined) {
              if (cycles[i] !== cycle) c.seen++;
              // The same object twice in one batch: counted once, but its signature must still
              // keep a look-alike that ended from being marked (as a first-seen object's does).
              else (c.added ??= []).push(p.attributes);
              points[i] = p;
              cycles[i] = cycle;
            } else {
              slots.set(p.attributes, points.length);
              points.push(p);
              cycles.push(cycle);
              c.seen++;
              (c.added ??= []).push(p.attributes);
            }
          }
        }
      }
      // End-of-series markers for what was sent last time and is gone now; metrics missing
      // from this batch altogether ended whole.
      for (const [key, ms] of st.prev) {
        const c = current.get(key);
        // Every entry stamped: nothing of this metric ended (the common case, no walk).
        if (c && c.seen === ms.points.length) continue;
        let dest: DataPoint<unknown>[] | undefined;
        let freshSigs: Set<string> | undefined;
        const { slots, points, cycles } = ms;
        // From the end, so the slot moved into a freed one has been looked at already.
        for (let i = points.length - 1; i >= 0; i--) {
          if (cycles[i] === cycle) continue;
          const p = points[i] as DataPoint<unknown>;
          const last = points.length - 1;
          slots.delete(p.attributes);
          if (i !== last) {
            const moved = points[last] as DataPoint<unknown>;
            points[i] = moved;
            cycles[i] = cycles[last] as number;
            slots.set(moved.attributes, i);
          }
          points.pop();
          cycles.pop();
          // Signatures are computed here, not cached: only changed series pay for them.
          freshSigs ??= new Set((c?.added ?? []).map((a) => JSON.stringify(a)));
          if (freshSigs.has(JSON.stringify(p.attributes))) continue; // same series, new object
          if (!config.markers || !target) continue;
          const marker = { attributes: p.attributes, startTime: p.startTime, endTime: now, value: p.value };
          markStale(marker);
          dest ??= appendTo(ms.metric);
          dest.push(marker);
        }
      }
      for (const [key, ms] of st.prev) if (ms.points.length === 0) st.prev.delete(key);
      return { resource: batch.resource, scopeMetrics: scopeMetrics.length ? scopeMetrics : batch.scopeMetrics };
    },
  };
}
