import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startTsmetrics } from '../src/app.ts';
import type { PipelineService } from '../src/pipeline/service.ts';
import { HttpServer, type HttpServerOptions } from '../src/server/http.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { buildService, http, waitFor } from './helpers/index.ts';

/** Devices the default rule scrapes (tagged, connected, authorized, not shared in). */
function targeted(sim: TailnetSimulator): string[] {
  return sim.devices.filter((d) => (d.api.tags as string[] | undefined)?.includes('tag:exporter') && d.api.connectedToControl && d.api.authorized && !d.api.isExternal).map((d) => d.api.id as string);
}

/** The API and device receivers against `sim`, into the Prometheus exporter. */
function pipeline(sim: TailnetSimulator, dm: Record<string, unknown> = {}): PipelineService {
  return buildService({
    receivers: {
      tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h', max_retries: 0 },
      device_metrics: { port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], interval: '1h', timeout: '5s', ...dm },
    },
    exporters: { prometheus: {} },
    service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], exporters: ['prometheus'] } } },
  });
}

async function serve(t: TestContext, service: PipelineService, opts: Partial<HttpServerOptions> = {}): Promise<{ server: HttpServer; url: string; port: number }> {
  const server = new HttpServer({ service, address: '127.0.0.1', port: 0, metricsToken: '', maxConnections: 64, version: 't', logger: service.logger, debugConfig: () => ({}), ...opts });
  const addr = await server.listen();
  t.after(async () => {
    await server.close(AbortSignal.timeout(1000));
    await service.shutdown(AbortSignal.timeout(1000));
  });
  return { server, url: `http://127.0.0.1:${addr.port}`, port: addr.port };
}

interface StalledClient {
  socket: Socket;
  closed: boolean;
}

/** A raw connection that sends one request and then reads nothing at all. */
function stalledClient(t: TestContext, port: number, path: string): Promise<StalledClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const c: StalledClient = { socket, closed: false };
    t.after(() => socket.destroy());
    socket.on('close', () => (c.closed = true));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      socket.pause();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, (err) => (err ? reject(err) : resolve(c)));
    });
    socket.once('error', reject);
  });
}

/** Sends `text` on a raw connection and returns everything the server answers until it closes. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

async function timed(url: string): Promise<{ status: number; body: string; ms: number }> {
  const began = performance.now();
  const r = await http(url);
  return { status: r.status, body: r.body, ms: performance.now() - began };
}

/**
 * A collected pipeline whose page is ~11 MB: one device answers 100,000 series, far more than
 * loopback sockets buffer, so a client that does not read really does stall its response.
 */
async function bigPage(t: TestContext, dm: Record<string, unknown>): Promise<PipelineService> {
  const sim = new TailnetSimulator({ devices: 6 });
  await sim.start();
  t.after(() => sim.stop());
  let big = '# TYPE tailscaled_big_series gauge\n';
  for (let i = 0; i < 100_000; i++) big += `tailscaled_big_series{n="${i}"} ${i}\n`;
  sim.setDeviceFault(targeted(sim)[0] as string, { kind: 'body', body: big });
  const service = pipeline(sim, dm);
  await service.collectNow();
  return service;
}

