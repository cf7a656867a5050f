/**
 * Hostile devices and API records (issue: "no device, API record, client or closed pipe can hurt
 * the rest"): names that collide with ours or each other, families outside the namespace, type
 * conflicts, unbounded names, malformed addresses, a proxy that must not be steered, the
 * exporter's own address, pipelines sharing a receiver and an exporter, staleness markers that
 * must survive processors. Everything speaks the wire over loopback.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import type { PrometheusExporterComponent } from '../exporters/prometheus/prometheus.ts';
import { SelfEndpoints } from '../src/component/types.ts';
import { defaultRegistry } from '../src/components.ts';
import { resolveConfig, type RawServiceConfig } from '../src/config/service.ts';
import { ConfigError } from '../src/errors.ts';
import { PipelineService } from '../src/pipeline/service.ts';
import { ExpositionParseError, parseExposition } from '../receivers/device_metrics/exposition.ts';
import { families, fixture, fixtureDevices, http, memoryLogger, sampleValue, waitFor } from './helpers/index.ts';
import { OtlpReceiver } from './helpers/otlp-receiver.ts';

type ApiDevice = Record<string, unknown>;

/** A tagged, online device record shaped like the fixture's gateway, at `address`. */
function device(id: string, addresses: string[], extra: ApiDevice = {}): ApiDevice {
  const base = { ...(fixtureDevices()[0] as ApiDevice) };
  return { ...base, id, nodeId: `n${id}`, name: `dev-${id}.tail4c8e1a.ts.net`, hostname: `dev-${id}`, addresses, connectedToControl: true, lastSeen: new Date().toISOString(), ...extra };
}

interface Setup {
  sim: TailnetSimulator;
  service: PipelineService;
  exporter: PrometheusExporterComponent;
  lines: string[];
  page: () => Promise<string>;
}

async function setup(t: TestContext, devices: ApiDevice[], dm: Record<string, unknown> = {}, opts: { selfEndpoints?: SelfEndpoints; raw?: (apiUrl: string, key: string, port: number) => RawServiceConfig } = {}): Promise<Setup> {
  const sim = new TailnetSimulator({ devices_json: devices as never });
  await sim.start();
  const { logger, lines } = memoryLogger();
  const registry = defaultRegistry();
  const raw: RawServiceConfig = opts.raw?.(sim.apiUrl, sim.apiKeys[0] as string, sim.devicePort) ?? {
    receivers: {
      tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' },
      device_metrics: { interval: '1h', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s', ...dm },
    },
    exporters: { prometheus: {} },
    service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], exporters: ['prometheus'] } } },
  };
  const service = new PipelineService(registry, resolveConfig(raw, registry, 'test'), { logger, ...(opts.selfEndpoints ? { selfEndpoints: opts.selfEndpoints } : {}) });
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(2000));
    await sim.stop();
  });
  const exporter = service.exporters.get('prometheus') as PrometheusExporterComponent;
  return { sim, service, exporter, lines, page: async () => (await exporter.render()) ?? '' };
}

