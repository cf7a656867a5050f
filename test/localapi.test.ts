import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { defaultRegistry } from '../src/components.ts';
import { resolveConfig } from '../src/config/service.ts';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { startTsmetrics } from '../src/app.ts';
import { PipelineService } from '../src/pipeline/service.ts';
import { LocalApiSimulator, type LocalApiSimulatorOptions } from '../src/simulator/localapi.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { derivePath, healthCode, decodeStatus } from '../receivers/local_tailscaled/status.ts';
import type { ExpositionFamily } from '../receivers/device_metrics/exposition.ts';
import { families, fixture, http, memoryLogger, renderPrometheus, waitFor } from './helpers/index.ts';
import { OtlpReceiver } from './helpers/otlp-receiver.ts';

// The fixture is the status of Linux node "workstation" with nine peers, one per case of the
// path rule (direct v4/v6, DERP, peer relay, idle, offline), an exit node in use, an expired key,
// a tagged server and a shared-in node.
const STATUS = fixture('localapi-status.json');
const CLIENT_METRICS = fixture('localapi-clientmetrics.txt');
const USER_METRICS = fixture('client-metrics.txt');

type Json = Record<string, unknown>;
const fx = JSON.parse(STATUS) as Json & { Peer: Record<string, Json>; Self: Json };
const SELF = { observer_id: 'nW7kx3QfTe11CNTRL', observer_name: 'workstation.tail4b7e2.ts.net' };

/** The path each fixture peer must show, written out by hand from the LocalAPI's rule. */
const EXPECTED_PATH: Record<string, Record<string, string>> = {
  'contractor-vm': { path: 'offline' },
  build01: { path: 'idle' },
  'NOMAD-LAPTOP': { path: 'derp', derp_region: 'nyc' },
  'Alexs-Mac-mini': { path: 'direct', family: 'ipv6' },
  'old-pi': { path: 'offline' },
  'edge-berlin': { path: 'peer_relay', family: 'ipv4' },
  'exit-waw': { path: 'direct', family: 'ipv4' },
  'printer-gw': { path: 'idle' },
  'db-primary': { path: 'direct', family: 'ipv4' },
};

async function localApi(t: TestContext, opts: LocalApiSimulatorOptions): Promise<LocalApiSimulator> {
  const la = new LocalApiSimulator(opts);
  await la.start();
  t.after(() => la.stop());
  return la;
}

interface Pipeline {
  service: PipelineService;
  page(): Promise<Map<string, ExpositionFamily>>;
  lines: string[];
}

/** A pipeline with the local receiver (and optionally more) into a Prometheus exporter. */
function pipeline(t: TestContext, local: Json, o: { now?: () => number; receivers?: Json; otlp?: string } = {}): Pipeline {
  const registry = defaultRegistry();
  const receivers: Json = { local_tailscaled: { interval: '1h', usermetrics: false, ...local }, ...(o.receivers ?? {}) };
  const exporters: Json = { prometheus: {}, ...(o.otlp ? { otlp: { endpoint: o.otlp, timeout: '2s' } } : {}) };
  const config = resolveConfig({ receivers, exporters, service: { pipelines: { metrics: { receivers: Object.keys(receivers), exporters: Object.keys(exporters) } } } }, registry, 'localapi-test');
  const { logger, lines } = memoryLogger('debug');
  const service = new PipelineService(registry, config, { logger, ...(o.now ? { clock: { now: o.now } } : {}) });
  t.after(() => service.shutdown(AbortSignal.timeout(5000)));
  return { service, lines, page: async () => families(await renderPrometheus(service)) };
}

type Sample = { labels: Record<string, string>; value: number };
function samples(f: Map<string, ExpositionFamily>, name: string, match: Record<string, string> = {}): Sample[] {
  return (f.get(name)?.samples ?? []).filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}
function one(f: Map<string, ExpositionFamily>, name: string, match: Record<string, string>): number | undefined {
  const s = samples(f, name, match);
  assert.ok(s.length <= 1, `${name} ${JSON.stringify(match)}: ${s.length} series`);
  return s[0]?.value;
}
const unix = (v: unknown): number | undefined => (typeof v === 'string' && !v.startsWith('0001-') ? Date.parse(v) / 1000 : undefined);
function near(actual: number | undefined, expected: number | undefined, what: string): void {
  if (expected === undefined) return assert.equal(actual, undefined, `${what} absent`);
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-3, `${what}: ${actual} ≠ ${expected}`);
}

