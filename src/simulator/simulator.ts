import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LocalApiSimulator } from './localapi.ts';
import { policyText, TailnetApiSimulator, type TailnetApiOptions } from './tailnet-api.ts';
import { TailnetLogsSimulator } from './logs.ts';
import { defaultFields, finishDevice, isEphemeralIndex, makeDevice, renderClientMetrics, TEMPLATE_COUNT, type ApiDevice, type SimDevice, type TailnetOptions } from './model.ts';

/** A misbehaviour a simulated device or the API can be told to show. */
export type Fault =
  | { kind: 'hang' }
  | { kind: 'slow_body'; bytesPerSecond?: number }
  | { kind: 'reset' }
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'garbage' }
  | { kind: 'invalid_utf8' }
  | { kind: 'oversize'; bytes: number }
  | { kind: 'huge'; series: number }
  | { kind: 'body'; body: string; contentType?: string }
  | { kind: 'truncated' }
  | { kind: 'delay'; ms: number };

export interface SimulatorOptions extends TailnetOptions, TailnetApiOptions {
  /** Latency before a device answers, ms (benchmarks use 25). */
  deviceLatencyMs?: number;
  /**
   * How long a device keeps an idle HTTP connection open, ms; 0 = until the client closes it.
   * Default 0: tailscaled serves `/metrics` from Go's net/http, whose server sets no idle
   * timeout unless told to, so a scraper's kept-alive connection survives between cycles.
   * Node's own default (5 s) would have every device hang up between scrapes.
   */
  deviceIdleTimeoutMs?: number;
  /** Latency before the API answers, ms. */
  apiLatencyMs?: number;
  /** API keys accepted (Basic user or Bearer). One is generated when omitted. */
  apiKeys?: string[];
  /** OAuth clients accepted by the token endpoint. One is generated when omitted. */
  oauthClients?: Array<{ id: string; secret: string }>;
  /** Lifetime of issued OAuth tokens, seconds (Tailscale: 3600). */
  tokenLifetimeS?: number;
  /** Name of the tailnet ("-" always works too). */
  tailnet?: string;
  /** Replace the generated devices with these API objects (fixture-driven tests). */
  devices_json?: ApiDevice[];
  /** Ephemeral devices are replaced by new ones every this many ms (0 = never). */
  ephemeralLifetimeMs?: number;
  /** Start device servers (false = API only). */
  deviceServers?: boolean;
  /**
   * Serve only every `count`-th device server, starting at `index`, on port `port` (0 = pick
   * one; the other shards are then given it). Benchmarks spread one simulated tailnet over
   * several processes this way: a device server and its kept connection are two open files,
   * and one process serving 10,000 devices passes a 20,000-file limit. (Whether one process's
   * queueing delays the answers was measured too: 2 or 4 processes did not move the 2,000-device
   * scrape cycle.)
   */
  deviceShard?: { index: number; count: number; port?: number };
  /**
   * Index of a device that answers 503 to every other scrape, starting with the first (demo mode
   * uses it so error and backoff panels have something to show).
   */
  flakyDeviceIndex?: number;
  /** Clock (ms); tests pin it. */
  now?: () => number;
  /** Address the API binds (loopback). */
  host?: string;
  /**
   * Also serve a LocalAPI on a unix socket whose peers are these devices (see localapi.ts);
   * `env()` then points the local_tailscaled receiver at it (demo mode).
   */
  localApi?: boolean;
}

interface DeviceServer {
  readonly server: Server;
  readonly sockets: Set<Socket>;
}

/** Counts what the simulator served (tests assert "exactly one call per cycle"). */
export interface SimulatorStats {
  apiRequests: Record<string, number>;
  deviceRequests: Map<string, number>;
  tokensIssued: number;
}

