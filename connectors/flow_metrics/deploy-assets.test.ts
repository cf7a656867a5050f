import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { defaultRegistry } from '../../src/components.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { parseExposition } from '../../receivers/device_metrics/exposition.ts';
import { buildService, renderPrometheus } from '../../test/helpers/index.ts';
import { auditMetricsConnectorFactory } from '../audit_metrics/index.ts';
import { auditRecord, fixedLogsReceiverFactory, flowRecord } from '../common/test-logs.ts';
import { flowMetricsConnectorFactory } from './index.ts';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
/** Counted by the `tailscale_logs` receiver itself, which this test does not run. */
const RECEIVER_OWNED = new Set(['tsmetrics_logs_records_dropped_total']);

function metricNames(expr: string): string[] {
  return [...expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/\b((?:tailscale|tailscaled|tsmetrics)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1] as string);
}

test('the Network flows dashboard and the tailscale-logs alerts use only metrics a logs pipeline with flow_metrics and audit_metrics serves', async (t) => {
  const dash = JSON.parse(readFileSync(`${DEPLOY}grafana/tsmetrics-flows.json`, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }>; templating: { list: Array<{ query?: unknown }> } };
  const rules = parseYaml(readFileSync(`${DEPLOY}prometheus/alerts.yaml`, 'utf8')) as { groups: Array<{ name: string; rules: Array<{ expr: string }> }> };
  const used = new Set<string>();
  for (const p of dash.panels) for (const x of p.targets ?? []) for (const n of metricNames(x.expr)) used.add(n);
  for (const v of dash.templating.list) if (typeof v.query === 'string') for (const n of metricNames(v.query)) used.add(n);
  const group = rules.groups.find((g) => g.name === 'tailscale-logs');
  assert.ok(group && group.rules.length >= 3);
  for (const r of group.rules) for (const n of metricNames(r.expr)) used.add(n);

  const batch: LogsBatch = [
    ...Array.from({ length: 5 }, (_, i) => flowRecord({ type: i % 2 ? 'exit' : 'subnet', protocol: 'tcp', reporter: 'nGw1CNTRL', src: { device: { id: 'nGw1CNTRL', name: 'gw-01' } }, dst: { address: `192.0.2.${i}` }, counts: { tx_bytes: 10, rx_bytes: 5 } })),
    flowRecord({ type: 'physical', reporter: 'nGw1CNTRL', src: { device: { id: 'nGw1CNTRL', name: 'gw-01' } }, dst: { address: '127.3.3.40' }, counts: { tx_bytes: 40 } }),
    flowRecord({ type: 'virtual', reporter: 'nGw1CNTRL', src: { device: { id: 'nGw1CNTRL', name: 'gw-01' } }, counts: { tx_bytes: -1 } }),
    flowRecord({ type: 'virtual', reporter: 'nLp1CNTRL', src: { device: { id: 'nLp1CNTRL', name: 'laptop' } }, counts: { tx_bytes: 1 } }),
    auditRecord({ action: 'UPDATE', actor: 'USER', target: 'TAILNET', error: 'denied' }),
  ];
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [batch]), flowMetricsConnectorFactory, auditMetricsConnectorFactory]);
  const service = buildService(
    {
      receivers: { fixed_logs: {} },
      processors: { device_filter: { include_devices: ['gw-*'] } },
      connectors: { flow_metrics: { max_series: 3 }, audit_metrics: {} },
      exporters: { prometheus: {} },
      service: { pipelines: { logs: { receivers: ['fixed_logs'], processors: ['device_filter'], exporters: ['flow_metrics', 'audit_metrics'] }, metrics: { receivers: ['flow_metrics', 'audit_metrics'], exporters: ['prometheus'] } } },
    },
    { registry },
  );
  t.after(() => service.shutdown(AbortSignal.timeout(3000)));
  await service.start();
  await service.collectNow();
  const produced = new Set(parseExposition(await renderPrometheus(service)).flatMap((f) => f.samples.map((s) => s.name)));
  assert.ok(used.size >= 8, `found ${used.size} names`);
  const missing = [...used].filter((n) => !produced.has(n) && !RECEIVER_OWNED.has(n));
  assert.deepEqual(missing, [], 'used by the dashboard or alerts but not served');
});
