/**
 * A fixture-driven fake of the Tailscale API over loopback for the collector tests: every
 * endpoint the collectors call answers with its fixture, OAuth client credentials and the
 * workload-identity exchange issue tokens with scopes, and a token without an endpoint's scope
 * gets the real answer (403 with the fixture's message, or a bare 404 where Tailscale does that).
 * Any route can be replaced (status, body, headers, delay) to play a hostile or broken server.
 * It knows nothing of tsmetrics' code: it speaks only the wire.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fixture } from './index.ts';

/** One answer of a route. */
export interface FakeAnswer {
  status?: number;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export type FakeRoute = FakeAnswer | ((req: IncomingMessage, url: URL) => FakeAnswer | Promise<FakeAnswer>);

interface Token {
  scopes: readonly string[];
  expiresMs: number;
  /** The OAuth client or federated identity the token was issued to (its key id). */
  clientId: string;
}

/** Route keys are the path after `/api/v2/tailnet/-/` (or the full path for other endpoints). */
const SCOPES: ReadonlyArray<[RegExp, string[], 403 | 404]> = [
  [/^devices$/, ['devices:core:read'], 403],
  [/^users$/, ['users:read'], 404],
  [/^keys(\/.*)?$/, ['auth_keys:read'], 403],
  [/^dns\//, ['dns:read'], 403],
  [/^settings$/, ['feature_settings:read'], 403],
  [/^posture\/integrations$/, ['feature_settings:read'], 404],
  [/^services$/, ['services:read'], 404],
  [/^services\/[^/]+\/devices$/, ['services', 'devices:core'], 404],
  [/^acl$/, ['policy_file:read'], 403],
  [/^logging\/[^/]+\/stream\/status$/, ['log_streaming:read'], 404],
  [/^webhooks$/, ['webhooks:read'], 404],
  [/^user-invites$/, ['user_invites:read'], 403],
];

function covers(granted: readonly string[], needed: string): boolean {
  if (granted.includes(needed) || granted.includes('all')) return true;
  return needed.endsWith(':read') && (granted.includes('all:read') || granted.includes(needed.slice(0, -5)));
}

const json = (v: unknown): FakeAnswer => ({ body: typeof v === 'string' ? v : JSON.stringify(v), headers: { 'content-type': 'application/json' } });

/** The default routes: the fixtures, by the path the collectors call. */
export function fixtureRoutes(): Map<string, FakeRoute> {
  const policy = fixture('api-policy.hujson');
  const headers = (JSON.parse(fixture('api-policy.headers.json')) as { headers: Record<string, string> }).headers;
  const m = new Map<string, FakeRoute>([
    ['devices', json(fixture('api-devices-fields-all.json'))],
    ['users', json(fixture('api-users.json'))],
    ['keys', json(fixture('api-keys.json'))],
    ['keys/kRvkd7Hs2a11CNTRL', json(fixture('api-key-kRvkd7Hs2a11CNTRL.json'))],
    ['dns/configuration', json(fixture('api-dns-configuration.json'))],
    ['dns/nameservers', json(fixture('api-dns-nameservers.json'))],
    ['dns/searchpaths', json(fixture('api-dns-searchpaths.json'))],
    ['dns/preferences', json(fixture('api-dns-preferences.json'))],
    ['dns/split-dns', json(fixture('api-dns-split-dns.json'))],
    ['settings', json(fixture('api-settings.json'))],
    ['posture/integrations', json(fixture('api-posture-integrations.json'))],
    ['services', json(fixture('api-services.json'))],
    ['services/svc:grafana/devices', json(fixture('api-service-devices.json'))],
    ['services/svc:prometheus/devices', json({ hosts: [{ stableNodeID: 'nMon8cQ2vZ11CNTRL', approvalLevel: 'approved:manual', configured: 'ready' }] })],
    ['services/svc:wiki/devices', json({ hosts: [] })],
    // The Go client says the API sends nodeId rather than stableNodeID: one host each way.
    ['services/svc:registry/devices', json({ hosts: [{ nodeId: 'nCi7f9c2dK11CNTRL', approvalLevel: 'approved:auto', configured: 'ready' }] })],
    [
      'acl',
      (_req, url) =>
        url.searchParams.get('details') === 'true'
          ? { body: JSON.stringify({ acl: Buffer.from(policy).toString('base64'), warnings: ['"tests": 1 test skipped'], errors: null }), headers: { 'content-type': 'application/json', etag: headers.ETag as string } }
          : { body: policy, headers: { 'content-type': headers['Content-Type'] as string, etag: headers.ETag as string } },
    ],
    ['logging/network/stream/status', json(fixture('api-logstream-status-network.json'))],
    ['logging/configuration/stream/status', json(fixture('api-logstream-status-configuration.json'))],
    ['webhooks', json(fixture('api-webhooks.json'))],
    ['user-invites', json(fixture('api-user-invites.json'))],
  ]);
  return m;
}

export interface FakeRequest {
  readonly method: string;
  /** The route key (see {@link fixtureRoutes}) or the full path. */
  readonly route: string;
  readonly search: string;
  readonly authorization: string;
  readonly body: string;
}

/** The fake server. */
export class FakeTailscaleApi {
  readonly routes = fixtureRoutes();
  readonly requests: FakeRequest[] = [];
  /** API keys accepted (Basic user), with the scopes they act with (undefined = everything). */
  readonly apiKeys = new Map<string, readonly string[] | undefined>();
  /** OAuth clients: id → secret and scopes. */
  readonly clients = new Map<string, { secret: string; scopes: readonly string[] }>();
  /** Federated identities: client id → the ID token accepted now, and scopes. */
  readonly federated = new Map<string, { idToken: string; scopes: readonly string[] }>();
  /** Lifetime of issued tokens, seconds. */
  tokenLifetimeS = 3600;
  /** Requests being answered right now, and the most at once (per-entity call bounds). */
  inFlight = 0;
  maxInFlight = 0;
  url = '';
  private readonly _tokens = new Map<string, Token>();
  private _server: Server | undefined;
  private readonly _sockets = new Set<Socket>();
  private _n = 0;

  /** Sets the answer of a route (`users`, `keys/…`, `services/svc:x/devices`, …). */
  set(route: string, answer: FakeRoute): void {
    this.routes.set(route, answer);
  }

  /** Forgets every token (as if all were revoked): the next call gets 401. */
  revokeTokens(): void {
    this._tokens.clear();
  }

  /** Requests whose route matches. */
  calls(route: string | RegExp): FakeRequest[] {
    return this.requests.filter((r) => (typeof route === 'string' ? r.route === route : route.test(r.route)));
  }

  async start(): Promise<string> {
    this._server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void this._handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    this._server.on('connection', (s) => {
      this._sockets.add(s);
      s.on('close', () => this._sockets.delete(s));
    });
    await new Promise<void>((resolve) => this._server?.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this._server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const s of this._sockets) s.destroy();
    await new Promise<void>((resolve) => (this._server ? this._server.close(() => resolve()) : resolve()));
  }

  private _issue(scopes: readonly string[], clientId: string): FakeAnswer {
    const token = `tskey-api-fake${++this._n}-${'t'.repeat(24)}`;
    this._tokens.set(token, { scopes, expiresMs: Date.now() + this.tokenLifetimeS * 1000, clientId });
    return json({ access_token: token, token_type: 'Bearer', expires_in: this.tokenLifetimeS, scope: scopes.join(' ') });
  }

  /** The request's credential (scopes and own key id); undefined when it has none that is valid. */
  private _caller(req: IncomingMessage): { scopes: readonly string[]; keyId: string } | undefined {
    const h = req.headers.authorization ?? '';
    if (h.startsWith('Basic ')) {
      const user = Buffer.from(h.slice(6), 'base64').toString('utf8').split(':')[0] ?? '';
      return this.apiKeys.has(user) ? { scopes: this.apiKeys.get(user) ?? ['all'], keyId: /^tskey-api-([A-Za-z0-9]+)-/.exec(user)?.[1] ?? '' } : undefined;
    }
    const t = h.startsWith('Bearer ') ? this._tokens.get(h.slice(7)) : undefined;
    return t && t.expiresMs > Date.now() ? { scopes: t.scopes, keyId: t.clientId } : undefined;
  }

  private async _handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const tail = /^\/api\/v2\/tailnet\/-\/(.+)$/.exec(url.pathname);
    const route = tail ? decodeURIComponent(tail[1] as string) : url.pathname;
    this.requests.push({ method: req.method ?? '', route, search: url.search, authorization: req.headers.authorization ?? '', body });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const a = await this._answer(req, url, route, body);
      if (res.destroyed) return;
      res.writeHead(a.status ?? 200, a.headers ?? {});
      res.end(a.body ?? '');
    } finally {
      this.inFlight--;
    }
  }

