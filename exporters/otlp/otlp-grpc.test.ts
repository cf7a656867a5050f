import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import type { OtlpExporterComponent } from './otlp.ts';
import { buildService, families, memoryLogger, renderPrometheus, sampleValue, waitFor } from '../../test/helpers/index.ts';
import { OtlpGrpcReceiver } from '../../test/helpers/otlp-grpc-receiver.ts';

const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;
const INVALID_ARGUMENT = 3;

async function setup(t: TestContext, otlp: Record<string, unknown>, opts: { sim?: TailnetSimulator; rx?: OtlpGrpcReceiver } = {}) {
  // A simulator passed in belongs to the caller (started and stopped there).
  const sim = opts.sim ?? new TailnetSimulator({ devices: 8 });
  if (!opts.sim) await sim.start();
  const rx = opts.rx ?? new OtlpGrpcReceiver();
  if (!opts.rx) await rx.start();
  const log = memoryLogger();
  const service = buildService(
    {
      receivers: {
        tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], tailnet: sim.tailnet, interval: '1h' },
        device_metrics: { interval: '1h', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s' },
      },
      processors: { staleness: {} },
      exporters: { prometheus: {}, otlp: { endpoint: rx.url, protocol: 'grpc', timeout: '3s', ...otlp } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: ['staleness'], exporters: ['prometheus', 'otlp'] } } },
    },
    { logger: log.logger },
  );
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(3000));
    await rx.stop();
    if (!opts.sim) await sim.stop();
  });
  const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
  const cycle = async () => {
    await service.collectNow();
    await exporter.flush();
  };
  return { sim, rx, service, exporter, cycle, lines: log.lines };
}

test('OTLP/gRPC: every point decoded from the MetricsService/Export call — names, values, sums, start times, identity and tailnet on each resource, metadata, user agent', async (t) => {
  const { sim, rx, cycle } = await setup(t, { headers: { 'x-tenant': 'acme' } });
  await cycle();
  assert.equal(rx.requests.length, 2, 'one Export call per receiver batch');
  for (const r of rx.requests) {
    assert.equal(r.metadata['x-tenant'], 'acme', 'headers travel as gRPC metadata');
    assert.match(r.metadata['user-agent'] ?? '', /^tsmetrics\/\d+\.\d+\.\d+ OTel-OTLP-Exporter-JavaScript\/0\.301\.0/);
    assert.equal(r.resource['service.name'], 'tsmetrics');
    assert.match(String(r.resource['service.version']), /^\d+\.\d+\.\d+/);
    assert.equal(r.resource['service.instance.id'], hostname(), 'unsharded: the host name');
    assert.equal(r.resource['tsmetrics.shard.index'], undefined);
    assert.equal(r.resource['tailscale.tailnet'], sim.tailnet, 'the API batch and the device batch both name the tailnet');
  }
  const online = rx.points('tailscale_device_online');
  assert.equal(online.length, 8);
  assert.equal(online[0]?.metric.kind, 'gauge');
  assert.equal(online.find((p) => p.attributes.device_id === sim.devices[0]?.api.id)?.value, 1);
  assert.equal(online.find((p) => p.attributes.device_id === sim.devices[2]?.api.id)?.value, 0);
  const inbound = rx.points('tailscaled_inbound_bytes_total');
  assert.equal(inbound.length, 3 * 5 + 3, 'four scraped devices; the v1.84 one has three paths');
  for (const p of inbound) {
    assert.deepEqual([p.metric.kind, p.metric.isMonotonic, p.metric.temporality, p.flags], ['sum', true, 2, 0]);
    assert.equal(p.startTimeUnixNano, p.timeUnixNano, 'first sighting is a true reset point');
    assert.ok(Number.isFinite(p.value));
    assert.equal(typeof p.attributes.device_name, 'string');
  }
  assert.equal(inbound[0]?.metric.description, 'Counts the number of bytes received from other peers');
});

