import type { Attributes } from '@opentelemetry/api';
import type { BatchBuilder } from '../../src/model/batch.ts';
import { keyLabel, keyPart, type AttributeInterner } from '../../src/model/intern.ts';
import { boundLabel } from '../../src/model/labels.ts';
import { API_METRICS } from '../tailscale_api/metrics.ts';
import type { HeadscaleApiKey, HeadscaleNode, HeadscalePreAuthKey, HeadscaleUser } from './decode.ts';

type Entry = readonly [name: string, help: string, source: string];
/** A `tailscale_device_*` metric whose meaning carries over: the Tailscale receiver's name and HELP, Headscale's source field. */
const shared = (k: keyof typeof API_METRICS, source: string): Entry => [API_METRICS[k][0], API_METRICS[k][1], source];

/**
 * Every metric this receiver emits: name, HELP and the Headscale field it comes from. The
 * `tailscale_device_*` ones keep the Tailscale receiver's names, HELP and labels so dashboards
 * and alerts work unchanged; those Headscale has no field for are never emitted.
 */
export const HEADSCALE_METRICS = {
  count: shared('count', 'length of nodes[]'),
  info: shared('info', 'id, givenName, online (no os/version labels: v1 has no such field)'),
  online: shared('online', 'online'),
  lastSeen: shared('lastSeen', 'lastSeen, only while online is false'),
  user: shared('user', 'user.email, else user.name'),
  keyExpiry: shared('keyExpiry', 'expiry (null = never: 0)'),
  keyExpiryDisabled: shared('keyExpiryDisabled', 'expiry is null'),
  created: shared('created', 'createdAt'),
  ephemeral: shared('ephemeral', 'preAuthKey.ephemeral (no pre-auth key: 0)'),
  tags: shared('tags', 'tags'),
  routesAdvertised: shared('routesAdvertised', 'availableRoutes'),
  routesEnabled: shared('routesEnabled', 'approvedRoutes'),
  routesUnapproved: shared('routesUnapproved', 'availableRoutes − approvedRoutes'),
  exitNode: shared('exitNode', 'approvedRoutes ∋ 0.0.0.0/0 or ::/0'),
  exitNodeOption: shared('exitNodeOption', 'availableRoutes ∋ 0.0.0.0/0 or ::/0'),
  subnetRouter: shared('subnetRouter', 'approvedRoutes with a non-exit route'),
  routesServing: ['headscale_node_routes_serving', 'A route the node serves right now (primary subnet route or approved exit route; value is always 1).', 'subnetRoutes'],
  registerMethod: ['headscale_node_register_method', 'How the node registered: auth_key, cli, oidc, unspecified (value is always 1).', 'registerMethod'],
  users: ['headscale_users', 'Number of users.', 'length of users[]'],
  userInfo: ['headscale_user_info', 'A user (value is always 1).', 'users[]: id, name, provider, email'],
  userCreated: ['headscale_user_created_timestamp_seconds', 'Unix time the user was created.', 'users[].createdAt'],
  userNodes: ['headscale_user_nodes', 'Nodes the user owns (tagged nodes belong to tagged-devices).', 'nodes[].user'],
  userNodesOnline: ['headscale_user_nodes_online', 'Nodes of the user that are online.', 'nodes[].user, nodes[].online'],
  preAuthKeys: ['headscale_preauth_keys', 'Number of pre-auth keys.', 'length of preAuthKeys[]'],
  preAuthKeyInfo: ['headscale_preauth_key_info', 'A pre-auth key and its user; tag-only keys have no user labels (value is always 1).', 'preAuthKeys[]: id, user'],
  preAuthKeyReusable: ['headscale_preauth_key_reusable', 'Whether the pre-auth key can register several nodes.', 'preAuthKeys[].reusable'],
  preAuthKeyEphemeral: ['headscale_preauth_key_ephemeral', 'Whether nodes registered with the key are ephemeral.', 'preAuthKeys[].ephemeral'],
  preAuthKeyUsed: ['headscale_preauth_key_used', 'Whether the single-use key has been used (a reusable key never is).', 'preAuthKeys[].used'],
  preAuthKeyExpiry: ['headscale_preauth_key_expiry_timestamp_seconds', 'Unix time the pre-auth key expires (or expired).', 'preAuthKeys[].expiration'],
  preAuthKeyCreated: ['headscale_preauth_key_created_timestamp_seconds', 'Unix time the pre-auth key was created.', 'preAuthKeys[].createdAt'],
  preAuthKeyTags: ['headscale_preauth_key_tags', 'A tag the pre-auth key gives the nodes it registers (value is always 1).', 'preAuthKeys[].aclTags'],
  apiKeys: ['headscale_api_keys', 'Number of API keys.', 'length of apiKeys[]'],
  apiKeyExpiry: ['headscale_api_key_expiry_timestamp_seconds', 'Unix time the API key expires (or expired).', 'apiKeys[].expiration'],
  apiKeyCreated: ['headscale_api_key_created_timestamp_seconds', 'Unix time the API key was created.', 'apiKeys[].createdAt'],
  apiKeyLastSeen: ['headscale_api_key_last_seen_timestamp_seconds', 'Unix time the API key was last used (Headscale does not record it yet).', 'apiKeys[].lastSeen'],
  health: ['headscale_health_database_connectivity', 'Whether Headscale reaches its database (1) or its health check fails (0).', 'GET /api/v1/health databaseConnectivity (HTTP 5xx: 0)'],
  collectionUp: ['tsmetrics_headscale_collection_up', 'Whether the last read of one Headscale collection (nodes, users, preauth_keys, api_keys, health, metrics) succeeded (1) or not (0).', 'this receiver'],
} as const satisfies Record<string, Entry>;

