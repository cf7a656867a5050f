import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTsmetrics } from '../src/app.ts';
import { API_METRICS } from '../receivers/tailscale_api/metrics.ts';
import { families, fixtureFamilyTypes, http, waitFor } from './helpers/index.ts';

test('demo mode: npm start serves every API metric and every client family through the real runtime', async (t) => {
  const lines: string[] = [];
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'info' }, port: 0, write: (l) => lines.push(l) });
  t.after(() => running.stop());
  assert.ok(running.simulator, 'demo mode starts the simulator');
  assert.ok(lines.some((l) => l.includes('DEMO MODE') && l.includes('/metrics')), 'the log says it is a demo and where /metrics is');

  await waitFor(async () => (await http(`${running.url}/ready`)).status === 200);
  const res = await http(`${running.url}/metrics`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-encoding'], 'gzip');
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const fams = families(res.body);

  // Every API metric the receiver documents (the demo tailnet has every device archetype).
  for (const [name] of Object.values(API_METRICS)) assert.ok(fams.has(name), `missing ${name}`);
  // Every tailscaled family of the fixture, with the fixture's type.
  for (const [name, type] of fixtureFamilyTypes()) {
    const f = fams.get(name);
    assert.ok(f && f.samples.length > 0, `missing client family ${name}`);
    assert.equal(f.type, type, `${name} keeps its type`);
    assert.ok(f.samples.every((s) => s.labels.device_id && s.labels.device_name), `${name} carries device_id and device_name`);
  }
  // No OpenTelemetry decorations on the names and labels.
  assert.ok(!fams.has('target_info'));
  assert.ok(!res.body.includes('otel_scope_name'));
  // Self-telemetry is on the same page.
  assert.ok(fams.has('tsmetrics_source_up'));
  assert.ok(fams.has('tsmetrics_component_received_points_total'));

  const health = JSON.parse((await http(`${running.url}/health`)).body) as Record<string, unknown>;
  assert.equal(health.status, 'healthy');
  assert.equal(health.devices_discovered, running.simulator.devices.length);
  assert.ok((health.devices_scraped as number) > 0);
  assert.match(String(health.last_scrape), /^\d{4}-\d\d-\d\dT/);
  assert.match(String(health.version), /^\d+\.\d+\.\d+/);
});

test('HTTP surface: 404 for unknown paths, 405 for other methods, /debug redacts secrets', async (t) => {
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'error' }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  assert.equal((await http(`${running.url}/nope`)).status, 404);
  assert.equal((await http(`${running.url}/metrics`, { method: 'POST' })).status, 405);
  const debug = await http(`${running.url}/debug`);
  assert.equal(debug.status, 200);
  const key = running.simulator?.apiKeys[0] as string;
  assert.ok(!debug.body.includes(key), '/debug never shows the API key');
  assert.match(debug.body, /\[REDACTED\]/);
  const doc = JSON.parse(debug.body) as { config: { receivers: Record<string, Record<string, unknown>> }; runtime: { node_version: string } };
  assert.equal(doc.config.receivers.tailscale_api?.api_key, '[REDACTED]');
  assert.match(doc.runtime.node_version, /^v2[2-9]|^v[3-9]\d/);
});

test('METRICS_TOKEN protects /metrics and /debug but not /health', async (t) => {
  const token = 'a-long-metrics-token-123456';
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'error', METRICS_TOKEN: token }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  await waitFor(async () => (await http(`${running.url}/ready`)).status === 200);
  assert.equal((await http(`${running.url}/metrics`)).status, 401);
  assert.equal((await http(`${running.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await http(`${running.url}/debug`)).status, 401);
  assert.equal((await http(`${running.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  assert.equal((await http(`${running.url}/health`)).status, 200);
});
