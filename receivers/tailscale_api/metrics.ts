import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchBuilder } from '../../src/model/batch.ts';
import { boundLabel } from '../../src/model/labels.ts';
import { keyLabel, keyPart, type AttributeInterner, type InternGroup } from '../../src/model/intern.ts';
import type { ApiDeviceRecord } from './decode.ts';

/** Every metric this receiver emits: name, HELP text and the API field it comes from. */
export const API_METRICS = {
  count: ['tailscale_device_count', 'Number of devices in the tailnet.', 'length of devices[]'],
  info: ['tailscale_device_info', 'Device metadata (value is always 1).', 'id, name, online, os, clientVersion'],
  online: ['tailscale_device_online', 'Whether the device is connected to the control plane (1) or not (0).', 'connectedToControl (else lastSeen within 10m)'],
  authorized: ['tailscale_device_authorized', 'Whether the device is authorized (1) or awaiting approval (0).', 'authorized'],
  lastSeen: ['tailscale_device_last_seen_timestamp', 'Unix time the device was last seen; only sent while it is disconnected.', 'lastSeen'],
  user: ['tailscale_device_user', 'Owner of the device (value is always 1).', 'user'],
  keyExpiry: ['tailscale_device_machine_key_expiry', 'Unix time the node key expires; 0 when expiry is disabled or unset.', 'expires, keyExpiryDisabled'],
  keyExpiryDisabled: ['tailscale_device_key_expiry_disabled', 'Whether node key expiry is disabled.', 'keyExpiryDisabled'],
  updateAvailable: ['tailscale_device_update_available', 'Whether a newer Tailscale client is available.', 'updateAvailable'],
  created: ['tailscale_device_created_timestamp', 'Unix time the device joined the tailnet.', 'created'],
  external: ['tailscale_device_external', 'Whether the device is shared in from another tailnet.', 'isExternal'],
  blocksIncoming: ['tailscale_device_blocks_incoming_connections', 'Whether the device blocks incoming connections (shields up).', 'blocksIncomingConnections'],
  ephemeral: ['tailscale_device_ephemeral', 'Whether the device is ephemeral.', 'isEphemeral'],
  multipleConnections: ['tailscale_device_multiple_connections', 'Whether several live connections share the node key (cloned node state).', 'multipleConnections'],
  lockError: ['tailscale_device_tailnet_lock_error', 'Whether the device reports a tailnet lock error.', 'tailnetLockError'],
  sshEnabled: ['tailscale_device_ssh_enabled', 'Whether Tailscale SSH is enabled on the device.', 'sshEnabled'],
  tags: ['tailscale_device_tags', 'A tag of the device (value is always 1).', 'tags'],
  routesAdvertised: ['tailscale_device_routes_advertised', 'A route the device advertises (value is always 1).', 'advertisedRoutes'],
  routesEnabled: ['tailscale_device_routes_enabled', 'A route approved for the device (value is always 1).', 'enabledRoutes'],
  routesUnapproved: ['tailscale_device_routes_unapproved', 'A route the device advertises that is not approved (value is always 1).', 'advertisedRoutes − enabledRoutes'],
  exitNode: ['tailscale_device_exit_node', 'Whether the device is an approved exit node.', 'enabledRoutes ∋ 0.0.0.0/0 or ::/0'],
  exitNodeOption: ['tailscale_device_exit_node_option', 'Whether the device offers itself as an exit node.', 'advertisedRoutes ∋ 0.0.0.0/0 or ::/0'],
  subnetRouter: ['tailscale_device_subnet_router', 'Whether the device routes an approved subnet.', 'enabledRoutes with a non-exit route'],
  latency: ['tailscale_device_latency_ms', 'Latency from the device to a DERP region, milliseconds.', 'clientConnectivity.latency'],
  endpoints: ['tailscale_device_endpoints_total', 'Number of UDP endpoints the device reports.', 'clientConnectivity.endpoints'],
  clientSupports: ['tailscale_device_client_supports', 'Whether the device’s network supports a feature (hairpinning, ipv6, pcp, pmp, udp, upnp).', 'clientConnectivity.clientSupports'],
  hardNat: ['tailscale_device_mapping_varies_by_dest_ip', 'Whether the device is behind a NAT whose mapping varies by destination (hard NAT).', 'clientConnectivity.mappingVariesByDestIP'],
  posture: ['tailscale_device_posture_serial_numbers_total', 'Number of serial numbers in the device’s posture identity.', 'postureIdentity.serialNumbers'],
} as const satisfies Record<string, readonly [string, string, string]>;