test('stalled /metrics readers: capped, cut off at the write timeout, and probes answer meanwhile', async (t) => {
  const service = await bigPage(t, { max_samples: 200_000 });
  const cap = 3;
  const writeTimeoutMs = 5000;
  const { server, url, port } = await serve(t, service, { maxMetricsStreams: cap, writeTimeoutMs });

  const full = await http(`${url}/metrics`);
  assert.equal(full.status, 200);
  assert.ok(full.body.length > 8 * 1024 * 1024, `the page is ${full.body.length} bytes`);

  const inCap: StalledClient[] = [];
  for (let i = 0; i < cap; i++) inCap.push(await stalledClient(t, port, '/metrics'));
  await waitFor(() => server.activeStreams === cap, 5000);
  const overCap: StalledClient[] = [];
  for (let i = 0; i < 3; i++) overCap.push(await stalledClient(t, port, '/metrics'));

  // Above the cap a scrape is refused at once, with a hint when to come back.
  const refused = await http(`${url}/metrics`);
  assert.equal(refused.status, 503);
  assert.match(String(refused.headers['retry-after']), /^\d+$/);
  // The probes answer promptly while /metrics is saturated.
  for (const p of ['/livez', '/health', '/ready']) {
    const r = await timed(`${url}${p}`);
    assert.equal(r.status, 200, `${p}: ${r.body}`);
    assert.ok(r.ms < 2000, `${p} took ${Math.round(r.ms)} ms`);
  }
  // Only `cap` bodies are held however many clients stall, and they do not finish on their own.
  assert.equal(server.activeStreams, cap);

  // The server lets them go after the write timeout, while the clients still read nothing.
  await waitFor(() => server.activeStreams === 0, writeTimeoutMs + 10_000);

  // Reading now shows what each client got: cut-off responses and 503s, and then the close.
  const seen = [...inCap, ...overCap].map((c) => {
    let bytes = 0;
    let head = '';
    c.socket.on('data', (chunk: Buffer) => {
      if (head.length < 64) head += chunk.toString('latin1', 0, 64);
      bytes += chunk.length;
    });
    c.socket.resume();
    return { c, get bytes() { return bytes; }, get head() { return head; } };
  });
  await waitFor(() => seen.every((s) => s.c.closed), 10_000);
  for (const s of seen) assert.ok(s.bytes < full.body.length, `a stalled client received ${s.bytes} of ${full.body.length} bytes`);
  assert.equal(seen.filter((s) => s.head.startsWith('HTTP/1.1 503')).length, overCap.length, 'every over-cap client was answered 503');

  // And scrapes work again afterwards.
  const again = await http(`${url}/metrics`);
  assert.equal(again.status, 200);
  assert.equal(again.body.length, full.body.length);
});

test('malformed request targets are answered 400, not 500', async (t) => {
  const sim = new TailnetSimulator({ devices: 2 });
  await sim.start();
  t.after(() => sim.stop());
  const { port, url } = await serve(t, pipeline(sim));
  for (const target of ['http://[::1', '//x:bad']) {
    const answer = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 400 /, `${target}: ${answer.split('\r\n')[0]}`);
  }
  assert.equal((await http(`${url}/livez`)).status, 200, 'the server carries on');
});

test('the Bearer scheme is matched case-insensitively; the token is not', async (t) => {
  const sim = new TailnetSimulator({ devices: 2 });
  await sim.start();
  t.after(() => sim.stop());
  const token = 'metrics-token-0c1d2e3f4a5b';
  const { url } = await serve(t, pipeline(sim), { metricsToken: token });
  for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
    assert.equal((await http(`${url}/debug`, { headers: { authorization: `${scheme} ${token}` } })).status, 200, scheme);
  }
  assert.equal((await http(`${url}/debug`, { headers: { authorization: `bearer ${token.toUpperCase()}` } })).status, 401);
  assert.equal((await http(`${url}/debug`, { headers: { authorization: `bearer${token}` } })).status, 401);
  assert.equal((await http(`${url}/debug`, { headers: { authorization: `Basic ${token}` } })).status, 401);
});