test('every peer of the fixture status is reported over the wire with its fixture values', async (t) => {
  const la = await localApi(t, { statusBody: () => STATUS, userMetricsBody: () => USER_METRICS });
  const p = pipeline(t, { socket_path: la.socketPath, usermetrics: true });
  await p.service.collectNow();
  const f = await p.page();

  // tailscaled only answers requests addressed to its socket name.
  assert.deepEqual([...la.hosts], ['local-tailscaled.sock']);
  const peers = Object.values(fx.Peer);
  assert.equal(samples(f, 'tailscale_peer_info').length, peers.length);
  for (const peer of peers) {
    const host = String(peer.HostName);
    const id = { ...SELF, device_id: String(peer.ID), device_name: String(peer.DNSName).replace(/\.$/, '') };
    const info = samples(f, 'tailscale_peer_info', id);
    assert.deepEqual(info.map((s) => s.labels), [{ ...id, node_id: String(peer.ID), host_name: host, os: String(peer.OS), tags: ((peer.Tags as string[] | undefined) ?? []).join(',') }], `${host} info`);
    const path = samples(f, 'tailscale_peer_path', id);
    assert.deepEqual(path.map((s) => s.labels), [{ ...id, ...EXPECTED_PATH[host] }], `${host} path`);
    assert.equal(one(f, 'tailscale_peer_online', id), peer.Online ? 1 : 0, `${host} online`);
    assert.equal(one(f, 'tailscale_peer_active', id), peer.Active ? 1 : 0, `${host} active`);
    // Byte counters exist only while wireguard-go has the peer.
    assert.equal(one(f, 'tailscale_peer_received_bytes_total', id), peer.InEngine ? peer.RxBytes : undefined, `${host} rx`);
    assert.equal(one(f, 'tailscale_peer_sent_bytes_total', id), peer.InEngine ? peer.TxBytes : undefined, `${host} tx`);
    near(one(f, 'tailscale_peer_last_handshake_timestamp', id), unix(peer.LastHandshake), `${host} handshake`);
    near(one(f, 'tailscale_peer_last_seen_timestamp', id), peer.Online ? undefined : unix(peer.LastSeen), `${host} last seen`);
    near(one(f, 'tailscale_peer_key_expiry_timestamp', id), unix(peer.KeyExpiry), `${host} key expiry`);
    assert.equal(one(f, 'tailscale_peer_key_expired', id), peer.Expired ? 1 : 0, `${host} expired`);
    assert.equal(one(f, 'tailscale_peer_exit_node', id), peer.ExitNode ? 1 : 0, `${host} exit node`);
    assert.equal(one(f, 'tailscale_peer_exit_node_option', id), peer.ExitNodeOption ? 1 : 0, `${host} exit option`);
  }
  // The two counters are counters, and the exit node is the one ExitNodeStatus names.
  assert.equal(f.get('tailscale_peer_received_bytes_total')?.type, 'counter');
  assert.deepEqual(samples(f, 'tailscale_peer_exit_node').filter((s) => s.value === 1).map((s) => s.labels.device_id), [(fx.ExitNodeStatus as Json).ID]);

  // The node itself.
  assert.deepEqual(samples(f, 'tailscale_node_info').map((s) => s.labels), [
    { ...SELF, node_id: 'nW7kx3QfTe11CNTRL', host_name: 'workstation', os: 'linux', version: String(fx.Version), tun: 'true', home_derp: 'fra', tailnet: 'northwind.example', magicdns_suffix: 'tail4b7e2.ts.net' },
  ]);
  assert.deepEqual(samples(f, 'tailscale_node_address').map((s) => [s.labels.address, s.labels.family]).sort(), [['100.101.7.12', 'ipv4'], ['fd7a:115c:a1e0::e401:70c', 'ipv6']]);
  const states = samples(f, 'tailscale_node_backend_state', SELF);
  assert.equal(states.length, 7);
  assert.deepEqual(states.filter((s) => s.value === 1).map((s) => s.labels.state), ['Running']);
  assert.equal(one(f, 'tailscale_node_online', SELF), 1);
  near(one(f, 'tailscale_node_key_expiry_timestamp', SELF), unix((fx.Self as Json).KeyExpiry), 'own key expiry');
  assert.deepEqual(samples(f, 'tailscale_node_health_warnings', SELF).map((s) => [s.labels.code, s.value]).sort(), [['accept-routes-off', 1], ['update-available', 1]]);

  // Aggregates: three direct (v4, v6, exit node), one peer relay, one DERP, two idle, two offline.
  const byPath = Object.fromEntries(samples(f, 'tailscale_node_peers_by_path', SELF).map((s) => [s.labels.path, s.value]));
  assert.deepEqual(byPath, { direct: 3, peer_relay: 1, derp: 1, idle: 2, offline: 2 });
  assert.equal(one(f, 'tailscale_node_peers', { ...SELF, online: 'true' }), 7);
  assert.equal(one(f, 'tailscale_node_peers', { ...SELF, online: 'false' }), 2);
  assert.equal(one(f, 'tsmetrics_localapi_peers_over_limit', SELF), 0);
  assert.equal(one(f, 'tsmetrics_localapi_peers_malformed', SELF), 0);

  // The node's own client metrics (usermetrics) carry its identity as device_id/device_name.
  assert.equal(one(f, 'tailscaled_inbound_bytes_total', { device_id: SELF.observer_id, device_name: SELF.observer_name, path: 'direct_ipv4' }), 912873465321);
  assert.equal(one(f, 'tsmetrics_source_up', { source: 'local_tailscaled' }), 1);
});

