import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import type { OtlpExporterComponent } from './otlp.ts';
import { buildService, families, renderPrometheus, sampleValue } from '../../test/helpers/index.ts';
import { OtlpReceiver } from '../../test/helpers/otlp-receiver.ts';

async function setup(t: TestContext, otlp: Record<string, unknown>, sim = new TailnetSimulator({ devices: 8 })) {
  await sim.start();
  const rx = new OtlpReceiver();
  await rx.start();
  const service = buildService({
    receivers: {
      tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], tailnet: sim.tailnet, interval: '1h' },
      device_metrics: { interval: '1h', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s' },
    },
    processors: { staleness: {} },
    exporters: { prometheus: {}, otlp: { endpoint: rx.url, timeout: '3s', ...otlp } },
    service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: ['staleness'], exporters: ['prometheus', 'otlp'] } } },
  });
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(3000));
    await rx.stop();
    await sim.stop();
  });
  const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
  const cycle = async () => {
    await service.collectNow();
    await exporter.flush();
  };
  return { sim, rx, service, exporter, cycle };
}

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  test(`OTLP ${protocol}: names, attributes, values, temporality, monotonicity, start times and resource`, async (t) => {
    const { sim, rx, cycle } = await setup(t, { protocol, compression: protocol === 'http/json' ? 'gzip' : 'none', headers: { 'x-tenant': 'acme' } });
    await cycle();
    assert.equal(rx.requests.length, 2, 'one request per receiver batch');
    const req = rx.requests[0];
    assert.ok(req);
    assert.match(req.contentType, protocol === 'http/json' ? /application\/json/ : /application\/x-protobuf/);
    assert.equal(req.headers['x-tenant'], 'acme');
    if (protocol === 'http/json') assert.equal(req.encoding, 'gzip');
    for (const r of rx.requests) {
      assert.equal(r.resource['service.name'], 'tsmetrics');
      assert.match(String(r.resource['service.version']), /^\d+\.\d+\.\d+/);
    }
    assert.ok(rx.requests.some((r) => r.resource['tailscale.tailnet'] === 'example.com'), 'the tailnet is on the resource');
    // API metrics are gauges with exact names and device attributes.
    const online = rx.points('tailscale_device_online');
    assert.equal(online.length, 8);
    assert.equal(online[0]?.metric.kind, 'gauge');
    const gw = sim.devices[0]?.api;
    assert.equal(online.find((p) => p.attributes.device_id === gw?.id)?.value, 1);
    assert.equal(online.find((p) => p.attributes.device_id === sim.devices[2]?.api.id)?.value, 0);
    // Remote counters: monotonic cumulative sums, start == time on first sight.
    const inbound = rx.points('tailscaled_inbound_bytes_total');
    assert.equal(inbound.length, 3 * 5 + 3, "four scraped devices; the v1.84 one has three paths");
    for (const p of inbound) {
      assert.equal(p.metric.kind, 'sum');
      assert.equal(p.metric.isMonotonic, true);
      assert.equal(p.metric.temporality, 2, 'CUMULATIVE');
      assert.equal(p.flags, 0);
      assert.equal(p.startTimeUnixNano, p.timeUnixNano, 'first sighting is a true reset point');
      assert.equal(typeof p.attributes.path, 'string');
      assert.equal(typeof p.attributes.device_name, 'string');
    }
    assert.equal(inbound[0]?.metric.description, 'Counts the number of bytes received from other peers');
    // Second cycle: start times stay, time moves on.
    const first = new Map(inbound.map((p) => [`${p.attributes.device_id}/${p.attributes.path}`, p.startTimeUnixNano]));
    await new Promise((r) => setTimeout(r, 10));
    await cycle();
    const second = rx.points('tailscaled_inbound_bytes_total').filter((p) => p.request >= 2);
    assert.equal(second.length, inbound.length);
    for (const p of second) {
      assert.equal(p.startTimeUnixNano, first.get(`${p.attributes.device_id}/${p.attributes.path}`), 'start time is kept');
      assert.ok(p.timeUnixNano > p.startTimeUnixNano);
    }
  });
}

