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
export function relabelBatch(batch: ResourceMetrics, rules: readonly CompiledRule[]): ResourceMetrics {
  if (rules.length === 0) return batch;
  const scopeMetrics: ScopeMetrics[] = [];
  for (const sm of batch.scopeMetrics) {
    const byName = new Map<string, MetricData>();
    for (const m of sm.metrics) {
      const name = m.descriptor.name;
      for (const p of m.dataPoints as DataPoint<unknown>[]) {
        const out = relabelCompiled(labelsOf(name, p.attributes), rules);
        if (!out) continue;
        const newName = out.__name__;
        if (!newName) continue; // a series without a name cannot be exported
        delete out.__name__;
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
        (target.dataPoints as DataPoint<unknown>[]).push({ ...p, attributes: out });
      }
    }
    const metrics = [...byName.values()].filter((m) => m.dataPoints.length > 0);
    if (metrics.length) scopeMetrics.push({ scope: sm.scope, metrics });
  }
  return { resource: batch.resource, scopeMetrics };
}

/** `relabel` processor: Prometheus metric relabeling over OpenTelemetry batches. */
export function createRelabelProcessor(config: RelabelProcessorConfig): Processor {
  const rules = compileRelabelConfigs(config.rules);
  return {
    async start() {},
    async shutdown() {},
    process: (batch) => relabelBatch(batch, rules),
  };
}
