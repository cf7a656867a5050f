import type { Attributes } from '@opentelemetry/api';
import type { BatchBuilder, MetricBuilder } from '../../src/model/batch.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import { keyLabel, keyPart, type AttributeInterner } from '../../src/model/intern.ts';
import { boundLabel } from '../../src/model/labels.ts';
import type { StartTimeTracker } from '../device_metrics/convert.ts';
import { BACKEND_STATES, PEER_PATHS, derivePath, healthCode, type LocalStatus, type PeerPath, type PeerRecord } from './status.ts';

/**
 * Every series built from `/localapi/v0/status`: name, HELP and the status field it comes from
 * (the README's metric table follows this list). Node series carry `observer_id` and
 * `observer_name` (the node whose LocalAPI was read); peer series add the peer's `device_id`
 * and `device_name`, named as the `tailscale_api` receiver names devices.
 */
export const STATUS_METRICS = {
  nodeInfo: ['tailscale_node_info', 'The node whose LocalAPI is read (value is always 1).', 'Self.ID, Self.HostName, Self.OS, Version, TUN, Self.Relay, CurrentTailnet'],
  nodeAddress: ['tailscale_node_address', 'A Tailscale IP of the node (value is always 1).', 'TailscaleIPs'],
  nodeState: ['tailscale_node_backend_state', 'Whether the node’s backend is in this state (1) or not (0); exactly one state is 1.', 'BackendState'],
  nodeOnline: ['tailscale_node_online', 'Whether the node is in a live map poll with the coordination server.', 'Self.Online'],
  nodeKeyExpiry: ['tailscale_node_key_expiry_timestamp', 'Unix time the node’s own key expires (absent when it never expires).', 'Self.KeyExpiry'],
  nodeHealth: ['tailscale_node_health_warnings', 'Health warnings the node reports, by stable warning code.', 'Health'],
  peersByPath: ['tailscale_node_peers_by_path', 'Peers of the node by current connection path.', 'Peer[*]: CurAddr, PeerRelay, Active, Relay, Online'],
  peersByOnline: ['tailscale_node_peers', 'Peers of the node by control-plane presence.', 'Peer[*].Online'],
  overLimit: ['tsmetrics_localapi_peers_over_limit', 'Peers in the last status not reported one by one because of max_peers (the aggregates still count them).', 'length of Peer − max_peers'],
  malformed: ['tsmetrics_localapi_peers_malformed', 'Peer entries in the last status that could not be used (not an object, no ID, a second entry for one ID).', 'Peer'],
  peerInfo: ['tailscale_peer_info', 'A peer as the node sees it (value is always 1).', 'Peer[*].ID, HostName, OS, Tags'],
  peerOnline: ['tailscale_peer_online', 'Whether the peer is connected to the coordination server (not data-plane reachability).', 'Peer[*].Online'],
  peerActive: ['tailscale_peer_active', 'Whether the node sent to the peer within the last 45 seconds.', 'Peer[*].Active'],
  peerPath: ['tailscale_peer_path', 'Current connection path to the peer (value is always 1): direct, peer_relay, derp (with derp_region), idle or offline.', 'Peer[*]: CurAddr, PeerRelay, Active, Relay, Online'],
  peerRx: ['tailscale_peer_received_bytes', 'WireGuard bytes received from the peer (restarts at 0 when the WireGuard peer is recreated).', 'Peer[*].RxBytes while InEngine'],
  peerTx: ['tailscale_peer_sent_bytes', 'WireGuard bytes sent to the peer (restarts at 0 when the WireGuard peer is recreated).', 'Peer[*].TxBytes while InEngine'],
  peerHandshake: ['tailscale_peer_last_handshake_timestamp', 'Unix time of the last WireGuard handshake with the peer (absent when there was none).', 'Peer[*].LastHandshake'],
  peerLastSeen: ['tailscale_peer_last_seen_timestamp', 'Unix time control last saw the peer; only while it is offline.', 'Peer[*].LastSeen'],
  peerKeyExpiry: ['tailscale_peer_key_expiry_timestamp', 'Unix time the peer’s node key expires (absent when it never expires).', 'Peer[*].KeyExpiry'],
  peerExpired: ['tailscale_peer_key_expired', 'Whether the peer’s node key has expired.', 'Peer[*].Expired'],
  peerExitNode: ['tailscale_peer_exit_node', 'Whether the peer is the node’s current exit node.', 'Peer[*].ExitNode'],
  peerExitOption: ['tailscale_peer_exit_node_option', 'Whether the peer offers an approved exit route.', 'Peer[*].ExitNodeOption'],
} as const satisfies Record<string, readonly [string, string, string]>;

