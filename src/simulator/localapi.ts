import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finishDevice, prng, renderClientMetrics, type ApiDevice, type SimDevice } from './model.ts';
import type { TailnetSimulator } from './simulator.ts';

/**
 * A tailscaled LocalAPI on a unix socket, for demo mode and tests: `/localapi/v0/status` whose
 * peers are the simulated tailnet's devices as one of them (the "self" device) sees them,
 * `/localapi/v0/usermetrics` (that device's client metrics) and `/localapi/v0/metrics`
 * (clientmetrics). Peers change path now and then, their handshakes age while idle, their
 * WireGuard counters restart when the peer is recreated, and a peer drops offline from time to
 * time. Everything is a function of the clock and the device ids, so tests can predict it.
 */

/** How a LocalAPI route can be told to misbehave. */
export type LocalApiFault =
  | { kind: 'status'; status: number; body?: string }
  | { kind: 'body'; body: string | Buffer; contentType?: string }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'oversize'; bytes: number };

export interface LocalApiSimulatorOptions {
  /** The tailnet whose devices become peers; without one, only the `*Body` options are served. */
  tailnet?: TailnetSimulator;
  /**
   * Which of the tailnet's devices is the node whose LocalAPI this is (default 1, an untagged
   * laptop, so device_metrics never scrapes the same node's client metrics too).
   */
  selfIndex?: number;
  /** Socket to listen on; default: `tailscaled.sock` in a fresh temp directory, removed by `stop()`. */
  socketPath?: string;
  /** Clock (ms); tests pin it. */
  now?: () => number;
  /** Serve this status body instead of the generated one (fixture-driven tests). */
  statusBody?: () => string | Buffer;
  /** Serve this usermetrics body instead of the self device's client metrics. */
  userMetricsBody?: () => string;
  /** Serve this clientmetrics body instead of the generated one. */
  clientMetricsBody?: () => string;
}

/** Length of one path "episode": a peer keeps its path for this long. */
export const PATH_WINDOW_MS = 5 * 60_000;
/** WireGuard peers are recreated (counters restart at 0) once per this period, staggered per peer. */
export const ENGINE_EPOCH_MS = 60 * 60_000;
/** Active peers re-handshake this often (WireGuard's rekey interval). */
const HANDSHAKE_EVERY_MS = 120_000;
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** DERP region names the simulated API uses, and the region codes LocalAPI reports. */
const REGION_CODES: Record<string, string> = { Amsterdam: 'ams', Frankfurt: 'fra', London: 'lhr', 'New York City': 'nyc', Paris: 'par', Warsaw: 'waw' };
const EXIT_ROUTES = ['0.0.0.0/0', '::/0'];

/** 32-bit FNV-1a of a string: a stable per-device number. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** What the simulation says about one peer at one instant (exported for tests and the demo). */
export interface SimPeerState {
  readonly online: boolean;
  readonly path: 'direct' | 'derp' | 'peer_relay' | 'idle' | 'offline';
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly inEngine: boolean;
  readonly lastHandshakeMs: number | undefined;
}

interface PeerPlan {
  readonly h: number;
  readonly controlOnline: boolean;
  /** The current exit node always carries traffic. */
  readonly exit: boolean;
  readonly rate: number;
}

function windowIndex(t: number, phase: number): number {
  return Math.floor((t + phase) / PATH_WINDOW_MS);
}

/** Path of a peer during window `w` (offline for 1 window in 20 even when control says online). */
function pathIn(plan: PeerPlan, w: number): SimPeerState['path'] {
  if (!plan.controlOnline) return 'offline';
  const r = prng(plan.h ^ Math.imul(w, 0x9e3779b1))();
  if (!plan.exit && r < 0.05) return 'offline';
  if (plan.exit) return r < 0.8 ? 'direct' : 'derp';
  if (r < 0.5) return 'direct';
  if (r < 0.65) return 'derp';
  if (r < 0.75) return 'peer_relay';
  return 'idle';
}

const carries = (p: SimPeerState['path']): boolean => p === 'direct' || p === 'derp' || p === 'peer_relay';