test('OTLP/gRPC carries staleness: a removed device ends each series with one NO_RECORDED_VALUE point and no value', async (t) => {
  const { sim, rx, cycle } = await setup(t, {});
  await cycle();
  const gw = sim.devices[0]?.api.id as string;
  sim.removeDevice(gw);
  await cycle();
  const stale = rx.requests.slice(2).flatMap((r) => r.metrics.flatMap((m) => m.points.filter((p) => p.attributes.device_id === gw && p.flags === 1)));
  assert.ok(stale.length > 10, `every series of the device ends (${stale.length})`);
  assert.ok(stale.every((p) => p.value === undefined));
});

test('OTLP/gRPC gzip: the same batches cross the wire in fewer bytes and decode the same', async (t) => {
  const sim = new TailnetSimulator({ devices: 8 });
  await sim.start();
  t.after(() => sim.stop());
  const plain = await setup(t, { compression: 'none' }, { sim });
  await plain.cycle();
  const gz = await setup(t, { compression: 'gzip' }, { sim });
  await gz.cycle();
  assert.deepEqual(
    gz.rx.points('tailscaled_inbound_bytes_total').map((p) => p.attributes),
    plain.rx.points('tailscaled_inbound_bytes_total').map((p) => p.attributes),
  );
  assert.equal(gz.rx.requests[1]?.bytes, plain.rx.requests[1]?.bytes, 'the same message');
  t.diagnostic(`on the wire: ${plain.rx.bytesIn} bytes plain, ${gz.rx.bytesIn} gzip`);
  assert.ok(gz.rx.bytesIn < plain.rx.bytesIn * 0.6, 'gzip shrinks what crosses the connection');
});

test('OTLP/gRPC retries UNAVAILABLE and a RESOURCE_EXHAUSTED that carries RetryInfo; final codes and RESOURCE_EXHAUSTED without RetryInfo drop and count', async (t) => {
  const { rx, service, exporter, cycle } = await setup(t, { timeout: '5s' });
  rx.script.push({ code: UNAVAILABLE }, { code: RESOURCE_EXHAUSTED, retryDelayMs: 50 });
  await cycle();
  assert.equal(rx.calls, 4, 'two failed calls, each tried again');
  assert.deepEqual({ sent: exporter.stats.sentBatches, dropped: exporter.stats.droppedBatches }, { sent: 2, dropped: 0 });
  rx.script.push({ code: INVALID_ARGUMENT }, { code: RESOURCE_EXHAUSTED });
  await cycle();
  assert.equal(rx.calls, 6, 'neither is tried again');
  assert.deepEqual({ sent: exporter.stats.sentBatches, dropped: exporter.stats.droppedBatches }, { sent: 2, dropped: 2 });
  const prom = families(await renderPrometheus(service));
  assert.equal(sampleValue(prom, 'tsmetrics_component_errors_total', { component_id: 'otlp', error_type: 'export' }), 2);
  assert.equal(sampleValue(prom, 'tsmetrics_component_dropped_points_total', { component_id: 'otlp' }), exporter.stats.droppedPoints);
  assert.ok(prom.has('tailscaled_inbound_bytes_total'), 'Prometheus still serves everything');
  await cycle();
  assert.equal(exporter.stats.sentBatches, 4, 'delivery resumes');
});

test('OTLP/gRPC retries stop at the deadline: a RetryInfo delay beyond it fails the batch at once', async (t) => {
  const { rx, exporter, cycle } = await setup(t, { timeout: '2s' });
  rx.script.push({ code: UNAVAILABLE, retryDelayMs: 30_000 }, { code: UNAVAILABLE, retryDelayMs: 30_000 });
  const t0 = performance.now();
  await cycle();
  assert.ok(performance.now() - t0 < 1500, 'no waiting for a retry that could not happen in time');
  assert.equal(rx.calls, 2);
  assert.equal(exporter.stats.droppedBatches, 2);
});

test('OTLP/gRPC queue is bounded: with the endpoint down the oldest batches are dropped and counted', async (t) => {
  const { rx, exporter, service } = await setup(t, { timeout: '1s', max_queue_batches: 2 });
  await rx.stop();
  for (let i = 0; i < 5; i++) await service.collectNow();
  await exporter.flush();
  assert.equal(exporter.stats.sentBatches, 0);
  assert.equal(exporter.stats.droppedBatches, 10, 'every batch is accounted for as dropped');
});

