/**
 * HTTP service discovery (`GET /sd/devices`, issue #19): the device_metrics receiver's own
 * targets as a Prometheus `http_sd_configs` document. A real Prometheus discovers the simulated
 * devices through it, relabels the meta labels and scrapes them; the selection is the scrape's
 * selection (tag, online, authorized, allowed networks, device_filter, shards); every label and
 * the document itself are bounded.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTsmetrics } from '../src/app.ts';
import { defaultRegistry } from '../src/components.ts';
import { resolveConfig, type RawServiceConfig } from '../src/config/service.ts';
import { ConfigError } from '../src/errors.ts';
import { HttpServer } from '../src/server/http.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { buildService, families, fixtureDevices, http, memoryLogger, renderPrometheus, sampleValue, waitFor } from './helpers/index.ts';
import { freePort, requireTool, stopChild, tempDir } from './helpers/system.ts';

type ApiDevice = Record<string, unknown>;
interface Group {
  targets: string[];
  labels: Record<string, string>;
}

const TOKEN = 'sd-test-token';

/** A tagged, online, authorized device record shaped like the fixture's gateway. */
function device(id: string, addresses: string[], extra: ApiDevice = {}): ApiDevice {
  const base = { ...(fixtureDevices()[0] as ApiDevice) };
  return { ...base, id, nodeId: `n${id}`, name: `dev-${id}.tail4c8e1a.ts.net`, hostname: `dev-${id}`, addresses, tags: ['tag:exporter'], connectedToControl: true, authorized: true, isExternal: false, lastSeen: new Date().toISOString(), ...extra };
}

interface Setup {
  sim: TailnetSimulator;
  url: string;
  lines: string[];
  collect: () => Promise<void>;
  /** The device ids the receiver scraped in its last cycle (its `tsmetrics_device_scrape_up` series). */
  scraped: () => Promise<Set<string>>;
  sd: (headers?: Record<string, string>) => Promise<{ status: number; type: string; groups: Group[]; body: string }>;
}

/** The simulator, the API and device receivers (plus `processors`) and the HTTP server with a token. */
async function setup(t: TestContext, devices: ApiDevice[], dm: Record<string, unknown> = {}, opts: { processors?: Record<string, unknown>; apiDown?: boolean; token?: string; tailnet?: string } = {}): Promise<Setup> {
  const sim = new TailnetSimulator({ devices_json: devices as never });
  await sim.start();
  if (opts.apiDown) sim.setApiFault({ kind: 'status', status: 500 });
  const { logger, lines } = memoryLogger();
  const raw: RawServiceConfig = {
    receivers: {
      tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h', max_retries: 0, ...(opts.tailnet ? { tailnet: opts.tailnet } : {}) },
      device_metrics: { interval: '1h', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8', '::1/128'], timeout: '2s', ...dm },
    },
    ...(opts.processors ? { processors: opts.processors } : {}),
    exporters: { prometheus: {} },
    service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], ...(opts.processors ? { processors: Object.keys(opts.processors) } : {}), exporters: ['prometheus'] } } },
  };
  const service = buildService(raw, { logger });
  const server = new HttpServer({ service, address: '127.0.0.1', port: 0, metricsToken: opts.token ?? TOKEN, maxConnections: 32, version: 't', logger, debugConfig: () => ({}) });
  const addr = await server.listen();
  t.after(async () => {
    await server.close(AbortSignal.timeout(1000));
    await service.shutdown(AbortSignal.timeout(2000));
    await sim.stop();
  });
  await service.collectNow();
  const url = `http://127.0.0.1:${addr.port}`;
  const path = ((dm.service_discovery as { path?: string } | undefined)?.path) ?? '/sd/devices';
  return {
    sim,
    url,
    lines,
    collect: () => service.collectNow(),
    scraped: async () => {
      const f = families(await renderPrometheus(service));
      return new Set((f.get('tsmetrics_device_scrape_up')?.samples ?? []).map((s) => s.labels.device_id as string));
    },
    sd: async (headers = { authorization: `Bearer ${opts.token ?? TOKEN}` }) => {
      const res = await http(`${url}${path}`, { headers });
      return { status: res.status, type: String(res.headers['content-type']), groups: res.status === 200 ? (JSON.parse(res.body) as Group[]) : [], body: res.body };
    },
  };
}

const ids = (groups: Group[]): Set<string> => new Set(groups.map((g) => g.labels.__meta_tailscale_device_id as string));