test('path derivation: every case of the fixture, and the rule’s order', () => {
  for (const peer of Object.values(fx.Peer)) {
    const r = derivePath({ curAddr: String(peer.CurAddr), peerRelay: String(peer.PeerRelay), active: peer.Active as boolean, relay: String(peer.Relay), online: peer.Online as boolean });
    const labels = { path: r.path, ...(r.derpRegion ? { derp_region: r.derpRegion } : {}), ...(r.family ? { family: r.family } : {}) };
    assert.deepEqual(labels, EXPECTED_PATH[String(peer.HostName)], String(peer.HostName));
  }
  const base = { curAddr: '', peerRelay: '', active: true, relay: 'fra', online: true };
  // A direct address wins over a peer relay; DERP needs traffic and a home region.
  assert.equal(derivePath({ ...base, curAddr: '192.0.2.1:41641', peerRelay: '198.51.100.2:7777:vni:1' }).path, 'direct');
  assert.deepEqual({ ...derivePath({ ...base, peerRelay: '[2001:db8::5]:7777:vni:9' }) }, { path: 'peer_relay', family: 'ipv6' });
  assert.equal(derivePath({ ...base, relay: '' }).path, 'idle');
  assert.equal(derivePath({ ...base, active: false, online: false }).path, 'offline');
  // An idle peer is never reported as DERP, whatever its home region.
  assert.equal(derivePath({ ...base, active: false }).path, 'idle');
});

test('health texts become stable, bounded codes; arguments never reach a label', () => {
  const [routes, update] = fx.Health as string[];
  assert.equal(healthCode(routes as string), 'accept-routes-off');
  assert.equal(healthCode(update as string), 'update-available');
  assert.equal(healthCode('An update from version 1.90.1 to 1.104.0 is available.'), 'update-available');
  assert.equal(healthCode("Tailscale could not connect to the 'Frankfurt' relay server. Your Internet connection might be down, or the server might be temporarily unavailable."), 'no-derp-connection');
  assert.equal(healthCode("Tailscale hasn't heard from the 'Paris' relay server in 2m30s. The server might be temporarily unavailable, or your Internet connection might be down."), 'derp-timed-out');
  // Unknown texts: the same shape with other arguments keeps its code; the code is short.
  const a = healthCode("Something new broke in 'Warsaw' after 17s (error 0x1f)");
  const b = healthCode("Something new broke in 'Sydney' after 3s (error 0x22)");
  assert.equal(a, b);
  assert.match(a, /^other-[0-9a-f]{8}$/);
  assert.notEqual(a, healthCode('Something else entirely'));
  assert.match(healthCode('x'.repeat(1_000_000)), /^other-[0-9a-f]{8}$/);
});

test('byte counters: start time at first sight, kept while growing, reset on a drop and after an absence (OTLP)', async (t) => {
  const rx = new OtlpReceiver();
  await rx.start();
  t.after(() => rx.stop());
  let now = Date.UTC(2026, 7, 24, 9, 30);
  const peerKey = 'nodekey:f5bab616f27e59f666f30e557a3a1b40569d3b5e4bd2a61c981b6b7cb8091788';
  let current = { RxBytes: 1000, InEngine: true };
  const body = (): string => JSON.stringify({ ...fx, Peer: { [peerKey]: { ...fx.Peer[peerKey], ...current } } });
  const la = await localApi(t, { statusBody: body, now: () => now });
  const p = pipeline(t, { socket_path: la.socketPath }, { now: () => now, otlp: rx.url });
  const starts: Array<number | undefined> = [];
  const cycle = async (state: { RxBytes: number; InEngine: boolean }, at: number): Promise<void> => {
    now = at;
    current = state;
    const before = rx.requests.length;
    await p.service.collectNow();
    await waitFor(() => rx.requests.length > before);
    const pts = rx.requests.slice(before).flatMap((r) => r.metrics.filter((m) => m.name === 'tailscale_peer_received_bytes').flatMap((m) => m.points.map((pt) => ({ pt, m }))));
    const live = pts.filter(({ pt }) => pt.flags === 0);
    if (live[0]) {
      assert.equal(live[0].m.kind, 'sum');
      assert.equal(live[0].m.isMonotonic, true);
      assert.equal(live[0].pt.value, state.RxBytes);
    }
    starts.push(live[0] ? Number(live[0].pt.startTimeUnixNano / 1_000_000n) : undefined);
  };
  const t0 = now;
  await cycle({ RxBytes: 1000, InEngine: true }, t0);
  await cycle({ RxBytes: 5000, InEngine: true }, t0 + 30_000);
  await cycle({ RxBytes: 10, InEngine: true }, t0 + 60_000); // the WireGuard peer was recreated
  await cycle({ RxBytes: 0, InEngine: false }, t0 + 90_000); // not in the engine: no reading
  await cycle({ RxBytes: 20, InEngine: true }, t0 + 120_000);
  assert.deepEqual(starts, [t0, t0, t0 + 60_000, undefined, t0 + 120_000]);
});