const EXIT_ROUTES = new Set(['0.0.0.0/0', '::/0']);
const ZERO_TIME_MS = Date.UTC(1, 0, 1);
/** Without `connectedToControl`, a device seen this recently counts as online. */
export const LAST_SEEN_ONLINE_MS = 10 * 60_000;

/** Parses an RFC 3339 time; undefined for empty, zero (0001-01-01) or invalid values. */
export function apiTime(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t) || t <= ZERO_TIME_MS || v.startsWith('0001-01-01')) return undefined;
  return t;
}

/**
 * Online status: `connectedToControl` when the API sends it, else `lastSeen` within 10 minutes.
 * Headscale's /api/v2 sends neither for a connected node (its `lastSeen` is only set while a node
 * is offline), so a full record (it has `created`) without `lastSeen` counts as online; Tailscale
 * always sends both, and a bare record stays "not known to be online".
 */
export function isOnline(d: ApiDeviceRecord, nowMs: number): boolean {
  if (d.connectedToControl !== undefined) return d.connectedToControl;
  if (d.lastSeen === undefined && d.created !== undefined) return true;
  const seen = apiTime(d.lastSeen);
  return seen !== undefined && nowMs - seen < LAST_SEEN_ONLINE_MS;
}

export interface BuildOptions {
  /** Keeps each series' attributes object across cycles (see src/model/intern.ts). */
  interner?: AttributeInterner;
  nowMs: number;
  includeUserEmail: boolean;
  tailnetLabel: string;
  maxLabel: number;
  resource: Attributes;
  scopeVersion: string;
}

const b01 = (v: boolean | undefined): number => (v ? 1 : 0);

/** The labels that say which device a series is of: its interning group. */
const IDENTITY = new Set(['device_id', 'device_name', 'tailnet']);

