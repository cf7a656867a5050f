import type { Attributes } from '@opentelemetry/api';
import type { DataPoint, MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { Processor } from '../../src/component/types.ts';
import { compileRelabelConfigs, relabelCompiled, type CompiledRule } from './engine.ts';
import type { RelabelProcessorConfig } from './config.ts';

function labelsOf(name: string, attrs: Attributes): Record<string, string> {
  const l: Record<string, string> = { __name__: name };
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined && v !== null) l[k] = typeof v === 'string' ? v : String(v);
  }
  return l;
}

/**
 * Applies rules to every point of a batch. A point whose `__name__` changes moves to the
 * renamed metric (same type and HELP); points a rule drops are removed; empty metrics vanish.
 */
export function relabelBatch(batch: ResourceMetrics, rules: readonly CompiledRule[], cache?: RelabelCache): ResourceMetrics {
  if (rules.length === 0) return batch;
  const scopeMetrics: ScopeMetrics[] = [];
  for (const sm of batch.scopeMetrics) {
    const byName = new Map<string, MetricData>();
    for (const m of sm.metrics) {
      const name = m.descriptor.name;
      const memo = cache?.forMetric(name);
      for (const p of m.dataPoints as DataPoint<unknown>[]) {
        let hit = memo?.get(p.attributes);
        if (hit === undefined) {
          const out = relabelCompiled(labelsOf(name, p.attributes), rules);
          const newName = out?.__name__;
          if (out) delete out.__name__;
          // A series without a name cannot be exported: dropped like a rule drop.
          hit = out && newName ? { name: newName, attributes: out } : null;
          memo?.set(p.attributes, hit);
        }
        if (!hit) continue;
        const newName = hit.name;
        const out = hit.attributes;
        let target = byName.get(newName);
        if (!target) {
          target = { ...m, descriptor: newName === name ? m.descriptor : { ...m.descriptor, name: newName }, dataPoints: [] } as MetricData;
          byName.set(newName, target);
        } else if (target.dataPointType !== m.dataPointType) {
          // A rename onto a metric of another type cannot share a family; keep it apart.
          const key = `${newName}\u0000${m.dataPointType}`;
          target = byName.get(key) ?? ({ ...m, descriptor: { ...m.descriptor, name: newName }, dataPoints: [] } as MetricData);
          byName.set(key, target);
        }
        (target.dataPoints as DataPoint<unknown>[]).push(out === p.attributes ? p : { ...p, attributes: out });
      }
    }
    const metrics = [...byName.values()].filter((m) => m.dataPoints.length > 0);
    if (metrics.length) scopeMetrics.push({ scope: sm.scope, metrics });
  }
  return { resource: batch.resource, scopeMetrics };
}

/**
 * Relabel results per metric name and attributes object. Receivers keep a series' attributes
 * object across cycles while its labels are unchanged, so in steady state a series is relabeled
 * once, not every cycle — and its output object stays the same too, which keeps identity for
 * the processors after this one. Entries go away with their attributes objects.
 */
export class RelabelCache {
  private readonly _byName = new Map<string, WeakMap<object, { name: string; attributes: Record<string, string> } | null>>();
  forMetric(name: string): WeakMap<object, { name: string; attributes: Record<string, string> } | null> {
    let m = this._byName.get(name);
    if (!m) {
      m = new WeakMap();
      this._byName.set(name, m);
    }
    return m;
  }
}

/** `relabel` processor: Prometheus metric relabeling over OpenTelemetry batches. */
export function createRelabelProcessor(config: RelabelProcessorConfig): Processor {
  const rules = compileRelabelConfigs(config.rules, config.name_validation_scheme);
  const cache = new RelabelCache();
  return {
    async start() {},
    async shutdown() {},
    process: (batch) => relabelBatch(batch, rules, cache),
  };
}
