import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import type { PrometheusExporterComponent } from '../../exporters/prometheus/prometheus.ts';
import type { PipelineService } from '../../src/pipeline/service.ts';
import { buildService, manualClock, families, fixtureDevices, memoryLogger, renderPrometheus, sampleValue } from '../../test/helpers/index.ts';

async function setup(t: TestContext, opts: { api?: Record<string, unknown>; sim?: ConstructorParameters<typeof TailnetSimulator>[0] } = {}) {
  const sim = new TailnetSimulator({ devices_json: fixtureDevices(), deviceServers: false, ...opts.sim });
  await sim.start();
  const { logger, lines } = memoryLogger();
  const service = buildService(
    {
      receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], tailnet: sim.tailnet, interval: '1h', ...opts.api } },
      exporters: { prometheus: {} },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['prometheus'] } } },
    },
    { logger },
  );
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(2000));
    await sim.stop();
  });
  const exporter = service.exporters.get('prometheus') as PrometheusExporterComponent;
  const scrape = async () => families((await exporter.render()) ?? '');
  return { sim, service, exporter, scrape, lines };
}

const GW = { device_id: '4815927360519382', device_name: 'gw-fra-01.tail4c8e1a.ts.net' };
const MAC = { device_id: '5520394817266034', device_name: 'alices-macbook-pro.tail4c8e1a.ts.net' };
const PHONE = { device_id: '6038172954401127', device_name: 'bobs-iphone.tail4c8e1a.ts.net' };
const EXPORTER = { device_id: '7291046638810455', device_name: 'metrics-exporter-01.tail4c8e1a.ts.net' };
const CI = { device_id: '8146620094173318', device_name: 'ci-runner-7f9c2d.tail4c8e1a.ts.net' };
const NAS = { device_id: '3307718845521906', device_name: 'nas.tail9b2d77.ts.net' };
const CAROL = { device_id: '2294051776630841', device_name: 'carol-desktop.tail4c8e1a.ts.net' };
const RPI = { device_id: '9013385562207719', device_name: 'lab-rpi.tail4c8e1a.ts.net' };
const ALL = [GW, MAC, PHONE, EXPORTER, CI, NAS, CAROL, RPI];
const epoch = (iso: string): number => Date.parse(iso) / 1000;
/** The calls the devices collector makes (the other collectors' calls are theirs, see test/api-collectors.test.ts). */
const deviceCalls = (stats: Record<string, number>) => Object.fromEntries(Object.entries(stats).filter(([k]) => /\/devices$|\/device\//.test(k) && !k.includes('/services/')));
/** Only the devices collector, for tests about what it alone serves. */
const DEVICES_ONLY = { collectors: { users: false, keys: false, dns: false, settings: false, posture: false, services: false, service_hosts: false, policy: false, log_streaming: false, webhooks: false, invites: false } };

test('every metric for every device of the fixture has the expected value', async (t) => {
  const { service, scrape, sim } = await setup(t);
  await service.collectNow();
  const f = await scrape();
  const v = (name: string, labels: Record<string, string>) => sampleValue(f, name, labels);

  assert.equal(v('tailscale_device_count', {}), 8);
  // online comes from connectedToControl: only the phone is offline.
  for (const d of ALL) assert.equal(v('tailscale_device_online', d), d === PHONE ? 0 : 1, `online ${d.device_name}`);
  assert.equal(v('tailscale_device_info', { ...GW, online: 'true', os: 'linux', version: '1.102.3-t4f1c2a9e0-g7d2b19c8a' }), 1);
  assert.equal(v('tailscale_device_info', { ...PHONE, online: 'false', os: 'iOS', version: '1.100.1-t9a3e5c7b1-g4c6d8e0f2' }), 1);
  assert.equal(v('tailscale_device_info', { ...NAS, online: 'true', os: 'linux', version: '' }), 1);
  assert.equal(f.get('tailscale_device_info')?.samples.length, 8);
  // lastSeen is only sent for the disconnected phone.
  assert.deepEqual(f.get('tailscale_device_last_seen_timestamp')?.samples.map((s) => [s.labels.device_id, s.value]), [[PHONE.device_id, epoch('2026-08-21T18:47:29Z')]]);
  for (const d of ALL) assert.equal(v('tailscale_device_authorized', d), d === RPI ? 0 : 1);
  assert.equal(v('tailscale_device_user', { ...GW, user_email: 'alice@example.com' }), 1);
  assert.equal(v('tailscale_device_user', { ...NAS, user_email: 'dave@partner.example' }), 1);
  // Key expiry: 0 when disabled (even with a past date) or the zero time.
  const expiry: Array<[typeof GW, number]> = [[GW, 0], [MAC, epoch('2026-09-03T07:41:10Z')], [PHONE, epoch('2026-12-27T19:22:03Z')], [EXPORTER, 0], [CI, 0], [NAS, 0], [CAROL, 0], [RPI, epoch('2027-02-20T08:55:19Z')]];
  for (const [d, want] of expiry) assert.equal(v('tailscale_device_machine_key_expiry', d), want, `expiry ${d.device_name}`);
  for (const d of ALL) assert.equal(v('tailscale_device_key_expiry_disabled', d), [MAC, PHONE, RPI].includes(d) ? 0 : 1);
  for (const d of ALL) assert.equal(v('tailscale_device_update_available', d), [PHONE, CAROL].includes(d) ? 1 : 0);
  assert.equal(v('tailscale_device_created_timestamp', GW), epoch('2025-11-03T08:14:52Z'));
  assert.equal(v('tailscale_device_created_timestamp', NAS), undefined, 'external devices have no created time');
  for (const d of ALL) assert.equal(v('tailscale_device_external', d), d === NAS ? 1 : 0);
  for (const d of ALL) assert.equal(v('tailscale_device_blocks_incoming_connections', d), d === CAROL ? 1 : 0);
  for (const d of ALL) assert.equal(v('tailscale_device_ephemeral', d), d === CI ? 1 : 0);
  for (const d of ALL) assert.equal(v('tailscale_device_multiple_connections', d), d === CAROL ? 1 : 0);
  for (const d of ALL) assert.equal(v('tailscale_device_tailnet_lock_error', d), d === NAS ? undefined : 0);
  for (const d of ALL) assert.equal(v('tailscale_device_ssh_enabled', d), [GW, EXPORTER].includes(d) ? 1 : 0);
  // Routes come from the list (fields=all), never from per-device calls.
  const routes = (name: string, d: typeof GW) => (f.get(name)?.samples ?? []).filter((s) => s.labels.device_id === d.device_id).map((s) => s.labels.route).sort();
  assert.deepEqual(routes('tailscale_device_routes_advertised', GW), ['0.0.0.0/0', '10.20.0.0/16', '192.168.50.0/24', '::/0']);
  assert.deepEqual(routes('tailscale_device_routes_enabled', GW), ['0.0.0.0/0', '10.20.0.0/16', '::/0']);
  assert.deepEqual(routes('tailscale_device_routes_unapproved', GW), ['192.168.50.0/24']);
  assert.deepEqual(routes('tailscale_device_routes_unapproved', RPI), ['192.168.77.0/24']);
  assert.deepEqual(routes('tailscale_device_routes_enabled', RPI), []);
  for (const d of ALL) assert.equal(v('tailscale_device_exit_node', d), d === GW ? 1 : 0);
  for (const d of ALL) assert.equal(v('tailscale_device_exit_node_option', d), d === GW ? 1 : 0);
  for (const d of ALL) assert.equal(v('tailscale_device_subnet_router', d), d === GW ? 1 : 0, `subnet ${d.device_name}`);
  // Tags.
  const tags = (d: typeof GW) => (f.get('tailscale_device_tags')?.samples ?? []).filter((s) => s.labels.device_id === d.device_id).map((s) => s.labels.tag).sort();
  assert.deepEqual(tags(GW), ['tag:exporter', 'tag:router']);
  assert.deepEqual(tags(MAC), []);
  // Connectivity.
  assert.equal(v('tailscale_device_latency_ms', { ...GW, derp_region: 'Frankfurt', preferred: 'true' }), 1.843907);
  assert.equal(v('tailscale_device_latency_ms', { ...GW, derp_region: 'New York City', preferred: 'false' }), 86.021773);
  assert.equal((f.get('tailscale_device_latency_ms')?.samples ?? []).filter((s) => s.labels.device_id === NAS.device_id).length, 0);
  assert.equal((f.get('tailscale_device_latency_ms')?.samples ?? []).filter((s) => s.labels.preferred === 'true').length, 7);
  assert.equal(v('tailscale_device_endpoints_total', GW), 3);
  assert.equal(v('tailscale_device_endpoints_total', PHONE), 2);
  assert.equal(v('tailscale_device_client_supports', { ...MAC, feature: 'upnp' }), 1);
  assert.equal(v('tailscale_device_client_supports', { ...GW, feature: 'pcp' }), 0);
  assert.equal(v('tailscale_device_client_supports', { ...GW, feature: 'hairpinning' }), undefined, 'hairPinning is always null');
  assert.equal(v('tailscale_device_mapping_varies_by_dest_ip', PHONE), 1);
  assert.equal(v('tailscale_device_posture_serial_numbers_total', MAC), 1);
  assert.equal(v('tailscale_device_posture_serial_numbers_total', GW), 0);
  assert.equal(v('tailscale_device_posture_serial_numbers_total', EXPORTER), undefined);
  // Exactly one list call per cycle, and no per-device routes calls.
  assert.deepEqual(deviceCalls(sim.stats.apiRequests), { 'GET /api/v2/tailnet/example.com/devices': 1 });
  await service.collectNow();
  assert.deepEqual(deviceCalls(sim.stats.apiRequests), { 'GET /api/v2/tailnet/example.com/devices': 2 });
  // Every family has HELP text and the right type.
  for (const fam of f.values()) {
    if (!fam.name.startsWith('tailscale_device_')) continue;
    assert.ok(fam.help && fam.help !== 'description missing', `${fam.name} has HELP`);
    assert.equal(fam.type, 'gauge');
  }
});

test('the inventory is published for the rest of the process', async (t) => {
  const { service } = await setup(t);
  await service.collectNow();
  const snap = service.inventory.get('tailscale_api');
  assert.ok(snap?.fresh);
  const gw = snap.devices.find((d) => d.id === GW.device_id);
  assert.deepEqual(gw?.tags, ['tag:exporter', 'tag:router']);
  assert.deepEqual(gw?.addresses, ['100.88.17.42', 'fd7a:115c:a1e0::c301:112a']);
  assert.equal(gw?.nodeId, 'nGwF7r2xQ41CNTRL');
  assert.equal(snap.devices.find((d) => d.id === PHONE.device_id)?.online, false);
});

test('OAuth: the token is cached, renewed before it expires, and a 401 triggers one re-auth', async (t) => {
  // Both sides read the same hand-moved clock, so the renewal point is reached without waiting.
  const clock = manualClock();
  const sim = new TailnetSimulator({ devices_json: fixtureDevices(), deviceServers: false, tokenLifetimeS: 2, now: clock.now });
  await sim.start();
  const svc = buildService(
    {
      receivers: { tailscale_api: { api_url: sim.apiUrl, oauth_client_id: sim.oauthClients[0]?.id, oauth_client_secret: sim.oauthClients[0]?.secret, interval: '1h' } },
      exporters: { prometheus: {} },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['prometheus'] } } },
    },
    { clock },
  );
  t.after(async () => {
    await svc.shutdown(AbortSignal.timeout(1000));
    await sim.stop();
  });
  await svc.collectNow();
  await svc.collectNow();
  assert.equal(sim.stats.tokensIssued, 1, 'the token is reused while valid');
  clock.advance(1100); // past the renewal point (half of a 2 s lifetime)
  await svc.collectNow();
  assert.equal(sim.stats.tokensIssued, 2, 'renewed before expires_in ran out');
  sim.expireTokens(); // revoked server-side: the cached token now gets 401
  await svc.collectNow();
  assert.equal(sim.stats.tokensIssued, 3, 'a 401 fetched one fresh token');
  assert.equal(svc.telemetry.status().get('tailscale_api')?.up, true, 'and the retried call succeeded');
});