type Key = keyof typeof STATUS_METRICS;

/** The identity a peer (or the node) is reported under. */
export interface Identity {
  readonly id: string;
  readonly name: string;
}

export interface StatusBuildContext {
  readonly out: BatchBuilder;
  readonly timeMs: number;
  /** `{observer_id, observer_name}`. */
  readonly observer: Attributes;
  /** Peers reported one by one; the rest only in the aggregates. */
  readonly maxPeers: number;
  readonly maxLabel: number;
  /** `device_id`/`device_name` of a peer: the inventory's when it knows the stable id. */
  identify(p: PeerRecord): Identity;
  /** Start times of the byte counters (reset when a value drops or the series was absent). */
  readonly tracker: StartTimeTracker;
  /** Keeps each series' attributes object across cycles. */
  readonly interner: AttributeInterner;
}

/** What the build left out, for the receiver's self-telemetry. */
export interface StatusBuildReport {
  readonly peersReported: number;
  readonly overLimit: number;
  /** Peer entries left out as unusable (including two peers with one identity). */
  readonly malformed: number;
}

const b01 = (v: boolean): number => (v ? 1 : 0);
const seconds = (ms: number): number => ms / 1000;

/**
 * A bounded label value. Long values are cut before `boundLabel` looks at them (it spreads the
 * string into code points) and copied afterwards, so a label never keeps a huge parsed string
 * alive through a V8 slice.
 */
export function label(v: string, max: number): string {
  if (v.length <= max) return boundLabel(v, max);
  const cut = boundLabel(v.length > 2 * max ? v.slice(0, 2 * max) : v, max);
  return Buffer.from(cut, 'utf8').toString('utf8');
}

/** The name tailscaled's own CLI would show: MagicDNS name without the root dot, else host name. */
export function displayName(p: PeerRecord): string {
  return p.dnsName !== '' ? p.dnsName.replace(/\.$/, '') : p.hostName !== '' ? p.hostName : p.id;
}