/** Writes chunks from `next` until it returns undefined, honouring back-pressure. */
function streamBody(res: ServerResponse, next: () => Buffer | string | undefined): void {
  res.on('error', () => undefined);
  const pump = (): void => {
    for (let c = next(); c !== undefined; c = next()) {
      if (!res.write(c)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

/**
 * A tailnet on loopback: a Tailscale-API-shaped HTTP server (OAuth token endpoint, API-key auth,
 * devices list with `fields=all`/default, routes) and one tailscaled-shaped `/metrics` server per
 * device on its own 127.x.y.z address. Faults can be injected per device and for the API.
 */
export class TailnetSimulator {
  readonly apiKeys: string[];
  readonly oauthClients: Array<{ id: string; secret: string }>;
  readonly tailnet: string;
  readonly stats: SimulatorStats = { apiRequests: {}, deviceRequests: new Map(), tokensIssued: 0 };
  /** Devices by index; ephemeral ones are re-created as they churn. */
  devices: SimDevice[] = [];
  private readonly _opts: SimulatorOptions;
  private readonly _now: () => number;
  private readonly _startMs: number;
  private readonly _tokens = new Map<string, number>();
  private readonly _deviceFaults = new Map<string, Fault>();
  private readonly _apiFaultQueue: Fault[] = [];
  private _apiFault: Fault | undefined;
  private _api: Server | undefined;
  private readonly _apiSockets = new Set<Socket>();
  private readonly _deviceServers = new Map<string, DeviceServer>();
  private _devicePort = 0;
  private _churnCursor = 0;
  private _generation = 1000;
  private _removed = new Set<string>();
  private _explicit: ApiDevice[] | undefined;
  apiUrl = '';
  /** The LocalAPI socket server, with `localApi: true`, once started. */
  localApi: LocalApiSimulator | undefined;
  /** Users, keys, DNS, settings, posture, Services, policy, log streams, webhooks, invites (tailnet-api.ts). */
  readonly tailnetApi: TailnetApiSimulator;
  /** Network flow and configuration audit logs, served at `…/logging/{network,configuration}` (logs.ts). */
  readonly logs: TailnetLogsSimulator;

  constructor(opts: SimulatorOptions = {}) {
    this._opts = opts;
    this._now = opts.now ?? Date.now;
    this._startMs = this._now() - 3_600_000;
    // The real shape, tskey-api-<key id>-<secret>, so the keys API knows the simulator's own key.
    this.apiKeys = opts.apiKeys ?? [`tskey-api-k${randomBytes(5).toString('hex')}CNTRL-sim${randomBytes(12).toString('hex')}`];
    this.oauthClients = opts.oauthClients ?? [{ id: `k${randomBytes(6).toString('hex')}CNTRL`, secret: `tskey-client-sim-${randomBytes(16).toString('hex')}` }];
    this.tailnet = opts.tailnet ?? 'example.com';
    this._explicit = opts.devices_json;
    const lifetime = opts.ephemeralLifetimeMs ?? 120_000;
    this.logs = new TailnetLogsSimulator({
      now: this._now,
      tailnet: this.tailnet,
      devicesAt: (t) => (this._explicit ? this._explicit.filter((d) => !this._removed.has(d.id)) : this.currentDevices(t, lifetime).map((d) => finishDevice(d, t))),
      ephemeralLifetimeMs: lifetime,
      generated: this._explicit === undefined,
      policyText,
      oauthClientId: this.oauthClients[0]?.id ?? 'kSimOAuth011CNTRL',
    });
    this.tailnetApi = new TailnetApiSimulator({ now: this._now, tailnet: this.tailnet, devices: () => this.apiDevices(), apiKeys: this.apiKeys, oauthClients: this.oauthClients, logs: this.logs }, opts);
    const seed = opts.seed ?? 1;
    const count = opts.names?.length ?? opts.devices ?? 12;
    for (let i = 0; i < count; i++) {
      this.devices.push(makeDevice(i, { seed, suffix: opts.suffix ?? 'tail4c8e1a.ts.net', exporterShare: opts.exporterShare ?? 0.8, uniform: opts.uniform ?? false, ...(opts.names?.[i] ? { name: opts.names[i] } : {}) }));
    }
  }

  /** Port every simulated device serves `/metrics` on (CLIENT_METRICS_PORT). */
  get devicePort(): number {
    return this._devicePort;
  }

  /** The API's devices list right now (ephemeral devices churn with time). */
  apiDevices(): ApiDevice[] {
    const now = this._now();
    if (this._explicit) return this._explicit.filter((d) => !this._removed.has(d.id));
    const lifetime = this._opts.ephemeralLifetimeMs ?? 120_000;
    const out: ApiDevice[] = [];
    for (const d of this.currentDevices(now, lifetime)) if (!this._removed.has(d.api.id)) out.push(finishDevice(d, now));
    return out;
  }

  /** Devices present at `now`, with ephemeral ones replaced per generation. */
  currentDevices(now = this._now(), lifetime = this._opts.ephemeralLifetimeMs ?? 120_000): SimDevice[] {
    if (!lifetime) return this.devices;
    const gen = Math.floor(now / lifetime) % 0xffff;
    return this.devices.map((d) => {
      if (!isEphemeralIndex(d.index, d.uniform) || d.index < TEMPLATE_COUNT) return d;
      return makeDevice(d.index, { seed: this._opts.seed ?? 1, suffix: this._opts.suffix ?? 'tail4c8e1a.ts.net', exporterShare: this._opts.exporterShare ?? 0.8, generation: gen + 1 });
    });
  }

  /** Injects a fault into the device with this API id (undefined clears it). */
  setDeviceFault(deviceId: string, fault: Fault | undefined): void {
    if (fault) this._deviceFaults.set(deviceId, fault);
    else this._deviceFaults.delete(deviceId);
  }

  /** A fault the API shows on every request until cleared. */
  setApiFault(fault: Fault | undefined): void {
    this._apiFault = fault;
  }

  /** Faults the API shows once each, on the next requests, before answering normally. */
  queueApiFaults(...faults: Fault[]): void {
    this._apiFaultQueue.push(...faults);
  }

  /**
   * Replaces `fraction` of the devices by new ones (new ids and names, same addresses), as
   * devices come and go in a real tailnet. Returns the ids that left.
   */
  churn(fraction: number): string[] {
    const n = Math.round(this.devices.length * fraction);
    const left: string[] = [];
    for (let k = 0; k < n; k++) {
      const i = (this._churnCursor + k) % this.devices.length;
      const old = this.devices[i] as SimDevice;
      left.push(old.api.id);
      // Forget what belonged to the device that left, so a long churn does not grow memory.
      this.stats.deviceRequests.delete(old.api.id);
      this._deviceFaults.delete(old.api.id);
      this._generation++;
      this.devices[i] = makeDevice(old.index, { seed: this._opts.seed ?? 1, suffix: this._opts.suffix ?? 'tail4c8e1a.ts.net', exporterShare: this._opts.exporterShare ?? 0.8, uniform: this._opts.uniform ?? false, generation: this._generation });
    }
    this._churnCursor = (this._churnCursor + n) % Math.max(1, this.devices.length);
    return left;
  }

  /** Removes a device from the API list (it also stops answering scrapes). */
  removeDevice(deviceId: string): void {
    this._removed.add(deviceId);
  }

  /** Replaces the explicit device list (fixture tests: rename, upgrade, route removed). */
  setDevicesJson(devices: ApiDevice[]): void {
    this._explicit = devices;
  }

  /** Forgets every issued OAuth token (as if they all expired). */
  expireTokens(): void {
    this._tokens.clear();
    this.tailnetApi.forget();
  }

  async start(): Promise<void> {
    this._api = createServer((req, res) => this._handleApi(req, res));
    this._api.on('connection', (s) => {
      this._apiSockets.add(s);
      s.on('close', () => this._apiSockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      this._api?.once('error', reject);
      this._api?.listen(0, this._opts.host ?? '127.0.0.1', () => resolve());
    });
    const a = this._api.address() as AddressInfo;
    this.apiUrl = `http://${a.address}:${a.port}`;
    if (this._opts.deviceServers !== false) await this._startDevices();
    if (this._opts.localApi) {
      this.localApi = new LocalApiSimulator({ tailnet: this, now: this._now });
      await this.localApi.start();
    }
  }

  private async _startDevices(): Promise<void> {
    const addrs = new Set<string>();
    for (const d of this.devices) if (d.servesMetrics) addrs.add((d.api.addresses as string[])[0] as string);
    if (this._explicit) for (const d of this._explicit) if (Array.isArray(d.addresses) && d.addresses[0]) addrs.add(d.addresses[0] as string);
    const shard = this._opts.deviceShard;
    const loop = [...addrs].filter((a, i) => a.startsWith('127.') && (!shard || i % shard.count === shard.index));
    if (shard?.port) this._devicePort = shard.port;
    for (let attempt = 0; attempt < (shard?.port ? 1 : 5); attempt++) {
      try {
        for (const addr of loop) {
          const port = this._devicePort;
          const srv = await this._listenDevice(addr, port);
          if (!this._devicePort) this._devicePort = (srv.server.address() as AddressInfo).port;
        }
        return;
      } catch {
        await this._closeDevices();
        this._devicePort = 0;
      }
    }
    throw new Error('simulator: could not bind device servers on one shared port');
  }

  private _listenDevice(addr: string, port: number): Promise<DeviceServer> {
    const server = createServer((req, res) => this._handleDevice(addr, req, res));
    server.keepAliveTimeout = this._opts.deviceIdleTimeoutMs ?? 0;
    const ds: DeviceServer = { server, sockets: new Set() };
    server.on('connection', (s) => {
      ds.sockets.add(s);
      s.on('close', () => ds.sockets.delete(s));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, addr, () => {
        this._deviceServers.set(addr, ds);
        resolve(ds);
      });
    });
  }

  private _byAddress: { gen: number; count: number; map: Map<string, SimDevice> } | undefined;

  private _deviceByAddress(addr: string): { sim?: SimDevice; api?: ApiDevice } {
    if (this._explicit) {
      const api = this._explicit.find((d) => Array.isArray(d.addresses) && d.addresses[0] === addr);
      if (!api) return {};
      const sim = this.devices.find((d) => (d.api.addresses as string[])[0] === addr) ?? makeDevice(0, { seed: 1, suffix: 'x', exporterShare: 0 });
      return { sim, api };
    }
    // By address through a map kept per device generation: a linear search per request made the
    // simulator's own CPU grow with the square of the tailnet, and on a 2-core machine that CPU
    // is taken from the process being measured.
    const now = this._now();
    const lifetime = this._opts.ephemeralLifetimeMs ?? 120_000;
    const gen = lifetime ? Math.floor(now / lifetime) : -1;
    if (!this._byAddress || this._byAddress.gen !== gen || this._byAddress.count !== this.devices.length) {
      const map = new Map<string, SimDevice>();
      for (const d of this.currentDevices(now, lifetime)) {
        const a = (d.api.addresses as string[])[0];
        if (a !== undefined && !map.has(a)) map.set(a, d);
      }
      this._byAddress = { gen, count: this.devices.length, map };
    }
    const sim = this._byAddress.map.get(addr);
    return sim ? { sim, api: sim.api } : {};
  }

  private _handleDevice(addr: string, req: IncomingMessage, res: ServerResponse): void {
    const { sim, api } = this._deviceByAddress(addr);
    if (!sim || !api || this._removed.has(api.id)) {
      res.socket?.destroy();
      return;
    }
    this.stats.deviceRequests.set(api.id, (this.stats.deviceRequests.get(api.id) ?? 0) + 1);
    if (req.url !== '/metrics') {
      res.writeHead(404).end('404 page not found\n');
      return;
    }
    const flaky = this._opts.flakyDeviceIndex === sim.index && ((this.stats.deviceRequests.get(api.id) ?? 0) % 2 === 1);
    const fault = this._deviceFaults.get(api.id) ?? (flaky ? ({ kind: 'status', status: 503 } as const) : undefined);
    // Without a fault the body is rendered when the request arrives and sent after the
    // latency: a device is its own machine, so the simulator rendering a hundred bodies in a row
    // when their timers fire together must not add to the latency each of them models.
    const body = fault ? undefined : renderClientMetrics(sim, this._now(), this._startMs);
    const answer = (): void => {
      if (fault && this._applyFault(fault, res, () => renderClientMetrics(sim, this._now(), this._startMs))) return;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(body ?? renderClientMetrics(sim, this._now(), this._startMs));
    };
    const delay = fault?.kind === 'delay' ? fault.ms : (this._opts.deviceLatencyMs ?? 0);
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  }

  /** Applies a fault to a response; returns false when the normal answer should follow. */
  private _applyFault(f: Fault, res: ServerResponse, normal: () => string): boolean {
    switch (f.kind) {
      case 'hang':
        return true; // never answers; the client's timeout must end it
      case 'reset':
        res.socket?.resetAndDestroy();
        return true;
      case 'status':
        res.writeHead(f.status, { 'content-type': 'application/json', ...(f.retryAfter ? { 'retry-after': f.retryAfter } : {}) });
        res.end(f.body ?? JSON.stringify({ message: f.status === 429 ? 'too many requests' : f.status >= 500 ? 'internal server error' : 'error' }));
        return true;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('<html><body>this is not metrics {{{ "\n\0\0 }\n');
        return true;
      case 'invalid_utf8':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(Buffer.concat([Buffer.from('tailscaled_health_messages{type="'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"} 1\n')]));
        return true;
      case 'oversize': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(64 * 1024, '# padding padding padding padding\n');
        let sent = 0;
        streamBody(res, () => {
          if (sent >= f.bytes) return undefined;
          sent += chunk.length;
          return chunk;
        });
        return true;
      }
      case 'huge': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('# TYPE huge_series gauge\n');
        let i = 0;
        streamBody(res, () => {
          if (i >= f.series) return undefined;
          let s = '';
          for (let j = 0; j < 5000 && i < f.series; j++, i++) s += `huge_series{n="${i}"} ${i}\n`;
          return s;
        });
        return true;
      }
      case 'slow_body': {
        const body = Buffer.from(normal());
        res.writeHead(200, { 'content-type': 'text/plain' });
        let i = 0;
        const rate = f.bytesPerSecond ?? 1;
        const timer = setInterval(() => {
          if (i >= body.length || res.destroyed) {
            clearInterval(timer);
            res.end();
            return;
          }
          res.write(body.subarray(i, i + rate));
          i += rate;
        }, 1000);
        res.on('close', () => clearInterval(timer));
        return true;
      }
      case 'body':
        res.writeHead(200, { 'content-type': f.contentType ?? 'text/plain' });
        res.end(f.body);
        return true;
      case 'truncated': {
        const body = normal();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length + 100) });
        res.write(body.slice(0, Math.floor(body.length / 2)));
        setTimeout(() => res.socket?.destroy(), 10);
        return true;
      }
      case 'delay':
        return false;
    }
  }

  private _authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? '';
    if (h.startsWith('Bearer ')) {
      const t = h.slice(7);
      if (this.apiKeys.includes(t)) return true;
      const exp = this._tokens.get(t);
      return exp !== undefined && exp > this._now();
    }
    if (h.startsWith('Basic ')) {
      const [user] = Buffer.from(h.slice(6), 'base64').toString('utf8').split(':');
      return this.apiKeys.includes(user ?? '');
    }
    return false;
  }

  private _handleApi(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://sim');
      const key = `${req.method} ${url.pathname.replace(/\/device\/[^/]+/, '/device/{id}')}`;
      this.stats.apiRequests[key] = (this.stats.apiRequests[key] ?? 0) + 1;
      const go = (): void => this._routeApi(req, res, url, Buffer.concat(chunks).toString('utf8'));
      const lat = this._opts.apiLatencyMs ?? 0;
      if (lat > 0) setTimeout(go, lat);
      else go();
    });
  }

  private _routeApi(req: IncomingMessage, res: ServerResponse, url: URL, body: string): void {
    if (url.pathname === '/api/v2/oauth/token' && req.method === 'POST') {
      const form = new URLSearchParams(body);
      let id = form.get('client_id') ?? '';
      let secret = form.get('client_secret') ?? '';
      const h = req.headers.authorization ?? '';
      if (h.startsWith('Basic ')) [id = '', secret = ''] = Buffer.from(h.slice(6), 'base64').toString('utf8').split(':');
      const client = this.oauthClients.find((c) => c.secret === secret && (c.id === id || id === 'some-client-id'));
      if (!client) return send(res, 401, { message: 'API token invalid' });
      const token = `tskey-oauth-sim${randomBytes(16).toString('hex')}`;
      const lifetime = this._opts.tokenLifetimeS ?? 3600;
      this._tokens.set(token, this._now() + lifetime * 1000);
      this.stats.tokensIssued++;
      return send(res, 200, { access_token: token, token_type: 'Bearer', expires_in: lifetime, scope: this.tailnetApi.grant(token, client.id, form.get('scope')) });
    }
    if (url.pathname === '/api/v2/oauth/token-exchange' && req.method === 'POST') {
      // Workload identity federation: a federated identity's client id and its OIDC ID token.
      const clientId = this.tailnetApi.exchange(new URLSearchParams(body));
      if (!clientId) return send(res, 401, { message: 'API token invalid' });
      const token = `tskey-api-sim${randomBytes(16).toString('hex')}`;
      const lifetime = this._opts.tokenLifetimeS ?? 3600;
      this._tokens.set(token, this._now() + lifetime * 1000);
      this.stats.tokensIssued++;
      return send(res, 200, { access_token: token, token_type: 'Bearer', expires_in: lifetime, scope: this.tailnetApi.grant(token, clientId) });
    }
    const fault = this._apiFaultQueue.shift() ?? this._apiFault;
    if (fault && this._applyFault(fault, res, () => JSON.stringify({ devices: this.apiDevices() }))) return;
    if (!this._authorized(req)) return send(res, 401, { message: 'API token invalid' });
    if (req.method !== 'GET') return send(res, 405, { message: 'method not allowed' });
    const list = /^\/api\/v2\/tailnet\/([^/]+)\/devices$/.exec(url.pathname);
    if (list) {
      if (!this.tailnetApi.allows(req, 'devices:core:read')) return void this.tailnetApi.deny(res, 'devices');
      const tn = decodeURIComponent(list[1] as string);
      if (tn !== '-' && tn !== this.tailnet) return send(res, 404, { message: 'tailnet not found' });
      const all = url.searchParams.get('fields')?.split(',').includes('all') ?? false;
      const devices = this.apiDevices().map((d) => (all ? d : defaultFields(d)));
      return send(res, 200, { devices });
    }
    const routes = /^\/api\/v2\/device\/([^/]+)\/routes$/.exec(url.pathname);
    if (routes) {
      const d = this.apiDevices().find((x) => x.id === routes[1] || x.nodeId === routes[1]);
      if (!d) return send(res, 404, { message: 'not found' });
      return send(res, 200, { advertisedRoutes: d.advertisedRoutes ?? [], enabledRoutes: d.enabledRoutes ?? [] });
    }
    const one = /^\/api\/v2\/device\/([^/]+)$/.exec(url.pathname);
    if (one) {
      const d = this.apiDevices().find((x) => x.id === one[1] || x.nodeId === one[1]);
      if (!d) return send(res, 404, { message: 'not found' });
      const all = url.searchParams.get('fields')?.split(',').includes('all') ?? false;
      return send(res, 200, all ? d : defaultFields(d));
    }
    if (this.tailnetApi.handle(req, url, res)) return;
    return send(res, 404, { message: 'not found' });
  }

  private async _closeDevices(): Promise<void> {
    const all = [...this._deviceServers.values()];
    this._deviceServers.clear();
    await Promise.all(
      all.map(
        (d) =>
          new Promise<void>((resolve) => {
            for (const s of d.sockets) s.destroy();
            d.server.close(() => resolve());
          }),
      ),
    );
  }

  async stop(): Promise<void> {
    await this.localApi?.stop();
    for (const s of this._apiSockets) s.destroy();
    await new Promise<void>((resolve) => (this._api ? this._api.close(() => resolve()) : resolve()));
    await this._closeDevices();
  }

  /** Environment variables that point tsmetrics at this simulator. */
  env(): Record<string, string> {
    return {
      TAILSCALE_API_URL: this.apiUrl,
      TS_API_KEY: this.apiKeys[0] as string,
      TAILNET_NAME: this.tailnet,
      CLIENT_METRICS_PORT: String(this._devicePort),
      CLIENT_METRICS_ALLOWED_CIDRS: '127.0.0.0/8',
      ...(this.localApi ? { TS_LOCALAPI_SOCKET: this.localApi.socketPath } : {}),
    };
  }
}