/** The simulated state of a peer at `now`. */
function peerState(plan: PeerPlan, now: number): SimPeerState {
  const phase = plan.h % PATH_WINDOW_MS;
  const w = windowIndex(now, phase);
  const path = pathIn(plan, w);
  // Counters: bytes flow only in windows with a path, and restart when the epoch turns.
  const ePhase = plan.h % ENGINE_EPOCH_MS;
  const epochStart = Math.floor((now + ePhase) / ENGINE_EPOCH_MS) * ENGINE_EPOCH_MS - ePhase;
  let activeMs = 0;
  let lastActiveEnd: number | undefined;
  for (let k = windowIndex(epochStart, phase); k <= w; k++) {
    const start = Math.max(epochStart, k * PATH_WINDOW_MS - phase);
    const end = Math.min(now, (k + 1) * PATH_WINDOW_MS - phase);
    if (end > start && carries(pathIn(plan, k))) {
      activeMs += end - start;
      lastActiveEnd = end;
    }
  }
  const rxBytes = Math.floor((activeMs / 1000) * plan.rate);
  let lastHandshakeMs: number | undefined;
  if (lastActiveEnd !== undefined) {
    const at = carries(path) ? now : lastActiveEnd;
    lastHandshakeMs = at - ((at + phase) % HANDSHAKE_EVERY_MS);
    // Now and then an active peer's handshake is stuck (a broken tunnel the alert should catch).
    if (carries(path) && path === 'direct' && prng(plan.h ^ w ^ 0x5bd1e995)() < 0.04) lastHandshakeMs = w * PATH_WINDOW_MS - phase - 10 * 60_000;
  }
  return { online: path !== 'offline', path, rxBytes, txBytes: Math.floor(rxBytes * 0.3), inEngine: activeMs > 0, lastHandshakeMs };
}

export class LocalApiSimulator {
  /** Requests per path. */
  readonly requests = new Map<string, number>();
  /** Host headers seen (the receiver must send `local-tailscaled.sock`). */
  readonly hosts = new Set<string>();
  /** `BackendState` the generated status reports. */
  backendState = 'Running';
  private readonly _opts: LocalApiSimulatorOptions;
  private readonly _now: () => number;
  private readonly _startMs: number;
  private readonly _faults = new Map<string, LocalApiFault>();
  private readonly _sockets = new Set<Socket>();
  private _server: Server | undefined;
  private _dir: string | undefined;
  private _socketPath: string;
  private _self: SimDevice | undefined;

  constructor(opts: LocalApiSimulatorOptions = {}) {
    this._opts = opts;
    this._now = opts.now ?? Date.now;
    this._startMs = this._now() - 3_600_000;
    this._socketPath = opts.socketPath ?? '';
  }

  /** Path of the unix socket (set once `start()` resolved, or when given). */
  get socketPath(): string {
    return this._socketPath;
  }

  /** A fault for one route (`/localapi/v0/status` …); undefined clears it. */
  setFault(path: string, fault: LocalApiFault | undefined): void {
    if (fault) this._faults.set(path, fault);
    else this._faults.delete(path);
  }

  async start(): Promise<void> {
    if (this._server) return;
    if (!this._socketPath) {
      this._dir = mkdtempSync(join(tmpdir(), 'tsm-localapi-'));
      this._socketPath = join(this._dir, 'tailscaled.sock');
    }
    const tn = this._opts.tailnet;
    const untagged = tn?.devices.find((d) => !(d.api.tags as string[] | undefined)?.includes('tag:exporter'));
    this._self = tn?.devices[this._opts.selfIndex ?? 1] ?? untagged ?? tn?.devices[0];
    const server = createServer((req, res) => this._handle(req, res));
    server.on('connection', (s) => {
      this._sockets.add(s);
      s.on('close', () => this._sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this._socketPath, () => resolve());
    });
    this._server = server;
  }

  async stop(): Promise<void> {
    const server = this._server;
    this._server = undefined;
    for (const s of this._sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this._dir) rmSync(this._dir, { recursive: true, force: true });
    this._dir = undefined;
  }