export type HeadscaleMetricKey = keyof typeof HEADSCALE_METRICS;

export const EXIT_ROUTES: ReadonlySet<string> = new Set(['0.0.0.0/0', '::/0']);

/** The last good data of each collection; a collection never read is absent. */
export interface HeadscaleSnapshot {
  readonly nodes?: readonly HeadscaleNode[];
  readonly users?: readonly HeadscaleUser[];
  readonly preAuthKeys?: readonly HeadscalePreAuthKey[];
  readonly apiKeys?: readonly HeadscaleApiKey[];
  readonly health?: boolean;
}

export interface BuildOptions {
  readonly nowMs: number;
  readonly includeUserEmail: boolean;
  readonly tailnetLabel: string;
  readonly maxLabel: number;
  readonly baseDomain: string;
  /** Keeps each series' attributes object across cycles (see src/model/intern.ts). */
  readonly interner?: AttributeInterner;
}

/** The name a node is known by: its MagicDNS name, as Tailscale's `name` is. */
export function nodeName(n: HeadscaleNode, baseDomain: string): string {
  const label = n.givenName || n.hostname || n.id;
  return baseDomain && n.givenName ? `${n.givenName}.${baseDomain}` : label;
}

/** The login a node's owner is known by (Headscale's own /api/v2 uses the same rule). */
export function ownerLogin(u: { name: string; email: string } | undefined): string {
  return u ? u.email || u.name : '';
}

const sec = (ms: number): number => Math.floor(ms / 1000);
const b01 = (v: boolean | undefined): number => (v ? 1 : 0);

