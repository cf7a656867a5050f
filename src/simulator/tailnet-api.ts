/**
 * The tailnet beyond devices, as the simulated Tailscale API serves it: users, keys, DNS,
 * settings, posture integrations, Services and their hosts, the policy file (HuJSON, with an
 * ETag), log-stream status, webhooks, user invites and the workload-identity token exchange —
 * with OAuth scopes enforced the way the real API does (403 with its message on some endpoints,
 * a bare 404 on others). The data is derived from the simulated devices and the clock, so it
 * moves: users come and wait for approval, keys approach their expiry, a posture integration
 * fails now and then, the policy changes every quarter of an hour, log streams count up.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiDevice } from './model.ts';
import type { TailnetLogsSimulator } from './logs.ts';

/** The bodies the endpoints serve, as JSON values (fixture-driven tests replace any of them). */
export interface TailnetApiBodies {
  users: unknown;
  keys: unknown;
  /** `GET …/keys/{id}` bodies by key id (default: the key from `keys`). */
  keyDetails: Record<string, unknown>;
  dnsConfiguration: unknown;
  dnsNameservers: unknown;
  dnsSearchPaths: unknown;
  dnsPreferences: unknown;
  dnsSplitDns: unknown;
  settings: unknown;
  posture: unknown;
  services: unknown;
  /** `GET …/services/{svc}/devices` bodies by Service name. */
  serviceDevices: Record<string, unknown>;
  /** The policy file's HuJSON text and ETag. */
  policy: { text: string; etag?: string };
  /** Log-stream status by log type; null answers 404 (no stream configured). */
  logStream: { network: unknown; configuration: unknown };
  webhooks: unknown;
  userInvites: unknown;
}

/** Options the simulator passes through (see `SimulatorOptions`). */
export interface TailnetApiOptions {
  /** OAuth scopes of each simulated OAuth client, by client id (default: every scope). */
  clientScopes?: Record<string, readonly string[]>;
  /** Federated identities the token exchange accepts: client id, the ID token it takes, scopes. */
  federatedClients?: Array<{ id: string; idToken: string; scopes?: readonly string[] }>;
  /** Serve these bodies instead of the generated ones. */
  tailnetApi?: Partial<TailnetApiBodies>;
  /** Endpoints that answer 404 as if this control server did not have them (`dns/configuration`, `services`, …). */
  missingEndpoints?: readonly string[];
  /**
   * Every list beyond devices (users, keys, posture integrations, Services, webhooks, invites)
   * is served this many times over, each copy with its own ids and names: a tailnet N times the
   * fixture's size for benchmarks (default 1).
   */
  listScale?: number;
}

/** `x` made distinct for copy `i` (emails keep their domain: `alice-3@example.com`). */
function copyName(x: string, i: number): string {
  const at = x.indexOf('@');
  return at > 0 ? `${x.slice(0, at)}-${i}${x.slice(at)}` : `${x}-${i}`;
}

/** `list` followed by `n - 1` copies whose `fields` are made distinct (see `listScale`). */
function repeated<T extends Record<string, unknown>>(list: T[], n: number | undefined, fields: readonly string[]): T[] {
  if (!n || n <= 1) return list;
  const out = [...list];
  for (let i = 1; i < n; i++) {
    for (const x of list) {
      const c: Record<string, unknown> = { ...x };
      for (const f of fields) if (typeof c[f] === 'string') c[f] = copyName(c[f] as string, i);
      out.push(c as T);
    }
  }
  return out;
}

interface Context {
  readonly now: () => number;
  readonly tailnet: string;
  readonly devices: () => ApiDevice[];
  readonly apiKeys: readonly string[];
  readonly oauthClients: ReadonlyArray<{ id: string }>;
  /** Network flow and configuration audit logs (logs.ts). */
  readonly logs?: TailnetLogsSimulator;
}

const MIN = 60_000;
const DAY = 86_400_000;
const FORBIDDEN = { message: 'calling actor does not have enough permissions to perform this function' };
const NOT_FOUND = { message: 'not found' };

/** Whether `granted` covers `needed`, as Tailscale reads scopes: `all`, `all:read`, write ⊇ read. */
export function scopeCovers(granted: readonly string[] | undefined, needed: string): boolean {
  if (!granted) return true;
  if (granted.includes(needed) || granted.includes('all')) return true;
  return needed.endsWith(':read') && (granted.includes('all:read') || granted.includes(needed.slice(0, -5)));
}