test('a malformed or oversized status: the source goes down and the last good data is kept', async (t) => {
  const la = await localApi(t, { statusBody: () => STATUS });
  const p = pipeline(t, { socket_path: la.socketPath, max_status_size: 2 * 1024 * 1024, timeout: '300ms' });
  const db = { ...SELF, device_id: 'nF2bq8LrXa11CNTRL', device_name: 'db-primary.tail4b7e2.ts.net' };
  await p.service.collectNow();
  assert.equal(one(await p.page(), 'tailscale_peer_online', db), 1);
  const failing: Array<[string, Parameters<LocalApiSimulator['setFault']>[1]]> = [
    ['decode', { kind: 'body', body: '{"BackendState": "Running", "Peer": {' }],
    ['decode', { kind: 'body', body: '[1, 2, 3]' }],
    ['http_status', { kind: 'status', status: 500 }],
    ['too_large', { kind: 'oversize', bytes: 4 * 1024 * 1024 }],
    ['parse', { kind: 'body', body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }],
    ['timeout', { kind: 'hang' }],
    ['limit', { kind: 'body', body: `{"Peer":{},"Pad":[${'[],'.repeat(400_001)}[]]}` }],
  ];
  for (const [kind, fault] of failing) {
    la.setFault('/localapi/v0/status', fault);
    await p.service.collectNow();
    const f = await p.page();
    assert.equal(one(f, 'tsmetrics_source_up', { source: 'local_tailscaled' }), 0, `${kind}: source down`);
    assert.ok((one(f, 'tsmetrics_component_errors_total', { component_id: 'local_tailscaled', error_type: kind }) ?? 0) >= 1, `${kind} counted`);
    // Last good data, exactly as tailscale_api keeps its last inventory.
    assert.equal(one(f, 'tailscale_peer_online', db), 1, `${kind}: last good peer series kept`);
    assert.equal(samples(f, 'tailscale_peer_info').length, 9);
  }
  assert.equal(p.lines.filter((l) => l.includes('reading the LocalAPI status failed')).length, failing.length - 1, 'logged once per kind of outage (two decode faults in a row log once)');
  la.setFault('/localapi/v0/status', undefined);
  await p.service.collectNow();
  assert.equal(one(await p.page(), 'tsmetrics_source_up', { source: 'local_tailscaled' }), 1);

  // With no good status yet there is nothing to keep: no peer or node series, never zeros —
  // only self-telemetry, saying the source is down.
  const la2 = await localApi(t, { statusBody: () => 'not json' });
  const p2 = pipeline(t, { socket_path: la2.socketPath });
  await p2.service.collectNow();
  const page2 = await renderPrometheus(p2.service);
  assert.doesNotMatch(page2, /^tailscale_(peer|node)_/m);
  assert.match(page2, /^tsmetrics_source_up\{source="local_tailscaled"\} 0$/m);
  assert.equal(p2.service.telemetry.status().get('local_tailscaled')?.up, false);
});

