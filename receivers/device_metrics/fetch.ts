import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { createGunzip } from 'node:zlib';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import type { Cidr } from '../../src/util/cidr.ts';
import { ipInNetworks } from '../../src/util/cidr.ts';
import type { ErrorKind } from '../../src/telemetry/self.ts';
import { ErrorCode, TsmetricsError, errorMessage } from '../../src/errors.ts';

/** A failed device scrape with its bounded error kind. */
export class ScrapeError extends TsmetricsError {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, cause?: unknown) {
    super(ErrorCode.SCRAPE, message, { cause });
    this.name = 'ScrapeError';
    this.kind = kind;
  }
}

/**
 * An undici Agent whose connector only dials addresses inside `allowed`. Names are resolved here
 * and the checked address is the one dialed, so DNS rebinding between check and connect cannot
 * happen.
 */
export function createGuardedAgent(allowed: readonly Cidr[], timeoutMs: number, connections: number): Agent {
  const base = buildConnector({ timeout: timeoutMs });
  const connect: buildConnector.connector = (opts, cb) => {
    const host = opts.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      if (!ipInNetworks(host, allowed)) return cb(new ScrapeError('not_allowed', `address ${host} is outside the allowed networks`), null);
      return base(opts, cb);
    }
    lookup(host, { all: true }, (err, addrs) => {
      if (err) return cb(new ScrapeError('network', `cannot resolve ${host}: ${err.code ?? err.message}`), null);
      const ok = addrs.find((a) => ipInNetworks(a.address, allowed));
      if (!ok) return cb(new ScrapeError('not_allowed', `${host} resolves outside the allowed networks`), null);
      base({ ...opts, hostname: ok.address, servername: host }, cb);
    });
  };
  return new Agent({ connect, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 600_000, connections, pipelining: 1 });
}

/** Drops a response body we will not read (destroying it must not raise an unhandled error). */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Classifies an undici/network error into the bounded error kinds. */
export function classify(err: unknown): ScrapeError {
  if (err instanceof ScrapeError) return err;
  const e = err as { code?: string; name?: string; cause?: unknown };
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code;
  if (err instanceof ScrapeError) return err;
  if (e.cause instanceof ScrapeError) return e.cause;
  if (code === 'ECONNREFUSED') return new ScrapeError('refused', 'connection refused', err);
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || e.name === 'TimeoutError' || code === 'ETIMEDOUT') {
    return new ScrapeError('timeout', 'timed out', err);
  }
  return new ScrapeError('network', errorMessage(err), err);
}

export interface FetchOptions {
  dispatcher: Dispatcher;
  url: URL;
  timeoutMs: number;
  maxBytes: number;
  signal: AbortSignal;
  userAgent: string;
}

/**
 * GETs a device's metrics: the whole exchange (connect, headers, body) is bounded by `timeoutMs`,
 * the (decompressed) body by `maxBytes` while it streams, and gzip is accepted.
 */
export async function fetchMetrics(o: FetchOptions): Promise<string> {
  // One controller and one timer per request. (AbortSignal.any/timeout per request leave weak
  // references on the long-lived receiver signal and cost much of a cycle's GC time.)
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, o.timeoutMs);
  // Shutdown destroys the dispatcher, which ends every request in flight; a listener on the
  // long-lived receiver signal per request would only add work to every scrape.
  if (o.signal.aborted) ac.abort();
  try {
    return await fetchWithin(o, ac.signal, () => timedOut);
  } finally {
    clearTimeout(timer);
  }
}

async function fetchWithin(o: FetchOptions, signal: AbortSignal, timedOut: () => boolean): Promise<string> {
  const deadline = { get aborted() {
    return timedOut();
  } };
  let res: Dispatcher.ResponseData;
  try {
    res = await o.dispatcher.request({
      origin: o.url.origin,
      path: o.url.pathname,
      method: 'GET',
      headers: { 'user-agent': o.userAgent, accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1', 'accept-encoding': 'gzip' },
      signal,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
  } catch (err) {
    throw deadline.aborted ? new ScrapeError('timeout', `no answer within ${o.timeoutMs}ms`, err) : classify(err);
  }
  if (res.statusCode !== 200) {
    discard(res.body);
    throw new ScrapeError('http_status', `HTTP ${res.statusCode}`);
  }
  const gz = String(res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
  const declared = Number(res.headers['content-length']);
  if (!gz && Number.isFinite(declared) && declared > o.maxBytes) {
    discard(res.body);
    throw new ScrapeError('too_large', `body of ${declared} bytes exceeds the ${o.maxBytes}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    const stream = gz ? res.body.pipe(createGunzip()) : res.body;
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > o.maxBytes) {
        discard(res.body);
        throw new ScrapeError('too_large', `body exceeds the ${o.maxBytes}-byte limit`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof ScrapeError) throw err;
    throw deadline.aborted ? new ScrapeError('timeout', `body not complete within ${o.timeoutMs}ms`, err) : classify(err);
  }
  const buf = Buffer.concat(chunks);
  // tailscaled writes UTF-8; anything else is a broken body, not text to guess at.
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new ScrapeError('parse', 'body is not valid UTF-8');
  }
}
