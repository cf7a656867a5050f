import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TailnetSimulator, type SimulatorOptions } from '../../src/simulator/simulator.ts';
import type { Clock } from '../../src/component/types.ts';
import type { PrometheusExporterComponent } from '../../exporters/prometheus/prometheus.ts';
import { hrTimeToMs } from '../../src/model/batch.ts';
import { buildService, manualClock, families, fixture, fixtureDevices, memoryLogger, sampleValue } from '../../test/helpers/index.ts';
import { recordingListener } from '../../test/helpers/listener.ts';
import { parseExposition } from './exposition.ts';

async function setup(t: TestContext, sim: SimulatorOptions, dm: Record<string, unknown> = {}, extra: { processors?: Record<string, unknown>; pipelineProcessors?: string[]; clock?: Clock } = {}) {
  const s = new TailnetSimulator(sim);
  await s.start();
  const { logger, lines } = memoryLogger();
  const service = buildService(
    {
      receivers: {
        tailscale_api: { api_url: s.apiUrl, api_key: s.apiKeys[0], interval: '1h' },
        device_metrics: { interval: '1h', port: s.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '1s', ...dm },
      },
      processors: extra.processors ?? {},
      exporters: { prometheus: {} },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: extra.pipelineProcessors ?? [], exporters: ['prometheus'] } } },
    },
    { logger, ...(extra.clock ? { clock: extra.clock } : {}) },
  );
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(2000));
    await s.stop();
  });
  const exporter = service.exporters.get('prometheus') as PrometheusExporterComponent;
  return { sim: s, service, exporter, lines, scrape: async () => families((await exporter.render()) ?? '') };
}

/** The fixture tailnet with the two tagged devices moved onto loopback addresses. */
function loopbackFixture(): ReturnType<typeof fixtureDevices> {
  const devices = fixtureDevices();
  (devices[0] as Record<string, unknown>).addresses = ['127.0.1.2', 'fd7a:115c:a1e0::c301:112a'];
  (devices[3] as Record<string, unknown>).addresses = ['127.0.1.3', 'fd7a:115c:a1e0::e401:2c03'];
  return devices;
}

test('every family and label set of both tailscaled fixtures arrives with the right type and value', async (t) => {
  const { sim, service, scrape } = await setup(t, { devices_json: loopbackFixture() });
  const gw = '4815927360519382';
  const fresh = '7291046638810455';
  sim.setDeviceFault(gw, { kind: 'body', body: fixture('client-metrics.txt') });
  sim.setDeviceFault(fresh, { kind: 'body', body: fixture('client-metrics-fresh-node.txt') });
  await service.collectNow();
  const f = await scrape();
  for (const [id, file] of [[gw, 'client-metrics.txt'], [fresh, 'client-metrics-fresh-node.txt']] as const) {
    for (const fam of parseExposition(fixture(file))) {
      const got = f.get(fam.name);
      assert.ok(got, `${fam.name} is exported`);
      assert.equal(got.type, fam.type, `${fam.name} keeps type ${fam.type}`);
      assert.equal(got.help, fam.help, `${fam.name} keeps its HELP`);
      for (const s of fam.samples) {
        assert.equal(sampleValue(f, s.name, { ...s.labels, device_id: id }), s.value, `${s.name}${JSON.stringify(s.labels)} of ${file}`);
      }
    }
  }
  // Inbound drops keep their reason label (the Go exporter lost it).
  assert.equal(sampleValue(f, 'tailscaled_inbound_dropped_packets_total', { device_id: gw, reason: 'acl' }), 18342);
  assert.equal(sampleValue(f, 'tailscaled_inbound_dropped_packets_total', { device_id: gw, reason: 'error' }), 3);
  assert.equal(sampleValue(f, 'tailscaled_inbound_bytes_total', { device_id: gw, path: 'direct_ipv4', device_name: 'gw-fra-01.tail4c8e1a.ts.net' }), 912873465321);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: gw }), 1);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_samples', { device_id: gw }), 44);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_samples', { device_id: fresh }), 25);
});

test('counters are monotonic sums whose start time is first-seen and resets when the value drops', async (t) => {
  const clock = manualClock();
  const { sim, service, exporter } = await setup(t, { devices_json: loopbackFixture() }, {}, { clock });
  const gw = '4815927360519382';
  const body = (v: number) => `# TYPE tailscaled_c_total counter\ntailscaled_c_total ${v}\n# TYPE tailscaled_g gauge\ntailscaled_g ${v}\n`;
  const point = () => {
    const snap = exporter.snapshot();
    const m = snap?.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === 'tailscaled_c_total');
    assert.equal((m as { isMonotonic?: boolean }).isMonotonic, true);
    const p = m?.dataPoints.find((x) => x.attributes.device_id === gw);
    assert.ok(p);
    return { start: hrTimeToMs(p.startTime), end: hrTimeToMs(p.endTime), value: p.value as number };
  };
  sim.setDeviceFault(gw, { kind: 'body', body: body(100) });
  await service.collectNow();
  const p1 = point();
  assert.equal(p1.start, p1.end, 'first sighting: start == time (a true reset point)');
  clock.advance(20);
  sim.setDeviceFault(gw, { kind: 'body', body: body(150) });
  await service.collectNow();
  const p2 = point();
  assert.equal(p2.start, p1.start, 'growing counter keeps its start time');
  assert.ok(p2.end > p1.end);
  clock.advance(20);
  sim.setDeviceFault(gw, { kind: 'body', body: body(5) });
  await service.collectNow();
  const p3 = point();
  assert.equal(p3.value, 5);
  assert.equal(p3.start, p3.end, 'a drop resets the start time');
  assert.ok(p3.start > p2.start);
});