test('decoded defensively: unknown and missing fields, wrong types, a malformed peer fails only itself', async (t) => {
  const status = structuredClone(fx);
  const db = 'nodekey:f5bab616f27e59f666f30e557a3a1b40569d3b5e4bd2a61c981b6b7cb8091788';
  const build01 = 'nodekey:3a60a76bae813ce8bc7f23f4298858e5e6b8f7153bf95c89a3bc2c9785ca6fc2';
  const exit = 'nodekey:76114bc29929241ee17f20efa1b1dbb2048b992e999726069f869d84cefddf94';
  Object.assign(status.Peer[db] as Json, { Online: 'yes', RxBytes: 'lots', LastHandshake: 1234, KeyExpiry: 'soon', Tags: 'tag:db', FutureField: { Nested: [1, 2, 3] } });
  status.Peer[build01] = { ID: 'nT1fm5HxKd11CNTRL' };
  status.Peer['nodekey:00'] = 'not an object' as unknown as Json;
  status.Peer['nodekey:01'] = { HostName: 'no-id' };
  status.Peer['nodekey:02'] = { ID: 42 };
  // A second entry for one stable id would print every series twice.
  status.Peer['nodekey:ffff'] = { ...(status.Peer[exit] as Json), HostName: 'clone' };
  status.Health = ['x', 17, null, { a: 1 }];
  status.TailscaleIPs = ['100.101.7.12', 'not-an-ip', 5];
  status.UnknownTopLevel = { whatever: true };
  const la = await localApi(t, { statusBody: () => JSON.stringify(status) });
  const p = pipeline(t, { socket_path: la.socketPath });
  await p.service.collectNow();
  const f = await p.page();
  assert.equal(one(f, 'tsmetrics_source_up', { source: 'local_tailscaled' }), 1, 'bad peers do not fail the source');
  assert.equal(one(f, 'tsmetrics_localapi_peers_malformed', SELF), 4);
  assert.equal(samples(f, 'tailscale_peer_info').length, 9);
  const dbId = { ...SELF, device_id: 'nF2bq8LrXa11CNTRL', device_name: 'db-primary.tail4b7e2.ts.net' };
  // Wrong types count as absent; the rest of the peer is still reported.
  assert.equal(one(f, 'tailscale_peer_online', dbId), undefined);
  assert.equal(one(f, 'tailscale_peer_received_bytes_total', dbId), undefined);
  assert.equal(one(f, 'tailscale_peer_sent_bytes_total', dbId), 1298374650);
  assert.equal(one(f, 'tailscale_peer_last_handshake_timestamp', dbId), undefined);
  assert.equal(samples(f, 'tailscale_peer_info', dbId)[0]?.labels.tags, '');
  // A peer with only an id: named by its id, no path facts, so idle.
  const bare = { ...SELF, device_id: 'nT1fm5HxKd11CNTRL', device_name: 'nT1fm5HxKd11CNTRL' };
  assert.equal(samples(f, 'tailscale_peer_path', bare)[0]?.labels.path, 'idle');
  assert.equal(one(f, 'tailscale_peer_online', bare), undefined);
  // The exit node kept its first entry (by map key), unaffected by the clone.
  const exitId = { ...SELF, device_id: 'nX9ud4SqLe11CNTRL', device_name: 'exit-waw.tail4b7e2.ts.net' };
  assert.equal(samples(f, 'tailscale_peer_info', exitId)[0]?.labels.host_name, 'exit-waw');
  assert.equal(one(f, 'tailscale_peer_received_bytes_total', exitId), 19337204811);
  assert.deepEqual(samples(f, 'tailscale_node_health_warnings', SELF).map((s) => s.value), [1]);
  assert.deepEqual(samples(f, 'tailscale_node_address', SELF).map((s) => s.labels.address), ['100.101.7.12']);
  assert.ok((one(f, 'tsmetrics_component_errors_total', { component_id: 'local_tailscaled', error_type: 'decode' }) ?? 0) >= 1);
});

/** A status with `n` peers built from the fixture's db-primary, in reverse id order. */
function bigStatus(n: number, garbage = 0): string {
  const template = fx.Peer['nodekey:f5bab616f27e59f666f30e557a3a1b40569d3b5e4bd2a61c981b6b7cb8091788'] as Json;
  const peer: Record<string, unknown> = {};
  for (let i = n - 1; i >= 0; i--) {
    const id = `nP${String(i).padStart(6, '0')}CNTRL`;
    peer[`nodekey:${i.toString(16).padStart(64, '0')}`] = { ...template, ID: id, HostName: `host-${i}`, DNSName: `host-${i}.tail4b7e2.ts.net.`, Online: i % 10 !== 0, CurAddr: i % 3 === 0 ? '' : template.CurAddr, RxBytes: i * 1000 };
  }
  for (let i = 0; i < garbage; i++) peer[`nodekey:bad${i}`] = i % 2 ? null : { HostName: 'no id' };
  return JSON.stringify({ ...fx, Peer: peer });
}

