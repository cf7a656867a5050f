import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { HttpRoute } from '../component/types.ts';
import { formatDuration } from '../config/duration.ts';
import { Redactor, type Logger } from '../log/logger.ts';
import type { PipelineService } from '../pipeline/service.ts';
import { errorMessage } from '../errors.ts';
import { untilAborted } from '../util/abort.ts';

/** Default of `service.http.write_timeout`: about a Prometheus scrape timeout. */
const DEFAULT_WRITE_TIMEOUT_MS = 30_000;
/** A `/metrics` response whose socket has not moved for this long may lose its slot. */
const STALLED_MS = 5_000;

/** Default of `service.http.max_metrics_streams`. */
const DEFAULT_MAX_METRICS_STREAMS = 4;
/** What an over-cap `/metrics` client is told to wait, seconds. */
const RETRY_AFTER_S = '1';

export interface HttpServerOptions {
  service: PipelineService;
  address: string;
  port: number;
  metricsToken: string;
  /**
   * Concurrent connections accepted; beyond it new connections are dropped. It must stay well
   * above `maxMetricsStreams`: `/metrics` clients hold at most that many connections (over-cap
   * requests are answered 503 and their connection closed at once), so the rest are always free
   * for `/livez`, `/health` and `/ready`. The default (256 against 4) leaves 252.
   */
  maxConnections: number;
  version: string;
  logger: Logger;
  /** Redacted config for `/debug`. */
  debugConfig: () => unknown;
  /** Extra readiness condition (tsnet: node is up); returns a reason when not ready. */
  notReadyReason?: () => string | undefined;
  /** Routes mounted in addition to the exporters' (e.g. a fallback `/metrics`). */
  extraRoutes?: HttpRoute[];
  /**
   * Re-reads and applies the configuration; with it, `POST /-/reload` is served (behind
   * `metricsToken` when one is set, as `/metrics` is).
   */
  reload?: () => Promise<ReloadOutcome>;
  /** Time allowed to receive a request's headers, ms (default 10 s). */
  headersTimeoutMs?: number;
  /** Time allowed for a whole request, ms (default 30 s). */
  requestTimeoutMs?: number;
  /**
   * Scrubs secrets from every JSON document the server prints (`/debug` above all). Default: the
   * service's secret registry plus the secret values of its config.
   */
  redact?: (text: string) => string;
  /**
   * Longest time a response may take from request to last byte, and longest a socket may make no
   * progress, ms (default `service.http.write_timeout`, 30 s). A client that reads slower is
   * reset, which releases at once everything queued for it.
   */
  writeTimeoutMs?: number;
  /**
   * Concurrent responses of mounted routes (`/metrics`), rendering or streaming (default
   * `service.http.max_metrics_streams`, 4). A request above it gets 503 with `Retry-After`.
   */
  maxMetricsStreams?: number;
  /** Connections one client address may hold (default: an eighth of `maxConnections`). */
  maxConnectionsPerIp?: number;
}

/** What `POST /-/reload` answers: the outcome of one reload, as JSON (secrets scrubbed). */
export interface ReloadOutcome {
  readonly ok: boolean;
  /** HTTP status: 200 when applied, non-2xx when the running configuration was kept. */
  readonly status: number;
  /** One line per problem when `ok` is false. */
  readonly problems: readonly string[];
  readonly [field: string]: unknown;
}

/** Settings a configuration reload may change on a running server. */
export interface LiveHttpSettings {
  metricsToken: string;
  maxConnections: number;
  writeTimeoutMs: number;
  maxMetricsStreams: number;
}

/**
 * Compares a bearer token in constant time (hashing first makes lengths equal). The scheme name
 * is case-insensitive (RFC 9110 §11.1), so `bearer TOKEN` is accepted as `Bearer TOKEN` is.
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header || header.length < 7 || header.slice(0, 7).toLowerCase() !== 'bearer ') return false;
  const a = createHash('sha256').update(header.slice(7).trimStart()).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}

/** Applies `redact` to every string (keys too) of a JSON-able value. */
function redactDeep(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === 'string') return redact(value);
  if (value === null || typeof value !== 'object') return value;
  const v = typeof (value as { toJSON?: unknown }).toJSON === 'function' ? (value as { toJSON(): unknown }).toJSON() : value;
  if (v !== value) return redactDeep(v, redact);
  if (Array.isArray(v)) return v.map((x) => redactDeep(x, redact));
  // Keys are our own field names (and ids), never secrets: only values are scrubbed, so a
  // secret that happens to be a word cannot rename a field.
  return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, redactDeep(x, redact)]));
}