test('429 with Retry-After is honoured, 5xx are retried, and the cycle succeeds', async (t) => {
  const { service, sim } = await setup(t);
  sim.queueApiFaults({ kind: 'status', status: 429, retryAfter: '1' });
  const t0 = Date.now();
  await service.collectNow();
  assert.ok(Date.now() - t0 >= 950, 'waited for Retry-After before retrying');
  assert.equal(sim.stats.apiRequests['GET /api/v2/tailnet/example.com/devices'], 2);
  assert.equal(service.telemetry.status().get('tailscale_api')?.up, true);
  sim.queueApiFaults({ kind: 'status', status: 503 }, { kind: 'status', status: 504 }, { kind: 'status', status: 500 });
  await service.collectNow();
  assert.equal(sim.stats.apiRequests['GET /api/v2/tailnet/example.com/devices'], 6);
  assert.equal(service.telemetry.status().get('tailscale_api')?.up, true);
});

test('429 Retry-After as an HTTP date, and 429 without Retry-After, are retried', async (t) => {
  const { service, sim } = await setup(t);
  sim.queueApiFaults({ kind: 'status', status: 429, retryAfter: new Date(Date.now() + 1000).toUTCString() }, { kind: 'status', status: 429 });
  await service.collectNow();
  assert.equal(sim.stats.apiRequests['GET /api/v2/tailnet/example.com/devices'], 3);
  assert.equal(service.telemetry.status().get('tailscale_api')?.up, true);
});