test('only addresses inside the allowed networks are dialed (a listener outside records zero connections)', async (t) => {
  const outside = await recordingListener('127.0.0.9');
  t.after(() => outside.close());
  const devices = fixtureDevices();
  (devices[0] as Record<string, unknown>).addresses = ['127.0.0.9', '::ffff:127.0.0.9'];
  (devices[3] as Record<string, unknown>).name = 'localhost';
  (devices[3] as Record<string, unknown>).addresses = [];
  const { service, scrape } = await setup(t, { devices_json: devices, deviceServers: false }, { port: outside.port, allowed_cidrs: ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'] });
  await service.collectNow();
  const f = await scrape();
  assert.equal(outside.connections(), 0);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: '4815927360519382', kind: 'not_allowed' }), 1);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: '4815927360519382' }), 0);
});

test('a MagicDNS name that resolves outside the allowed networks is not dialed', async (t) => {
  const outside = await recordingListener('127.0.0.1');
  t.after(() => outside.close());
  const devices = fixtureDevices();
  (devices[0] as Record<string, unknown>).name = 'localhost';
  const { service, scrape } = await setup(t, { devices_json: devices, deviceServers: false }, { port: outside.port, address: 'magicdns', allowed_cidrs: ['100.64.0.0/10'] });
  await service.collectNow();
  assert.equal(outside.connections(), 0);
  assert.equal(sampleValue(await scrape(), 'tsmetrics_device_scrape_errors_total', { device_id: '4815927360519382', kind: 'not_allowed' }), 1);
});

test('the tag rule: untagged devices are never dialed unless the requirement is lifted', async (t) => {
  const { sim, service } = await setup(t, { devices: 8 });
  await service.collectNow();
  const dialed = () => [...sim.stats.deviceRequests.keys()].map((id) => sim.devices.find((d) => d.api.id === id)?.api.hostname).sort();
  // Tagged tag:exporter, online, authorized, not external: gw, metrics, ci-runner, desktop.
  assert.deepEqual(dialed(), ['ci-runner-05', 'desktop-07', 'gw-01', 'metrics-04']);
});

test('REQUIRE_EXPORTER_TAG=false scrapes every online, authorized, internal device', async (t) => {
  const { sim, service } = await setup(t, { devices: 8 }, { require_tag: false });
  await service.collectNow();
  const dialed = [...sim.stats.deviceRequests.keys()].map((id) => sim.devices.find((d) => d.api.id === id)?.api.hostname).sort();
  assert.deepEqual(dialed, ['ci-runner-05', 'desktop-07', 'gw-01', 'laptop-02', 'metrics-04']);
});

test('a device the device_filter drops is never connected to', async (t) => {
  const { sim, service, scrape } = await setup(t, { devices: 8 }, {}, { processors: { device_filter: { exclude_devices: ['gw-*'] } }, pipelineProcessors: ['device_filter'] });
  await service.collectNow();
  const gw = sim.devices[0]?.api.id as string;
  assert.equal(sim.stats.deviceRequests.get(gw), undefined, 'gw-01 was not dialed');
  assert.ok((sim.stats.deviceRequests.get(sim.devices[3]?.api.id as string) ?? 0) > 0, 'metrics-04 was');
  const f = await scrape();
  assert.equal(sampleValue(f, 'tailscale_device_online', { device_id: gw }), undefined, 'and its data is filtered out');
  assert.equal(sampleValue(f, 'tailscale_device_count', {}), 7);
});

test('a failing device is backed off for a growing number of cycles, capped', async (t) => {
  const { sim, service, scrape } = await setup(t, { devices: 8 }, { backoff_max_cycles: 2 });
  const gw = sim.devices[0]?.api.id as string;
  sim.setDeviceFault(gw, { kind: 'status', status: 500 });
  const requests: number[] = [];
  for (let i = 0; i < 9; i++) {
    await service.collectNow();
    requests.push(sim.stats.deviceRequests.get(gw) ?? 0);
  }
  // Attempts at cycles 1, 3, 6, 9 (skip 1, then 2, then capped at 2).
  assert.deepEqual(requests, [1, 1, 2, 2, 2, 3, 3, 3, 4]);
  const f = await scrape();
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: gw, kind: 'http_status' }), 4);
  sim.setDeviceFault(gw, undefined);
  for (let i = 0; i < 3; i++) await service.collectNow();
  assert.equal(sampleValue(await scrape(), 'tsmetrics_device_scrape_up', { device_id: gw }), 1, 'recovers after the backoff');
});