  /** The status object the generated `/localapi/v0/status` serves now. */
  status(peers = true): Record<string, unknown> {
    const now = this._now();
    const tn = this._opts.tailnet;
    const self = this._self;
    const all = tn ? tn.apiDevices() : [];
    const selfApi = self ? (all.find((d) => d.id === self.api.id) ?? finishDevice(self, now)) : undefined;
    const users = new Map<string, number>();
    const userId = (login: string): number => {
      let u = users.get(login);
      if (u === undefined) {
        u = 1_000_000_000_000 + (hash(login) % 1_000_000_000);
        users.set(login, u);
      }
      return u;
    };
    const suffix = selfApi ? String(selfApi.name).split('.').slice(1).join('.') : 'tail4c8e1a.ts.net';
    const exitPeer = all.find((d) => d.id !== selfApi?.id && d.authorized !== false && EXIT_ROUTES.every((r) => (d.enabledRoutes as string[] | undefined)?.includes(r)));
    const peerMap: Record<string, unknown> = {};
    let selectedExitOnline = false;
    for (const d of all) {
      if (d.id === selfApi?.id || d.authorized === false) continue;
      const plan: PeerPlan = { h: hash(String(d.id)), controlOnline: d.connectedToControl === true, exit: d === exitPeer, rate: 2_000 + (hash(String(d.nodeId)) % 60_000) };
      const s = peerState(plan, now);
      if (d === exitPeer) selectedExitOnline = s.online;
      const entry = this._peerEntry(d, plan, s, now, userId, d === exitPeer);
      peerMap[String(entry.PublicKey)] = entry;
    }
    const selfEntry = selfApi ? this._selfEntry(selfApi, userId) : undefined;
    const userMap: Record<string, unknown> = {};
    for (const [login, uid] of users) userMap[String(uid)] = { ID: uid, LoginName: login, DisplayName: login.split('@')[0] ?? login };
    const health = ['Some peers are advertising routes but --accept-routes is false'];
    // An update notice one minute in five, as the device's own health_messages gauge shows.
    if (self && Math.floor(now / 60_000 + self.index) % 5 === 0) health.push(`An update from version ${String(selfApi?.clientVersion ?? '1.0.0').split('-')[0]} to 1.104.1 is available.`);
    return {
      Version: String(selfApi?.clientVersion ?? '1.102.3-tsim'),
      TUN: false,
      BackendState: this.backendState,
      HaveNodeKey: true,
      AuthURL: '',
      TailscaleIPs: selfApi ? ((selfApi.addresses as string[] | undefined) ?? []) : [],
      ...(selfEntry ? { Self: selfEntry } : {}),
      ...(exitPeer ? { ExitNodeStatus: { ID: exitPeer.nodeId, Online: selectedExitOnline, TailscaleIPs: ((exitPeer.addresses as string[] | undefined) ?? []).map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)) } } : {}),
      Health: this.backendState === 'Running' ? health : [],
      MagicDNSSuffix: suffix,
      CurrentTailnet: { Name: tn?.tailnet ?? 'example.com', MagicDNSSuffix: suffix, MagicDNSEnabled: true },
      CertDomains: selfApi ? [String(selfApi.name)] : null,
      ExtraRecords: null,
      ...(peers ? { Peer: peerMap } : {}),
      User: userMap,
      ClientVersion: null,
    };
  }

  private _peerEntry(d: ApiDevice, plan: PeerPlan, s: SimPeerState, now: number, userId: (l: string) => number, isExit: boolean): Record<string, unknown> {
    const addrs = (d.addresses as string[] | undefined) ?? [];
    const latency = (d.clientConnectivity as { latency?: Record<string, { preferred?: boolean }> } | undefined)?.latency ?? {};
    const home = Object.entries(latency).find(([, v]) => v.preferred)?.[0] ?? '';
    const relay = REGION_CODES[home] ?? 'fra';
    const w = windowIndex(now, plan.h % PATH_WINDOW_MS);
    const v6 = (w + plan.h) % 4 === 0;
    const expires = d.keyExpiryDisabled === true ? undefined : typeof d.expires === 'string' && !d.expires.startsWith('0001') && d.expires !== '' ? d.expires : undefined;
    const enabled = (d.enabledRoutes as string[] | undefined) ?? [];
    const active = s.path === 'direct' || s.path === 'derp' || s.path === 'peer_relay';
    return {
      ID: d.nodeId,
      NodeID: Number(d.id) || plan.h,
      PublicKey: typeof d.nodeKey === 'string' && d.nodeKey ? d.nodeKey : `nodekey:${plan.h.toString(16).padStart(64, '0')}`,
      HostName: d.hostname,
      DNSName: `${String(d.name)}.`,
      OS: d.os,
      UserID: userId(String(d.user ?? 'tagged-devices')),
      TailscaleIPs: addrs,
      AllowedIPs: [...addrs.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)), ...enabled],
      ...(Array.isArray(d.tags) && d.tags.length ? { Tags: d.tags } : {}),
      Addrs: null,
      CurAddr: s.path === 'direct' ? (v6 ? `[2001:db8:${(plan.h & 0xffff).toString(16)}::1]:41641` : `198.51.100.${plan.h % 250}:41641`) : '',
      Relay: relay,
      PeerRelay: s.path === 'peer_relay' ? `203.0.113.${plan.h % 200}:7777:vni:${plan.h % 9000}` : '',
      RxBytes: s.inEngine ? s.rxBytes : 0,
      TxBytes: s.inEngine ? s.txBytes : 0,
      Created: d.created || ZERO_TIME,
      LastWrite: active ? iso(now - (plan.h % 5_000)) : ZERO_TIME,
      LastSeen: s.online ? ZERO_TIME : typeof d.lastSeen === 'string' ? d.lastSeen : iso(now - (now % PATH_WINDOW_MS)),
      LastHandshake: s.lastHandshakeMs !== undefined ? iso(s.lastHandshakeMs) : ZERO_TIME,
      Online: s.online,
      ExitNode: isExit,
      ExitNodeOption: EXIT_ROUTES.every((r) => enabled.includes(r)),
      Active: active,
      PeerAPIURL: addrs.map((a) => (a.includes(':') ? `http://[${a}]:${40000 + (plan.h % 20000)}` : `http://${a}:${40000 + (plan.h % 20000)}`)),
      TaildropTarget: s.online ? 1 : 5,
      NoFileSharingReason: '',
      InNetworkMap: true,
      InMagicSock: true,
      InEngine: s.inEngine,
      ...(expires ? { KeyExpiry: expires, ...(Date.parse(expires) < now ? { Expired: true } : {}) } : {}),
    };
  }

  private _selfEntry(d: ApiDevice, userId: (l: string) => number): Record<string, unknown> {
    const addrs = (d.addresses as string[] | undefined) ?? [];
    const latency = (d.clientConnectivity as { latency?: Record<string, { preferred?: boolean }> } | undefined)?.latency ?? {};
    const home = Object.entries(latency).find(([, v]) => v.preferred)?.[0] ?? '';
    const expires = d.keyExpiryDisabled === true ? undefined : typeof d.expires === 'string' && !d.expires.startsWith('0001') && d.expires !== '' ? d.expires : undefined;
    return {
      ID: d.nodeId,
      PublicKey: d.nodeKey,
      HostName: d.hostname,
      DNSName: `${String(d.name)}.`,
      OS: d.os,
      UserID: userId(String(d.user ?? 'tagged-devices')),
      TailscaleIPs: addrs,
      Addrs: ['192.168.1.20:41641', '198.51.100.250:41641'],
      CurAddr: '',
      Relay: REGION_CODES[home] ?? 'fra',
      PeerRelay: '',
      RxBytes: 0,
      TxBytes: 0,
      Created: d.created || ZERO_TIME,
      LastWrite: ZERO_TIME,
      LastSeen: ZERO_TIME,
      LastHandshake: ZERO_TIME,
      Online: this.backendState === 'Running',
      ExitNode: false,
      ExitNodeOption: false,
      Active: false,
      InNetworkMap: true,
      InMagicSock: false,
      InEngine: false,
      ...(expires ? { KeyExpiry: expires } : {}),
    };
  }

  /** The clientmetrics body: `# TYPE` and value lines, sorted by name, values growing with time. */
  clientMetrics(): string {
    const elapsed = Math.max(0, (this._now() - this._startMs) / 1000);
    const peers = this._opts.tailnet ? Math.max(0, this._opts.tailnet.apiDevices().length - 1) : 0;
    const rows: Array<[string, 'counter' | 'gauge', number]> = [
      ['controlclient_map_requests', 'counter', 3 + Math.floor(elapsed / 3600)],
      ['controlclient_map_requests_active', 'gauge', 1],
      ['controlclient_map_response_map_delta', 'counter', Math.floor(elapsed / 2)],
      ['derp_home_change', 'counter', 1 + Math.floor(elapsed / 7200)],
      ['dns_query_fwd', 'counter', Math.floor(elapsed * 3)],
      ['magicsock_disco_recv_pong', 'counter', Math.floor(elapsed * 12)],
      ['magicsock_disco_sent_ping', 'counter', Math.floor(elapsed * 12.4)],
      ['magicsock_netmap_num_peers', 'gauge', peers],
      ['magicsock_num_derp_conns', 'gauge', 2],
      ['magicsock_recv_data_derp', 'counter', Math.floor(elapsed * 9)],
      ['magicsock_recv_data_ipv4', 'counter', Math.floor(elapsed * 2900)],
      ['magicsock_send_data_derp', 'counter', Math.floor(elapsed * 10)],
      ['magicsock_send_data_ipv4', 'counter', Math.floor(elapsed * 1200)],
    ];
    return rows.map(([n, t, v]) => `# TYPE ${n} ${t}\n${n} ${v}\n`).join('');
  }

  private _handle(req: IncomingMessage, res: ServerResponse): void {
    res.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://local-tailscaled.sock');
    this.requests.set(url.pathname, (this.requests.get(url.pathname) ?? 0) + 1);
    const host = req.headers.host ?? '';
    this.hosts.add(host);
    // tailscaled's own check: only its socket name (or no Host) is a LocalAPI request.
    if (host !== '' && host !== 'local-tailscaled.sock') {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('invalid localapi request\n');
      return;
    }
    const fault = this._faults.get(url.pathname);
    if (fault && this._fault(fault, res)) return;
    if (req.method !== 'GET') {
      res.writeHead(405).end('want GET\n');
      return;
    }
    switch (url.pathname) {
      case '/localapi/v0/status': {
        const body = this._opts.statusBody ? this._opts.statusBody() : JSON.stringify(this.status(url.searchParams.get('peers') !== 'false'), null, '\t');
        res.writeHead(200, { 'content-type': 'application/json', 'tailscale-version': '1.102.3' }).end(body);
        return;
      }
      case '/localapi/v0/usermetrics': {
        // A self device that device_metrics also scrapes (tag:exporter) would have its client
        // metrics on the page twice, so its usermetrics stay empty here.
        const scraped = this._self?.servesMetrics === true && ((this._self.api.tags as string[] | undefined) ?? []).includes('tag:exporter');
        const body = this._opts.userMetricsBody ? this._opts.userMetricsBody() : this._self && !scraped ? renderClientMetrics(this._self, this._now(), this._startMs) : '';
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
        return;
      }
      case '/localapi/v0/metrics': {
        const body = this._opts.clientMetricsBody ? this._opts.clientMetricsBody() : this.clientMetrics();
        res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
    }
  }

  /** Applies a fault; false when the normal answer should follow. */
  private _fault(f: LocalApiFault, res: ServerResponse): boolean {
    switch (f.kind) {
      case 'status':
        res.writeHead(f.status, { 'content-type': 'text/plain' }).end(f.body ?? 'error\n');
        return true;
      case 'body':
        res.writeHead(200, { 'content-type': f.contentType ?? 'application/json' }).end(f.body);
        return true;
      case 'hang':
        return true;
      case 'reset':
        res.socket?.destroy();
        return true;
      case 'oversize': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, ' ');
        let sent = 0;
        const pump = (): void => {
          while (sent < f.bytes) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.write('{"Peer":{');
        pump();
        return true;
      }
    }
  }
}

/** The simulated state of the peer with API id `deviceId` at `now` (tests and docs). */
export function simulatedPeerState(deviceId: string, nodeId: string, controlOnline: boolean, exit: boolean, now: number): SimPeerState {
  return peerState({ h: hash(deviceId), controlOnline, exit, rate: 2_000 + (hash(nodeId) % 60_000) }, now);
}