/** Every sample line of a page parses, and no line repeats a label name (what Prometheus rejects). */
function assertValidPage(text: string): void {
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const open = line.indexOf('{');
    if (open < 0) continue;
    const names = [...line.slice(open).matchAll(/[{,]([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((m) => m[1]);
    assert.equal(new Set(names).size, names.length, `duplicate label name on: ${line.slice(0, 200)}`);
  }
  assert.doesNotThrow(() => parseExposition(text), ExpositionParseError);
}

const GOOD = 'good0001';
const EVIL = 'evil0001';

test('a device label that prints as one of ours, or two labels that print alike, become exported_*: OTLP attributes and /metrics agree', async (t) => {
  const { sim, service, exporter, page } = await setup(t, [device(GOOD, ['127.0.2.1']), device(EVIL, ['127.0.2.2'])]);
  sim.setDeviceFault(GOOD, { kind: 'body', body: fixture('client-metrics.txt') });
  sim.setDeviceFault(EVIL, {
    kind: 'body',
    body: '# TYPE tailscaled_x gauge\ntailscaled_x{"device.id"="spoof1",device_id="spoof2","a.b"="dot",a_b="under","tailnet"="t","device__name"="dn","1st"="d"} 7\n',
  });
  await service.collectNow();
  const text = await page();
  assertValidPage(text);
  const f = families(text);
  const s = f.get('tailscaled_x')?.samples[0];
  assert.ok(s, 'the hostile family is still served, under safe names');
  assert.equal(s.labels.device_id, EVIL, 'our device_id is the real one');
  // Sorted original names: "1st" < "a.b" < "a_b" < "device.id" < "device__name" < "device_id" < "tailnet".
  assert.deepEqual(
    { ...s.labels },
    { device_id: EVIL, device_name: `dev-${EVIL}.tail4c8e1a.ts.net`, _1st: 'd', a_b: 'dot', exported_a_b: 'under', exported_device_id: 'spoof1', exported_device_name: 'dn', exported_exported_device_id: 'spoof2', exported_tailnet: 't' },
  );
  // The OpenTelemetry attributes carry the same names (what OTLP sends).
  const m = exporter.snapshot()?.scopeMetrics.flatMap((x) => x.metrics).find((x) => x.descriptor.name === 'tailscaled_x');
  assert.deepEqual(Object.keys(m?.dataPoints[0]?.attributes ?? {}).sort(), Object.keys(s.labels).sort());
  // The good device is untouched.
  assert.equal(sampleValue(f, 'tailscaled_inbound_dropped_packets_total', { device_id: GOOD, reason: 'acl' }), 18342);
});

test('devices can only write their own namespace: tailscale_* and tsmetrics_* from a device are dropped and counted', async (t) => {
  const { sim, service, page } = await setup(t, [device(GOOD, ['127.0.2.3']), device(EVIL, ['127.0.2.4'])]);
  sim.setDeviceFault(GOOD, { kind: 'body', body: fixture('client-metrics.txt') });
  sim.setDeviceFault(EVIL, {
    kind: 'body',
    body: '# TYPE tailscale_device_online histogram\ntailscale_device_online_bucket{le="+Inf"} 1\ntailscale_device_online_count 1\ntailscale_device_online_sum 1\n# TYPE tsmetrics_source_up counter\ntsmetrics_source_up 5\n# TYPE tailscaled_ok gauge\ntailscaled_ok 1\n',
  });
  await service.collectNow();
  const text = await page();
  assertValidPage(text);
  const f = families(text);
  assert.equal(f.get('tailscale_device_online')?.type, 'gauge', 'the API family keeps its type');
  assert.equal(sampleValue(f, 'tailscale_device_online', { device_id: GOOD }), 1, 'and its values');
  assert.ok(!(f.get('tailscale_device_online')?.samples ?? []).some((x) => x.labels.le !== undefined));
  assert.equal(f.get('tsmetrics_source_up')?.type, 'gauge');
  assert.equal(sampleValue(f, 'tailscaled_ok', { device_id: EVIL }), 1, 'the device’s own namespace still works');
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: EVIL, kind: 'namespace' }), 1);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: EVIL }), 1, 'the scrape itself succeeded');
});