test('bad devices cannot hurt the rest: every fault at once, the good devices arrive in the same cycle', async (t) => {
  const { sim, service, scrape, lines } = await setup(t, { devices: 40, exporterShare: 1 }, { timeout: '800ms', max_body_size: 64 * 1024, max_samples: 5000, max_concurrent: 20 });
  const targets = sim.currentDevices().filter((d) => d.api.tags && (d.api.tags as string[]).includes('tag:exporter') && d.api.connectedToControl && d.api.authorized && !d.api.isExternal);
  const faults = [
    { kind: 'hang' },
    { kind: 'slow_body', bytesPerSecond: 1 },
    { kind: 'reset' },
    { kind: 'status', status: 500 },
    { kind: 'status', status: 429 },
    { kind: 'status', status: 404 },
    { kind: 'garbage' },
    { kind: 'invalid_utf8' },
    { kind: 'oversize', bytes: 1024 * 1024 },
    { kind: 'huge', series: 20_000 },
  ] as const;
  const expectKind = ['timeout', 'timeout', 'network', 'http_status', 'http_status', 'http_status', 'parse', 'parse', 'too_large', 'too_large'];
  faults.forEach((f, i) => sim.setDeviceFault(targets[i]?.api.id as string, f));
  const good = targets.slice(faults.length);
  assert.ok(good.length >= 5);
  const t0 = Date.now();
  await service.collectNow();
  assert.ok(Date.now() - t0 < 5000, 'the cycle ends within the timeout bound');
  const f = await scrape();
  for (const d of good) {
    assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: d.api.id }), 1, `${d.api.hostname} up`);
    assert.ok(sampleValue(f, 'tailscaled_inbound_bytes_total', { device_id: d.api.id, path: 'derp' }) !== undefined);
  }
  faults.forEach((_, i) => {
    const id = targets[i]?.api.id as string;
    assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: id }), 0, `faulty ${faults[i]?.kind} is down`);
    assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: id, kind: expectKind[i] as string }), 1, `${faults[i]?.kind} counted as ${expectKind[i]}`);
  });
  assert.ok(!f.has('huge_series'), 'nothing of the over-limit device is exported');
  // One warning per failing device, not per series.
  assert.equal(lines.filter((l) => l.includes('device scrape failed')).length, faults.length);
});

test('a refused connection is classified as refused', async (t) => {
  const devices = fixtureDevices();
  (devices[0] as Record<string, unknown>).addresses = ['127.0.0.77'];
  const { service, scrape } = await setup(t, { devices_json: devices, deviceServers: false }, { port: 1 });
  await service.collectNow();
  assert.equal(sampleValue(await scrape(), 'tsmetrics_device_scrape_errors_total', { device_id: '4815927360519382', kind: 'refused' }), 1);
});

test('family allow and deny lists; a device label named device_id is kept as exported_device_id', async (t) => {
  const { sim, service, scrape } = await setup(t, { devices_json: loopbackFixture() }, { family_namespace: ['tailscaled_*', 'custom', 'other'], include_families: ['tailscaled_*', 'custom'], exclude_families: ['tailscaled_peer_relay_*'] });
  const gw = '4815927360519382';
  sim.setDeviceFault(gw, { kind: 'body', body: fixture('client-metrics.txt') + '# TYPE custom gauge\ncustom{device_id="spoof"} 1\n# TYPE other gauge\nother 1\n' });
  await service.collectNow();
  const f = await scrape();
  assert.ok(f.has('tailscaled_inbound_bytes_total'));
  assert.ok(!f.has('tailscaled_peer_relay_endpoints'));
  assert.ok(!f.has('other'));
  assert.equal(sampleValue(f, 'custom', { device_id: gw, exported_device_id: 'spoof' }), 1);
});

test('a device whose addresses change between cycles is dialed where its record says now (the kept dial target follows the record)', async (t) => {
  const outside = await recordingListener('127.0.0.9');
  t.after(() => outside.close());
  const devices = loopbackFixture();
  const gw = '4815927360519382';
  const { sim, service, scrape } = await setup(t, { devices_json: devices }, { allowed_cidrs: ['127.0.1.0/24'] });
  await service.collectNow();
  assert.equal(sampleValue(await scrape(), 'tsmetrics_device_scrape_up', { device_id: gw }), 1);
  // The record now names an address outside the allowed networks: not dialed, not_allowed.
  const moved = loopbackFixture();
  (moved[0] as Record<string, unknown>).addresses = ['127.0.0.9'];
  sim.setDevicesJson(moved);
  await service.collectNow();
  let f = await scrape();
  assert.equal(outside.connections(), 0);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: gw }), 0);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: gw, kind: 'not_allowed' }), 1);
  // And back: scraped again at its first address (after the one cycle of backoff the failure earned).
  sim.setDevicesJson(loopbackFixture());
  await service.collectNow();
  assert.equal(sampleValue(await scrape(), 'tsmetrics_device_scrape_backoff_cycles', { device_id: gw }), 0);
  await service.collectNow();
  f = await scrape();
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: gw }), 1);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: gw, kind: 'not_allowed' }), 1);
});