for (const [name, fault, kind] of [
  ['403 (missing scope)', { kind: 'status', status: 403, body: '{"message":"calling actor does not have enough permissions to perform this function"}' }, 'auth'],
  ['401 with an API key', { kind: 'status', status: 401, body: '{"message":"API token invalid"}' }, 'auth'],
  ['malformed JSON', { kind: 'body', body: '{"devices": [ {"id": ', contentType: 'application/json' }, 'decode'],
  ['a body without devices', { kind: 'body', body: '{"items": []}', contentType: 'application/json' }, 'decode'],
  ['persistent 502', { kind: 'status', status: 502 }, 'http_5xx'],
  ['a reset connection', { kind: 'reset' }, 'network'],
] as const) {
  test(`API fault: ${name} keeps the last good inventory and marks the source down`, async (t) => {
    const { service, sim, scrape, lines } = await setup(t, { api: { max_retries: 1 } });
    await service.collectNow();
    const before = await scrape();
    sim.setApiFault(fault);
    await service.collectNow();
    const after = await scrape();
    assert.equal(sampleValue(after, 'tailscale_device_count', {}), 8, 'never reset to zero devices');
    assert.equal(after.get('tailscale_device_info')?.samples.length, before.get('tailscale_device_info')?.samples.length);
    assert.equal(sampleValue(after, 'tsmetrics_source_up', { source: 'tailscale_api' }), 0);
    assert.ok((sampleValue(after, 'tsmetrics_component_errors_total', { component_id: 'tailscale_api', error_type: kind }) ?? 0) >= 1, `error kind ${kind} counted`);
    assert.equal(service.inventory.get('tailscale_api')?.fresh, false);
    assert.equal(service.inventory.get('tailscale_api')?.devices.length, 8);
    const warn = lines.filter((l) => l.includes('Tailscale API call failed'));
    assert.equal(warn.length, 1, 'logged once');
    if (name.startsWith('403')) assert.match(warn[0] as string, /devices:core:read/);
    // A second failing cycle does not log again; recovery is automatic.
    await service.collectNow();
    assert.equal(lines.filter((l) => l.includes('Tailscale API call failed')).length, 1);
    sim.setApiFault(undefined);
    await service.collectNow();
    assert.equal(sampleValue(await scrape(), 'tsmetrics_source_up', { source: 'tailscale_api' }), 1);
  });
}