test('a family whose type differs between devices keeps one type (the majority) across cycles; the odd device is dropped and counted', async (t) => {
  const honest = ['h001', 'h002', 'h003'];
  const { sim, service, page, lines } = await setup(t, [...honest.map((id, i) => device(id, [`127.0.2.${10 + i}`])), device(EVIL, ['127.0.2.20'])]);
  for (const id of honest) sim.setDeviceFault(id, { kind: 'body', body: '# HELP tailscaled_c_total Honest help.\n# TYPE tailscaled_c_total counter\ntailscaled_c_total 10\n' });
  sim.setDeviceFault(EVIL, { kind: 'body', body: '# HELP tailscaled_c_total Evil help.\n# TYPE tailscaled_c_total gauge\ntailscaled_c_total 99\n' });
  const seen: Array<{ type: string | undefined; help: string | undefined; evil: number | undefined; honest: number }> = [];
  for (let cycle = 0; cycle < 4; cycle++) {
    await service.collectNow();
    const text = await page();
    assertValidPage(text);
    const f = families(text);
    const fam = f.get('tailscaled_c_total');
    seen.push({ type: fam?.type, help: fam?.help, evil: sampleValue(f, 'tailscaled_c_total', { device_id: EVIL }), honest: honest.filter((id) => sampleValue(f, 'tailscaled_c_total', { device_id: id }) === 10).length });
  }
  // Whoever answered first in cycle 1, from cycle 2 on the majority type holds and never flaps.
  for (const s of seen.slice(1)) assert.deepEqual(s, { type: 'counter', help: 'Honest help.', evil: undefined, honest: 3 });
  const f = families(await page());
  assert.ok((sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: EVIL, kind: 'type_conflict' }) ?? 0) >= 3);
  // Counted every cycle, logged once.
  assert.equal(lines.filter((l) => l.includes('device samples left out') && l.includes(`dev-${EVIL}`)).length, 1);
});

test('names beyond their bounds fail that device alone (kind "limit"); new long names every cycle leave the heap flat', { timeout: 120_000 }, async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { sim, service, page } = await setup(t, [device(GOOD, ['127.0.2.30']), device(EVIL, ['127.0.2.31']), device('huge0001', ['127.0.2.32'])], { max_body_size: 16 * 1024 * 1024 });
  sim.setDeviceFault(GOOD, { kind: 'body', body: fixture('client-metrics.txt') });
  sim.setDeviceFault('huge0001', { kind: 'body', body: `tailscaled_x{${'l'.repeat(9 * 1024 * 1024)}="v"} 1\n` });
  let n = 0;
  /** New label names, label values and family names every cycle, all within the bounds. */
  const churn = (): string => {
    const lines: string[] = [];
    for (let i = 0; i < 300; i++) {
      n++;
      const ln = `l${n}_${'x'.repeat(100)}`;
      lines.push(`tailscaled_churn_${n}_${'y'.repeat(200)}{${ln}="${'v'.repeat(5000)}${n}"} 1`);
    }
    return `${lines.join('\n')}\n`;
  };
  const heap: number[] = [];
  for (let cycle = 0; cycle < 40; cycle++) {
    sim.setDeviceFault(EVIL, { kind: 'body', body: churn() });
    await service.collectNow();
    await page();
    if (cycle === 10 || cycle === 39) {
      gc();
      gc();
      heap.push(process.memoryUsage().heapUsed);
    }
  }
  const f = families(await page());
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: 'huge0001' }), 0);
  assert.ok((sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: 'huge0001', kind: 'limit' }) ?? 0) >= 1);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: GOOD }), 1);
  assert.equal(sampleValue(f, 'tailscaled_inbound_dropped_packets_total', { device_id: GOOD, reason: 'acl' }), 18342);
  const [early, late] = heap as [number, number];
  // 29 cycles × 300 new families with ~5 KB of new strings each (~45 MB in all) went through the
  // caches between the two readings; bounded caches keep the difference small.
  assert.ok(late - early < 12 * 1024 * 1024, `heap after GC grew ${((late - early) / 1e6).toFixed(1)} MB (cycle 10: ${(early / 1e6).toFixed(1)} MB, cycle 39: ${(late / 1e6).toFixed(1)} MB)`);
});

test('malformed addresses and names in API records fail only their device, as not_allowed, and are never dialed', async (t) => {
  // The first address is outside the allowed networks (and is what the simulator would bind);
  // the hostile second one is what an unstrict parser would have taken.
  const outside = '2001:db8::1';
  const bad = [
    device('zone0001', [outside, '127.0.2.40%lo']),
    device('brkt0001', [outside, '[127.0.2.41]']),
    device('port0001', [outside, '127.0.2.42:80']),
    device('user0001', [outside, '127.0.2.43@127.0.2.44']),
    device('path0001', [outside, '127.0.2.46/metrics?x=']),
    device('long0001', [outside, `127.0.2.47${'1'.repeat(10_000)}`]),
  ];
  const { service, page } = await setup(t, [device(GOOD, ['127.0.2.45']), ...bad]);
  await service.collectNow();
  const f = families(await page());
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: GOOD }), 1, 'the good device is scraped in the same cycle');
  for (const d of bad) {
    assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: d.id as string }), 0, `${String(d.id)} is down`);
    assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: d.id as string, kind: 'not_allowed' }), 1, `${String(d.id)} is not_allowed`);
  }
});