test('a real Prometheus discovers the simulated devices through /sd/devices (with the bearer token), relabels meta labels into target labels and scrapes every device', { timeout: 180_000 }, async (t) => {
  requireTool('prometheus');
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'error', METRICS_TOKEN: TOKEN }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  await waitFor(async () => (await http(`${running.url}/ready`)).status === 200, 30_000);
  const sdRes = await http(`${running.url}/sd/devices`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(sdRes.status, 200);
  const groups = JSON.parse(sdRes.body) as Group[];
  assert.ok(groups.length >= 3, `the demo tailnet has scrapeable devices (${groups.length})`);
  // The document lists exactly the devices the receiver scrapes.
  const page = families((await http(`${running.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).body);
  assert.deepEqual(ids(groups), new Set((page.get('tsmetrics_device_scrape_up')?.samples ?? []).map((s) => s.labels.device_id)));

  const dir = tempDir('tsmetrics-http-sd-');
  const port = await freePort();
  writeFileSync(
    join(dir.path, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: tailscale-devices',
      '    http_sd_configs:',
      `      - url: ${running.url}/sd/devices`,
      '        refresh_interval: 1s',
      // Prometheus 2.x leaves the scheme out of http_sd's header unless `type` is written.
      '        authorization:',
      '          type: Bearer',
      `          credentials: ${TOKEN}`,
      '    relabel_configs:',
      '      - source_labels: [__meta_tailscale_device_tags]',
      '        regex: ".*,tag:exporter,.*"',
      '        action: keep',
      '      - source_labels: [__meta_tailscale_device_hostname]',
      '        target_label: host',
      '      - source_labels: [__meta_tailscale_device_os, __meta_tailscale_device_tailnet]',
      '        separator: "@"',
      '        target_label: where',
      '',
    ].join('\n'),
  );
  const prom = spawn('prometheus', [`--config.file=${join(dir.path, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir.path, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr.on('data', (c: Buffer) => (log += c.toString()));
  t.after(() => stopChild(prom));
  t.after(() => dir.remove());
  const api = async <T>(path: string): Promise<T> => (JSON.parse((await http(`http://127.0.0.1:${port}${path}`)).body) as { data: T }).data;
  interface Target {
    discoveredLabels: Record<string, string>;
    labels: Record<string, string>;
    scrapePool: string;
    health: string;
  }
  const active = await waitFor(
    async () => {
      const d = await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active');
      const mine = d.activeTargets.filter((x) => x.scrapePool === 'tailscale-devices');
      if (mine.length !== groups.length || mine.some((x) => x.health === 'unknown')) throw new Error(`${mine.length} targets so far`);
      return mine;
    },
    90_000,
    250,
  ).catch((err: unknown) => {
    throw new Error(`Prometheus did not discover the devices: ${String(err)}\n${log.slice(-3000)}`);
  });
  const byId = new Map(groups.map((g) => [g.labels.__meta_tailscale_device_id, g]));
  for (const x of active) {
    const g = byId.get(x.discoveredLabels.__meta_tailscale_device_id);
    assert.ok(g, `Prometheus' target ${x.labels.instance} is one we listed`);
    assert.equal(x.labels.instance, g.targets[0], 'the address is the device’s client-metrics address');
    assert.equal(x.labels.host, g.labels.__meta_tailscale_device_hostname, 'a meta label relabeled into a target label');
    assert.equal(x.labels.where, `${g.labels.__meta_tailscale_device_os}@${g.labels.__meta_tailscale_device_tailnet}`);
    assert.ok(!Object.keys(x.labels).some((k) => k.startsWith('__meta_')), 'meta labels are dropped after relabeling, as Prometheus does');
  }
  // Every discovered device was scraped and its client metrics stored under the relabeled label.
  const hosts = new Set(groups.map((g) => g.labels.__meta_tailscale_device_hostname));
  await waitFor(
    async () => {
      const r = await api<{ result: Array<{ metric: Record<string, string> }> }>(`/api/v1/query?query=${encodeURIComponent('count by (host) (last_over_time({job="tailscale-devices",__name__=~"tailscaled_.+"}[5m]))')}`);
      const got = new Set(r.result.map((s) => s.metric.host));
      if (got.size !== hosts.size) throw new Error(`client metrics from ${got.size} of ${hosts.size} hosts`);
      assert.deepEqual(got, hosts);
      return true;
    },
    60_000,
    250,
  );
  const up = await api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent('max_over_time(up{job="tailscale-devices"}[5m])')}`);
  assert.equal(up.result.length, groups.length);
  assert.ok(up.result.every((s) => s.value[1] === '1'), 'each device answered a scrape');
});

test('the document lists exactly the devices the receiver scrapes: untagged, offline, unauthorized, shared-in, outside allowed networks and filtered-out devices are absent', async (t) => {
  const devices = [
    device('a1', ['127.0.4.1']),
    device('b2', ['127.0.4.2'], { tags: ['tag:other'] }),
    device('c3', ['127.0.4.3'], { connectedToControl: false }),
    device('d4', ['2001:db8::4']),
    device('e5', ['127.0.4.5'], { authorized: false }),
    device('f6', ['127.0.4.6'], { name: 'filtered-f6.tail4c8e1a.ts.net', hostname: 'filtered-f6' }),
    device('g7', ['::1']),
    device('h8', ['127.0.4.8'], { isExternal: true }),
    device('i9', ['100.64.0.9']),
  ];
  const s = await setup(t, devices, {}, { processors: { device_filter: { exclude_devices: ['filtered-*'] } } });
  const res = await s.sd();
  assert.equal(res.status, 200);
  assert.equal(res.type, 'application/json');
  assert.deepEqual(ids(res.groups), new Set(['a1', 'g7']));
  // The scrape targeted the same devices (d4 and i9 have no address inside allowed_cidrs).
  const scraped = await s.scraped();
  for (const id of ['a1', 'g7']) assert.ok(scraped.has(id), `${id} was targeted by the scrape`);
  for (const id of ['b2', 'c3', 'e5', 'f6', 'h8']) assert.ok(!scraped.has(id), `${id} was not targeted`);
  assert.deepEqual(res.groups.find((g) => g.labels.__meta_tailscale_device_id === 'g7')?.targets, [`[::1]:${s.sim.devicePort}`], 'IPv6 in brackets');
  assert.deepEqual(res.groups.find((g) => g.labels.__meta_tailscale_device_id === 'a1')?.targets, [`127.0.4.1:${s.sim.devicePort}`]);
});

test('shards: each replica lists its own shard of the devices, the shards together list every device once', async (t) => {
  const devices = Array.from({ length: 12 }, (_, i) => device(`s${i}`, [`127.0.5.${i + 1}`]));
  const shard0 = await setup(t, devices, { shard_count: 2, shard_index: 0 });
  const shard1 = await setup(t, devices, { shard_count: 2, shard_index: 1 });
  const a = ids((await shard0.sd()).groups);
  const b = ids((await shard1.sd()).groups);
  assert.ok(a.size > 0 && b.size > 0, `both shards have devices (${a.size}, ${b.size})`);
  assert.equal(a.size + b.size, 12);
  assert.deepEqual(new Set([...a, ...b]).size, 12);
  assert.deepEqual(a, await shard0.scraped(), 'shard 0 lists what shard 0 scrapes');
  assert.deepEqual(b, await shard1.scraped(), 'shard 1 lists what shard 1 scrapes');
});

test('meta labels: every field of the device, tags surrounded by commas, addresses comma-joined, __metrics_path__ when the path is not /metrics', async (t) => {
  const s = await setup(t, [device('m1', ['127.0.6.1', 'fd7a:115c:a1e0::1'], { os: 'linux', user: 'alice@example.com', tags: ['tag:exporter', 'tag:prod'] })], { path: '/client-metrics' }, { tailnet: 'example.com' });
  const [g] = (await s.sd()).groups;
  assert.deepEqual(g, {
    targets: [`127.0.6.1:${s.sim.devicePort}`],
    labels: {
      __meta_tailscale_device_id: 'm1',
      __meta_tailscale_device_name: 'dev-m1.tail4c8e1a.ts.net',
      __meta_tailscale_device_hostname: 'dev-m1',
      __meta_tailscale_device_os: 'linux',
      __meta_tailscale_device_user: 'alice@example.com',
      __meta_tailscale_device_tags: ',tag:exporter,tag:prod,',
      __meta_tailscale_device_online: 'true',
      __meta_tailscale_device_authorized: 'true',
      __meta_tailscale_device_tailnet: 'example.com',
      __meta_tailscale_device_addresses: '127.0.6.1,fd7a:115c:a1e0::1',
      __metrics_path__: '/client-metrics',
    },
  });
  // With the default path there is no __metrics_path__ (Prometheus' default is /metrics), and
  // the API's alias for "the credential's own tailnet" ("-") names no tailnet.
  const d = await setup(t, [device('m2', ['127.0.6.2'])]);
  const labels = (await d.sd()).groups[0]?.labels ?? {};
  assert.equal(labels.__metrics_path__, undefined);
  assert.equal(labels.__meta_tailscale_device_tailnet, undefined);
  assert.equal(labels.__meta_tailscale_device_id, 'm2');
});

test('before the first inventory the answer is [] (no targets), and the last good inventory keeps being served when the API fails', async (t) => {
  const s = await setup(t, [device('n1', ['127.0.7.1'])], {}, { apiDown: true });
  const res = await s.sd();
  assert.equal(res.status, 200);
  assert.equal(res.type, 'application/json');
  assert.equal(res.body.trim(), '[]');
  s.sim.setApiFault(undefined);
  await s.collect();
  assert.deepEqual(ids((await s.sd()).groups), new Set(['n1']));
  s.sim.setApiFault({ kind: 'status', status: 500 });
  await s.collect();
  assert.deepEqual(ids((await s.sd()).groups), new Set(['n1']), 'an API outage does not empty the target list');
});

test('the document is behind METRICS_TOKEN: no token or a wrong one is 401; without METRICS_TOKEN it is open; disabled means 404', async (t) => {
  const s = await setup(t, [device('t1', ['127.0.8.1'])]);
  assert.equal((await s.sd({})).status, 401);
  assert.equal((await s.sd({ authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await s.sd()).groups.length, 1);
  const open = await setup(t, [device('t2', ['127.0.8.2'])], {}, { token: '' });
  assert.equal((await open.sd({})).groups.length, 1);
  const off = await setup(t, [device('t3', ['127.0.8.3'])], { service_discovery: { enabled: false } });
  assert.equal((await http(`${off.url}/sd/devices`)).status, 404);
  const moved = await setup(t, [device('t4', ['127.0.8.4'])], { service_discovery: { path: '/sd/tailnet-a' } });
  assert.equal((await moved.sd()).groups.length, 1);
  assert.equal((await http(`${moved.url}/sd/devices`)).status, 404);
});

test('config: service_discovery.path must be a plain path that tsmetrics does not serve itself; the message names the key', () => {
  const raw = (path: unknown): RawServiceConfig => ({
    receivers: { tailscale_api: { api_key: 'tskey-api-x' }, device_metrics: { service_discovery: { path } } },
    exporters: { prometheus: {} },
    service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], exporters: ['prometheus'] } } },
  });
  for (const [path, why] of [['sd', /must start with \//], ['/metrics', /served by tsmetrics itself/], ['/health', /served by tsmetrics itself/], ['/ready', /served by tsmetrics itself/], ['/debug', /served by tsmetrics itself/], ['/-/reload', /served by tsmetrics itself/], ['/sd?x=1', /plain URL path/], ['/s d', /plain URL path/]] as const) {
    assert.throws(
      () => resolveConfig(raw(path), defaultRegistry(), 'f.yaml'),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path === 'receivers.device_metrics.service_discovery.path' && why.test(p.message)),
      path,
    );
  }
  resolveConfig(raw('/sd/devices'), defaultRegistry(), 'f.yaml');
});

test('hostile inventory: long values are cut, tag lists keep whole tags within their bound, odd tags and addresses are left out', async (t) => {
  const manyTags = ['tag:exporter', 'tag:a,b', '', ...Array.from({ length: 400 }, (_, i) => `tag:t${String(i).padStart(16, '0')}`), `tag:${'x'.repeat(5000)}`];
  const s = await setup(t, [device('h1', ['127.0.9.1', '127.0.9.2%eth0', '[::1]', '10.0.0.1:80', 'x'.repeat(100)], { hostname: 'h'.repeat(100_000), os: 'o\u0000s\n"', user: '\ud800bad', tags: manyTags })]);
  const res = await s.sd();
  const [g] = res.groups;
  assert.ok(g);
  assert.equal(g.labels.__meta_tailscale_device_hostname, 'h'.repeat(128), 'cut to label_max_length');
  assert.equal(g.labels.__meta_tailscale_device_os, 'o\u0000s\n"', 'JSON escapes what it must; the value is kept');
  assert.equal(g.labels.__meta_tailscale_device_user, '\ufffdbad', 'a lone surrogate becomes U+FFFD, so the document is valid UTF-8');
  const tags = g.labels.__meta_tailscale_device_tags as string;
  assert.ok(tags.length <= 1024 + 2, `tags bounded (${tags.length})`);
  assert.ok(tags.startsWith(',tag:exporter,tag:t0000000000000000,') && tags.endsWith(','));
  const items = tags.slice(1, -1).split(',');
  assert.ok(items.every((x) => x === 'tag:exporter' || /^tag:t\d{16}$/.test(x)), 'only whole, unambiguous tags');
  assert.equal(g.labels.__meta_tailscale_device_addresses, '127.0.9.1', 'only plain IPs');
});

test('a document over max_response_bytes is answered 503 (Prometheus keeps its last targets), counted, and logged once', async (t) => {
  const devices = Array.from({ length: 40 }, (_, i) => device(`big${i}`, [`127.0.10.${i + 1}`]));
  const s = await setup(t, devices, { service_discovery: { max_response_bytes: 4096 } });
  const first = await s.sd();
  assert.equal(first.status, 503);
  assert.match(first.body, /max_response_bytes \(4096\)/);
  assert.equal((await s.sd()).status, 503);
  assert.equal(s.lines.filter((l) => l.includes('service discovery document exceeds max_response_bytes')).length, 1, 'logged once');
  const page = families((await http(`${s.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).body);
  assert.equal(sampleValue(page, 'tsmetrics_component_errors_total', { component_id: 'device_metrics', error_type: 'too_large' }), 2);
});