  private async _answer(req: IncomingMessage, url: URL, route: string, body: string): Promise<FakeAnswer> {
    const form = new URLSearchParams(body);
    const replaced = route.startsWith('/api/v2/oauth/') ? this.routes.get(route) : undefined;
    if (replaced) return typeof replaced === 'function' ? replaced(req, url) : replaced;
    if (route === '/api/v2/oauth/token' && req.method === 'POST') {
      const c = this.clients.get(form.get('client_id') ?? '');
      return c && c.secret === form.get('client_secret') ? this._issue(c.scopes, form.get('client_id') ?? '') : { status: 401, ...json({ message: 'API token invalid' }) };
    }
    if (route === '/api/v2/oauth/token-exchange' && req.method === 'POST') {
      const f = this.federated.get(form.get('client_id') ?? '');
      return f && f.idToken === form.get('jwt') ? this._issue(f.scopes, form.get('client_id') ?? '') : { status: 401, ...json({ message: 'API token invalid' }) };
    }
    const caller = this._caller(req);
    if (!caller) return { status: 401, ...json({ message: 'API token invalid' }) };
    // Every credential may read its own key.
    const ownKey = route === `keys/${caller.keyId}`;
    const rule = SCOPES.find(([re]) => re.test(route));
    if (rule && !ownKey && !rule[1].every((s) => covers(caller.scopes, s))) return rule[2] === 403 ? { status: 403, ...json(fixture('api-error-403-scope.json')) } : { status: 404, ...json({ message: 'not found' }) };
    const r = this.routes.get(route) ?? (route.startsWith('keys/') ? this._keyFromList(route.slice(5)) : undefined);
    if (!r) return { status: 404, ...json({ message: 'not found' }) };
    return typeof r === 'function' ? r(req, url) : r;
  }

  /** `GET …/keys/{id}` of a key the keys route lists. */
  private _keyFromList(id: string): FakeAnswer | undefined {
    const list = this.routes.get('keys');
    const text = list && typeof list !== 'function' ? String(list.body ?? '') : '';
    try {
      const k = (JSON.parse(text) as { keys?: Array<{ id?: string }> }).keys?.find((x) => x.id === id);
      return k ? json(k) : undefined;
    } catch {
      return undefined;
    }
  }
}