test('MagicDNS names with brackets, ports, paths or userinfo are refused; a plain name is resolved and checked', async (t) => {
  const names = ['[127.0.2.50]', 'localhost:80', 'localhost/x', 'u@localhost', 'a..b', 'x'.repeat(300)];
  const devs = names.map((n, i) => device(`dns${i}`, ['127.0.2.51'], { name: n }));
  const { service, page } = await setup(t, [device(GOOD, ['127.0.2.52'], { name: 'localhost.' }), ...devs], { address: 'magicdns' });
  await service.collectNow();
  const f = families(await page());
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: GOOD, kind: 'not_allowed' }), undefined, 'localhost resolves inside 127.0.0.0/8');
  for (const d of devs) assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: d.id as string, kind: 'not_allowed' }), 1, `${String(d.name).slice(0, 40)} refused`);
});

test('through a proxy the allowed-CIDR rule holds: a record like 127.0.2.60%@10.0.0.1 is never sent to the proxy', async (t) => {
  // A recording CONNECT proxy that only ever tunnels to loopback (it must never reach out).
  const connects: string[] = [];
  const proxy: Server = createHttpServer();
  // Tunnels are torn down with the proxy: devices keep idle connections open (as tailscaled's
  // server does), so a tunnel outlives the test unless its sockets are ended here.
  const tunnels = new Set<{ destroy(): void }>();
  proxy.on('connect', (req, socket) => {
    tunnels.add(socket);
    socket.on('close', () => tunnels.delete(socket));
    const target = String(req.url);
    connects.push(target);
    const [host, port] = [target.slice(0, target.lastIndexOf(':')).replace(/^\[|\]$/g, ''), Number(target.slice(target.lastIndexOf(':') + 1))];
    if (!host.startsWith('127.')) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const up = connect(port, host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const s of tunnels) s.destroy();
        proxy.close(() => r());
      }),
  );
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const { sim, service, page } = await setup(t, [device(GOOD, ['127.0.2.61']), device(EVIL, ['2001:db8::2', '127.0.2.60%@10.0.0.1', '127.0.2.60%25@10.0.0.1'])], { proxy_url: proxyUrl });
  sim.setDeviceFault(GOOD, { kind: 'body', body: fixture('client-metrics.txt') });
  await service.collectNow();
  const f = families(await page());
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: GOOD }), 1, 'the good device is scraped through the proxy');
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: EVIL, kind: 'not_allowed' }), 1);
  assert.deepEqual(connects, [`127.0.2.61:${sim.devicePort}`], 'only the checked address reached the proxy');
});

test('the exporter never scrapes itself: a device listed at its own listen address and port is not dialed', async (t) => {
  let requests = 0;
  const self = createHttpServer((_req, res) => {
    requests++;
    res.end('tailscaled_self 1\n');
  });
  await new Promise<void>((r) => self.listen(0, '127.0.2.70', () => r()));
  t.after(() => new Promise<void>((r) => self.close(() => r())));
  const port = (self.address() as AddressInfo).port;
  const endpoints = new SelfEndpoints();
  endpoints.add('127.0.2.70', port);
  const { service, page } = await setup(t, [device(EVIL, ['127.0.2.70'])], { port }, { selfEndpoints: endpoints });
  await service.collectNow();
  const f = families(await page());
  assert.equal(requests, 0, 'no request reached our own server');
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: EVIL, kind: 'not_allowed' }), 1);
  // A wildcard bind covers every loopback address too.
  const wild = new SelfEndpoints();
  wild.add('0.0.0.0', port);
  assert.equal(wild.isSelf('127.0.2.70', port, () => new Set()), true);
  assert.equal(wild.isSelf('127.0.2.70', port + 1, () => new Set()), false);
});