test('a body over the size limit is an error, not a crash', async (t) => {
  const { service, exporter } = await setup(t, { api: { max_body_size: 2000, ...DEVICES_ONLY } });
  await service.collectNow();
  // Nothing good has ever arrived: only self-telemetry is served, saying the source is down.
  const page = families((await exporter.render()) ?? '');
  assert.equal(sampleValue(page, 'tsmetrics_source_up', { source: 'tailscale_api' }), 0);
  assert.equal(page.get('tailscale_device_count'), undefined, 'no invented inventory');
  const st = service.telemetry.status().get('tailscale_api');
  assert.equal(st?.up, false);
  assert.match(st?.lastError ?? '', /exceeds the 2000-byte limit/);
  const self = await service.telemetry.collect();
  const errors = self.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'tsmetrics_component_errors');
  assert.equal(errors?.dataPoints.find((p) => p.attributes.error_type === 'too_large')?.value, 1);
});

test('snapshots replace each other: rename, upgrade and a removed route leave no old series', async (t) => {
  const { service, sim, scrape } = await setup(t);
  await service.collectNow();
  const devices = fixtureDevices();
  const gw = devices[0] as Record<string, unknown>;
  gw.name = 'gw-fra-02.tail4c8e1a.ts.net';
  gw.clientVersion = '1.104.0-tnew-gnew';
  gw.advertisedRoutes = ['0.0.0.0/0', '10.20.0.0/16', '::/0'];
  gw.clientConnectivity = { ...(gw.clientConnectivity as object), latency: { Frankfurt: { preferred: true, latencyMs: 2 } } };
  sim.setDevicesJson(devices.filter((d) => d.id !== CAROL.device_id));
  await service.collectNow();
  const f = await scrape();
  const text = await renderPrometheus(service);
  assert.ok(!text.includes('gw-fra-01.tail4c8e1a.ts.net'), 'the old name is gone everywhere');
  assert.ok(!text.includes('1.102.3-t4f1c2a9e0-g7d2b19c8a",') || !text.includes('gw-fra-02.tail4c8e1a.ts.net",online="true",os="linux",version="1.102.3'), 'no info series with the old version');
  assert.equal(sampleValue(f, 'tailscale_device_info', { device_id: GW.device_id, version: '1.104.0-tnew-gnew' }), 1);
  assert.equal((f.get('tailscale_device_info')?.samples ?? []).filter((s) => s.labels.device_id === GW.device_id).length, 1);
  assert.equal(sampleValue(f, 'tailscale_device_routes_advertised', { device_id: GW.device_id, route: '192.168.50.0/24' }), undefined);
  assert.equal(sampleValue(f, 'tailscale_device_routes_unapproved', { device_id: GW.device_id }), undefined);
  assert.equal(sampleValue(f, 'tailscale_device_latency_ms', { device_id: GW.device_id, derp_region: 'London' }), undefined);
  assert.equal(sampleValue(f, 'tailscale_device_online', { device_id: CAROL.device_id }), undefined, 'removed device is gone');
  assert.equal(sampleValue(f, 'tailscale_device_count', {}), 7);
});

