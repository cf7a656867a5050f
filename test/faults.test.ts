import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TailnetSimulator, type SimulatorOptions } from '../src/simulator/simulator.ts';
import { defaultRegistry } from '../src/components.ts';
import { resolveConfig } from '../src/config/service.ts';
import { PipelineService } from '../src/pipeline/service.ts';
import { defineSchema } from '../src/config/schema.ts';
import type { ProcessorFactory } from '../src/component/types.ts';
import type { PrometheusExporterComponent } from '../exporters/prometheus/prometheus.ts';
import type { OtlpExporterComponent } from '../exporters/otlp/otlp.ts';
import { healthDocument } from '../src/server/http.ts';
import { families, memoryLogger, renderPrometheus, sampleValue } from './helpers/index.ts';
import { OtlpReceiver } from './helpers/otlp-receiver.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The whole default pipeline (as env builds it) against a simulator, driven cycle by cycle. */
async function product(t: TestContext, simOpts: SimulatorOptions = { devices: 12 }, extra: Record<string, unknown> = {}) {
  const sim = new TailnetSimulator(simOpts);
  await sim.start();
  const { logger, lines } = memoryLogger('debug');
  const registry = defaultRegistry();
  const config = resolveConfig(
    {
      receivers: {
        tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h', max_retries: 1, ...(extra.api as object) },
        device_metrics: { port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], interval: '1h', timeout: '1s', ...(extra.dm as object) },
      },
      processors: { device_filter: {}, relabel: { rules: [] }, staleness: {} },
      exporters: { prometheus: {} },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: ['device_filter', 'relabel', 'staleness'], exporters: ['prometheus'] } } },
    },
    registry,
    'faults',
  );
  const service = new PipelineService(registry, config, { logger, version: 'test' });
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(3000));
    await sim.stop();
  });
  const exp = service.exporters.get('prometheus') as PrometheusExporterComponent;
  return { sim, service, lines, scrape: async () => families((await exp.render()) ?? ''), health: () => healthDocument(service, 'test', Date.now()) };
}

const gw = (sim: TailnetSimulator) => sim.devices[0]?.api.id as string;
const metrics04 = (sim: TailnetSimulator) => sim.devices[3]?.api.id as string;

test('device faults: a million series, duplicates, NaN/±Inf, every escape, an answer that changes each cycle', async (t) => {
  const { sim, service, scrape, health } = await product(t);
  sim.setDeviceFault(gw(sim), { kind: 'huge', series: 1_000_000 });
  const escaped = 'back\\\\slash \\"quoted\\" new\\nline';
  sim.setDeviceFault(metrics04(sim), { kind: 'body', body: `# TYPE tailscaled_dup gauge\ntailscaled_dup{a="1"} 1\ntailscaled_dup{a="1"} 2\n# TYPE tailscaled_odd gauge\ntailscaled_odd{k="nan"} NaN\ntailscaled_odd{k="inf"} +Inf\ntailscaled_odd{k="ninf"} -Inf\n# TYPE tailscaled_esc gauge\ntailscaled_esc{v="${escaped}"} 1\n` });
  await service.collectNow();
  const f = await scrape();
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: gw(sim) }), 0);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: gw(sim), kind: 'too_large' }), 1);
  assert.equal(f.get('tailscaled_dup')?.samples.length, 1, 'a duplicate series is exported once');
  assert.equal(sampleValue(f, 'tailscaled_dup', { a: '1' }), 2, 'the last sample wins');
  assert.ok(Number.isNaN(sampleValue(f, 'tailscaled_odd', { k: 'nan' })));
  assert.equal(sampleValue(f, 'tailscaled_odd', { k: 'inf' }), Infinity);
  assert.equal(sampleValue(f, 'tailscaled_odd', { k: 'ninf' }), -Infinity);
  assert.equal(sampleValue(f, 'tailscaled_esc', { v: 'back\\slash "quoted" new\nline' }), 1, 'escapes survive the round trip');
  // Every other scraped device still arrived in the same cycle.
  for (const d of sim.devices.filter((x) => x.api.id !== gw(sim) && x.api.id !== metrics04(sim) && (x.api.tags as string[] | undefined)?.includes('tag:exporter') && x.api.connectedToControl && x.api.authorized && !x.api.isExternal)) {
    assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: d.api.id }), 1, d.api.hostname as string);
  }
  assert.equal(health().status, 'healthy', 'device faults do not make the process unhealthy');
  // A device that changes its answer each cycle: old series end.
  sim.setDeviceFault(metrics04(sim), { kind: 'body', body: '# TYPE tailscaled_dup gauge\ntailscaled_dup{a="2"} 5\n' });
  await service.collectNow();
  const g = await scrape();
  assert.equal(sampleValue(g, 'tailscaled_dup', { a: '1' }), undefined);
  assert.equal(sampleValue(g, 'tailscaled_dup', { a: '2' }), 5);
  assert.equal(g.get('tailscaled_odd'), undefined);
});