test('OTLP staleness: a removed device ends its series with exactly one NO_RECORDED_VALUE point', async (t) => {
  const { sim, rx, cycle } = await setup(t, { protocol: 'http/protobuf' });
  await cycle();
  const gw = sim.devices[0]?.api.id as string;
  sim.removeDevice(gw);
  await cycle();
  await cycle();
  const stale = rx.requests.flatMap((r, i) => r.metrics.flatMap((m) => m.points.filter((p) => p.attributes.device_id === gw && p.flags === 1).map(() => [i, m.name])));
  assert.ok(stale.length > 10, 'every series of the device ends');
  assert.ok(stale.every(([i]) => i === 2 || i === 3), 'the markers come in the cycle after removal');
  const names = stale.map(([, n]) => n);
  assert.equal(new Set(names.map((n, i) => `${n}:${i}`)).size, names.length);
  for (const p of rx.points('tailscaled_inbound_bytes_total').filter((x) => x.attributes.device_id === gw && x.flags === 1)) assert.equal(p.value, undefined, 'no value on a stale point');
  // Nothing more for it in the third cycle.
  assert.equal(rx.requests.slice(4).flatMap((r) => r.metrics.flatMap((m) => m.points.filter((p) => p.attributes.device_id === gw))).length, 0);
});

test('OTLP JSON never writes null for NaN or ±Inf', async (t) => {
  const { sim, rx, cycle } = await setup(t, { protocol: 'http/json' });
  sim.setDeviceFault(sim.devices[0]?.api.id as string, { kind: 'body', body: '# TYPE tailscaled_weird gauge\ntailscaled_weird{k="nan"} NaN\ntailscaled_weird{k="inf"} +Inf\ntailscaled_weird{k="ninf"} -Inf\n' });
  await cycle();
  const w = rx.points('tailscaled_weird');
  assert.ok(Number.isNaN(w.find((p) => p.attributes.k === 'nan')?.value));
  assert.equal(w.find((p) => p.attributes.k === 'inf')?.value, Infinity);
  assert.equal(w.find((p) => p.attributes.k === 'ninf')?.value, -Infinity);
});

test('OTLP endpoint 429/503 are retried with Retry-After; a down endpoint drops and counts, Prometheus is unaffected', async (t) => {
  const { rx, service, exporter, cycle } = await setup(t, { protocol: 'http/protobuf', timeout: '4s' });
  rx.script.push({ status: 429, retryAfter: '1' }, { status: 503 });
  await cycle();
  assert.equal(exporter.stats.sentBatches, 2, 'both batches arrived after retries');
  assert.equal(exporter.stats.droppedBatches, 0);
  // Now the endpoint refuses with a final error: batches are dropped and counted.
  rx.script.push({ status: 400 }, { status: 400 });
  await cycle();
  assert.equal(exporter.stats.droppedBatches, 2);
  assert.ok(exporter.stats.droppedPoints > 0);
  const prom = families(await renderPrometheus(service));
  assert.ok(prom.has('tailscaled_inbound_bytes_total'), 'the Prometheus side still serves everything');
  assert.equal(sampleValue(prom, 'tsmetrics_component_errors_total', { component_id: 'otlp', error_type: 'export' }), 2);
  assert.ok((sampleValue(prom, 'tsmetrics_component_dropped_points_total', { component_id: 'otlp' }) ?? 0) > 0);
  // Accepting again: delivery resumes.
  await cycle();
  assert.equal(exporter.stats.sentBatches, 4);
});

test('OTLP queue is bounded: with the endpoint down the oldest batches are dropped and counted', async (t) => {
  const { rx, exporter, service } = await setup(t, { protocol: 'http/protobuf', timeout: '1s', max_queue_batches: 2 });
  await rx.stop(); // endpoint down: every export fails after its deadline
  for (let i = 0; i < 5; i++) await service.collectNow();
  await exporter.flush();
  assert.equal(exporter.stats.sentBatches, 0);
  assert.equal(exporter.stats.droppedBatches, 10, 'every batch is accounted for as dropped');
});
