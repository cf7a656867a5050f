import type { DataPoint, MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { BatchInfo, Processor } from '../../src/component/types.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import { isStale, markStale } from '../../src/model/stale.ts';
import type { StalenessConfig } from './config.ts';

const SCRAPE_UP = 'tsmetrics_device_scrape_up';
const SCRAPE_PREFIX = 'tsmetrics_device_scrape_';

/**
 * The series one metric (name + type) had last cycle: its point, by attributes object. The
 * point is the one the batch carries (no copy, no entry object): rebuilt every cycle, the map
 * costs one slot per live series.
 */
interface MetricSeries {
  metric: MetricData;
  points: Map<object, DataPoint<unknown>>;
}

/** State per source: what it emitted last, and where each device's last good series are. */
interface SourceState {
  prev: Map<string, MetricSeries>;
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
      for (const s of sources.values()) for (const ms of s.prev.values()) n += ms.points.size;
      return n;
    },
    process(batch: ResourceMetrics, info: BatchInfo): ResourceMetrics {
      let st = sources.get(info.source);
      if (!st) {
        st = { prev: new Map(), lastGood: new Map() };
        sources.set(info.source, st);
      }
      const grace = config.grace_period > 0 ? config.grace_period : config.grace_intervals * info.interval;
      // Which devices this batch says are up or down.
      const up = new Map<string, boolean>();
      for (const sm of batch.scopeMetrics) {
        for (const m of sm.metrics) {
          if (m.descriptor.name !== SCRAPE_UP) continue;
          for (const p of m.dataPoints) {
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
        for (const [id, isUp] of up) {
          if (isUp) {
            nextGood.set(id, { okMs: info.time, batch });
            continue;
          }
          const g = st.lastGood.get(id);
          if (!g || info.time - g.okMs > grace) continue;
          nextGood.set(id, g);
          let ids = carry.get(g.batch);
          if (!ids) {
            ids = new Set();
            carry.set(g.batch, ids);
          }
          ids.add(id);
        }
        for (const [old, ids] of carry) {
          for (const sm of old.scopeMetrics) {
            for (const m of sm.metrics) {
              if (m.descriptor.name.startsWith(SCRAPE_PREFIX)) continue;
              let dest: DataPoint<unknown>[] | undefined;
              for (const p of m.dataPoints as DataPoint<unknown>[]) {
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
      // series' object from cycle to cycle, so in steady state this costs two lookups per point
      // and no strings. Each metric's map is rebuilt: what is left in last cycle's map after
      // this cycle's points are taken out of it has ended. An object seen for the first time
      // may still be an old series under a new object (a processor that rebuilds attributes);
      // that is settled by comparing signatures, only for entries that changed.
      // A metric key can appear more than once in a batch (several scopes): its parts share
      // one new map and are all taken out of the one old map.
      const current = new Map<string, { ms: MetricSeries; old: Map<object, DataPoint<unknown>>; next: Map<object, DataPoint<unknown>>; added: object[] | undefined }>();
      const now = msToHrTime(info.time);
      const ended: Array<{ ms: MetricSeries; gone: Map<object, DataPoint<unknown>>; added: object[] | undefined }> = [];
      for (const sm of scopeMetrics) {
        for (const m of sm.metrics) {
          const key = metricKey(m);
          let c = current.get(key);
          if (!c) {
            const ms = st.prev.get(key) ?? { metric: m, points: new Map() };
            c = { ms, old: ms.points, next: new Map(), added: undefined };
            current.set(key, c);
          }
          c.ms.metric = m;
          const { old, next } = c;
          for (const p of m.dataPoints as DataPoint<unknown>[]) {
            if (isStale(p)) continue;
            next.set(p.attributes, p);
            if (!old.delete(p.attributes)) (c.added ??= []).push(p.attributes);
          }
        }
      }
      for (const [key, c] of current) {
        if (c.old.size > 0) ended.push({ ms: c.ms, gone: c.old, added: c.added });
        c.ms.points = c.next;
        st.prev.set(key, c.ms);
      }
      // Metrics missing from this batch altogether ended whole.
      for (const [key, ms] of st.prev) {
        if (current.has(key)) continue;
        ended.push({ ms, gone: ms.points, added: undefined });
        st.prev.delete(key);
      }
      // End-of-series markers for what was sent last time and is gone now.
      for (const { ms, gone, added } of ended) {
        let dest: DataPoint<unknown>[] | undefined;
        // Signatures are computed here, not cached: only changed series pay for them.
        const freshSigs = added ? new Set(added.map((a) => JSON.stringify(a))) : undefined;
        for (const [attrs, p] of gone) {
          if (freshSigs?.has(JSON.stringify(attrs))) continue; // same series, new object
          if (!config.markers || !target) continue;
          const marker = { attributes: p.attributes, startTime: p.startTime, endTime: now, value: p.value };
          markStale(marker);
          dest ??= appendTo(ms.metric);
          dest.push(marker);
        }
      }
      for (const [key, ms] of st.prev) if (ms.points.size === 0) st.prev.delete(key);
      return { resource: batch.resource, scopeMetrics: scopeMetrics.length ? scopeMetrics : batch.scopeMetrics };
    },
  };
}