test('thousands of peers: max_peers reports the first by stable id, the overflow is counted, aggregates count all', async (t) => {
  const la = await localApi(t, { statusBody: () => bigStatus(5000, 2000) });
  const p = pipeline(t, { socket_path: la.socketPath, max_peers: 1000 });
  await p.service.collectNow();
  const f = await p.page();
  const info = samples(f, 'tailscale_peer_info');
  assert.equal(info.length, 1000);
  assert.deepEqual(new Set(info.map((s) => s.labels.device_id)), new Set(Array.from({ length: 1000 }, (_, i) => `nP${String(i).padStart(6, '0')}CNTRL`)));
  assert.equal(one(f, 'tsmetrics_localapi_peers_over_limit', SELF), 4000);
  assert.equal(one(f, 'tsmetrics_localapi_peers_malformed', SELF), 2000);
  const byPath = samples(f, 'tailscale_node_peers_by_path', SELF).reduce((a, s) => a + s.value, 0);
  assert.equal(byPath, 5000);
  assert.equal(one(f, 'tailscale_node_peers', { ...SELF, online: 'false' }), 500);
  assert.equal(one(f, 'tsmetrics_component_errors_total', { component_id: 'local_tailscaled', error_type: 'limit' }), 1);
  assert.equal(p.lines.filter((l) => l.includes('more peers than max_peers')).length, 1);
  await p.service.collectNow();
  assert.equal(p.lines.filter((l) => l.includes('more peers than max_peers')).length, 1, 'logged once while it lasts');

  // max_peers 0: aggregates only.
  const p0 = pipeline(t, { socket_path: la.socketPath, max_peers: 0 });
  await p0.service.collectNow();
  const f0 = await p0.page();
  assert.equal(f0.get('tailscale_peer_info'), undefined);
  assert.equal(one(f0, 'tsmetrics_localapi_peers_over_limit', SELF), 5000);
  // The decoder alone: every well-formed entry, sorted, once.
  const st = decodeStatus(bigStatus(5000, 10));
  assert.equal(st.peers.length, 5000);
  assert.equal(st.malformed, 10);
  assert.equal(st.peers[0]?.id, 'nP000000CNTRL');
});

test('clientmetrics are opt-in: never requested by default; an allow-list picks names and keeps their types', async (t) => {
  const la = await localApi(t, { statusBody: () => STATUS, clientMetricsBody: () => CLIENT_METRICS });
  const off = pipeline(t, { socket_path: la.socketPath });
  await off.service.collectNow();
  assert.equal(la.requests.get('/localapi/v0/metrics'), undefined, 'the endpoint is not called');
  assert.ok(![...(await off.page()).keys()].some((n) => n.startsWith('tailscaled_clientmetric_')));

  const on = pipeline(t, { socket_path: la.socketPath, client_metrics: ['magicsock_*_derp', 'controlclient_map_requests_active', 'localbackend_peer_wireguard_state_*'] });
  await on.service.collectNow();
  const f = await on.page();
  const got = [...f.values()].filter((x) => x.name.startsWith('tailscaled_clientmetric_')).map((x) => [x.name, x.type, x.samples[0]?.value]);
  assert.deepEqual(got.sort(), [
    ['tailscaled_clientmetric_controlclient_map_requests_active', 'gauge', 1],
    ['tailscaled_clientmetric_localbackend_peer_wireguard_state_established', 'gauge', 6],
    ['tailscaled_clientmetric_localbackend_peer_wireguard_state_handshake', 'gauge', 0],
    ['tailscaled_clientmetric_magicsock_recv_data_derp_total', 'counter', 71524],
    ['tailscaled_clientmetric_magicsock_send_data_derp_total', 'counter', 80311],
  ]);
  assert.deepEqual(f.get('tailscaled_clientmetric_magicsock_recv_data_derp_total')?.samples[0]?.labels, { device_id: SELF.observer_id, device_name: SELF.observer_name });

  // Without LocalAPI write access tailscaled answers 403: status data stays fresh, the part is
  // absent (it never succeeded), the source says it failed.
  la.setFault('/localapi/v0/metrics', { kind: 'status', status: 403, body: 'clientmetrics access denied\n' });
  const denied = pipeline(t, { socket_path: la.socketPath, client_metrics: ['magicsock_*'] });
  await denied.service.collectNow();
  const d = await denied.page();
  assert.equal(samples(d, 'tailscale_peer_info').length, 9);
  assert.ok(![...d.keys()].some((n) => n.startsWith('tailscaled_clientmetric_')));
  assert.equal(one(d, 'tsmetrics_source_up', { source: 'local_tailscaled' }), 0);
  assert.equal(one(d, 'tsmetrics_component_errors_total', { component_id: 'local_tailscaled', error_type: 'http_status' }), 1);
  assert.ok(denied.lines.some((l) => l.includes('write access')));
});

test('identity: peers the inventory knows carry the API id and name, joined on the stable node id', async (t) => {
  const api = (id: string, nodeId: string, name: string) => ({ id, nodeId, name, hostname: name.split('.')[0], addresses: [], authorized: true, connectedToControl: true });
  const sim = new TailnetSimulator({ deviceServers: false, devices_json: [api('7001', 'nF2bq8LrXa11CNTRL', 'db-primary.northwind.example'), api('7002', 'nW7kx3QfTe11CNTRL', 'workstation.northwind.example')] });
  await sim.start();
  t.after(() => sim.stop());
  const la = await localApi(t, { statusBody: () => STATUS });
  const p = pipeline(t, { socket_path: la.socketPath }, { receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } } });
  await p.service.collectNow();
  const f = await p.page();
  const me = { observer_id: '7002', observer_name: 'workstation.northwind.example' };
  assert.equal(one(f, 'tailscale_node_online', me), 1);
  assert.equal(one(f, 'tailscale_peer_online', { ...me, device_id: '7001', device_name: 'db-primary.northwind.example' }), 1);
  // Unknown to the inventory: stable id and MagicDNS name.
  assert.equal(one(f, 'tailscale_peer_online', { ...me, device_id: 'nX9ud4SqLe11CNTRL', device_name: 'exit-waw.tail4b7e2.ts.net' }), 1);
  assert.equal(samples(f, 'tailscale_peer_info', { device_id: '7001' })[0]?.labels.node_id, 'nF2bq8LrXa11CNTRL');
});