const iso = (ms: number): string => new Date(ms).toISOString();

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): true {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
  return true;
}

/** Which endpoints answer a missing scope with 404 instead of 403 (as observed on the real API). */
const ANSWERS_404: ReadonlySet<string> = new Set(['users', 'webhooks', 'services', 'posture', 'logStream']);

/** The simulated tailnet-wide API; the simulator routes every non-device path here. */
export class TailnetApiSimulator {
  private readonly _c: Context;
  private readonly _o: TailnetApiOptions;
  private readonly _startMs: number;
  /** Scopes of each issued token (API keys are absent: they act as their user, who may do all). */
  private readonly _tokenScopes = new Map<string, { scopes: readonly string[]; clientId: string }>();
  /** The ID tokens the exchange received, in order (tests check a rotated file is re-read). */
  readonly exchangedIdTokens: string[] = [];

  constructor(c: Context, o: TailnetApiOptions = {}) {
    this._c = c;
    this._o = o;
    this._startMs = c.now() - 3 * 3_600_000;
  }

  /** The scopes an OAuth client's token gets (a requested subset, when the request names one). */
  scopesFor(clientId: string, requested?: string | null): readonly string[] | undefined {
    const own = this._o.clientScopes?.[clientId] ?? this._o.federatedClients?.find((f) => f.id === clientId)?.scopes;
    if (!requested) return own;
    const asked = requested.split(/\s+/).filter(Boolean);
    return own ? asked.filter((s) => own.includes(s) || scopeCovers(own, s)) : asked;
  }

  /** Remembers what a newly issued token may do. */
  grant(token: string, clientId: string, requested?: string | null): string {
    const scopes = this.scopesFor(clientId, requested);
    if (scopes) this._tokenScopes.set(token, { scopes, clientId });
    else this._tokenScopes.set(token, { scopes: ['all'], clientId });
    return (scopes ?? ['all']).join(' ');
  }

  /** Forgets tokens (with the simulator's own token table). */
  forget(): void {
    this._tokenScopes.clear();
  }

  /** The federated client an exchange form names, when its ID token is the accepted one. */
  exchange(form: URLSearchParams): string | undefined {
    const id = form.get('client_id') ?? '';
    const jwt = form.get('jwt') ?? '';
    this.exchangedIdTokens.push(jwt);
    const f = this._o.federatedClients?.find((x) => x.id === id);
    return f && f.idToken === jwt ? f.id : undefined;
  }

  private _caller(req: IncomingMessage): { scopes: readonly string[] | undefined; clientId: string | undefined } {
    const h = req.headers.authorization ?? '';
    const t = h.startsWith('Bearer ') ? this._tokenScopes.get(h.slice(7)) : undefined;
    return t ? { scopes: t.scopes, clientId: t.clientId } : { scopes: undefined, clientId: undefined };
  }

  /** Whether the request's credential has `scope` (API keys always do). */
  allows(req: IncomingMessage, scope: string): boolean {
    return scopeCovers(this._caller(req).scopes, scope);
  }

  /** The real API's answer to a missing scope on `endpoint`. */
  deny(res: ServerResponse, endpoint: string): true {
    return ANSWERS_404.has(endpoint) ? send(res, 404, NOT_FOUND) : send(res, 403, FORBIDDEN);
  }