/** Writes the status series of one cycle into `ctx.out`. */
export function buildStatusMetrics(st: LocalStatus, ctx: StatusBuildContext): StatusBuildReport {
  const t = ctx.timeMs;
  const now = msToHrTime(t);
  const L = (v: string): string => label(v, ctx.maxLabel);
  const obsGroup = keyPart(String(ctx.observer.observer_id)) + keyPart(String(ctx.observer.observer_name));
  const m = (k: Key): MetricBuilder => {
    const [name, help] = STATUS_METRICS[k];
    return ctx.out.metric(name, help, k === 'peerRx' || k === 'peerTx' ? 'counter' : 'gauge');
  };
  // Node-level series: one group per observer, keyed by metric and extra labels.
  const node = (k: Key, extra: Attributes, value: number): void => {
    let key = keyPart(k);
    for (const e in extra) key += keyLabel(e, String(extra[e]));
    m(k).add(ctx.interner.intern(obsGroup, key, { ...ctx.observer, ...extra }), value, t);
  };

  const self = st.self;
  node(
    'nodeInfo',
    {
      node_id: L(self?.id ?? ''),
      host_name: L(self?.hostName ?? ''),
      os: L(self?.os ?? ''),
      version: L(st.version),
      tun: st.tun === undefined ? '' : String(st.tun),
      home_derp: L(self?.relay ?? ''),
      tailnet: L(st.tailnet?.name ?? ''),
      magicdns_suffix: L(st.tailnet?.magicDnsSuffix ?? ''),
    },
    1,
  );
  for (const a of st.tailscaleIps) node('nodeAddress', { address: a, family: a.includes(':') ? 'ipv6' : 'ipv4' }, 1);
  const known = (BACKEND_STATES as readonly string[]).includes(st.backendState);
  for (const s of BACKEND_STATES) node('nodeState', { state: s }, b01(st.backendState === s));
  if (!known) node('nodeState', { state: 'other' }, 1);
  if (self?.online !== undefined) node('nodeOnline', {}, b01(self.online));
  if (self?.keyExpiryMs !== undefined) node('nodeKeyExpiry', {}, seconds(self.keyExpiryMs));
  const codes = new Map<string, number>();
  for (const h of st.health) {
    const c = healthCode(h);
    codes.set(c, (codes.get(c) ?? 0) + 1);
  }
  // Entries beyond the cap are still counted, under one code.
  if (st.healthTotal > st.health.length) codes.set('overflow', (codes.get('overflow') ?? 0) + st.healthTotal - st.health.length);
  for (const [code, n] of codes) node('nodeHealth', { code }, n);

  // Aggregates count every well-formed peer, including those beyond max_peers.
  const byPath = new Map<PeerPath, number>(PEER_PATHS.map((p) => [p, 0]));
  let online = 0;
  let offline = 0;
  const paths = st.peers.map((p) => {
    const info = derivePath(p);
    byPath.set(info.path, (byPath.get(info.path) ?? 0) + 1);
    if (p.online === true) online++;
    else if (p.online === false) offline++;
    return info;
  });
  for (const [path, n] of byPath) node('peersByPath', { path }, n);
  node('peersByOnline', { online: 'true' }, online);
  node('peersByOnline', { online: 'false' }, offline);
  const reported = Math.min(st.peers.length, ctx.maxPeers);
  let duplicates = 0;
  const identities = new Set<string>();

  for (let i = 0; i < reported; i++) {
    const p = st.peers[i] as PeerRecord;
    const path = paths[i] as ReturnType<typeof derivePath>;
    const who = ctx.identify(p);
    const deviceId = L(who.id);
    const deviceName = L(who.name);
    const group = obsGroup + keyPart(deviceId) + keyPart(deviceName);
    // Two peers the inventory gives one identity would print the same series twice.
    if (identities.has(group)) {
      duplicates++;
      continue;
    }
    identities.add(group);
    const base = ctx.interner.intern(group, '', { ...ctx.observer, device_id: deviceId, device_name: deviceName });
    const peer = (k: Key, value: number): void => {
      m(k).add(base, value, t);
    };
    const peerWith = (k: Key, extra: Attributes): void => {
      let key = keyPart(k);
      for (const e in extra) key += keyLabel(e, String(extra[e]));
      m(k).add(ctx.interner.intern(group, key, { ...base, ...extra }), 1, t);
    };
    peerWith('peerInfo', { node_id: L(p.id), host_name: L(p.hostName), os: L(p.os), tags: L(p.tags.join(',')) });
    peerWith('peerPath', { path: path.path, ...(path.derpRegion ? { derp_region: L(path.derpRegion) } : {}), ...(path.family ? { family: path.family } : {}) });
    if (p.online !== undefined) peer('peerOnline', b01(p.online));
    if (p.active !== undefined) peer('peerActive', b01(p.active));
    // The WireGuard counters exist only while wireguard-go has the peer; outside that the zeros
    // are not readings. A series that was absent starts again with a new start time.
    if (p.inEngine !== false) {
      const counter = (k: 'peerRx' | 'peerTx', which: string, value: number | undefined): void => {
        if (value === undefined) return;
        const b = m(k);
        const s = ctx.tracker.series(keyPart(which) + group + keyPart(p.id), () => base);
        const point = { attributes: s.attrs, value, startTime: ctx.tracker.start(s, value, now), endTime: now };
        if (ctx.tracker.claim(s, point)) b.points.push(point);
      };
      counter('peerRx', 'rx', p.rxBytes);
      counter('peerTx', 'tx', p.txBytes);
    }
    if (p.lastHandshakeMs !== undefined) peer('peerHandshake', seconds(p.lastHandshakeMs));
    if (p.lastSeenMs !== undefined && p.online === false) peer('peerLastSeen', seconds(p.lastSeenMs));
    if (p.keyExpiryMs !== undefined) peer('peerKeyExpiry', seconds(p.keyExpiryMs));
    // Expired is omitempty: absent means not expired.
    peer('peerExpired', b01(p.expired === true));
    if (p.exitNode !== undefined) peer('peerExitNode', b01(p.exitNode));
    if (p.exitNodeOption !== undefined) peer('peerExitOption', b01(p.exitNodeOption));
  }
  node('overLimit', {}, st.peers.length - reported);
  node('malformed', {}, st.malformed + duplicates);
  return { peersReported: reported - duplicates, overLimit: st.peers.length - reported, malformed: st.malformed + duplicates };
}