function json(res: ServerResponse, status: number, body: unknown, redact: (text: string) => string): void {
  // Strings are scrubbed before serializing, because a secret with a quote or backslash in it
  // would no longer match once JSON escapes it; the text is scrubbed again for anything a
  // toJSON produced.
  const text = JSON.stringify(redactDeep(body, redact), null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text + '\n');
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(text + '\n');
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/**
 * The `/health` document: status, counts and timestamps. It is served without authentication, so
 * it carries no free-form text at all (last errors are in `/debug`, behind the token).
 *
 * `status` is:
 * - `degraded` when any source failed its last cycle (`up` is false after at least one cycle;
 *   a device source counts as failed when it scraped fewer than half of the devices it
 *   targeted — that rule lives in the receiver, so `/health` and `tsmetrics_source_up` agree);
 * - otherwise `starting` while the pipeline is not ready (`PipelineService.notReadyReason`);
 * - otherwise `healthy`.
 */
export function healthDocument(service: PipelineService, version: string, startedMs: number): Record<string, unknown> {
  const now = service.clock.now();
  const sources: Record<string, unknown> = {};
  let degraded = false;
  let lastScrape: number | undefined;
  let scraped = 0;
  let anyScrapeDetail = false;
  for (const [id, s] of service.telemetry.status()) {
    const counts: Record<string, number> = {};
    for (const [k, v] of Object.entries(s.details)) if (typeof v === 'number' && Number.isFinite(v)) counts[k] = v;
    sources[id] = {
      ...counts,
      up: s.up,
      cycles: s.cycles,
      last_cycle: iso(s.lastCycleMs),
      last_success: iso(s.lastSuccessMs),
    };
    if (s.cycles > 0 && !s.up) degraded = true;
    if (s.lastSuccessMs && (!lastScrape || s.lastSuccessMs > lastScrape)) lastScrape = s.lastSuccessMs;
    if (counts.devices_scraped !== undefined) {
      anyScrapeDetail = true;
      scraped += counts.devices_scraped;
    }
  }
  const uptimeS = Math.floor((now - startedMs) / 1000);
  return {
    status: degraded ? 'degraded' : !service.ready() ? 'starting' : 'healthy',
    timestamp: new Date(now).toISOString(),
    version,
    uptime: uptimeS === 0 ? '0s' : formatDuration(uptimeS * 1000),
    uptime_seconds: uptimeS,
    devices_discovered: service.inventory.deviceCount(),
    devices_scraped: anyScrapeDetail ? scraped : 0,
    last_scrape: iso(lastScrape),
    sources,
  };
}

/** Drops a connection with a reset, so the kernel discards what is still queued for it too. */
function reset(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

const BUILTIN_PATHS = new Set(['/health', '/healthz', '/livez', '/ready', '/readyz', '/debug']);
const RELOAD_PATH = '/-/reload';

/**
 * The HTTP surface: `/metrics` (mounted from the Prometheus exporter), `/health`, `/ready`,
 * `/debug`, `/livez`. Unknown paths are 404, other methods 405, unparseable targets 400.
 *
 * Every untrusted input is bounded: header bytes (16 KiB), time to send the headers and the
 * request, time to take the response (`writeTimeoutMs`), connections (`maxConnections`) and
 * concurrent `/metrics` responses (`maxMetricsStreams`).
 */
export class HttpServer {
  private readonly _server: Server;
  private readonly _opts: HttpServerOptions;
  /** The service's route table this server last merged with `extraRoutes`, and the result. */
  private _routesFrom: ReadonlyMap<string, HttpRoute> | undefined;
  private _routes = new Map<string, HttpRoute>();
  private readonly _startedMs: number;
  private readonly _redact: (text: string) => string;
  private _writeTimeoutMs: number;
  private _maxStreams: number;
  private _metricsToken: string;
  private _streams = 0;
  /** `/metrics` responses in flight, with their client and when their socket last moved. */
  private readonly _active = new Set<{ res: ServerResponse; ip: string; bytes: number; movedMs: number }>();
  private readonly _perIp = new Map<string, number>();
  private _maxPerIp: number;
  private _maxConnections: number;
  /** Sockets with a response in flight (the ones a timeout should reset rather than close). */
  private readonly _busy = new WeakSet<Socket>();

  constructor(opts: HttpServerOptions) {
    this._opts = opts;
    this._startedMs = opts.service.clock.now();
    const httpConfig = opts.service.config.service.http as Partial<typeof opts.service.config.service.http>;
    this._writeTimeoutMs = opts.writeTimeoutMs ?? httpConfig.write_timeout ?? DEFAULT_WRITE_TIMEOUT_MS;
    this._maxStreams = Math.max(1, opts.maxMetricsStreams ?? httpConfig.max_metrics_streams ?? DEFAULT_MAX_METRICS_STREAMS);
    this._redact = opts.redact ?? defaultRedact(opts.service);
    this._metricsToken = opts.metricsToken;
    this._server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: opts.requestTimeoutMs ?? 30_000, headersTimeout: opts.headersTimeoutMs ?? 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: Math.min(1000, opts.headersTimeoutMs ?? 1000) }, (req, res) => {
      // The deadline runs from the request to the last byte, so a client that reads a trickle
      // cannot hold a response (and the rendered page it pins) forever either.
      const deadline = setTimeout(() => reset(res.socket), this._writeTimeoutMs);
      deadline.unref();
      const socket = req.socket;
      this._busy.add(socket);
      res.once('close', () => {
        clearTimeout(deadline);
        this._busy.delete(socket);
      });
      this._handle(req, res).catch((err: unknown) => {
        opts.logger.error('request handler failed', { path: req.url ?? '', error: errorMessage(err) });
        if (!res.headersSent) plain(res, 500, 'internal error');
        else res.destroy();
      });
    });
    this._server.maxConnections = opts.maxConnections;
    // One client (one address) may hold only a share of the connections, so a flood of
    // keep-alive sockets from it cannot lock everyone else (Prometheus, the probes) out; near
    // the global cap, idle keep-alive sockets are shed first.
    this._maxPerIp = Math.max(1, opts.maxConnectionsPerIp ?? Math.max(1, Math.floor(opts.maxConnections / 8)));
    this._maxConnections = opts.maxConnections;
    this._server.on('connection', (socket: Socket) => {
      const ip = socket.remoteAddress ?? '';
      const n = (this._perIp.get(ip) ?? 0) + 1;
      if (n > this._maxPerIp) {
        socket.destroy();
        return;
      }
      this._perIp.set(ip, n);
      socket.once('close', () => {
        const left = (this._perIp.get(ip) ?? 1) - 1;
        if (left <= 0) this._perIp.delete(ip);
        else this._perIp.set(ip, left);
      });
      this._server.getConnections((_err, count) => {
        if (count >= this._maxConnections * 0.9) this._server.closeIdleConnections();
      });
    });
    // A socket that makes no progress for this long (a reader that stopped reading) is reset:
    // a plain close would leave the kernel holding its send queue until the peer reads it. Idle
    // keep-alive sockets are closed politely, as Node would.
    this._server.timeout = this._writeTimeoutMs;
    this._server.on('timeout', (socket: Socket) => (this._busy.has(socket) ? reset(socket) : socket.destroy()));
  }

  /**
   * Applies reloaded settings: the token, the connection and stream caps and the write timeout
   * hold for requests and connections from now on (ones in progress keep what they started with).
   */
  applySettings(s: LiveHttpSettings): void {
    this._metricsToken = s.metricsToken;
    this._writeTimeoutMs = s.writeTimeoutMs;
    this._server.timeout = s.writeTimeoutMs;
    this._maxStreams = Math.max(1, s.maxMetricsStreams);
    this._maxConnections = s.maxConnections;
    this._server.maxConnections = s.maxConnections;
    if (this._opts.maxConnectionsPerIp === undefined) this._maxPerIp = Math.max(1, Math.floor(s.maxConnections / 8));
  }

  /** The routes to serve now: the service's current table, then `extraRoutes` for free paths. */
  private _currentRoutes(): Map<string, HttpRoute> {
    const table = this._opts.service.routeTable();
    if (table !== this._routesFrom) {
      const merged = new Map(table);
      for (const r of this._opts.extraRoutes ?? []) if (!merged.has(r.path)) merged.set(r.path, r);
      this._routes = merged;
      this._routesFrom = table;
    }
    return this._routes;
  }

  /** Responses of mounted routes (`/metrics`) in progress now; never above `maxMetricsStreams`. */
  get activeStreams(): number {
    return this._streams;
  }

  private async _handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      // The target is the client's text (`//x:bad`, `http://[::1`); a bad one is its mistake.
      return plain(res, 400, 'bad request: unparseable request target', { connection: 'close' });
    }
    // One lookup per request in a table a reload replaces whole: old routes or new, never a mix.
    const route = this._currentRoutes().get(path);
    if (path === RELOAD_PATH && this._opts.reload && !route) return this._reload(req, res);
    const known = route || BUILTIN_PATHS.has(path);
    if (!known) return plain(res, 404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    const { service } = this._opts;
    const metricsToken = this._metricsToken;
    const needsToken = path === '/debug' || route?.protected;
    if (needsToken && metricsToken && !tokenMatches(req.headers.authorization, metricsToken)) {
      return plain(res, 401, 'unauthorized', { 'www-authenticate': 'Bearer' });
    }
    if (route) {
      const ip = req.socket.remoteAddress ?? '';
      const now = Date.now();
      if (this._streams >= this._maxStreams) {
        // A stream whose socket has not moved for a while is a reader that stopped reading:
        // it gives its slot to this request instead of holding it until the write timeout.
        for (const a of this._active) {
          const bytes = a.res.socket?.bytesWritten ?? a.bytes;
          if (bytes !== a.bytes) {
            a.bytes = bytes;
            a.movedMs = now;
          } else if (now - a.movedMs >= STALLED_MS) {
            reset(a.res.socket);
            this._active.delete(a);
            break;
          }
        }
      }
      if (this._streams >= this._maxStreams) {
        // Refused at once and the connection closed, so a crowd of scrapers holds no more
        // connections than the cap and the probes keep theirs.
        return plain(res, 503, `busy: ${this._maxStreams} responses of ${path} are in progress; retry shortly`, { 'retry-after': RETRY_AFTER_S, connection: 'close' });
      }
      this._streams++;
      const entry = { res, ip, bytes: req.socket.bytesWritten, movedMs: now };
      this._active.add(entry);
      res.once('close', () => {
        this._streams--;
        this._active.delete(entry);
      });
      return route.handle(req, res);
    }
    switch (path) {
      case '/health':
      case '/healthz':
        return json(res, 200, healthDocument(service, this._opts.version, this._startedMs), this._redact);
      case '/livez':
        return json(res, 200, { status: 'ok' }, this._redact);
      case '/ready':
      case '/readyz': {
        const reason = this._opts.notReadyReason?.() ?? service.notReadyReason();
        return reason ? json(res, 503, { status: 'not ready', reason }, this._redact) : json(res, 200, { status: 'ready' }, this._redact);
      }
      case '/debug': {
        if (!metricsToken && !isLoopback(this._opts.address)) {
          return plain(res, 403, 'debug is only served on loopback unless METRICS_TOKEN is set');
        }
        const mem = process.memoryUsage();
        return json(
          res,
          200,
          {
            version: this._opts.version,
            config: this._opts.debugConfig(),
            runtime: {
              node_version: process.version,
              pid: process.pid,
              uptime_seconds: Math.floor(process.uptime()),
              rss_bytes: mem.rss,
              heap_used_bytes: mem.heapUsed,
            },
            http: { active_metrics_streams: this._streams, max_metrics_streams: this._maxStreams, write_timeout_ms: this._writeTimeoutMs },
            sources: Object.fromEntries(service.telemetry.status()),
            inventory: service.inventory.all().map((s) => ({ source: s.source, tailnet: s.tailnet, devices: s.devices.length, fresh: s.fresh, fetched: new Date(s.fetchedMs).toISOString() })),
          },
          this._redact,
        );
      }
    }
  }

  /**
   * `POST /-/reload`. The request body is never read (nothing in it is used), and the connection
   * is closed after the answer when the client sent one, so a body costs at most the request
   * timeout. Concurrent requests share runs (see ReloadQueue in pipeline/reload.ts).
   */
  private async _reload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    const close: Record<string, string> = hasBody ? { connection: 'close' } : {};
    if (req.method !== 'POST') return plain(res, 405, 'method not allowed: use POST', { allow: 'POST', ...close });
    if (this._metricsToken && !tokenMatches(req.headers.authorization, this._metricsToken)) {
      return plain(res, 401, 'unauthorized', { 'www-authenticate': 'Bearer', ...close });
    }
    const outcome = await (this._opts.reload as () => Promise<ReloadOutcome>)();
    if (res.destroyed) return;
    if (hasBody) res.setHeader('connection', 'close');
    const { status, ...body } = outcome;
    return json(res, status, body, this._redact);
  }

  /** Binds and resolves with the real address (port 0 picks a free port). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this._server.once('error', reject);
      this._server.listen(this._opts.port, this._opts.address, () => {
        this._server.off('error', reject);
        resolve(this._server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, lets in-flight requests finish until `deadline`, then drops the rest. */
  async close(deadline: AbortSignal): Promise<void> {
    if (!this._server.listening) return;
    const closed = new Promise<void>((resolve) => this._server.close(() => resolve()));
    this._server.closeIdleConnections();
    // A deadline that already fired (earlier steps used the time) drops the rest at once.
    const cut = untilAborted(deadline).then(() => this._server.closeAllConnections());
    await Promise.race([closed, cut]);
    await closed;
  }
}

/** The service's runtime secrets (OAuth tokens…) and the secret values of its running config. */
function defaultRedact(service: PipelineService): (text: string) => string {
  let from: unknown;
  let fromConfig = new Redactor();
  return (text) => {
    // A reload brings a new config and its secrets; the redactor follows it.
    if (service.config !== from) {
      from = service.config;
      fromConfig = new Redactor();
      for (const s of service.config.secrets) fromConfig.add(s);
    }
    return fromConfig.scrub(service.secrets.scrub(text));
  };
}
