import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import type { OtlpExporterComponent } from './otlp.ts';
import { buildService, families, manualClock, renderPrometheus, sampleValue, waitFor } from '../../test/helpers/index.ts';
import { OtlpGrpcReceiver } from '../../test/helpers/otlp-grpc-receiver.ts';

const DELTA = 1;
const CUMULATIVE = 2;
const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);
const INTERVAL_MS = 30_000;

/** A pipeline on a hand-moved clock whose first device serves exactly `body(value)`. */
async function setup(t: TestContext, otlp: Record<string, unknown>) {
  const clock = manualClock(T0);
  const sim = new TailnetSimulator({ devices: 8, now: clock.now });
  await sim.start();
  const rx = new OtlpGrpcReceiver();
  await rx.start();
  const service = buildService(
    {
      receivers: {
        tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], tailnet: sim.tailnet, interval: '30s' },
        device_metrics: { interval: '30s', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s' },
      },
      processors: { staleness: {} },
      exporters: { prometheus: {}, otlp: { endpoint: rx.url, protocol: 'grpc', timeout: '3s', ...otlp } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: ['staleness'], exporters: ['prometheus', 'otlp'] } } },
    },
    { clock },
  );
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(3000));
    await rx.stop();
    await sim.stop();
  });
  const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
  const device = sim.devices[0]?.api.id as string;
  const serve = (value: number): void =>
    sim.setDeviceFault(device, { kind: 'body', body: `# TYPE tailscaled_inbound_bytes_total counter\ntailscaled_inbound_bytes_total{path="direct_ipv4"} ${value}\n` });
  /** Moves the clock one interval on, runs a cycle and returns the device's points of it. */
  const cycle = async (advanceMs = INTERVAL_MS) => {
    clock.advance(advanceMs);
    const before = rx.requests.length;
    await service.collectNow();
    await exporter.flush();
    return rx.requests.slice(before).flatMap((r) => r.metrics.filter((m) => m.name === 'tailscaled_inbound_bytes_total').flatMap((m) => m.points.filter((p) => p.attributes.device_id === device).map((p) => ({ ...p, temporality: m.temporality }))));
  };
  /** Whether the device was scraped successfully in the latest cycle. */
  const scraped = (): boolean => rx.points('tsmetrics_device_scrape_up').filter((p) => p.attributes.device_id === device).at(-1)?.value === 1;
  const promValue = async (): Promise<number | undefined> => sampleValue(families(await renderPrometheus(service)), 'tailscaled_inbound_bytes_total', { device_id: device, path: 'direct_ipv4' });
  /** Counter and histogram series of the pipeline that /metrics serves right now. */
  const liveCumulativeSeries = async (): Promise<number> => {
    // The process's own metrics are served beside the pipeline's; they are not pipeline series.
    const own = new Set((await service.telemetry.collect()).resourceMetrics.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.descriptor.name)));
    let n = 0;
    for (const f of families(await renderPrometheus(service)).values()) {
      if (own.has(f.name) || own.has(f.name.replace(/_total$/, ''))) continue;
      if (f.type === 'counter') n += f.samples.length;
      else if (f.type === 'histogram') n += f.samples.filter((x) => x.name.endsWith('_count')).length;
    }
    return n;
  };
  return { clock, sim, rx, service, exporter, device, serve, cycle, scraped, promValue, liveCumulativeSeries };
}

const nanos = (ms: number): bigint => BigInt(ms) * 1_000_000n;

test('delta temporality: each point covers the interval since the last; resets are never negative; Prometheus stays cumulative', async (t) => {
  const { serve, cycle, promValue, rx } = await setup(t, { temporality_preference: 'delta' });
  serve(100);
  assert.deepEqual(await cycle(), [], 'the first sighting only sets the baseline (no boot-time spike)');
  serve(150);
  const [second] = await cycle();
  assert.deepEqual([second?.value, second?.temporality, second?.startTimeUnixNano, second?.timeUnixNano], [50, DELTA, nanos(T0 + 30_000), nanos(T0 + 60_000)]);
  assert.equal(await promValue(), 150, '/metrics still shows the cumulative counter');
  serve(20); // the device restarted
  const [reset] = await cycle();
  assert.deepEqual([reset?.value, reset?.startTimeUnixNano, reset?.timeUnixNano], [20, nanos(T0 + 60_000), nanos(T0 + 90_000)], 'what was counted since the restart, never -130');
  serve(50);
  const [after] = await cycle();
  assert.deepEqual([after?.value, after?.startTimeUnixNano], [30, nanos(T0 + 90_000)], 'intervals are contiguous');
  assert.equal(await promValue(), 50);
  // Gauges and non-monotonic data are untouched.
  const online = rx.points('tailscale_device_online');
  assert.ok(online.length > 0 && online.every((p) => p.metric.kind === 'gauge'));
  // Every delta that went out adds up to what the counter grew while observed.
  const all = rx.points('tailscaled_inbound_bytes_total').filter((p) => p.metric.temporality === DELTA);
  assert.ok(all.every((p) => (p.value ?? 0) >= 0), 'no negative delta anywhere');
});

