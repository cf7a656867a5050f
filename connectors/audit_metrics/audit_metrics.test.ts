import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRegistry } from '../../src/components.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { buildService, families, renderPrometheus, sampleValue } from '../../test/helpers/index.ts';
import { auditRecord, fixedLogsReceiverFactory, flowRecord } from '../common/test-logs.ts';
import { auditMetricsConnectorFactory } from './index.ts';

function service(batch: LogsBatch, config: Record<string, unknown> = {}) {
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [batch]), auditMetricsConnectorFactory]);
  return buildService(
    {
      receivers: { fixed_logs: {} },
      connectors: { audit_metrics: config },
      exporters: { prometheus: {} },
      service: { pipelines: { logs: { receivers: ['fixed_logs'], exporters: ['audit_metrics'] }, metrics: { receivers: ['audit_metrics'], exporters: ['prometheus'] } } },
    },
    { registry },
  );
}

test('audit_metrics: documented values always pass, max_values others per label, then "other"; wrong types are "unknown"; flows are ignored', async (t) => {
  const batch: LogsBatch = [
    ...Array.from({ length: 30 }, (_, i) => auditRecord({ action: `NEW_ACTION_${i}`, actor: 'USER', target: 'NODE' })),
    auditRecord({ action: 'DELETE', actor: 'USER', target: 'NODE' }),
    auditRecord({ action: 42, actor: ['USER'], target: 'x'.repeat(1 << 20) }),
    auditRecord({ action: 'UPDATE', actor: 'SCIM', target: 'USER', error: 'not allowed' }),
    flowRecord({ type: 'virtual', counts: { tx_bytes: 1 } }),
  ];
  const s = service(batch, { max_values: 5 });
  t.after(() => s.shutdown(AbortSignal.timeout(3000)));
  await s.start();
  await s.collectNow();
  const f = families(await renderPrometheus(s));
  const samples = f.get('tailscale_configuration_events_total')?.samples ?? [];
  const actions = new Set(samples.map((x) => x.labels.action));
  assert.equal([...actions].filter((a) => a?.startsWith('new_action_')).length, 5, 'five unknown actions kept as they are');
  assert.equal(sampleValue(f, 'tailscale_configuration_events_total', { action: 'other', event_type: 'node' }), 25);
  assert.equal(sampleValue(f, 'tailscale_configuration_events_total', { action: 'delete', event_type: 'node', actor_type: 'user', result: 'success', tailnet: 'example.com' }), 1, 'a documented value passes after the cap');
  assert.equal(sampleValue(f, 'tailscale_configuration_events_total', { action: 'unknown', actor_type: 'unknown' }), 1, 'wrong types are unknown');
  const long = samples.find((x) => x.labels.action === 'unknown');
  assert.equal(long?.labels.event_type?.length, 64, 'a 1 MB target type is cut');
  assert.equal(sampleValue(f, 'tailscale_configuration_events_total', { event_type: 'user', action: 'update', actor_type: 'scim', result: 'failed' }), 1);
  assert.equal(samples.reduce((n, x) => n + x.value, 0), 33, 'every audit record counted once, the flow record not at all');
});

test('audit_metrics max_series: new combinations beyond it are counted as "other" and the overflow counter says how many', async (t) => {
  const batch: LogsBatch = ['NODE', 'USER', 'TAILNET', 'API_KEY', 'INVITE', 'GROUP'].flatMap((target) => ['CREATE', 'UPDATE', 'DELETE'].map((action) => auditRecord({ action, actor: 'USER', target })));
  const s = service(batch, { max_series: 4 });
  t.after(() => s.shutdown(AbortSignal.timeout(3000)));
  await s.start();
  await s.collectNow();
  const f = families(await renderPrometheus(s));
  const samples = f.get('tailscale_configuration_events_total')?.samples ?? [];
  assert.equal(samples.length, 5);
  assert.equal(sampleValue(f, 'tailscale_configuration_events_total', { event_type: 'other', action: 'other', actor_type: 'other' }), 14);
  assert.equal(sampleValue(f, 'tsmetrics_audit_metrics_overflow_records_total', { component_id: 'audit_metrics' }), 14);
});