test('two pipelines sharing a receiver and one prometheus exporter each keep their data (no overwrite, no duplicate series)', async (t) => {
  const devs = [device('pa01', ['127.0.2.80'], { name: 'alpha-1.tail4c8e1a.ts.net' }), device('pb01', ['127.0.2.81'], { name: 'beta-1.tail4c8e1a.ts.net' }), device('both', ['127.0.2.82'], { name: 'alpha-beta.tail4c8e1a.ts.net' })];
  const { sim, service, page } = await setup(t, devs, {}, {
    raw: (apiUrl, key, port) => ({
      receivers: {
        tailscale_api: { api_url: apiUrl, api_key: key, interval: '1h' },
        device_metrics: { interval: '1h', port, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s' },
      },
      processors: { 'device_filter/alpha': { include_devices: ['alpha*'] }, 'device_filter/beta': { include_devices: ['*beta*'] } },
      exporters: { prometheus: {} },
      service: {
        pipelines: {
          'metrics/alpha': { receivers: ['tailscale_api', 'device_metrics'], processors: ['device_filter/alpha'], exporters: ['prometheus'] },
          'metrics/beta': { receivers: ['tailscale_api', 'device_metrics'], processors: ['device_filter/beta'], exporters: ['prometheus'] },
        },
      },
    }),
  });
  for (const d of devs) sim.setDeviceFault(d.id as string, { kind: 'body', body: fixture('client-metrics.txt') });
  await service.collectNow();
  const text = await page();
  assertValidPage(text);
  const f = families(text);
  for (const id of ['pa01', 'pb01', 'both']) {
    assert.equal(sampleValue(f, 'tailscaled_inbound_dropped_packets_total', { device_id: id, reason: 'acl' }), 18342, `${id} is served`);
    assert.equal(f.get('tsmetrics_device_scrape_up')?.samples.filter((s) => s.labels.device_id === id).length, 1, `${id} appears once`);
  }
});

test('staleness markers travel on the point: a processor that copies points after staleness keeps them markers (OTLP flag 1, absent from /metrics)', async (t) => {
  const rx = new OtlpReceiver();
  await rx.start();
  t.after(() => rx.stop());
  const devs = [device(GOOD, ['127.0.2.90']), device('gone0001', ['127.0.2.91'])];
  const { sim, service, page } = await setup(t, devs, {}, {
    raw: (apiUrl, key, port) => ({
      receivers: {
        tailscale_api: { api_url: apiUrl, api_key: key, interval: '1h' },
        device_metrics: { interval: '1h', port, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s' },
      },
      processors: { staleness: { grace_intervals: 0 }, relabel: { rules: [{ target_label: 'env', replacement: 'lab' }] } },
      exporters: { prometheus: {}, otlp: { endpoint: rx.url } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: ['staleness', 'relabel'], exporters: ['prometheus', 'otlp'] } } },
    }),
  });
  for (const d of devs) sim.setDeviceFault(d.id as string, { kind: 'body', body: '# TYPE tailscaled_v gauge\ntailscaled_v 1\n' });
  await service.collectNow();
  sim.removeDevice('gone0001');
  await service.collectNow();
  await (service.exporters.get('otlp') as unknown as { flush(): Promise<void> }).flush();
  const pts = rx.points('tailscaled_v').filter((p) => p.attributes.device_id === 'gone0001');
  const markers = pts.filter((p) => p.flags === 1);
  assert.equal(markers.length, 1, 'exactly one NO_RECORDED_VALUE point for the ended series');
  assert.equal(markers[0]?.attributes.env, 'lab', 'the marker went through relabel like any point');
  assert.equal(pts.filter((p) => p.flags === 0).length, 1, 'and only the first cycle carried a real sample');
  const f = families(await page());
  assert.equal(sampleValue(f, 'tailscaled_v', { device_id: 'gone0001' }), undefined, 'the ended series is not served');
  assert.equal(sampleValue(f, 'tailscaled_v', { device_id: GOOD, env: 'lab' }), 1);
});