  /** Serves `url` when it is one of these endpoints; returns false otherwise. */
  handle(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    const m = /^\/api\/v2\/tailnet\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m || req.method !== 'GET') return false;
    const tn = decodeURIComponent(m[1] as string);
    if (tn !== '-' && tn !== this._c.tailnet) return send(res, 404, { message: 'tailnet not found' });
    const rest = m[2] as string;
    const need = (endpoint: string, scope: string): boolean => !this.allows(req, scope) && this.deny(res, endpoint);
    const missing = (name: string): boolean => (this._o.missingEndpoints ?? []).includes(name) && send(res, 404, NOT_FOUND);
    const b = this._o.tailnetApi ?? {};
    switch (rest) {
      case 'users':
        return missing('users') || need('users', 'users:read') || send(res, 200, b.users ?? this.users());
      case 'keys':
        return missing('keys') || this._keys(req, res, b);
      case 'dns/configuration':
        return missing('dns/configuration') || need('dns', 'dns:read') || send(res, 200, b.dnsConfiguration ?? DNS_CONFIGURATION);
      case 'dns/nameservers':
        return missing('dns/nameservers') || need('dns', 'dns:read') || send(res, 200, b.dnsNameservers ?? { dns: DNS_CONFIGURATION.nameservers.map((n) => n.address) });
      case 'dns/searchpaths':
        return missing('dns/searchpaths') || need('dns', 'dns:read') || send(res, 200, b.dnsSearchPaths ?? { searchPaths: DNS_CONFIGURATION.searchPaths });
      case 'dns/preferences':
        return missing('dns/preferences') || need('dns', 'dns:read') || send(res, 200, b.dnsPreferences ?? { magicDNS: true });
      case 'dns/split-dns':
        return missing('dns/split-dns') || need('dns', 'dns:read') || send(res, 200, b.dnsSplitDns ?? Object.fromEntries(Object.entries(DNS_CONFIGURATION.splitDNS).map(([k, v]) => [k, v?.map((r) => r.address) ?? null])));
      case 'settings':
        return missing('settings') || need('settings', 'feature_settings:read') || send(res, 200, b.settings ?? this.settings(req));
      case 'posture/integrations':
        return missing('posture') || need('posture', 'feature_settings:read') || send(res, 200, b.posture ?? this.posture());
      case 'services':
        return missing('services') || need('services', 'services:read') || send(res, 200, b.services ?? { vipServices: this.services().map((s) => s.body) });
      case 'acl':
        return missing('acl') || need('acl', 'policy_file:read') || this._policy(url, res, b);
      case 'webhooks':
        return missing('webhooks') || need('webhooks', 'webhooks:read') || send(res, 200, b.webhooks ?? this.webhooks());
      case 'user-invites':
        return missing('user-invites') || need('user-invites', 'user_invites:read') || send(res, 200, b.userInvites ?? this.userInvites());
    }
    const stream = /^logging\/(network|configuration)\/stream\/status$/.exec(rest);
    if (stream) {
      const type = stream[1] as 'network' | 'configuration';
      if (missing('logStream') || need('logStream', 'log_streaming:read')) return true;
      const body = b.logStream ? b.logStream[type] : this.logStream(type);
      return body === null ? send(res, 404, NOT_FOUND) : send(res, 200, body);
    }
    const logging = /^logging\/(network|configuration)$/.exec(rest);
    if (logging && this._c.logs) {
      const type = logging[1] as 'network' | 'configuration';
      if (missing(`logging/${type}`) || need('logging', `logs:${type}:read`)) return true;
      return this._c.logs.serve(type, url, res);
    }
    const hosts = /^services\/([^/]+)\/devices$/.exec(rest);
    if (hosts) {
      // Listing hosts takes the write scopes services and devices:core, even for a GET.
      if (missing('services/devices') || need('services', 'services') || need('services', 'devices:core')) return true;
      const name = decodeURIComponent(hosts[1] as string);
      const body = b.serviceDevices ? b.serviceDevices[name] : this.services().find((s) => s.body.name === name)?.hosts;
      return body === undefined ? send(res, 404, NOT_FOUND) : send(res, 200, body);
    }
    const key = /^keys\/([^/]+)$/.exec(rest);
    if (key) return this._key(req, decodeURIComponent(key[1] as string), res, b);
    return false;
  }

  // ---- keys ---------------------------------------------------------------------------------

  /** The scope that lets a caller see keys of this type. */
  private static _keyScope(type: unknown): string {
    return type === 'auth' ? 'auth_keys:read' : type === 'client' ? 'oauth_keys:read' : type === 'federated' ? 'federated_keys:read' : 'api_access_tokens:read';
  }

  private _keys(req: IncomingMessage, res: ServerResponse, b: Partial<TailnetApiBodies>): true {
    const scopes = ['auth_keys:read', 'oauth_keys:read', 'api_access_tokens:read', 'federated_keys:read'];
    if (!scopes.some((s) => this.allows(req, s))) return this.deny(res, 'keys');
    if (b.keys !== undefined) return send(res, 200, b.keys);
    // A token sees the key types its scopes cover, as the real API filters by scope.
    const keys = this.keys().filter((k) => this.allows(req, TailnetApiSimulator._keyScope(k.keyType)));
    return send(res, 200, { keys });
  }

  private _key(req: IncomingMessage, id: string, res: ServerResponse, b: Partial<TailnetApiBodies>): true {
    const detail = b.keyDetails?.[id];
    const list = (b.keys as { keys?: Array<Record<string, unknown>> } | undefined)?.keys ?? this.keys();
    const k = (detail as Record<string, unknown> | undefined) ?? list.find((x) => x.id === id);
    if (!k) return send(res, 404, NOT_FOUND);
    // Every scope may read the credential's own key.
    const own = this._caller(req).clientId === id || this._ownApiKeyIds().includes(id);
    if (!own && !this.allows(req, TailnetApiSimulator._keyScope(k.keyType))) return this.deny(res, 'keys');
    return send(res, 200, k);
  }

  private _ownApiKeyIds(): string[] {
    return this._c.apiKeys.map((k) => /^tskey-api-([A-Za-z0-9]+)-/.exec(k)?.[1]).filter((x): x is string => x !== undefined);
  }

  // ---- generated data -----------------------------------------------------------------------

  /** Users: the devices' owners plus an idle auditor, a suspended user, one awaiting approval now and then, and a shared-in user. */
  users(): { users: Array<Record<string, unknown>> } {
    const now = this._c.now();
    const owned = new Map<string, { devices: number; online: boolean }>();
    for (const d of this._c.devices()) {
      if (d.isExternal === true || typeof d.user !== 'string' || d.tags) continue;
      const o = owned.get(d.user) ?? { devices: 0, online: false };
      o.devices++;
      o.online ||= d.connectedToControl === true;
      owned.set(d.user, o);
    }
    const roles = ['owner', 'admin', 'network-admin', 'member', 'it-admin', 'member'];
    const users: Array<Record<string, unknown>> = [];
    let i = 0;
    const user = (login: string, f: Record<string, unknown>): void => {
      const local = login.split('@')[0] ?? login;
      users.push({
        id: `u${createHash('sha256').update(login).digest('hex').slice(0, 10)}CNTRL`,
        displayName: local.charAt(0).toUpperCase() + local.slice(1),
        loginName: login,
        profilePicUrl: '',
        tailnetId: this._c.tailnet,
        created: iso(this._startMs - (400 - i * 37) * DAY),
        type: 'member',
        role: roles[i % roles.length],
        status: 'active',
        deviceCount: 0,
        lastSeen: iso(now - (i % 3) * 90_000),
        currentlyConnected: false,
        ...f,
      });
      i++;
    };
    for (const [login, o] of owned) user(login, { deviceCount: o.devices, currentlyConnected: o.online, lastSeen: iso(o.online ? now : now - 2 * 3_600_000) });
    if (!owned.has('ops@example.com')) user('ops@example.com', { role: 'it-admin', lastSeen: iso(now - 17 * MIN) });
    user('grace@example.com', { role: 'auditor', status: 'idle', lastSeen: iso(now - 55 * DAY) });
    user('erin@example.com', { role: 'member', status: 'suspended', lastSeen: iso(now - 12 * DAY) });
    // A newcomer waits for approval for ten minutes of every half hour.
    const slot = Math.floor(now / (30 * MIN));
    if (now % (30 * MIN) < 10 * MIN) user(`newcomer-${slot % 1000}@example.com`, { role: 'member', status: 'needs-approval', created: iso(slot * 30 * MIN), lastSeen: iso(slot * 30 * MIN) });
    user('dave@partner.example', { type: 'shared', role: 'member', tailnetId: 'partner.example', deviceCount: 1, currentlyConnected: true, lastSeen: iso(now) });
    return { users: repeated(users, this._o.listScale, ['id', 'loginName']) };
  }

  /** Keys: auth keys (expiring soon, expired, revoked), the simulator's API keys and OAuth clients, a federated identity, a minted token. */
  keys(): Array<Record<string, unknown>> {
    const now = this._c.now();
    const day = Math.floor(now / DAY) * DAY;
    const tailnetKeys: Array<Record<string, unknown>> = [
      { id: 'kCiRun4Qp711CNTRL', keyType: 'auth', description: 'ci-runners ephemeral', expirySeconds: 7_776_000, created: iso(day - 84 * DAY), expires: iso(day + 6 * DAY), capabilities: { devices: { create: { reusable: true, ephemeral: true, preauthorized: true, tags: ['tag:ci'] } } }, invalid: false, userId: 'uOps' },
      { id: 'kLabB00t5x11CNTRL', keyType: 'auth', description: 'lab bootstrap', expirySeconds: 2_592_000, created: iso(day - 40 * DAY), expires: iso(day - 10 * DAY), capabilities: { devices: { create: { reusable: false, ephemeral: false, preauthorized: false, tags: [] } } }, invalid: true, userId: 'uBob' },
      { id: 'kRvkd7Hs2a11CNTRL', keyType: 'auth', description: 'gw rebuild', expirySeconds: 7_776_000, created: iso(day - 14 * DAY), expires: iso(day + 76 * DAY), revoked: iso(day - 2 * DAY), capabilities: { devices: { create: { reusable: false, ephemeral: false, preauthorized: true, tags: ['tag:exporter', 'tag:router'] } } }, invalid: true, userId: 'uAlice' },
      { id: 'kRouter9Zz11CNTRL', keyType: 'auth', description: 'routers', expirySeconds: 7_776_000, created: iso(day - 50 * DAY), expires: iso(day + 40 * DAY), capabilities: { devices: { create: { reusable: true, ephemeral: false, preauthorized: true, tags: ['tag:router'] } } }, invalid: false, userId: 'uAlice' },
      { id: 'kFeD9x2LmQ11CNTRL', keyType: 'federated', description: 'github actions nightly', created: iso(day - 27 * DAY), scopes: ['devices:core:read', 'users:read'], invalid: false, userId: 'uAlice', audience: 'api.tailscale.com/TqR7bC4vXe11CNTRL-kFeD9x2LmQ11CNTRL', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:example-com/tsmetrics:ref:refs/heads/main', customClaimRules: {} },
      { id: 'kT0k3nOa7h11CNTRL', keyType: 'api', description: '', created: iso(now - 29 * MIN), expires: iso(now + 31 * MIN), scopes: ['all:read'], invalid: false },
    ];
    // Copies are other keys of the tailnet; the simulator's own credentials below stay one each.
    const keys = repeated(tailnetKeys, this._o.listScale, ['id']);
    for (const id of this._ownApiKeyIds()) keys.push({ id, keyType: 'api', description: 'tsmetrics (simulated)', expirySeconds: 7_776_000, created: iso(day - 45 * DAY), expires: iso(day + 45 * DAY), scopes: ['all'], invalid: false, userId: 'uAlice' });
    for (const c of this._c.oauthClients) keys.push({ id: c.id, keyType: 'client', description: 'tsmetrics collector', created: iso(day - 160 * DAY), updated: iso(day - 30 * DAY), scopes: [...(this._o.clientScopes?.[c.id] ?? ['all:read'])], tags: ['tag:monitoring'], invalid: false, userId: 'uAlice' });
    for (const f of this._o.federatedClients ?? []) keys.push({ id: f.id, keyType: 'federated', description: 'tsmetrics workload identity', created: iso(day - 20 * DAY), scopes: [...(f.scopes ?? ['all:read'])], tags: ['tag:monitoring'], invalid: false, userId: 'uAlice', audience: `api.tailscale.com/${f.id}`, issuer: 'https://kubernetes.default.svc', subject: 'system:serviceaccount:monitoring:tsmetrics', customClaimRules: {} });
    return keys;
  }

  /** Settings; fields that need another scope read back false without it, as on the real API. */
  settings(req: IncomingMessage): Record<string, unknown> {
    const s: Record<string, unknown> = {
      aclsExternallyManagedOn: true,
      aclsExternalLink: 'https://git.example.com/netops/tailnet-policy',
      devicesApprovalOn: true,
      devicesAutoUpdatesOn: false,
      devicesKeyDurationDays: 180,
      usersApprovalOn: true,
      usersRoleAllowedToJoinExternalTailnets: 'admin',
      networkFlowLoggingOn: true,
      regionalRoutingOn: false,
      postureIdentityCollectionOn: true,
      httpsEnabled: true,
      routeSelection: 'active-passive-failover',
    };
    if (!this.allows(req, 'policy_file:read')) Object.assign(s, { aclsExternallyManagedOn: false, aclsExternalLink: '' });
    if (!this.allows(req, 'logs:network:read')) s.networkFlowLoggingOn = false;
    if (!this.allows(req, 'networking_settings:read')) s.httpsEnabled = false;
    return s;
  }

  /** Posture integrations: a healthy one, one failing three minutes in ten, one never synced, one small. */
  posture(): { integrations: Array<Record<string, unknown>> } {
    const now = this._c.now();
    const lastSync = now - (now % (5 * MIN));
    const failing = now % (10 * MIN) < 3 * MIN;
    return {
      integrations: repeated([
        { provider: 'intune', cloudId: 'global', clientId: '6f1d2c0a-5b7e-4e39-9a44-0c3b8d17e2f5', tenantId: '2b9e7a41-3c08-4d6f-b1e2-95a7c4d0f318', id: 'pIn7uNe4Kq11CNTRL', configUpdated: iso(this._startMs - 140 * DAY), status: { lastSync: iso(lastSync), error: '', providerHostCount: 42, matchedCount: 3, possibleMatchedCount: 4 } },
        {
          provider: 'falcon',
          cloudId: 'eu-1',
          clientId: 'c3f0a9d8e7b64b21a5d4f0e9c8b7a6d5',
          tenantId: '',
          id: 'pFa1c0nX2m11CNTRL',
          configUpdated: iso(this._startMs - 4 * DAY),
          status: failing
            ? { lastSync: iso(lastSync), error: 'oauth2: cannot fetch token: 401 Unauthorized\nResponse: {"errors":[{"code":401,"message":"access denied, client credentials revoked"}]}', providerHostCount: 0, matchedCount: 0, possibleMatchedCount: 0 }
            : { lastSync: iso(lastSync), error: '', providerHostCount: 38, matchedCount: 2, possibleMatchedCount: 3 },
        },
        { provider: 'kolide', cloudId: '', clientId: '', tenantId: '', id: 'pK0l1deR8v11CNTRL', configUpdated: iso(this._startMs + 3 * MIN) },
        { provider: 'jamfpro', cloudId: 'example.jamfcloud.com', clientId: 'b81e4f27-0d6a-4c93-8e15-7a2f9c3d6b40', tenantId: '', id: 'pJamFpr0Hh11CNTRL', configUpdated: iso(this._startMs - 260 * DAY), status: { lastSync: iso(lastSync - 9 * MIN), error: '', providerHostCount: 17, matchedCount: 1, possibleMatchedCount: 1 } },
      ] as Array<Record<string, unknown>>, this._o.listScale, ['id']),
    };
  }

  /** Services hosted by the simulated tagged devices (the Service names the device templates carry). */
  services(): Array<{ body: Record<string, unknown>; hosts: { hosts: Array<Record<string, unknown>> } }> {
    const tagged = this._c.devices().filter((d) => Array.isArray(d.tags) && d.tags.length > 0 && typeof d.nodeId === 'string');
    const hostsOf = (pick: (d: ApiDevice) => boolean, levels: string[]): { hosts: Array<Record<string, unknown>> } => ({
      hosts: tagged.filter(pick).slice(0, levels.length).map((d, i) => ({ stableNodeID: d.nodeId, approvalLevel: levels[i], configured: 'ready' })),
    });
    const has = (tag: string) => (d: ApiDevice) => (d.tags as string[]).includes(tag);
    const list: Array<{ body: Record<string, unknown>; hosts: { hosts: Array<Record<string, unknown>> } }> = [
      { body: { name: 'svc:grafana', addrs: ['100.116.30.12', 'fd7a:115c:a1e0::ab01:1e0c'], comment: 'NOC dashboards', ports: ['tcp:443'], tags: ['tag:monitoring'] }, hosts: hostsOf((d) => has('tag:router')(d) || has('tag:monitoring')(d) || has('tag:ci')(d), ['approved:auto', 'approved:manual', 'not-approved']) },
      { body: { name: 'svc:prometheus', addrs: ['100.71.88.190', 'fd7a:115c:a1e0::e201:58be'], comment: '', ports: ['tcp:9090'], tags: ['tag:monitoring'] }, hosts: hostsOf(has('tag:monitoring'), ['approved:manual']) },
      { body: { name: 'svc:wiki', addrs: ['100.93.5.201', 'fd7a:115c:a1e0::7c01:5c9'], comment: 'internal wiki (not deployed yet)', ports: ['tcp:80', 'tcp:443'] }, hosts: { hosts: [] } },
      { body: { name: 'svc:registry', addrs: ['100.120.77.14', 'fd7a:115c:a1e0::3b01:4d0e'], comment: 'container registry mirror', ports: ['tcp:5000'], tags: ['tag:ci'] }, hosts: hostsOf(has('tag:ci'), ['approved:auto']) },
    ];
    const n = this._o.listScale ?? 1;
    if (n <= 1) return list;
    const out = [...list];
    for (let k = 1; k < n; k++) for (const x of list) out.push({ body: { ...x.body, name: copyName(x.body.name as string, k) }, hosts: x.hosts });
    return out;
  }

  /** The policy file; it changes every 15 minutes (one of three versions). */
  policy(): { text: string; etag: string } {
    const version = Math.floor(this._c.now() / (15 * MIN)) % 3;
    const text = policyText(version);
    return { text, etag: `"${createHash('sha256').update(text).digest('hex').slice(0, 16)}"` };
  }

  private _policy(url: URL, res: ServerResponse, b: Partial<TailnetApiBodies>): true {
    const p = b.policy ?? this.policy();
    const etag: Record<string, string> = p.etag ? { etag: p.etag } : {};
    if (url.searchParams.get('details') === 'true') return send(res, 200, { acl: Buffer.from(p.text).toString('base64'), warnings: [], errors: null }, etag);
    res.writeHead(200, { 'content-type': 'application/hujson', ...etag });
    res.end(p.text);
    return true;
  }

  /** Log streams: network counts up and fails five minutes of every half hour; configuration is healthy. */
  logStream(type: 'network' | 'configuration'): Record<string, unknown> {
    const now = this._c.now();
    const s = Math.max(0, (now - this._startMs) / 1000);
    const halfHour = Math.floor(now / (30 * MIN));
    const failing = type === 'network' && now % (30 * MIN) < 5 * MIN;
    // Failed requests: 12 per failing window so far, plus the current window's progress.
    const failed = Math.floor((type === 'network' ? 12 : 0) * (halfHour % 1000)) + (failing ? Math.floor((now % (30 * MIN)) / 20_000) : 0);
    const rate = type === 'network' ? 21_874.5 : 0.84;
    return {
      lastActivity: iso(now - 19_000),
      lastError: type === 'network' && (failing || halfHour % 2 === 0) ? 'Post "https://siem.example.com:8088/services/collector/event": context deadline exceeded (Client.Timeout exceeded while awaiting headers)' : '',
      maxBodySize: type === 'network' ? 1_048_576 : 24_576,
      numBytesSent: Math.floor(s * rate),
      numEntriesSent: Math.floor(s * (type === 'network' ? 11.8 : 0.0007) + 1),
      numSpoofedEntries: type === 'network' ? Math.floor(s / 900) : 0,
      numTotalRequests: Math.floor(s * 0.116) + 1,
      numFailedRequests: failed,
      rateBytesSent: rate,
      rateEntriesSent: type === 'network' ? 11.8 : 0.0007,
      rateTotalRequests: 0.116,
      rateFailedRequests: failing ? 0.05 : 4.1e-157,
    };
  }

  webhooks(): { webhooks: Array<Record<string, unknown>> } {
    const t = (d: number): string => iso(this._startMs - d * DAY);
    return {
      webhooks: repeated([
        { endpointId: 'wh5Kq2ZxT7', endpointUrl: 'https://hooks.slack.com/services/T000EXAMPLE/B000EXAMPLE/simulatedsecret', providerType: 'slack', creatorLoginName: 'alice@example.com', created: t(590), lastModified: t(102), subscriptions: ['nodeNeedsApproval', 'userNeedsApproval', 'nodeKeyExpiringInOneDay', 'nodeKeyExpired'] },
        { endpointId: 'wh8Rm3Lp0N', endpointUrl: 'https://events.example.com/ingest/tailscale', providerType: '', creatorLoginName: '', created: t(162), lastModified: t(162), subscriptions: ['nodeCreated', 'nodeDeleted', 'nodeApproved', 'policyUpdate', 'userRoleUpdated'] },
        { endpointId: 'wh6Mm4Tq1S', endpointUrl: 'https://chat.example.com/hooks/simulated', providerType: 'mattermost', creatorLoginName: 'carol@example.com', created: t(203), lastModified: t(74), subscriptions: ['nodeNeedsSignature', 'nodeSigned'] },
      ] as Array<Record<string, unknown>>, this._o.listScale, ['endpointId']),
    };
  }

  userInvites(): Array<Record<string, unknown>> {
    const now = this._c.now();
    return repeated([
      { id: '30117', role: 'member', tailnetId: 48291, inviterId: 712004, email: 'heidi@example.com', lastEmailSentAt: iso(now - 44 * 3_600_000) },
      { id: '30142', role: 'auditor', tailnetId: 48291, inviterId: 712388, email: 'ivan@contractor.example', lastEmailSentAt: iso(now - 25 * 3_600_000), inviteUrl: 'https://login.tailscale.com/uinv/iSIMULATEDa8Jd2kQw' },
      { id: '30158', role: 'admin', tailnetId: 48291, inviterId: 712004, inviteUrl: 'https://login.tailscale.com/uinv/iSIMULATEDp3Vx9mTz' },
    ] as Array<Record<string, unknown>>, this._o.listScale, ['id', 'email']);
  }
}