/** Turns one device list into the receiver's snapshot batch. */
export function buildApiBatch(devices: readonly ApiDeviceRecord[], o: BuildOptions): ResourceMetrics {
  const bb = new BatchBuilder(o.resource, { name: 'tsmetrics/tailscale_api', version: o.scopeVersion });
  const interner = o.interner;
  // The interning group of the device being written (its identity labels), made once per
  // device: a group string built and hashed per series was a tenth of a 10,000-device cycle.
  let scope: InternGroup | undefined;
  const enter = (identity: Attributes): void => {
    if (!interner) return;
    let group = '';
    for (const k in identity) if (IDENTITY.has(k)) group += keyLabel(k, String(identity[k]));
    scope = interner.group(group);
  };
  // Each metric's add() interns its attributes so unchanged series keep their object. Made once
  // per metric, when the batch first has a point for it (a metric without points stays out).
  const adders = new Map<keyof typeof API_METRICS, { add(attrs: Attributes, value: number, t: number): void }>();
  const g = (k: keyof typeof API_METRICS) => {
    let a = adders.get(k);
    if (a) return a;
    const m = bb.gauge(API_METRICS[k][0], API_METRICS[k][1]);
    const bare = keyPart(API_METRICS[k][0]);
    a = !interner
      ? m
      : {
          // The key: the metric and the labels beyond the device's identity (the group).
          add: (attrs: Attributes, value: number, t: number) => {
            let key = bare;
            for (const k in attrs) if (!IDENTITY.has(k)) key += keyLabel(k, String(attrs[k]));
            m.add((scope as InternGroup).intern(key, attrs), value, t);
          },
        };
    adders.set(k, a);
    return a;
  };
  const t = o.nowMs;
  const L = (v: string): string => boundLabel(v, o.maxLabel);
  const base: Attributes = o.tailnetLabel ? { tailnet: L(o.tailnetLabel) } : {};
  enter(base);
  g('count').add({ ...base }, devices.length, t);
  for (const d of devices) {
    const id: Attributes = { ...base, device_id: L(d.id), device_name: L(d.name ?? d.hostname ?? d.id) };
    enter(id);
    const online = isOnline(d, t);
    g('info').add({ ...id, online: online ? 'true' : 'false', os: L(d.os ?? ''), version: L(d.clientVersion ?? '') }, 1, t);
    g('online').add(id, b01(online), t);
    if (d.authorized !== undefined) g('authorized').add(id, b01(d.authorized), t);
    const seen = apiTime(d.lastSeen);
    if (seen !== undefined) g('lastSeen').add(id, Math.floor(seen / 1000), t);
    if (o.includeUserEmail && d.user) g('user').add({ ...id, user_email: L(d.user) }, 1, t);
    const exp = apiTime(d.expires);
    if (d.keyExpiryDisabled !== undefined || d.expires !== undefined) g('keyExpiry').add(id, d.keyExpiryDisabled || exp === undefined ? 0 : Math.floor(exp / 1000), t);
    if (d.keyExpiryDisabled !== undefined) g('keyExpiryDisabled').add(id, b01(d.keyExpiryDisabled), t);
    if (d.updateAvailable !== undefined) g('updateAvailable').add(id, b01(d.updateAvailable), t);
    const created = apiTime(d.created);
    if (created !== undefined) g('created').add(id, Math.floor(created / 1000), t);
    if (d.isExternal !== undefined) g('external').add(id, b01(d.isExternal), t);
    if (d.blocksIncomingConnections !== undefined) g('blocksIncoming').add(id, b01(d.blocksIncomingConnections), t);
    if (d.isEphemeral !== undefined) g('ephemeral').add(id, b01(d.isEphemeral), t);
    // The API omits multipleConnections unless it is true.
    g('multipleConnections').add(id, b01(d.multipleConnections), t);
    if (d.tailnetLockError !== undefined) g('lockError').add(id, d.tailnetLockError ? 1 : 0, t);
    if (d.sshEnabled !== undefined) g('sshEnabled').add(id, b01(d.sshEnabled), t);
    for (const tag of d.tags ?? []) g('tags').add({ ...id, tag: L(tag) }, 1, t);
    const adv = d.advertisedRoutes;
    const en = d.enabledRoutes;
    if (adv) for (const r of adv) g('routesAdvertised').add({ ...id, route: L(r) }, 1, t);
    if (en) for (const r of en) g('routesEnabled').add({ ...id, route: L(r) }, 1, t);
    if (adv && en) {
      const enabled = new Set(en);
      for (const r of adv) if (!enabled.has(r)) g('routesUnapproved').add({ ...id, route: L(r) }, 1, t);
    }
    if (en) {
      g('exitNode').add(id, b01(en.some((r) => EXIT_ROUTES.has(r))), t);
      g('subnetRouter').add(id, b01(en.some((r) => !EXIT_ROUTES.has(r))), t);
    }
    if (adv) g('exitNodeOption').add(id, b01(adv.some((r) => EXIT_ROUTES.has(r))), t);
    const cc = d.connectivity;
    if (cc) {
      for (const l of cc.latency) g('latency').add({ ...id, derp_region: L(l.region), preferred: l.preferred ? 'true' : 'false' }, l.latencyMs, t);
      if (cc.endpoints !== undefined) g('endpoints').add(id, cc.endpoints, t);
      for (const f of cc.clientSupports) g('clientSupports').add({ ...id, feature: f.feature }, b01(f.value), t);
      if (cc.mappingVariesByDestIP !== undefined) g('hardNat').add(id, b01(cc.mappingVariesByDestIP), t);
    }
    if (d.postureSerials !== undefined) g('posture').add(id, d.postureSerials, t);
  }
  interner?.commit();
  return bb.build();
}