test('a failing device keeps its client series for two intervals, then they go; scrape-up says 0 at once', async (t) => {
  const { sim, service, scrape } = await product(t, { devices: 12 }, { dm: { backoff_max_cycles: 0 } });
  await service.collectNow();
  assert.ok(sampleValue(await scrape(), 'tailscaled_inbound_bytes_total', { device_id: gw(sim), path: 'derp' }) !== undefined);
  sim.setDeviceFault(gw(sim), { kind: 'status', status: 500 });
  // The grace period is 2 × the source interval (1 h here), so within it the series stay.
  await service.collectNow();
  const f = await scrape();
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: gw(sim) }), 0);
  assert.ok(sampleValue(f, 'tailscaled_inbound_bytes_total', { device_id: gw(sim), path: 'derp' }) !== undefined, 'kept during grace');
});

test('API faults at product level: truncated body, missing fields, down for many cycles then back', async (t) => {
  const { sim, service, scrape, health, lines } = await product(t);
  await service.collectNow();
  sim.setApiFault({ kind: 'truncated' });
  for (let i = 0; i < 5; i++) await service.collectNow();
  let f = await scrape();
  assert.equal(sampleValue(f, 'tailscale_device_count', {}), 12, 'the last good inventory is still served');
  assert.equal(sampleValue(f, 'tsmetrics_source_up', { source: 'tailscale_api' }), 0);
  assert.equal(health().status, 'degraded');
  assert.ok(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: gw(sim) }) === 1, 'devices are still scraped from the last good inventory');
  assert.equal(lines.filter((l) => l.includes('Tailscale API call failed')).length, 1, 'five failing cycles, one log line');
  sim.setApiFault(undefined);
  await service.collectNow();
  f = await scrape();
  assert.equal(sampleValue(f, 'tsmetrics_source_up', { source: 'tailscale_api' }), 1, 'recovers by itself');
  assert.equal(health().status, 'healthy');
  // Missing fields: a device that is only an id still yields its metrics, without crashing.
  sim.setDevicesJson([{ id: '42', name: 'bare.tail.ts.net' }, { name: 'no-id' } as never]);
  await service.collectNow();
  f = await scrape();
  assert.equal(sampleValue(f, 'tailscale_device_count', {}), 1);
  assert.equal(sampleValue(f, 'tailscale_device_online', { device_id: '42' }), 0);
  assert.equal(sampleValue(f, 'tsmetrics_component_errors_total', { component_id: 'tailscale_api', error_type: 'decode' }), 1, 'the entry without an id is counted');
});

test('a 20 MB device list is read and turned into metrics', async (t) => {
  const { sim, service, scrape } = await product(t, { devices: 16_000, deviceServers: false, ephemeralLifetimeMs: 0 });
  const size = JSON.stringify({ devices: sim.apiDevices() }).length;
  assert.ok(size > 20_000_000, `list is ${size} bytes`);
  await service.receivers.get('tailscale_api')?.collectNow();
  assert.equal(sampleValue(await scrape(), 'tailscale_device_count', {}), 16_000);
});