test('the LocalAPI simulator follows the simulated tailnet: paths change, handshakes age, counters restart, a peer drops offline', async (t) => {
  let now = Date.UTC(2026, 7, 24, 0, 0);
  const sim = new TailnetSimulator({ devices: 12, deviceServers: false, ephemeralLifetimeMs: 0, now: () => now });
  await sim.start();
  t.after(() => sim.stop());
  const la = new LocalApiSimulator({ tailnet: sim, now: () => now });
  await la.start();
  const dir = dirname(la.socketPath);
  t.after(async () => {
    await la.stop();
    assert.equal(existsSync(dir), false, 'the socket directory is removed');
  });
  const p = pipeline(t, { socket_path: la.socketPath, usermetrics: true }, { now: () => now, receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } } });
  const apiIds = new Map(sim.apiDevices().map((d) => [d.id, d]));
  const self = sim.devices[1]?.api.id as string;
  const paths = new Map<string, Set<string>>();
  const last = new Map<string, { rx?: number; hs?: number; at: number; path?: string }>();
  let pathChanges = 0;
  let resets = 0;
  let agedHandshakes = 0;
  const offlineButApiOnline = new Set<string>();
  for (let step = 0; step < 144; step++, now += 10 * 60_000) {
    await p.service.collectNow();
    const f = await p.page();
    const info = samples(f, 'tailscale_peer_info');
    if (step === 0) {
      assert.deepEqual(new Set(info.map((s) => s.labels.observer_id)), new Set([self]), 'observed from the self device');
      // Every authorized device but self is a peer, named by its API id.
      const expected = [...apiIds.values()].filter((d) => d.id !== self && d.authorized !== false).map((d) => d.id).sort();
      assert.deepEqual(info.map((s) => s.labels.device_id).sort(), expected);
      assert.ok(samples(f, 'tailscaled_inbound_bytes_total', { device_id: self }).length > 0, 'usermetrics of the self device');
    }
    for (const s of samples(f, 'tailscale_peer_path')) {
      const id = s.labels.device_id as string;
      (paths.get(id) ?? paths.set(id, new Set()).get(id))?.add(s.labels.path as string);
      const rx = one(f, 'tailscale_peer_received_bytes_total', { device_id: id });
      const hs = one(f, 'tailscale_peer_last_handshake_timestamp', { device_id: id });
      const prev = last.get(id);
      if (prev?.path !== undefined && prev.path !== s.labels.path) pathChanges++;
      if (prev?.rx !== undefined && rx !== undefined && rx < prev.rx) resets++;
      if (prev?.hs !== undefined && hs === prev.hs && prev.path === 'idle' && s.labels.path === 'idle') agedHandshakes++;
      if (s.labels.path === 'offline' && apiIds.get(id)?.connectedToControl === true) offlineButApiOnline.add(id);
      last.set(id, { ...(rx !== undefined ? { rx } : {}), ...(hs !== undefined ? { hs } : {}), at: now, path: s.labels.path as string });
    }
  }
  const seen = new Set([...paths.values()].flatMap((s) => [...s]));
  assert.deepEqual([...seen].sort(), ['derp', 'direct', 'idle', 'offline', 'peer_relay']);
  assert.ok(pathChanges > 20, `paths change now and then (${pathChanges})`);
  assert.ok(resets > 0, 'a WireGuard peer was recreated and its counter restarted');
  assert.ok(agedHandshakes > 0, 'an idle peer’s handshake stays put while time passes');
  assert.ok(offlineButApiOnline.size > 0, 'a peer dropped offline');
});