test('delta temporality: a device that disappears and returns does not produce a spike, and its state goes with it', async (t) => {
  const { serve, cycle, scraped, sim, device, exporter, liveCumulativeSeries } = await setup(t, { temporality_preference: 'delta' });
  serve(1000);
  await cycle();
  serve(1100);
  assert.equal((await cycle())[0]?.value, 100);
  assert.equal(exporter.trackedDeltaSeries(), await liveCumulativeSeries(), 'one delta state per live counter series');
  // The device stops answering for longer than the staleness grace (2 intervals): its series end.
  sim.setDeviceFault(device, { kind: 'status', status: 503 });
  const gone = [...(await cycle()), ...(await cycle()), ...(await cycle()), ...(await cycle())];
  assert.deepEqual(gone.map((p) => p.flags), [1], 'one end-of-series marker, no value');
  assert.equal(gone[0]?.value, undefined);
  assert.equal(exporter.trackedDeltaSeries(), await liveCumulativeSeries(), 'the ended series left the delta state');
  // Back, with a counter that went on growing while it was away: no 1,000,000-byte delta.
  serve(1_000_000);
  // The scrape backs off while a device fails; the first successful scrape is the return.
  let returned = await cycle();
  for (let i = 0; i < 20 && !scraped(); i++) returned = await cycle();
  assert.ok(scraped(), 'the device is scraped again');
  assert.deepEqual(returned, [], 'a returning series starts a new baseline');
  serve(1_000_040);
  const [back] = await cycle();
  assert.equal(back?.value, 40);
  assert.equal(exporter.trackedDeltaSeries(), await liveCumulativeSeries());
});

test('lowmemory temporality: scraped counters stay cumulative (no state per series), tsmetrics’ own counters go as deltas', async (t) => {
  const { serve, cycle, rx, exporter } = await setup(t, { temporality_preference: 'lowmemory' });
  serve(100);
  const [first] = await cycle();
  assert.deepEqual([first?.value, first?.temporality], [100, CUMULATIVE]);
  await exporter.pushSelfTelemetry();
  await exporter.flush();
  serve(150);
  await cycle();
  await exporter.pushSelfTelemetry();
  await exporter.flush();
  const received = rx.points('tsmetrics_component_received_points').filter((p) => p.attributes.component_id === 'device_metrics');
  assert.equal(received.length, 2);
  assert.ok(received.every((p) => p.metric.temporality === DELTA));
  assert.equal(received[1]?.startTimeUnixNano, received[0]?.timeUnixNano, 'the second delta starts where the first ended');
  assert.equal(exporter.trackedDeltaSeries() > 0, true);
  const cycles = rx.points('tsmetrics_cycle_duration_seconds');
  assert.ok(cycles.length > 0 && cycles.every((p) => p.metric.temporality === DELTA), 'the own histogram is a delta too');
});

test('self-telemetry over OTLP: tsmetrics_source_up, errors and drops decoded from the request, with the instance identity and no tailnet; deltas add up to /metrics', async (t) => {
  const { sim, rx, service, exporter, cycle } = await setup(t, { temporality_preference: 'delta' });
  sim.setApiFault({ kind: 'status', status: 401 });
  await cycle();
  sim.setApiFault(undefined);
  await exporter.pushSelfTelemetry();
  await exporter.flush();
  const self = rx.requests.at(-1);
  assert.ok(self);
  assert.equal(self.resource['service.name'], 'tsmetrics');
  assert.ok(self.resource['service.instance.id']);
  assert.equal(self.resource['tailscale.tailnet'], undefined, 'the process is not one tailnet');
  const up = new Map(self.metrics.find((m) => m.name === 'tsmetrics_source_up')?.points.map((p) => [p.attributes.source, p.value]));
  assert.equal(up.get('tailscale_api'), 0, 'the failed API cycle is visible over OTLP');
  assert.ok(up.has('device_metrics'));
  const errors = self.metrics.find((m) => m.name === 'tsmetrics_component_errors');
  assert.equal(errors?.kind, 'sum');
  assert.ok((errors?.points.find((p) => p.attributes.component_id === 'tailscale_api' && p.attributes.error_type === 'auth')?.value ?? 0) >= 1);
  // Two more cycles, one more push: the deltas of a counter sum to what /metrics shows.
  await cycle();
  await cycle();
  await exporter.pushSelfTelemetry();
  await exporter.flush();
  const sent = rx.points('tsmetrics_component_sent_points').filter((p) => p.attributes.component_id === 'tailscale_api');
  const total = sent.reduce((a, p) => a + (p.value ?? 0), 0);
  assert.equal(total, sampleValue(families(await renderPrometheus(service)), 'tsmetrics_component_sent_points_total', { component_id: 'tailscale_api' }));
  assert.equal(sent[0]?.startTimeUnixNano !== sent[0]?.timeUnixNano, true, 'the first self delta counts from the process start');
});

test('self-telemetry pushes on its own interval, and not at all when switched off', async (t) => {
  const on = await setup(t, { self_telemetry: { interval: '50ms' } });
  await on.service.start();
  await on.cycle();
  await waitFor(() => on.rx.points('tsmetrics_source_up').length > 0);
  const [up] = on.rx.points('tsmetrics_source_up');
  assert.equal(up?.metric.kind, 'gauge');
  const off = await setup(t, { self_telemetry: { enabled: false } });
  await off.cycle();
  await off.exporter.pushSelfTelemetry();
  await off.exporter.flush();
  assert.equal(off.rx.points('tsmetrics_source_up').length, 0);
  assert.equal(off.rx.requests.length, 2, 'only the pipeline batches');
});