test('a processor that rewrites labels before staleness is refused at validation, naming the pipeline and both processors', () => {
  const raw: RawServiceConfig = {
    receivers: { tailscale_api: { api_key: 'tskey-api-x' } },
    processors: { relabel: { rules: [{ target_label: 'a', replacement: 'b' }] }, staleness: {} },
    exporters: { prometheus: {} },
    service: { pipelines: { 'metrics/p': { receivers: ['tailscale_api'], processors: ['relabel', 'staleness'], exporters: ['prometheus'] } } },
  };
  assert.throws(
    () => resolveConfig(raw, defaultRegistry(), 'f.yaml'),
    (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path === 'service.pipelines.metrics/p.processors' && /"relabel".*after "staleness"/.test(p.message)),
  );
  // Relabel without rules changes nothing, and after staleness any rules are fine.
  resolveConfig({ ...raw, processors: { relabel: { rules: [] }, staleness: {} } }, defaultRegistry(), 'f.yaml');
  resolveConfig({ ...raw, service: { pipelines: { 'metrics/p': { receivers: ['tailscale_api'], processors: ['staleness', 'relabel'], exporters: ['prometheus'] } } } }, defaultRegistry(), 'f.yaml');
});

test('a real Prometheus scrapes a page fed by hostile devices: up is 1 and the honest series are stored', { timeout: 120_000 }, async (t) => {
  const { sim, service, exporter } = await setup(t, [device(GOOD, ['127.0.2.100']), device(EVIL, ['127.0.2.101'])]);
  sim.setDeviceFault(GOOD, { kind: 'body', body: fixture('client-metrics.txt') });
  sim.setDeviceFault(EVIL, {
    kind: 'body',
    body: '# TYPE tailscaled_inbound_bytes_total gauge\ntailscaled_inbound_bytes_total{"device.id"="x",device_id="y","path"="p","a.b"="1",a_b="2"} 1\n# TYPE tailscale_device_online histogram\ntailscale_device_online_bucket{le="+Inf"} 1\ntailscale_device_online_count 1\n# TYPE "tailscaled_é" counter\n{"tailscaled_é","le"="x"} 3\n',
  });
  await service.collectNow();
  const route = service.routes().find((r) => r.path === '/metrics');
  assert.ok(route);
  const srv = createHttpServer((req, res) => void route.handle(req, res));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  const target = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'tsmetrics-hostile-prom-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tsmetrics\n    static_configs:\n      - targets: ['${target}']\n`);
  const port = await new Promise<number>((resolve) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((r) => prom.once('exit', () => r()));
  t.after(async () => {
    prom.kill('SIGTERM');
    await exited;
  });
  const query = async (q: string) => JSON.parse((await http(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).body) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  const up = await waitFor(async () => (await query('up{job="tsmetrics"}')).data.result[0], 60_000, 250).catch((err: unknown) => {
    throw new Error(`Prometheus never scraped: ${String(err)}\n${log.slice(-2000)}`);
  });
  assert.ok(up);
  assert.equal(up.value[1], '1', `Prometheus accepted the page (exporter rendered ${(await exporter.render())?.length} chars)`);
  const honest = await query(`tailscaled_inbound_dropped_packets_total{device_id="${GOOD}",reason="acl"}`);
  assert.equal(honest.data.result[0]?.value[1], '18342');
  const online = await query(`tailscale_device_online{device_id="${GOOD}"}`);
  assert.equal(online.data.result[0]?.value[1], '1', 'the API family was not shadowed');
});

test('a gzip stream of empty deflate blocks is cut by its compressed size; the other devices are unaffected', async (t) => {
  // The evil device's first address is not loopback, so the simulator leaves its second one
  // (the one dialed) to the hostile server below.
  const { sim, service, page } = await setup(t, [device(GOOD, ['127.0.3.1']), device(EVIL, ['2001:db8::9', '127.0.3.2'])], { max_body_size: 256 * 1024, timeout: '5s' });
  sim.setDeviceFault(GOOD, { kind: 'body', body: fixture('client-metrics.txt') });
  // A gzip header, then empty stored blocks (00 00 00 ff ff) that inflate to nothing, forever.
  const header = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);
  const empty = Buffer.alloc(64 * 1000);
  for (let i = 0; i + 5 <= empty.length; i += 5) empty.set([0, 0, 0, 0xff, 0xff], i);
  let sent = 0;
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    res.write(header);
    const pump = (): void => {
      while (!res.destroyed && sent < 64 * 1024 * 1024 && res.write(empty)) sent += empty.length;
      if (!res.destroyed && sent < 64 * 1024 * 1024) res.once('drain', pump);
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(sim.devicePort, '127.0.3.2', () => r()));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  await service.collectNow();
  const f = families(await page());
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: EVIL, kind: 'too_large' }), 1);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_up', { device_id: GOOD }), 1);
  assert.ok(sent < 8 * 1024 * 1024, `the stream was cut early (${sent} bytes sent, limit 256 KiB)`);
});