/** Adds the snapshot's metrics to `bb`. */
export function addHeadscaleMetrics(bb: BatchBuilder, s: HeadscaleSnapshot, o: BuildOptions): void {
  const t = o.nowMs;
  const L = (v: string): string => boundLabel(v, o.maxLabel);
  const base: Attributes = o.tailnetLabel ? { tailnet: L(o.tailnetLabel) } : {};
  type Add = (attrs: Attributes, value: number) => void;
  const adders = new Map<HeadscaleMetricKey, Add>();
  // One adder per metric and build, looked up by key (a closure per point would cost more than the point).
  const g = (k: HeadscaleMetricKey): Add => {
    const known = adders.get(k);
    if (known) return known;
    const [name, help] = HEADSCALE_METRICS[k];
    const m = bb.gauge(name, help);
    const interner = o.interner;
    const add: Add = (attrs, value) => {
      if (!interner) {
        m.add(attrs, value, t);
        return;
      }
      // Group: the entity's identity; key: the metric and its other label values.
      let group = '';
      let key = keyPart(name);
      for (const a in attrs) {
        if (a === 'device_id' || a === 'key_id' || a === 'user_id' || a === 'tailnet') group += keyLabel(a, String(attrs[a]));
        else key += keyLabel(a, String(attrs[a]));
      }
      m.add(interner.intern(group, key, attrs), value, t);
    };
    adders.set(k, add);
    return add;
  };

  if (s.nodes) {
    const nodes = s.nodes;
    g('count')({ ...base }, nodes.length);
    for (const n of nodes) {
      const id: Attributes = { ...base, device_id: L(n.id), device_name: L(nodeName(n, o.baseDomain)) };
      const online = n.online === true;
      g('info')({ ...id, online: online ? 'true' : 'false' }, 1);
      if (n.online !== undefined) g('online')(id, b01(online));
      // As Tailscale's, only sent while disconnected: for a connected node Headscale's value can be hours old.
      if (n.online === false && n.lastSeenMs !== undefined) g('lastSeen')(id, sec(n.lastSeenMs));
      const login = ownerLogin(n.user);
      if (o.includeUserEmail && login) g('user')({ ...id, user_email: L(login) }, 1);
      if (n.expiryMs !== undefined) {
        g('keyExpiry')(id, n.expiryMs === null ? 0 : sec(n.expiryMs));
        g('keyExpiryDisabled')(id, b01(n.expiryMs === null));
      }
      if (n.createdMs !== undefined) g('created')(id, sec(n.createdMs));
      if (n.ephemeral !== undefined) g('ephemeral')(id, b01(n.ephemeral));
      for (const tag of n.tags) g('tags')({ ...id, tag: L(tag) }, 1);
      const adv = n.availableRoutes;
      const en = n.approvedRoutes;
      if (adv) for (const r of adv) g('routesAdvertised')({ ...id, route: L(r) }, 1);
      if (en) for (const r of en) g('routesEnabled')({ ...id, route: L(r) }, 1);
      if (adv && en) {
        const approved = new Set(en);
        for (const r of adv) if (!approved.has(r)) g('routesUnapproved')({ ...id, route: L(r) }, 1);
      }
      if (en) {
        g('exitNode')(id, b01(en.some((r) => EXIT_ROUTES.has(r))));
        g('subnetRouter')(id, b01(en.some((r) => !EXIT_ROUTES.has(r))));
      }
      if (adv) g('exitNodeOption')(id, b01(adv.some((r) => EXIT_ROUTES.has(r))));
      for (const r of n.subnetRoutes ?? []) g('routesServing')({ ...id, route: L(r) }, 1);
      if (n.registerMethod) g('registerMethod')({ ...id, method: n.registerMethod }, 1);
    }
  }

  // Per-user node counts: every listed user (0 when it owns none) and every owner the nodes name,
  // which includes the tagged-devices pseudo-user the user list leaves out.
  const owners = new Map<string, { name: string; total: number; online: number }>();
  for (const u of s.users ?? []) owners.set(u.id, { name: u.name, total: 0, online: 0 });
  if (s.nodes) {
    for (const n of s.nodes) {
      if (!n.user) continue;
      let e = owners.get(n.user.id);
      if (!e) owners.set(n.user.id, (e = { name: n.user.name, total: 0, online: 0 }));
      e.total++;
      if (n.online) e.online++;
    }
    for (const [uid, e] of owners) {
      const u: Attributes = { ...base, user_id: L(uid), user_name: L(e.name) };
      g('userNodes')(u, e.total);
      g('userNodesOnline')(u, e.online);
    }
  }
  if (s.users) {
    g('users')({ ...base }, s.users.length);
    for (const u of s.users) {
      const a: Attributes = { ...base, user_id: L(u.id), user_name: L(u.name) };
      g('userInfo')({ ...a, provider: L(u.provider || 'local'), ...(o.includeUserEmail && u.email ? { user_email: L(u.email) } : {}) }, 1);
      if (u.createdMs !== undefined) g('userCreated')(a, sec(u.createdMs));
    }
  }

  if (s.preAuthKeys) {
    g('preAuthKeys')({ ...base }, s.preAuthKeys.length);
    for (const k of s.preAuthKeys) {
      const a: Attributes = { ...base, key_id: L(k.id) };
      g('preAuthKeyInfo')({ ...a, ...(k.user ? { user_id: L(k.user.id), user_name: L(k.user.name) } : {}) }, 1);
      if (k.reusable !== undefined) g('preAuthKeyReusable')(a, b01(k.reusable));
      if (k.ephemeral !== undefined) g('preAuthKeyEphemeral')(a, b01(k.ephemeral));
      if (k.used !== undefined) g('preAuthKeyUsed')(a, b01(k.used));
      if (k.expirationMs !== undefined) g('preAuthKeyExpiry')(a, sec(k.expirationMs));
      if (k.createdMs !== undefined) g('preAuthKeyCreated')(a, sec(k.createdMs));
      for (const tag of k.aclTags) g('preAuthKeyTags')({ ...a, tag: L(tag) }, 1);
    }
  }

  if (s.apiKeys) {
    g('apiKeys')({ ...base }, s.apiKeys.length);
    for (const k of s.apiKeys) {
      const a: Attributes = { ...base, key_id: L(k.id), prefix: L(k.prefix) };
      if (k.expirationMs !== undefined) g('apiKeyExpiry')(a, sec(k.expirationMs));
      if (k.createdMs !== undefined) g('apiKeyCreated')(a, sec(k.createdMs));
      if (k.lastSeenMs !== undefined) g('apiKeyLastSeen')(a, sec(k.lastSeenMs));
    }
  }

  if (s.health !== undefined) g('health')({ ...base }, b01(s.health));
}

/** `tsmetrics_headscale_collection_up` for each collection read this cycle. */
export function addCollectionUp(bb: BatchBuilder, up: ReadonlyMap<string, boolean>, o: { nowMs: number; tailnetLabel: string; maxLabel: number }): void {
  const [name, help] = HEADSCALE_METRICS.collectionUp;
  const m = bb.gauge(name, help);
  const base: Attributes = o.tailnetLabel ? { tailnet: boundLabel(o.tailnetLabel, o.maxLabel) } : {};
  for (const [collection, ok] of up) m.add({ ...base, collection }, ok ? 1 : 0, o.nowMs);
}

/**
 * Names this receiver emits, in every form the exposition prints (`_total`, histogram parts), so
 * a family forwarded from Headscale's own `/metrics` can never take one of them.
 */
export function reservedNames(): ReadonlySet<string> {
  const out = new Set<string>();
  for (const [name] of Object.values(HEADSCALE_METRICS)) for (const suffix of ['', '_total', '_bucket', '_count', '_sum']) out.add(`${name}${suffix}`);
  return out;
}
