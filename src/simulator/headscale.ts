import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { prng, type ApiDevice } from './model.ts';
import type { TailnetSimulator } from './simulator.ts';

/**
 * A Headscale control server on loopback, for demo mode and tests: the REST v1 API
 * (`/api/v1/{node,user,preauthkey,apikey,health}`, Bearer API key), the Tailscale-compatible
 * `/api/v2` subset of 0.30 (`/api/v2/tailnet/-/devices`, `/api/v2/device/{id}`, Bearer or Basic)
 * and, on a second listener as Headscale's `metrics_listen_addr`, its `/metrics` page. Nodes are
 * the simulated tailnet's devices (shared-in ones left out: Headscale has no sharing), so their
 * loopback addresses are scraped by `device_metrics` as a Headscale tailnet's would be. Fixture
 * bodies can replace any generated answer, byte for byte.
 */

/** Which release to imitate: 0.28/0.29 (grpc-gateway, v1 only) or 0.30 (Huma v1 and v2). */
export type HeadscaleVersion = '0.28' | '0.29' | '0.30';

/** Bodies served as given instead of the generated ones (fixture-driven tests). */
export interface HeadscaleBodies {
  nodes?: string;
  users?: string;
  preAuthKeys?: string;
  apiKeys?: string;
  health?: string;
  devicesV2?: string;
  metrics?: string;
}

/** How a route can be told to misbehave. */
export type HeadscaleFault =
  | { kind: 'status'; status: number; body?: string; contentType?: string; retryAfter?: string }
  | { kind: 'body'; body: string | Buffer; contentType?: string }
  | { kind: 'hang' }
  | { kind: 'reset' };

export interface HeadscaleSimulatorOptions {
  /** Whose devices become the nodes. Without one, only `bodies` are served. */
  tailnet?: TailnetSimulator;
  bodies?: HeadscaleBodies;
  /** Default 0.30 (both APIs). */
  version?: HeadscaleVersion;
  /** Keys accepted; one `hskey-api-…` key is generated when omitted. */
  apiKeys?: string[];
  now?: () => number;
  host?: string;
}

const DAY = 86_400_000;
const TAGGED_USER_ID = '2147455555';
const EXIT_ROUTES = new Set(['0.0.0.0/0', '::/0']);

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function hex64(seed: number): string {
  const r = prng(seed);
  let s = '';
  for (let i = 0; i < 8; i++) s += Math.floor(r() * 0xffffffff).toString(16).padStart(8, '0');
  return s;
}

/** IPv4 routes first, then IPv6, each sorted (Headscale's order). */
function sortRoutes(routes: readonly string[]): string[] {
  return [...routes].sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')) || a.localeCompare(b));
}

interface SimUser {
  id: string;
  name: string;
  email: string;
  provider: string;
  providerId: string;
  createdMs: number;
}

/** Listens on `port` (0 = kernel's choice) and tracks sockets so `close` ends them. */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, host: string, port: number): Promise<{ server: Server; sockets: Set<Socket> }> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, sockets };
}

async function close(l: { server: Server; sockets: Set<Socket> } | undefined): Promise<void> {
  if (!l) return;
  for (const s of l.sockets) s.destroy();
  await new Promise<void>((resolve) => l.server.close(() => resolve()));
}

export class HeadscaleSimulator {
  readonly apiKeys: string[];
  readonly version: HeadscaleVersion;
  /** Requests per `METHOD path`. */
  readonly requests: Record<string, number> = {};
  /** API base URL (HEADSCALE_URL) once started. */
  url = '';
  /** `/metrics` URL of the metrics listener once started. */
  metricsUrl = '';
  private readonly _o: HeadscaleSimulatorOptions;
  private readonly _now: () => number;
  private readonly _startMs: number;
  private readonly _bodies: HeadscaleBodies;
  private readonly _faults = new Map<string, HeadscaleFault>();
  private _api: { server: Server; sockets: Set<Socket> } | undefined;
  private _metrics: { server: Server; sockets: Set<Socket> } | undefined;
  private _apiPort = 0;
  /** Tailscale device id → Headscale node id; ids are never reused, so a churned device leaves a gap. */
  private readonly _nodeIds = new Map<string, number>();
  private _nextNodeId = 1;
  private readonly _users = new Map<string, SimUser>();