test('/health carries no error text, /debug shows it redacted, /ready names the API until it has succeeded', async (t) => {
  const sim = new TailnetSimulator({ devices: 4 });
  await sim.start();
  t.after(() => sim.stop());
  const key = sim.apiKeys[0] as string;
  // An upstream that echoes the credential back in its error message.
  sim.setApiFault({ kind: 'status', status: 400, body: JSON.stringify({ message: `key ${key} is not valid for this tailnet` }) });
  const running = await startTsmetrics({ env: { ...sim.env(), SCRAPE_INTERVAL: '1h', LOG_LEVEL: 'error' }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  type Health = { status: string; sources: Record<string, { up: boolean; cycles: number }> };
  const health = await waitFor(async () => {
    const r = await http(`${running.url}/health`);
    const doc = JSON.parse(r.body) as Health;
    return (doc.sources.tailscale_api?.cycles ?? 0) >= 1 && { raw: r.body, doc };
  });
  assert.ok(health);
  assert.equal(health.doc.status, 'degraded');
  assert.equal(health.doc.sources.tailscale_api?.up, false);
  assert.ok(!health.raw.includes(key), '/health leaks the key');
  assert.ok(!health.raw.includes('last_error') && !health.raw.includes('not valid'), `/health carries error text: ${health.raw}`);

  const ready = await http(`${running.url}/ready`);
  assert.equal(ready.status, 503);
  const why = JSON.parse(ready.body) as { status: string; reason: string };
  assert.equal(why.status, 'not ready');
  assert.match(why.reason, /tailscale_api/);

  const debug = await http(`${running.url}/debug`);
  assert.equal(debug.status, 200);
  assert.ok(!debug.body.includes(key), '/debug leaks the key');
  const lastError = (JSON.parse(debug.body) as { sources: Record<string, { lastError?: string }> }).sources.tailscale_api?.lastError ?? '';
  assert.match(lastError, /key \[REDACTED\] is not valid/);

  // Once the API answers, the process becomes ready and healthy.
  sim.setApiFault(undefined);
  await running.service.collectNow();
  assert.equal((await http(`${running.url}/ready`)).status, 200);
  assert.equal((JSON.parse((await http(`${running.url}/health`)).body) as Health).status, 'healthy');
});

test('/health is degraded when most targeted devices fail their scrape', async (t) => {
  const sim = new TailnetSimulator({ devices: 12 });
  await sim.start();
  t.after(() => sim.stop());
  const service = pipeline(sim);
  const { url } = await serve(t, service);
  await service.collectNow();
  type Health = { status: string; sources: Record<string, { devices_targeted?: number; devices_scraped?: number }> };
  const before = JSON.parse((await http(`${url}/health`)).body) as Health;
  assert.equal(before.status, 'healthy');
  const ids = targeted(sim);
  assert.ok(ids.length >= 3, `${ids.length} targeted devices`);
  for (const id of ids.slice(1)) sim.setDeviceFault(id, { kind: 'status', status: 500 });
  await service.collectNow();
  const after = JSON.parse((await http(`${url}/health`)).body) as Health;
  assert.equal(after.status, 'degraded');
  assert.equal(after.sources.device_metrics?.devices_targeted, ids.length);
  assert.equal(after.sources.device_metrics?.devices_scraped, 1);
});

test('one client address cannot take every connection: beyond its share it is cut off, others still get in', async (t) => {
  const sim = new TailnetSimulator({ devices: 4 });
  await sim.start();
  t.after(() => sim.stop());
  const service = pipeline(sim);
  await service.collectNow();
  const { port, url } = await serve(t, service, { maxConnections: 64, maxConnectionsPerIp: 8 });
  // The flood comes from another loopback address than the probes (127.0.0.1).
  const flood: Socket[] = [];
  const closed: boolean[] = [];
  for (let i = 0; i < 40; i++) {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.7' });
    const k = i;
    closed[k] = false;
    s.on('close', () => (closed[k] = true));
    s.on('error', () => undefined);
    flood.push(s);
  }
  t.after(() => flood.forEach((s) => s.destroy()));
  await waitFor(() => closed.filter(Boolean).length >= 32, 5000);
  assert.equal(closed.filter((c) => !c).length, 8, 'the flooding address keeps exactly its share');
  for (const p of ['/livez', '/health', '/metrics']) assert.equal((await http(`${url}${p}`)).status, 200, `${p} from another client`);
});

test('a stalled /metrics reader gives up its slot to a new scrape once its socket has not moved for a few seconds', { timeout: 60_000 }, async (t) => {
  const service = await bigPage(t, { max_samples: 200_000, max_body_size: 16 * 1024 * 1024 });
  const { server, port, url } = await serve(t, service, { maxMetricsStreams: 2, writeTimeoutMs: 60_000 });
  const stalled = [await stalledClient(t, port, '/metrics'), await stalledClient(t, port, '/metrics')];
  await waitFor(() => server.activeStreams === 2, 5000);
  assert.equal((await http(`${url}/metrics`)).status, 503, 'at first the slots are taken');
  // Long before the 60 s write timeout, a new scrape gets through by evicting a stalled reader.
  const ok = await waitFor(async () => ((await http(`${url}/metrics`)).status === 200 ? true : undefined), 20_000, 500);
  assert.ok(ok);
  // A paused socket learns of the reset only when it reads again.
  for (const c of stalled) c.socket.resume();
  await waitFor(() => stalled.some((c) => c.closed), 10_000);
});
