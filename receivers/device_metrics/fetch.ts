import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { createGunzip, type Gunzip } from 'node:zlib';
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
export function createGuardedAgent(allowed: readonly Cidr[], timeoutMs: number, connections: number, isSelf: (address: string, port: number) => boolean = () => false): Agent {
  const base = buildConnector({ timeout: timeoutMs });
  const connect: buildConnector.connector = (opts, cb) => {
    const host = opts.hostname.replace(/^\[|\]$/g, '');
    const port = Number(opts.port) || 80;
    if (isIP(host)) {
      if (!ipInNetworks(host, allowed)) return cb(new ScrapeError('not_allowed', `address ${host} is outside the allowed networks`), null);
      if (isSelf(host, port)) return cb(new ScrapeError('not_allowed', `address ${host}:${port} is this exporter itself`), null);
      return base(opts, cb);
    }
    lookup(host, { all: true }, (err, addrs) => {
      if (err) return cb(new ScrapeError('network', `cannot resolve ${host}: ${err.code ?? err.message}`), null);
      const ok = addrs.find((a) => ipInNetworks(a.address, allowed));
      if (!ok) return cb(new ScrapeError('not_allowed', `${host} resolves outside the allowed networks`), null);
      if (isSelf(ok.address, port)) return cb(new ScrapeError('not_allowed', `${host} resolves to this exporter itself`), null);
      base({ ...opts, hostname: ok.address, servername: host }, cb);
    });
  };
  return new Agent({ connect, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 600_000, connections, pipelining: 1 });
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
 * Abort callbacks of the requests in flight, per signal: one listener on the signal serves
 * them all. An EventTarget listener per request (added and removed thousands of times a
 * cycle) cost more than the rest of the request's bookkeeping together.
 */
const inFlight = new WeakMap<AbortSignal, Set<() => void>>();

function onAbortOf(signal: AbortSignal, fn: () => void): () => void {
  let set = inFlight.get(signal);
  if (!set) {
    const callbacks = new Set<() => void>();
    set = callbacks;
    inFlight.set(signal, callbacks);
    signal.addEventListener('abort', () => {
      for (const f of [...callbacks]) f();
      callbacks.clear();
    }, { once: true });
  }
  set.add(fn);
  const s = set;
  return () => void s.delete(fn);
}

/**
 * GETs a device's metrics: the whole exchange (connect, headers, body) is bounded by `timeoutMs`,
 * the (decompressed) body by `maxBytes` while it streams, and gzip is accepted. Written against
 * undici's dispatch handler API rather than `request()`: no stream or async iterator per
 * response, which matters at thousands of devices per cycle.
 */
export function fetchMetrics(o: FetchOptions): Promise<string> {
  return fetchMetricsBody(o).then(decodeBody);
}

/**
 * The body as UTF-8 text. tailscaled writes UTF-8; anything else is a broken body, not text to
 * guess at (a `parse` ScrapeError).
 */
export function decodeBody(body: Uint8Array): string {
  try {
    return decoder.decode(body);
  } catch {
    throw new ScrapeError('parse', 'body is not valid UTF-8');
  }
}

/**
 * `fetchMetrics` without the decoding: the body's bytes. The device receiver replays a body from
 * its bytes and decodes only a body it has to parse (decoding was a fifth of what a replayed
 * scrape allocated).
 */
export function fetchMetricsBody(o: FetchOptions): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    let ctrl: Dispatcher.DispatchController | undefined;
    let done = false;
    const chunks: Buffer[] = [];
    let size = 0;
    let compressed = 0;
    let gunzip: Gunzip | undefined;
    // Shutdown aborts scrapes in flight at once instead of letting them run to their timeout.
    let forget = (): void => {};
    const finish = (err: ScrapeError | undefined, body?: Uint8Array): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      forget();
      if (err) {
        ctrl?.abort(err);
        gunzip?.destroy();
        reject(err);
      } else resolve(body as Uint8Array);
    };
    const timer = setTimeout(() => finish(new ScrapeError('timeout', `no complete answer within ${o.timeoutMs}ms`)), o.timeoutMs);
    const push = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > o.maxBytes) return finish(new ScrapeError('too_large', `body exceeds the ${o.maxBytes}-byte limit`));
      chunks.push(chunk);
    };
    const complete = (): void => {
      if (done) return;
      finish(undefined, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    if (o.signal.aborted) return finish(new ScrapeError('network', 'stopped'));
    forget = onAbortOf(o.signal, () => finish(new ScrapeError('network', 'stopped')));
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        ctrl = c;
        if (done) c.abort(new ScrapeError('timeout', 'gave up'));
      },
      onResponseStart(_c, statusCode, headers) {
        if (statusCode !== 200) return finish(new ScrapeError('http_status', `HTTP ${statusCode}`));
        const gz = String(headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
        const declared = Number(headers['content-length']);
        if (!gz && Number.isFinite(declared) && declared > o.maxBytes) return finish(new ScrapeError('too_large', `body of ${declared} bytes exceeds the ${o.maxBytes}-byte limit`));
        if (gz) {
          gunzip = createGunzip();
          gunzip.on('data', push);
          gunzip.on('end', complete);
          gunzip.on('error', () => finish(new ScrapeError('parse', 'invalid gzip body')));
        }
      },
      onResponseData(_c, chunk) {
        if (done) return;
        if (gunzip) {
          // Compressed bytes count against the limit too: a stream of empty deflate blocks
          // decompresses to nothing and would otherwise be read (and inflated) without end.
          compressed += chunk.length;
          if (compressed > o.maxBytes) return finish(new ScrapeError('too_large', `compressed body exceeds the ${o.maxBytes}-byte limit`));
          gunzip.write(chunk);
        } else push(chunk);
      },
      onResponseEnd() {
        if (gunzip) gunzip.end();
        else complete();
      },
      onResponseError(_c, err) {
        finish(classify(err));
      },
    };
    try {
      o.dispatcher.dispatch(
        {
          origin: o.url.origin,
          path: o.url.pathname,
          method: 'GET',
          headers: { 'user-agent': o.userAgent, accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1', 'accept-encoding': 'gzip' },
          headersTimeout: o.timeoutMs,
          bodyTimeout: o.timeoutMs,
        },
        handler,
      );
    } catch (err) {
      finish(classify(err));
    }
  });
}

const decoder = new TextDecoder('utf-8', { fatal: true });