  constructor(o: HeadscaleSimulatorOptions = {}) {
    this._o = o;
    this._now = o.now ?? Date.now;
    this._startMs = this._now() - 3 * 3_600_000;
    this.version = o.version ?? '0.30';
    this._bodies = { ...o.bodies };
    // Since 0.28: hskey-api-<12-character prefix>-<secret>.
    this.apiKeys = o.apiKeys ?? [`hskey-api-${randomBytes(9).toString('base64url')}-${randomBytes(24).toString('base64url')}`];
  }

  /** Replaces (or, with undefined, stops replacing) one generated body. */
  setBody(name: keyof HeadscaleBodies, body: string | undefined): void {
    if (body === undefined) delete this._bodies[name];
    else this._bodies[name] = body;
  }

  /** A fault `path` (e.g. `/api/v1/node`, `/metrics`, or `*` for every API path) shows until cleared. */
  setFault(path: string, fault: HeadscaleFault | undefined): void {
    if (fault) this._faults.set(path, fault);
    else this._faults.delete(path);
  }

  async start(): Promise<void> {
    const host = this._o.host ?? '127.0.0.1';
    this._api = await listen((req, res) => this._handleApi(req, res), host, 0);
    this._apiPort = (this._api.server.address() as AddressInfo).port;
    this.url = `http://${host}:${this._apiPort}`;
    this._metrics = await listen((req, res) => this._handleMetrics(req, res), host, 0);
    this.metricsUrl = `http://${host}:${(this._metrics.server.address() as AddressInfo).port}/metrics`;
  }

  /** The server goes away (connections are refused) until `up()`; the port is kept. */
  async down(): Promise<void> {
    const api = this._api;
    this._api = undefined;
    await close(api);
  }

  async up(): Promise<void> {
    if (this._api) return;
    this._api = await listen((req, res) => this._handleApi(req, res), this._o.host ?? '127.0.0.1', this._apiPort);
  }

  async stop(): Promise<void> {
    await close(this._api);
    await close(this._metrics);
    this._api = undefined;
    this._metrics = undefined;
  }

  /** Variables that build a Headscale pipeline from the environment against this server. */
  env(): Record<string, string> {
    return {
      HEADSCALE_URL: this.url,
      HEADSCALE_API_KEY: this.apiKeys[0] as string,
      HEADSCALE_METRICS_URL: this.metricsUrl,
      ...(this._o.tailnet ? { CLIENT_METRICS_PORT: String(this._o.tailnet.devicePort), CLIENT_METRICS_ALLOWED_CIDRS: '127.0.0.0/8' } : {}),
    };
  }

  // ---- time formats ----

  /** protojson (0.28/0.29): UTC, 0/3/6/9 fractional digits; 0.30 (encoding/json): trailing zeros trimmed. */
  private _ts(ms: number): string {
    const iso = new Date(ms).toISOString();
    return this.version === '0.30' ? iso.replace(/\.?0+Z$/, 'Z') : iso.replace('.000Z', 'Z');
  }

  // ---- generated data ----

  private _devices(): ApiDevice[] {
    const t = this._o.tailnet;
    if (!t) return [];
    // Headscale has no sharing: shared-in devices are not part of its tailnet.
    const list = t.apiDevices().filter((d) => d.isExternal !== true);
    const live = new Set(list.map((d) => d.id));
    for (const id of this._nodeIds.keys()) if (!live.has(id)) this._nodeIds.delete(id);
    for (const d of list) if (!this._nodeIds.has(d.id)) this._nodeIds.set(d.id, this._nextNodeId++);
    return list.sort((a, b) => (this._nodeIds.get(a.id) as number) - (this._nodeIds.get(b.id) as number));
  }

