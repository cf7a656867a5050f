import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRegistry } from '../../src/components.ts';
import { resolveConfig, type RawServiceConfig } from '../../src/config/service.ts';
import { ConfigError, type ConfigProblem } from '../../src/errors.ts';
import { auditMetricsConnectorFactory } from '../audit_metrics/index.ts';
import { fixedLogsReceiverFactory } from '../common/test-logs.ts';
import { flowMetricsConnectorFactory } from './index.ts';

const registry = defaultRegistry([fixedLogsReceiverFactory(() => []), flowMetricsConnectorFactory, auditMetricsConnectorFactory]);

function problems(raw: RawServiceConfig): ConfigProblem[] {
  try {
    resolveConfig(raw, registry, 'otel-config.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  assert.fail('the config was accepted');
}

const base = {
  receivers: { fixed_logs: {} },
  connectors: { flow_metrics: {} },
  processors: { staleness: {}, device_filter: {} },
  exporters: { prometheus: {} },
};

test('the valid shape: logs → flow_metrics → metrics', () => {
  const cfg = resolveConfig(
    { ...base, service: { pipelines: { 'logs/flows': { receivers: ['fixed_logs'], processors: ['device_filter'], exporters: ['flow_metrics'] }, metrics: { receivers: ['flow_metrics'], processors: ['staleness'], exporters: ['prometheus'] } } } },
    registry,
    'otel-config.yaml',
  );
  assert.equal(cfg.connectors.get('flow_metrics')?.id.type, 'flow_metrics');
  assert.deepEqual(cfg.pipelines.map((p) => [p.name, p.signal]), [['logs/flows', 'logs'], ['metrics', 'metrics']]);
});

test('a connector used on one side only is refused, naming it and the pipeline', () => {
  const p = problems({ ...base, service: { pipelines: { 'logs/flows': { receivers: ['fixed_logs'], exporters: ['flow_metrics'] }, metrics: { receivers: ['fixed_logs'], exporters: ['prometheus'] } } } });
  const one = p.find((x) => x.path === 'connectors.flow_metrics');
  assert.ok(one, JSON.stringify(p));
  assert.match(one.message, /exporter of "logs\/flows" but no pipeline lists it as a receiver/);
});

test('a connector in a pipeline of a signal it does not emit is refused, naming the pipeline, the connector and the signal', () => {
  const p = problems({ ...base, exporters: { prometheus: {}, otlp: { endpoint: 'http://127.0.0.1:4318' } }, service: { pipelines: { 'metrics/in': { receivers: ['fixed_logs'], exporters: ['flow_metrics'] }, 'logs/out': { receivers: ['flow_metrics'], exporters: ['otlp'] } } } });
  const recv = p.find((x) => x.path === 'service.pipelines.logs/out.receivers');
  assert.ok(recv, JSON.stringify(p));
  assert.match(recv.message, /"flow_metrics" does not emit logs \(flow_metrics connects logs → metrics\), so it cannot be a receiver of the logs pipeline "logs\/out"/);
  const exp = p.find((x) => x.path === 'service.pipelines.metrics/in.exporters');
  assert.ok(exp, JSON.stringify(p));
  assert.match(exp.message, /"flow_metrics" does not take metrics .* metrics pipeline "metrics\/in"/);
});

test('a metrics-only processor in a logs pipeline is refused, naming the pipeline, the processor and the signal', () => {
  const p = problems({ ...base, service: { pipelines: { 'logs/flows': { receivers: ['fixed_logs'], processors: ['staleness'], exporters: ['flow_metrics'] }, metrics: { receivers: ['flow_metrics'], exporters: ['prometheus'] } } } });
  const bad = p.find((x) => x.path === 'service.pipelines.logs/flows.processors');
  assert.ok(bad, JSON.stringify(p));
  assert.match(bad.message, /"staleness" does not support logs \(staleness handles metrics\), so it cannot be in the logs pipeline "logs\/flows"/);
});

test('bad flow_metrics and audit_metrics settings name the key and what is wrong', () => {
  const p = problems({
    ...base,
    connectors: { flow_metrics: { max_series: 0, destination_addresses: 'hide', series_ttl: '0s', max_label_length: 5 }, audit_metrics: { max_series: 0, max_values: -1 } },
    service: { pipelines: { logs: { receivers: ['fixed_logs'], exporters: ['flow_metrics', 'audit_metrics'] }, metrics: { receivers: ['flow_metrics', 'audit_metrics'], exporters: ['prometheus'] } } },
  });
  const at = (path: string) => p.find((x) => x.path === path)?.message ?? `(nothing at ${path}: ${JSON.stringify(p)})`;
  assert.match(at('connectors.flow_metrics.destination_addresses'), /keep.*drop/);
  assert.match(at('connectors.flow_metrics.series_ttl'), /positive duration/);
  assert.match(at('connectors.audit_metrics.max_values'), /./);
  // Checks across keys run once the single keys are valid.
  const q = problems({
    ...base,
    connectors: { flow_metrics: { max_series: 0, max_label_length: 5 }, audit_metrics: { max_series: 0 } },
    service: { pipelines: { logs: { receivers: ['fixed_logs'], exporters: ['flow_metrics', 'audit_metrics'] }, metrics: { receivers: ['flow_metrics', 'audit_metrics'], exporters: ['prometheus'] } } },
  });
  const at2 = (path: string) => q.find((x) => x.path === path)?.message ?? `(nothing at ${path}: ${JSON.stringify(q)})`;
  assert.equal(at2('connectors.flow_metrics.max_series'), 'must be at least 1');
  assert.equal(at2('connectors.flow_metrics.max_label_length'), 'must be between 16 and 4096');
  assert.equal(at2('connectors.audit_metrics.max_series'), 'must be at least 1');
});