test('one device cannot fill the shared family registry: past its share its families are dropped, an honest device keeps all of its own', async (t) => {
  const { sim, service, page } = await setup(t, [device(EVIL, ['127.0.3.10']), device(GOOD, ['127.0.3.11'])]);
  let flood = '';
  for (let i = 0; i < 5_000; i++) flood += `tailscaled_z${i} 1\n`;
  sim.setDeviceFault(EVIL, { kind: 'body', body: flood });
  sim.setDeviceFault(GOOD, { kind: 'body', body: fixture('client-metrics.txt') });
  for (let i = 0; i < 3; i++) await service.collectNow();
  const f = families(await page());
  assert.equal(sampleValue(f, 'tailscaled_inbound_dropped_packets_total', { device_id: GOOD, reason: 'acl' }), 18342);
  assert.equal([...f.keys()].filter((n) => n.startsWith('tailscaled_z')).length, 500, 'the flooding device got its share (max_families) and no more');
  assert.ok((sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: EVIL, kind: 'limit' }) ?? 0) >= 1);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: GOOD, kind: 'limit' }), undefined);
});

test('histograms keep their _sum and _count; tailscaled_clientmetric_* is reserved for the local node; IPv4-mapped addresses of ourselves are ourselves', async (t) => {
  const { sim, service, page } = await setup(t, [device(GOOD, ['127.0.3.20'])]);
  sim.setDeviceFault(GOOD, {
    kind: 'body',
    body: '# TYPE tailscaled_h histogram\ntailscaled_h_bucket{p="x",le="1"} 3\ntailscaled_h_bucket{p="x",le="2"} 5\ntailscaled_h_bucket{p="x",le="+Inf"} 6\ntailscaled_h_sum{p="x"} 2.5\ntailscaled_h_count{p="x"} 7\n# TYPE tailscaled_clientmetric_x gauge\ntailscaled_clientmetric_x 1\n',
  });
  await service.collectNow();
  const f = families(await page());
  const part = (name: string, match: Record<string, string>): number | undefined => f.get('tailscaled_h')?.samples.find((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v))?.value;
  assert.equal(part('tailscaled_h_sum', { device_id: GOOD, p: 'x' }), 2.5);
  assert.equal(part('tailscaled_h_count', { device_id: GOOD, p: 'x' }), 7);
  assert.equal(part('tailscaled_h_bucket', { device_id: GOOD, p: 'x', le: '2' }), 5);
  assert.equal(f.get('tailscaled_clientmetric_x'), undefined);
  assert.equal(sampleValue(f, 'tsmetrics_device_scrape_errors_total', { device_id: GOOD, kind: 'namespace' }), 1);
  const self = new SelfEndpoints();
  self.add('127.0.0.1', 9100);
  for (const a of ['::ffff:127.0.0.1', '::ffff:7f00:1', '127.0.0.1']) assert.equal(self.isSelf(a, 9100, () => new Set()), true, a);
  const wild = new SelfEndpoints();
  wild.add('0.0.0.0', 9100);
  assert.equal(wild.isSelf('::ffff:7f00:5', 9100, () => new Set()), true);
  assert.equal(wild.isSelf('::ffff:7f00:5', 9101, () => new Set()), false);
});