  private _userFor(email: string): SimUser {
    let u = this._users.get(email);
    if (!u) {
      const local = email.split('@')[0] ?? email;
      const id = String(this._users.size + 1);
      // Every other person signs in with OIDC; the rest, and service users, are local users without an e-mail.
      const oidc = email.includes('@') && this._users.size % 2 === 1;
      u = { id, name: local, email: oidc ? email : '', provider: oidc ? 'oidc' : '', providerId: oidc ? `https://sso.example-lab.net/realms/lab/${hex64(hash(email)).slice(0, 32)}` : '', createdMs: this._startMs - (40 - this._users.size) * DAY };
      this._users.set(email, u);
    }
    return u;
  }

  private _userJson(u: SimUser): Record<string, unknown> {
    return { id: u.id, name: u.name, createdAt: this._ts(u.createdMs), displayName: u.provider ? u.name.replace(/^./, (c) => c.toUpperCase()) : '', email: u.email, providerId: u.providerId, provider: u.provider, profilePicUrl: '' };
  }

  private _taggedUser(): Record<string, unknown> {
    return { id: TAGGED_USER_ID, name: 'tagged-devices', createdAt: '0001-01-01T00:00:00Z', displayName: 'Tagged Devices', email: '', providerId: '', provider: '', profilePicUrl: '' };
  }

  private _ciUser(): SimUser {
    return this._userFor('ci-bot');
  }

  /** The pre-auth keys, relative to now (the CI key expires within days, so the alert has something to show). */
  private _preAuthKeys(): Array<Record<string, unknown>> {
    const now = this._now();
    const day = Math.floor(now / DAY) * DAY;
    const alice = this._userFor('alice@example.com');
    const ci = this._ciUser();
    return [
      { user: null, id: '1', key: 'hskey-auth-Sv4tRq9pLm2T-***', reusable: true, ephemeral: false, used: false, expiration: this._ts(day + 60 * DAY), createdAt: this._ts(this._startMs - 30 * DAY), aclTags: ['tag:exporter', 'tag:router'] },
      { user: null, id: '2', key: 'hskey-auth-Ci7Ephm_Keys2-***', reusable: true, ephemeral: true, used: false, expiration: this._ts(day + 5 * DAY), createdAt: this._ts(this._startMs - 10 * DAY), aclTags: ['tag:ci', 'tag:exporter'] },
      { user: this._userJson(alice), id: '3', key: 'hskey-auth-aB9dE2fG7hJ4-***', reusable: false, ephemeral: false, used: true, expiration: this._ts(day - 30 * DAY), createdAt: this._ts(day - 31 * DAY), aclTags: [] },
      // Made before 0.28: Headscale lists it in full, so the list carries a live secret.
      { user: this._userJson(ci), id: '4', key: hex64(hash('legacy-key')).slice(0, 48), reusable: false, ephemeral: false, used: false, expiration: this._ts(day - 200 * DAY), createdAt: this._ts(day - 201 * DAY), aclTags: [] },
    ];
  }

  private _apiKeysList(): Array<Record<string, unknown>> {
    const now = this._now();
    const day = Math.floor(now / DAY) * DAY;
    const own = this.apiKeys[0] as string;
    const prefix = /^hskey-api-(.{12})-/.exec(own)?.[1] ?? own.slice(0, 7);
    return [
      { id: '1', prefix: 'Qw7rT2x***', expiration: this._ts(day - 60 * DAY), createdAt: this._ts(day - 150 * DAY), lastSeen: null },
      { id: '2', prefix: `hskey-api-${prefix}-***`, expiration: this._ts(day + 80 * DAY), createdAt: this._ts(day - 10 * DAY), lastSeen: null },
      { id: '3', prefix: 'hskey-api-Lm8Np2Qr4St6-***', expiration: this._ts(day + 4 * DAY), createdAt: this._ts(day - 86 * DAY), lastSeen: null },
    ];
  }

