import type { Attributes } from '@opentelemetry/api';
import type { DataPoint, MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { BatchInfo, Processor } from '../../src/component/types.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import { isStale, markStale } from '../../src/model/stale.ts';
import type { StalenessConfig } from './config.ts';

const SCRAPE_UP = 'tsmetrics_device_scrape_up';
const SCRAPE_PREFIX = 'tsmetrics_device_scrape_';

interface Held {
  metric: MetricData;
  point: DataPoint<unknown>;
}

/** State per source: what it emitted last, and the last good client series of each device. */
interface SourceState {
  /** Series key → metric and point, as last sent (for end-of-series markers). */
  prev: Map<string, Held>;
  /** Device id → its client series from its last successful scrape, and when that was. */
  lastGood: Map<string, { okMs: number; held: Held[] }>;
}

function seriesKey(name: string, attrs: Attributes): string {
  let k = name;
  for (const a in attrs) k += `\u0000${a}\u0001${String(attrs[a])}`;
  return k;
}

/**
 * `staleness`: makes the output describe the tailnet as it is now.
 * - A failing device's client series are carried for a grace period, then dropped (its
 *   `tsmetrics_device_scrape_up` says 0 at once).
 * - Every series that ends gets one point flagged NO_RECORDED_VALUE for OTLP consumers.
 * Memory is bounded by the live series: the state is replaced every cycle.
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
      for (const s of sources.values()) {
        n += s.prev.size;
        for (const g of s.lastGood.values()) n += g.held.length;
      }
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
      const scopeMetrics: ScopeMetrics[] = batch.scopeMetrics.map((sm) => ({ scope: sm.scope, metrics: sm.metrics.map((m) => ({ ...m, dataPoints: [...m.dataPoints] }) as MetricData) }));
      if (up.size > 0) {
        const nextGood = new Map<string, { okMs: number; held: Held[] }>();
        for (const sm of scopeMetrics) {
          for (const m of sm.metrics) {
            if (m.descriptor.name.startsWith(SCRAPE_PREFIX)) continue;
            for (const p of m.dataPoints as DataPoint<unknown>[]) {
              const id = p.attributes.device_id;
              if (typeof id !== 'string' || up.get(id) !== true) continue;
              let g = nextGood.get(id);
              if (!g) {
                g = { okMs: info.time, held: [] };
                nextGood.set(id, g);
              }
              g.held.push({ metric: m, point: p });
            }
          }
        }
        // Carry forward the last good series of devices that failed this cycle, within grace.
        const target = scopeMetrics[0];
        for (const [id, isUp] of up) {
          if (isUp) continue;
          const g = st.lastGood.get(id);
          if (!g || info.time - g.okMs > grace || !target) continue;
          nextGood.set(id, g);
          for (const h of g.held) {
            let m = target.metrics.find((x) => x.descriptor.name === h.metric.descriptor.name && x.dataPointType === h.metric.dataPointType);
            if (!m) {
              m = { ...h.metric, dataPoints: [] } as MetricData;
              target.metrics.push(m);
            }
            (m.dataPoints as DataPoint<unknown>[]).push(h.point);
          }
        }
        st.lastGood = nextGood;
      }
      // End-of-series markers for what was sent last time and is gone now.
      const current = new Map<string, Held>();
      for (const sm of scopeMetrics) {
        for (const m of sm.metrics) for (const p of m.dataPoints as DataPoint<unknown>[]) if (!isStale(p)) current.set(seriesKey(m.descriptor.name, p.attributes), { metric: m, point: p });
      }
      if (config.markers && scopeMetrics.length > 0) {
        const now = msToHrTime(info.time);
        const target = scopeMetrics[0] as ScopeMetrics;
        for (const [key, h] of st.prev) {
          if (current.has(key)) continue;
          let m = target.metrics.find((x) => x.descriptor.name === h.metric.descriptor.name && x.dataPointType === h.metric.dataPointType);
          if (!m) {
            m = { ...h.metric, dataPoints: [] } as MetricData;
            target.metrics.push(m);
          }
          const marker = { attributes: h.point.attributes, startTime: h.point.startTime, endTime: now, value: h.point.value };
          markStale(marker);
          (m.dataPoints as DataPoint<unknown>[]).push(marker);
        }
      }
      st.prev = current;
      return { resource: batch.resource, scopeMetrics: scopeMetrics.length ? scopeMetrics : batch.scopeMetrics };
    },
  };
}