test('OTLP/gRPC timeout bounds the whole exchange: a hung call is cut at the deadline and the next batch goes out; shutdown names what it cut off and closes the connection', async (t) => {
  const rx = new OtlpGrpcReceiver();
  await rx.start();
  const sim = new TailnetSimulator({ devices: 4, deviceServers: false });
  await sim.start();
  t.after(async () => {
    await rx.stop();
    await sim.stop();
  });
  const log = memoryLogger();
  const timeoutMs = 1000;
  const service = buildService(
    {
      receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } },
      exporters: { otlp: { endpoint: rx.url, protocol: 'grpc', timeout: `${timeoutMs}ms` } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['otlp'] } } },
    },
    { logger: log.logger },
  );
  const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
  rx.script.push({ code: 0, hang: true });
  await service.collectNow();
  await service.collectNow();
  const t0 = performance.now();
  await exporter.flush();
  const took = performance.now() - t0;
  t.diagnostic(`hung call + good call: ${Math.round(took)} ms (timeout ${timeoutMs} ms)`);
  assert.ok(took >= timeoutMs - 100 && took < timeoutMs + 1500, `${took} ms`);
  assert.deepEqual({ sent: exporter.stats.sentBatches, dropped: exporter.stats.droppedBatches }, { sent: 1, dropped: 1 });
  assert.equal(rx.requests.length, 1);
  // Now a call that hangs at shutdown: the deadline cuts it, the report names it, the connection goes.
  rx.script.push({ code: 0, hang: true });
  await service.collectNow();
  await waitFor(() => rx.calls === 3);
  assert.ok(rx.open() >= 1);
  const report = await service.shutdownWithReport(AbortSignal.timeout(300));
  assert.deepEqual(report.cutOff, ['otlp: 1 batch not sent (the endpoint had not taken it by the deadline)']);
  await waitFor(() => rx.open() === 0, 2000);
});

test('OTLP/gRPC splits a batch above max_request_bytes into several Export calls of whole points; a failure part-way counts only the rest as dropped', async (t) => {
  const limit = 16 * 1024;
  const { rx, exporter, cycle } = await setup(t, { max_request_bytes: limit });
  await cycle();
  assert.ok(rx.requests.length > 2, `the device batch went as ${rx.requests.length - 1} requests`);
  for (const r of rx.requests) assert.ok(r.bytes <= limit, `${r.bytes} bytes ≤ ${limit}`);
  const points = rx.requests.flatMap((r) => r.metrics.flatMap((m) => m.points.map((p) => `${m.name}|${JSON.stringify(p.attributes)}`)));
  assert.equal(new Set(points).size, points.length, 'no point twice');
  assert.equal(points.length, exporter.stats.sentPoints, 'every point once');
  assert.deepEqual({ sent: exporter.stats.sentBatches, dropped: exporter.stats.droppedBatches }, { sent: 2, dropped: 0 }, 'still two batches');
  for (const r of rx.requests) assert.equal(r.resource['service.name'], 'tsmetrics', 'every part carries the resource');
  // Next cycle: the device batch's first part is taken, its second refused for good.
  const perCycle = exporter.stats.sentPoints;
  const apiCalls = rx.requests.filter((r) => r.metrics.some((m) => m.name === 'tailscale_device_online')).length;
  rx.script.push(...Array.from({ length: apiCalls + 1 }, () => ({ code: 0 })), { code: INVALID_ARGUMENT });
  await cycle();
  const delivered = exporter.stats.sentPoints - perCycle;
  assert.equal(exporter.stats.droppedBatches, 1, 'the device batch');
  assert.ok(delivered > 0 && exporter.stats.droppedPoints > 0);
  assert.equal(delivered + exporter.stats.droppedPoints, perCycle, 'delivered and dropped add up to the cycle');
});
