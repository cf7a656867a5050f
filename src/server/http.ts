import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpRoute } from '../component/types.ts';
import { formatDuration } from '../config/duration.ts';
import type { Logger } from '../log/logger.ts';
import type { PipelineService } from '../pipeline/service.ts';
import { errorMessage } from '../errors.ts';

export interface HttpServerOptions {
  service: PipelineService;
  address: string;
  port: number;
  metricsToken: string;
  maxConnections: number;
  version: string;
  logger: Logger;
  /** Redacted config for `/debug`. */
  debugConfig: () => unknown;
  /** Extra readiness condition (tsnet: node is up); returns a reason when not ready. */
  notReadyReason?: () => string | undefined;
  /** Routes mounted in addition to the exporters' (e.g. a fallback `/metrics`). */
  extraRoutes?: HttpRoute[];
  /** Time allowed to receive a request's headers, ms (default 10 s). */
  headersTimeoutMs?: number;
  /** Time allowed for a whole request, ms (default 30 s). */
  requestTimeoutMs?: number;
}

/** Compares a bearer token in constant time (hashing first makes lengths equal). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const a = createHash('sha256').update(header.slice(7)).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text + '\n');
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(text + '\n');
}

/** The `/health` document: the seed's shape, with true values. */
export function healthDocument(service: PipelineService, version: string, startedMs: number): Record<string, unknown> {
  const now = service.clock.now();
  const sources: Record<string, unknown> = {};
  let anyDown = false;
  let lastScrape: number | undefined;
  let scraped = 0;
  let anyScrapeDetail = false;
  for (const [id, s] of service.telemetry.status()) {
    sources[id] = {
      up: s.up,
      cycles: s.cycles,
      last_success: s.lastSuccessMs ? new Date(s.lastSuccessMs).toISOString() : null,
      ...(s.lastError ? { last_error: s.lastError } : {}),
    };
    if (s.cycles > 0 && !s.up) anyDown = true;
    if (s.lastSuccessMs && (!lastScrape || s.lastSuccessMs > lastScrape)) lastScrape = s.lastSuccessMs;
    if (s.details.devices_scraped !== undefined) {
      anyScrapeDetail = true;
      scraped += s.details.devices_scraped;
    }
  }
  const uptimeS = Math.floor((now - startedMs) / 1000);
  return {
    status: !service.ready() ? 'starting' : anyDown ? 'degraded' : 'healthy',
    timestamp: new Date(now).toISOString(),
    version,
    uptime: uptimeS === 0 ? '0s' : formatDuration(uptimeS * 1000),
    uptime_seconds: uptimeS,
    devices_discovered: service.inventory.devices().length,
    devices_scraped: anyScrapeDetail ? scraped : 0,
    last_scrape: lastScrape ? new Date(lastScrape).toISOString() : null,
    sources,
  };
}

/**
 * The HTTP surface: `/metrics` (mounted from the Prometheus exporter), `/health`, `/ready`,
 * `/debug`. Unknown paths are 404, other methods 405; headers, request time and connections are
 * bounded.
 */
export class HttpServer {
  private readonly _server: Server;
  private readonly _opts: HttpServerOptions;
  private readonly _routes = new Map<string, HttpRoute>();
  private readonly _startedMs: number;

  constructor(opts: HttpServerOptions) {
    this._opts = opts;
    this._startedMs = opts.service.clock.now();
    for (const r of [...opts.service.routes(), ...(opts.extraRoutes ?? [])]) if (!this._routes.has(r.path)) this._routes.set(r.path, r);
    this._server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: opts.requestTimeoutMs ?? 30_000, headersTimeout: opts.headersTimeoutMs ?? 10_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: Math.min(1000, opts.headersTimeoutMs ?? 1000) }, (req, res) => {
      this._handle(req, res).catch((err: unknown) => {
        opts.logger.error('request handler failed', { path: req.url ?? '', error: errorMessage(err) });
        if (!res.headersSent) plain(res, 500, 'internal error');
        else res.destroy();
      });
    });
    this._server.maxConnections = opts.maxConnections;
  }

  private async _handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const route = this._routes.get(path);
    const known = route || ['/health', '/healthz', '/livez', '/ready', '/readyz', '/debug'].includes(path);
    if (!known) return plain(res, 404, 'not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    const { service, metricsToken } = this._opts;
    const needsToken = path === '/debug' || route?.protected;
    if (needsToken && metricsToken && !tokenMatches(req.headers.authorization, metricsToken)) {
      return plain(res, 401, 'unauthorized', { 'www-authenticate': 'Bearer' });
    }
    if (route) return route.handle(req, res);
    switch (path) {
      case '/health':
      case '/healthz':
        return json(res, 200, healthDocument(service, this._opts.version, this._startedMs));
      case '/livez':
        return json(res, 200, { status: 'ok' });
      case '/ready':
      case '/readyz': {
        const reason = this._opts.notReadyReason?.() ?? (service.ready() ? undefined : 'first collection cycle has not completed');
        return reason ? json(res, 503, { status: 'not ready', reason }) : json(res, 200, { status: 'ready' });
      }
      case '/debug': {
        if (!metricsToken && !isLoopback(this._opts.address)) {
          return plain(res, 403, 'debug is only served on loopback unless METRICS_TOKEN is set');
        }
        const mem = process.memoryUsage();
        return json(res, 200, {
          version: this._opts.version,
          config: this._opts.debugConfig(),
          runtime: {
            node_version: process.version,
            pid: process.pid,
            uptime_seconds: Math.floor(process.uptime()),
            rss_bytes: mem.rss,
            heap_used_bytes: mem.heapUsed,
          },
          sources: Object.fromEntries(service.telemetry.status()),
          inventory: service.inventory.all().map((s) => ({ source: s.source, tailnet: s.tailnet, devices: s.devices.length, fresh: s.fresh, fetched: new Date(s.fetchedMs).toISOString() })),
        });
      }
    }
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
    const onAbort = (): void => this._server.closeAllConnections();
    deadline.addEventListener('abort', onAbort, { once: true });
    await closed;
    deadline.removeEventListener('abort', onAbort);
  }
}