test('demo wiring: TailnetSimulator({ localApi: true }) feeds the env-built pipeline every metric the Connectivity dashboard and alerts use', async (t) => {
  const sim = new TailnetSimulator({ devices: 12, ephemeralLifetimeMs: 120_000, flakyDeviceIndex: 6, localApi: true });
  await sim.start();
  const socket = sim.localApi?.socketPath ?? '';
  t.after(async () => {
    await sim.stop();
    assert.equal(existsSync(dirname(socket)), false, 'the simulator removed its socket directory');
  });
  assert.equal(sim.env().TS_LOCALAPI_SOCKET, socket);
  const running = await startTsmetrics({ env: { ...sim.env(), LOG_LEVEL: 'error' }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  await waitFor(async () => (await http(`${running.url}/ready`)).status === 200);
  const page = families((await http(`${running.url}/metrics`)).body);
  const produced = new Set([...page.values()].flatMap((f) => f.samples.map((s) => s.name)));
  const names = (expr: string): string[] => [...expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/\b((?:tailscale|tailscaled|tsmetrics)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1] as string);
  const dash = JSON.parse(readFileSync(new URL('../deploy/grafana/tsmetrics-connectivity.json', import.meta.url), 'utf8')) as { uid: string; panels: Array<{ targets?: Array<{ expr: string }> }>; templating: { list: Array<{ query?: unknown }> } };
  assert.equal(dash.uid, 'tsmetrics-connectivity');
  const used = new Set<string>();
  for (const p of dash.panels) for (const x of p.targets ?? []) for (const nm of names(x.expr)) used.add(nm);
  for (const v of dash.templating.list) if (typeof v.query === 'string') for (const nm of names(v.query)) used.add(nm);
  const rules = parseYaml(readFileSync(new URL('../deploy/prometheus/alerts.yaml', import.meta.url), 'utf8')) as { groups: Array<{ name: string; rules: Array<{ expr: string }> }> };
  for (const r of rules.groups.find((g) => g.name === 'tailscale-connectivity')?.rules ?? []) for (const nm of names(r.expr)) used.add(nm);
  assert.ok(used.size >= 15, `${used.size} names`);
  assert.deepEqual([...used].filter((nm) => !produced.has(nm)), [], 'used but not produced');
  // Peers are the simulated devices, named by their API ids.
  const ids = new Set(sim.apiDevices().map((d) => d.id));
  const peers = samples(page, 'tailscale_peer_info');
  assert.ok(peers.length >= 9 && peers.every((s) => ids.has(s.labels.device_id as string)));
});

test('the per-node DaemonSet: only local_tailscaled, the host socket read-only, hardened; its pipeline runs against a LocalAPI socket', async (t) => {
  const docs = parseAllDocuments(readFileSync(new URL('../deploy/kubernetes-daemonset.yaml', import.meta.url), 'utf8')).map((d) => d.toJS() as Json);
  const ds = docs.find((d) => d.kind === 'DaemonSet') as { spec: { template: { spec: Json & { containers: Json[]; volumes: Json[]; securityContext: Json } } } };
  const cm = docs.find((d) => d.kind === 'ConfigMap') as { data: Record<string, string> };
  const pod = ds.spec.template.spec;
  const c = pod.containers[0] as Json & { securityContext: Json & { capabilities: { drop: string[] } }; volumeMounts: Json[]; args: string[] };
  const pipelineYaml = parseYaml(cm.data['pipeline.yaml'] as string) as { receivers: Record<string, { socket_path: string }>; service: { pipelines: Record<string, { receivers: string[] }> } };
  assert.deepEqual(Object.keys(pipelineYaml.receivers), ['local_tailscaled']);
  assert.deepEqual(Object.values(pipelineYaml.service.pipelines).flatMap((p) => p.receivers), ['local_tailscaled']);
  const socketDir = dirname(pipelineYaml.receivers.local_tailscaled?.socket_path ?? '');
  const mount = c.volumeMounts.find((m) => m.mountPath === socketDir);
  assert.equal(mount?.readOnly, true, 'the socket directory is mounted read-only');
  assert.deepEqual((pod.volumes.find((v) => v.name === mount?.name) as { hostPath: Json }).hostPath, { path: '/var/run/tailscale', type: 'Directory' });
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.deepEqual(c.args.slice(1), ['--config', '/etc/tsmetrics/pipeline.yaml']);

  // The same pipeline, pointed at a LocalAPI socket and loopback, runs and serves the node's peers.
  const la = await localApi(t, { statusBody: () => STATUS, userMetricsBody: () => USER_METRICS });
  const dir = dirname(la.socketPath);
  const file = `${dir}/pipeline.yaml`;
  writeFileSync(file, cm.data['pipeline.yaml']?.replace('/var/run/tailscale/tailscaled.sock', la.socketPath).replace('address: 0.0.0.0', 'address: 127.0.0.1') ?? '');
  const running = await startTsmetrics({ env: { ENV: 'production' }, configFile: file, port: 0, write: () => undefined });
  t.after(() => running.stop());
  for (const probe of [c.livenessProbe, c.readinessProbe] as Array<{ httpGet: { path: string } }>) {
    await waitFor(async () => (await http(`${running.url}${probe.httpGet.path}`)).status === 200);
  }
  const page = families((await http(`${running.url}/metrics`)).body);
  assert.equal(samples(page, 'tailscale_peer_info').length, 9);
  assert.equal(one(page, 'tailscale_node_backend_state', { ...SELF, state: 'Running' }), 1);
});