test('OTLP endpoint slow, then 429/500, then accepting again: the pipeline never waits; drops are counted', async (t) => {
  const sim = new TailnetSimulator({ devices: 8 });
  await sim.start();
  const rx = new OtlpReceiver();
  await rx.start();
  const registry = defaultRegistry();
  const config = resolveConfig(
    {
      receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } },
      exporters: { prometheus: {}, otlp: { endpoint: rx.url, timeout: '1s', max_queue_batches: 2 } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['prometheus', 'otlp'] } } },
    },
    registry,
    'faults',
  );
  const service = new PipelineService(registry, config);
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(3000));
    await rx.stop();
    await sim.stop();
  });
  const otlp = service.exporters.get('otlp') as OtlpExporterComponent;
  rx.script.push({ status: 503, retryAfter: '5' }, { status: 429, retryAfter: '5' }, { status: 500 });
  const t0 = Date.now();
  for (let i = 0; i < 5; i++) await service.collectNow();
  assert.ok(Date.now() - t0 < 3000, 'cycles do not wait for the slow endpoint');
  await otlp.flush();
  assert.equal(otlp.stats.sentBatches + otlp.stats.droppedBatches, 5, 'every batch is either delivered or counted as dropped');
  assert.ok(otlp.stats.droppedBatches >= 2);
  await service.collectNow();
  await otlp.flush();
  assert.ok(rx.requests.length >= 1, 'delivery resumes when the endpoint accepts again');
  assert.ok((await renderPrometheus(service)).includes('tailscale_device_count 8'));
});

test('an exception inside a component is contained and counted; the other pipeline goes on', async (t) => {
  const sim = new TailnetSimulator({ devices: 8, deviceServers: false });
  await sim.start();
  const boom: ProcessorFactory<Record<string, never>> = {
    kind: 'processor',
    type: 'boom',
    stability: 'development',
    description: 'Throws on every batch (test).',
    configSchema: defineSchema({}),
    createProcessor: () => ({
      async start() {},
      async shutdown() {},
      process: () => {
        throw new Error('unexpected');
      },
    }),
  };
  const registry = defaultRegistry([boom]);
  const config = resolveConfig(
    {
      receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } },
      processors: { boom: {} },
      exporters: { prometheus: {}, 'prometheus/broken': { path: '/broken' } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['prometheus'] }, 'metrics/broken': { receivers: ['tailscale_api'], processors: ['boom'], exporters: ['prometheus/broken'] } } },
    },
    registry,
    'faults',
  );
  const { logger, lines } = memoryLogger();
  const service = new PipelineService(registry, config, { logger });
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(3000));
    await sim.stop();
  });
  await service.collectNow();
  await service.collectNow();
  const f = families(await renderPrometheus(service));
  assert.equal(sampleValue(f, 'tailscale_device_count', {}), 8);
  assert.equal(sampleValue(f, 'tsmetrics_component_errors_total', { component_id: 'boom', error_type: 'exception' }), 2);
  assert.equal(lines.filter((l) => l.includes('processor failed')).length, 1, 'logged once');
});

test('SIGTERM during operation: the process flushes OTLP and exits 0 within its shutdown deadline', { timeout: 60_000 }, async (t) => {
  const rx = new OtlpReceiver();
  await rx.start();
  // Cleanup runs pass or fail: a leaked server or child would keep this test file alive.
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rx.stop();
  });
  const child = spawn(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'run'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'debug', SCRAPE_INTERVAL: '1h', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: rx.url, OTEL_METRIC_EXPORT_INTERVAL: '60000', TS_LOG_TYPES: 'none' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  // Wait until the demo's three receivers (API, devices, the simulated LocalAPI) have delivered
  // a batch each (they are queued for the 60 s push interval).
  const t0 = Date.now();
  while ((log.match(/collection cycle done/g) ?? []).length < 3) {
    if (Date.now() - t0 > 30_000) throw new Error(`no cycle: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(rx.requests.length, 0, 'nothing pushed before the interval');
  const stopAt = Date.now();
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0);
  assert.ok(Date.now() - stopAt < 12_000, 'within the 10 s shutdown deadline');
  assert.equal(rx.requests.length, 3, 'the queued batches were flushed on shutdown');
});