const DNS_CONFIGURATION = {
  nameservers: [
    { address: '10.20.0.2', useWithExitNode: true },
    { address: '1.1.1.1', useWithExitNode: false },
    { address: '2606:4700:4700::1111', useWithExitNode: false },
  ],
  splitDNS: {
    'corp.example.com': [
      { address: '10.20.0.2', useWithExitNode: true },
      { address: '10.20.0.3', useWithExitNode: true },
    ],
    'lab.example.com': [{ address: '192.168.77.53', useWithExitNode: false }],
    'legacy.corp.example.com': null,
  } as Record<string, Array<{ address: string; useWithExitNode: boolean }> | null>,
  searchPaths: ['corp.example.com', 'lab.example.com'],
  preferences: { overrideLocalDNS: true, magicDNS: true },
};

/** Three versions of a HuJSON policy (comments, trailing commas), differing in a group and a grant. */
export function policyText(version: number): string {
  const dev = ['"bob@example.com"', '"frank@example.com"', ...(version >= 1 ? ['"erin@example.com"'] : [])].join(', ');
  const labGrant = version === 2 ? '\n\t\t{"src": ["group:dev"], "dst": ["lab-net"], "ip": ["*"]},' : '';
  return `// Tailnet policy (simulated), version ${version}.
{
\t"groups": {
\t\t"group:netops": ["alice@example.com", "carol@example.com"],
\t\t"group:dev":    [${dev},],
\t},
\t"tagOwners": {
\t\t"tag:router":     ["group:netops"],
\t\t"tag:exporter":   ["group:netops"],
\t\t"tag:monitoring": ["group:netops"],
\t\t"tag:ci":         ["ops@example.com"],
\t},
\t"hosts": {"corp-net": "10.20.0.0/16", "lab-net": "192.168.77.0/24",},
\t/* legacy rules */
\t"acls": [
\t\t{"action": "accept", "src": ["group:netops"], "dst": ["tag:router:*", "corp-net:*"]},
\t\t{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:internet:*"]},
\t],
\t"grants": [
\t\t{"src": ["tag:monitoring"], "dst": ["tag:exporter"], "ip": ["tcp:5252"]},
\t\t{"src": ["autogroup:member"], "dst": ["svc:grafana"], "ip": ["tcp:443"]},${labGrant}
\t],
\t"ssh": [
\t\t{"action": "check", "src": ["group:netops"], "dst": ["tag:router"], "users": ["root"]},
\t],
\t"autoApprovers": {
\t\t"routes":   {"192.168.50.0/24": ["group:netops"],},
\t\t"services": {"svc:grafana": ["tag:router"],},
\t},
\t"tests": [
\t\t{"src": "tag:monitoring", "accept": ["tag:exporter:5252"]},
\t],
}
`;
}