  /** Nodes as `GET /api/v1/node` lists them. */
  nodes(): Array<Record<string, unknown>> {
    const now = this._now();
    const keys = this._preAuthKeys();
    return this._devices().map((d) => {
      const id = String(this._nodeIds.get(d.id));
      const tags = Array.isArray(d.tags) ? (d.tags as string[]) : [];
      const tagged = tags.length > 0;
      const online = d.connectedToControl === true;
      const h = hash(d.id);
      const ephemeral = d.isEphemeral === true;
      const pak = ephemeral ? keys[1] : tagged ? keys[0] : null;
      const expires = typeof d.expires === 'string' && !d.expires.startsWith('0001') && d.keyExpiryDisabled !== true && !tagged ? Date.parse(d.expires) : undefined;
      const lastSeen = typeof d.lastSeen === 'string' ? Date.parse(d.lastSeen) : now - (h % 600) * 1000;
      const approved = sortRoutes(Array.isArray(d.enabledRoutes) ? (d.enabledRoutes as string[]) : []);
      const available = sortRoutes(Array.isArray(d.advertisedRoutes) ? (d.advertisedRoutes as string[]) : []);
      const os = String(d.os ?? '');
      const created = typeof d.created === 'string' && d.created ? Date.parse(d.created) : this._startMs;
      return {
        id,
        machineKey: typeof d.machineKey === 'string' && d.machineKey ? d.machineKey : `mkey:${hex64(h)}`,
        nodeKey: typeof d.nodeKey === 'string' && d.nodeKey ? d.nodeKey : `nodekey:${hex64(h ^ 1)}`,
        discoKey: `discokey:${hex64(h ^ 2)}`,
        ipAddresses: d.addresses,
        name: d.hostname,
        user: tagged ? this._taggedUser() : this._userJson(this._userFor(String(d.user ?? 'unknown'))),
        lastSeen: this._ts(lastSeen),
        expiry: expires === undefined ? null : this._ts(expires),
        preAuthKey: pak ?? null,
        createdAt: this._ts(created),
        registerMethod: pak ? 'REGISTER_METHOD_AUTH_KEY' : ['macOS', 'iOS', 'windows'].includes(os) ? 'REGISTER_METHOD_OIDC' : 'REGISTER_METHOD_CLI',
        givenName: String(d.name).split('.')[0],
        online,
        approvedRoutes: approved,
        availableRoutes: available,
        subnetRoutes: online ? [...approved.filter((r) => !EXIT_ROUTES.has(r)), ...approved.filter((r) => EXIT_ROUTES.has(r))] : [],
        tags,
      };
    });
  }

  private _usersList(): Array<Record<string, unknown>> {
    // Owners of the nodes first (ids by first appearance), then a service user without nodes.
    this.nodes();
    this._ciUser();
    return [...this._users.values()].sort((a, b) => Number(a.id) - Number(b.id)).map((u) => this._userJson(u));
  }

  /** The nodes as 0.30's `/api/v2/tailnet/-/devices` returns them (Tailscale's Device shape). */
  private _devicesV2(all: boolean): Array<Record<string, unknown>> {
    const byNode = new Map(this._devices().map((d) => [String(this._nodeIds.get(d.id)), d]));
    return this.nodes().map((n) => {
      const d = byNode.get(String(n.id)) as ApiDevice;
      const user = n.user as { name: string; email: string };
      const approved = n.approvedRoutes as string[];
      const available = n.availableRoutes as string[];
      return {
        addresses: n.ipAddresses,
        name: n.givenName,
        id: n.id,
        nodeId: n.id,
        authorized: true,
        user: user.email || user.name,
        tags: n.tags,
        keyExpiryDisabled: n.expiry === null,
        created: n.createdAt,
        ...(n.expiry ? { expires: n.expiry } : {}),
        hostname: n.name,
        isEphemeral: (n.preAuthKey as { ephemeral?: boolean } | null)?.ephemeral === true,
        // Only while the node is offline, as Headscale sends it.
        ...(n.online ? {} : { lastSeen: n.lastSeen }),
        machineKey: n.machineKey,
        nodeKey: n.nodeKey,
        os: String(d.os ?? ''),
        clientVersion: String(d.clientVersion ?? ''),
        updateAvailable: false,
        ...(all && available.length ? { advertisedRoutes: available } : {}),
        ...(all && approved.length ? { enabledRoutes: approved } : {}),
      };
    });
  }