test('include_user_email=false removes tailscale_device_user; labels are bounded to 128 characters', async (t) => {
  const devices = fixtureDevices();
  (devices[0] as Record<string, unknown>).os = 'x'.repeat(500);
  const { service, scrape } = await setup(t, { api: { include_user_email: false }, sim: { devices_json: devices } });
  await service.collectNow();
  const f = await scrape();
  assert.equal(f.get('tailscale_device_user'), undefined);
  const info = f.get('tailscale_device_info')?.samples.find((s) => s.labels.device_id === GW.device_id);
  assert.equal(info?.labels.os?.length, 128);
});

test('two tailnets in one config are told apart by a tailnet label', async (t) => {
  const a = new TailnetSimulator({ devices_json: fixtureDevices(), deviceServers: false, tailnet: 'a.example' });
  const b = new TailnetSimulator({ devices: 3, deviceServers: false, tailnet: 'b.example' });
  await a.start();
  await b.start();
  const svc: PipelineService = buildService({
    receivers: {
      'tailscale_api/a': { api_url: a.apiUrl, api_key: a.apiKeys[0], tailnet: 'a.example', tailnet_label: 'a.example', interval: '1h' },
      'tailscale_api/b': { api_url: b.apiUrl, api_key: b.apiKeys[0], tailnet: 'b.example', tailnet_label: 'b.example', interval: '1h' },
    },
    exporters: { prometheus: {} },
    service: { pipelines: { metrics: { receivers: ['tailscale_api/a', 'tailscale_api/b'], exporters: ['prometheus'] } } },
  });
  t.after(async () => {
    await svc.shutdown(AbortSignal.timeout(1000));
    await a.stop();
    await b.stop();
  });
  await svc.collectNow();
  const f = families(await renderPrometheus(svc));
  assert.equal(sampleValue(f, 'tailscale_device_count', { tailnet: 'a.example' }), 8);
  assert.equal(sampleValue(f, 'tailscale_device_count', { tailnet: 'b.example' }), 3);
  assert.ok(f.get('tailscale_device_online')?.samples.every((s) => s.labels.tailnet === 'a.example' || s.labels.tailnet === 'b.example'));
});