  /** Headscale's own metrics page, growing with time (`headscale_nodestore_nodes_total` in 0.28). */
  metricsPage(): string {
    const now = this._now();
    const up = Math.max(1, (now - this._startMs) / 1000);
    const nodes = this._bodies.nodes ? 0 : this.nodes().length;
    const online = this._bodies.nodes ? 0 : this.nodes().filter((n) => n.online).length;
    const c = (rate: number): number => Math.floor(rate * up);
    const out: string[] = [];
    const fam = (name: string, type: string, help: string, lines: string[]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    const q = [0.00002, 0.00004, 0.00005, 0.00008, 0.0009];
    fam('go_gc_duration_seconds', 'summary', 'A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.', [
      ...['0', '0.25', '0.5', '0.75', '1'].map((x, i) => `go_gc_duration_seconds{quantile="${x}"} ${q[i]}`),
      `go_gc_duration_seconds_sum ${(c(0.02) * 0.0001).toFixed(6)}`,
      `go_gc_duration_seconds_count ${c(0.02)}`,
    ]);
    fam('go_goroutines', 'gauge', 'Number of goroutines that currently exist.', [`go_goroutines ${40 + online * 12}`]);
    fam('go_info', 'gauge', 'Information about the Go environment.', ['go_info{version="go1.26.4"} 1']);
    fam('go_memstats_alloc_bytes', 'gauge', 'Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.', [`go_memstats_alloc_bytes ${2e7 + nodes * 1e5}`]);
    fam('go_threads', 'gauge', 'Number of OS threads created.', ['go_threads 14']);
    fam('headscale_mapresponse_ended_total', 'counter', 'total count of new mapsessions ended', [`headscale_mapresponse_ended_total{reason="cancelled"} ${c(0.01)}`, `headscale_mapresponse_ended_total{reason="done"} ${c(0.0005)}`]);
    fam('headscale_mapresponse_endpoint_updates_total', 'counter', 'total count of endpoint updates received', [`headscale_mapresponse_endpoint_updates_total{status="ok"} ${c(0.08)}`]);
    fam('headscale_mapresponse_generated_total', 'counter', 'total count of mapresponses generated by response type', ['config', 'full', 'patch', 'peers', 'ping', 'policy', 'self'].map((t, i) => `headscale_mapresponse_generated_total{response_type="${t}"} ${c([0.001, 0.01, 0.25, 0.03, 0.0002, 0.002, 0.004][i] as number)}`));
    fam('headscale_mapresponse_sent_total', 'counter', 'total count of mapresponses sent to clients', [`headscale_mapresponse_sent_total{status="ok",type="keepalive"} ${c(0.02 * Math.max(1, online))}`]);
    const batches = c(0.1);
    const bounds = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10'];
    const share = [0.97, 0.995, 0.999, 1, 1, 1, 1, 1, 1, 1, 1];
    fam('headscale_nodestore_batch_duration_seconds', 'histogram', 'Duration of NodeStore batch processing', [
      ...bounds.map((b, i) => `headscale_nodestore_batch_duration_seconds_bucket{le="${b}"} ${Math.floor(batches * (share[i] as number))}`),
      `headscale_nodestore_batch_duration_seconds_bucket{le="+Inf"} ${batches}`,
      `headscale_nodestore_batch_duration_seconds_sum ${(batches * 0.0019).toFixed(6)}`,
      `headscale_nodestore_batch_duration_seconds_count ${batches}`,
    ]);
    const nodesName = this.version === '0.28' ? 'headscale_nodestore_nodes_total' : 'headscale_nodestore_nodes';
    fam(nodesName, 'gauge', 'Number of nodes in the NodeStore', [`${nodesName} ${nodes}`]);
    fam('headscale_nodestore_operations_total', 'counter', 'Total number of NodeStore operations', ['get', 'list', 'list_peers', 'put', 'update'].map((op, i) => `headscale_nodestore_operations_total{operation="${op}"} ${c([1.6, 0.16, 0.25, 0.0001, 0.1][i] as number)}`));
    fam('headscale_nodestore_queue_depth', 'gauge', 'Current depth of NodeStore write queue', ['headscale_nodestore_queue_depth 0']);
    fam('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [`process_cpu_seconds_total ${(up * 0.03).toFixed(2)}`]);
    fam('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [`process_resident_memory_bytes ${8e7 + nodes * 2e5}`]);
    fam('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', [`process_start_time_seconds ${Math.floor(this._startMs / 1000)}`]);
    fam('promhttp_metric_handler_requests_total', 'counter', 'Total number of scrapes by HTTP status code.', [`promhttp_metric_handler_requests_total{code="200"} ${c(0.033)}`, 'promhttp_metric_handler_requests_total{code="500"} 0', 'promhttp_metric_handler_requests_total{code="503"} 0']);
    return out.join('\n') + '\n';
  }

  // ---- HTTP ----

  private _count(req: IncomingMessage, path: string): void {
    const k = `${req.method} ${path.replace(/\/device\/[^/]+/, '/device/{id}')}`;
    this.requests[k] = (this.requests[k] ?? 0) + 1;
  }

  /** Applies a fault; false when none applies. */
  private _fault(path: string, res: ServerResponse): boolean {
    const f = this._faults.get(path) ?? (path !== '/metrics' ? this._faults.get('*') : undefined);
    if (!f) return false;
    switch (f.kind) {
      case 'hang':
        return true;
      case 'reset':
        res.socket?.resetAndDestroy();
        return true;
      case 'status':
        res.writeHead(f.status, { 'content-type': f.contentType ?? 'application/json', ...(f.retryAfter ? { 'retry-after': f.retryAfter } : {}) });
        res.end(f.body ?? JSON.stringify({ code: 13, message: 'internal error', details: [] }));
        return true;
      case 'body':
        res.writeHead(200, { 'content-type': f.contentType ?? 'application/json' });
        res.end(f.body);
        return true;
    }
  }

  private _bearer(req: IncomingMessage): string | undefined {
    const h = req.headers.authorization ?? '';
    return h.startsWith('Bearer ') ? h.slice(7) : undefined;
  }

  private _json(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
    res.writeHead(status, { 'content-type': type });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  }

  private _v1Error(res: ServerResponse, status: number, message: string): void {
    if (this.version === '0.30') return this._json(res, status, { title: message, status, detail: message, errors: [] }, 'application/problem+json');
    // grpc-gateway's status JSON; codes as grpc maps them.
    this._json(res, status, { code: status === 404 ? 5 : status === 405 ? 12 : 13, message, details: [] });
  }

  private _handleApi(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://headscale');
    const path = url.pathname;
    this._count(req, path);
    if (this._fault(path, res)) return;
    if (path === '/health') return this._json(res, 200, { status: 'pass' }, 'application/health+json');
    if (path === '/version') return this._json(res, 200, { version: `${this.version}.0-sim`, commit: 'sim', buildTime: '', go: { version: 'go1.26.4', os: 'linux', arch: 'amd64' }, dirty: false });
    if (path.startsWith('/api/v2/')) return this._v2(req, res, url);
    if (!path.startsWith('/api/v1/')) return this._json(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
    const key = this._bearer(req);
    if (!key || !this.apiKeys.includes(key)) {
      if (this.version === '0.30') return this._v1Error(res, 401, 'Unauthorized');
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Unauthorized');
      return;
    }
    if (req.method !== 'GET') return this._v1Error(res, 405, 'Method Not Allowed');
    const b = this._bodies;
    switch (path) {
      case '/api/v1/node': {
        if (b.nodes) return this._json(res, 200, b.nodes);
        const user = url.searchParams.get('user');
        const nodes = this.nodes().filter((n) => !user || (n.user as { name: string }).name === user);
        return this._json(res, 200, { nodes });
      }
      case '/api/v1/user':
        return this._json(res, 200, b.users ?? { users: this._usersList() });
      case '/api/v1/preauthkey': {
        if (b.preAuthKeys) return this._json(res, 200, b.preAuthKeys);
        return this._json(res, 200, { preAuthKeys: this._preAuthKeys() });
      }
      case '/api/v1/apikey':
        return this._json(res, 200, b.apiKeys ?? { apiKeys: this._apiKeysList() });
      case '/api/v1/health':
        return this._json(res, 200, b.health ?? { databaseConnectivity: true });
      default:
        return this._v1Error(res, 404, 'Not Found');
    }
  }

  /**
   * The 0.30 Tailscale-compatible subset, as far as its wire shapes are known: the device list,
   * one device and its routes; Bearer or Basic (key as the username). Anything else is a 404.
   */
  private _v2(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const tsError = (status: number, message: string): void => this._json(res, status, { message, data: null, status });
    if (this.version !== '0.30') return this._json(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
    const h = req.headers.authorization ?? '';
    const key = h.startsWith('Basic ') ? (Buffer.from(h.slice(6), 'base64').toString('utf8').split(':')[0] ?? '') : this._bearer(req);
    if (!key || !this.apiKeys.includes(key)) return tsError(401, 'invalid API key');
    if (req.method !== 'GET') return tsError(405, 'method not allowed');
    const all = url.searchParams.get('fields')?.split(',').includes('all') ?? false;
    const list = /^\/api\/v2\/tailnet\/([^/]+)\/devices$/.exec(url.pathname);
    if (list) {
      if (decodeURIComponent(list[1] as string) !== '-') return tsError(404, 'tailnet not found');
      return this._json(res, 200, this._bodies.devicesV2 ?? { devices: this._devicesV2(all) });
    }
    const one = /^\/api\/v2\/device\/([^/]+)(\/routes)?$/.exec(url.pathname);
    if (one) {
      const d = this._devicesV2(true).find((x) => x.id === one[1]);
      if (!d) return tsError(404, 'device not found');
      if (one[2]) return this._json(res, 200, { advertisedRoutes: d.advertisedRoutes ?? [], enabledRoutes: d.enabledRoutes ?? [] });
      return this._json(res, 200, all ? d : { ...d, advertisedRoutes: undefined, enabledRoutes: undefined });
    }
    return tsError(404, 'not found');
  }

  private _handleMetrics(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const path = new URL(req.url ?? '/', 'http://headscale').pathname;
    this._count(req, `metrics:${path}`);
    if (path !== '/metrics') return this._json(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
    if (this._fault('/metrics', res)) return;
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8; escaping=underscores' });
    res.end(this._bodies.metrics ?? this.metricsPage());
  }
}

/** Starts a Headscale simulator in front of `tailnet`'s devices (`tsmetrics simulate --headscale`, demo mode). */
export async function startHeadscaleSimulator(tailnet: TailnetSimulator, o: Omit<HeadscaleSimulatorOptions, 'tailnet'> = {}): Promise<HeadscaleSimulator> {
  const hs = new HeadscaleSimulator({ ...o, tailnet });
  await hs.start();
  return hs;
}
