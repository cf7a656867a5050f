import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import type { Clock } from '../../src/component/types.ts';
import { errorMessage } from '../../src/errors.ts';
import { nopLogger, OnceLogger, Redactor, type Logger } from '../../src/log/logger.ts';
import { ApiCallError, parseRetryAfter, requestWithLimits } from '../tailscale_api/client.ts';
import { sleep } from '../../src/util/abort.ts';
import type { HeadscaleConfig } from './config.ts';

export { ApiCallError } from '../tailscale_api/client.ts';

/** Scrubbing looks this far into an error body; the message keeps far less of it. */
const SCRUB_WINDOW = 4096;
/** An API key file larger than this is not a key. */
const KEY_FILE_MAX = 4096;

/**
 * The text of a Headscale error body, scrubbed before it is shortened: gRPC-gateway's
 * `{"code","message"}` (0.28/0.29), RFC 7807 `{"title","detail"}` (0.30) or plain text
 * (`Unauthorized`).
 */
function errorText(body: string, scrub: (t: string) => string): string {
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    const m = [j.message, j.detail, j.title].find((x): x is string => typeof x === 'string' && x !== '');
    if (m) return scrub(m.slice(0, SCRUB_WINDOW)).slice(0, 200);
  } catch {
    // not JSON; fall through
  }
  return scrub(body.slice(0, SCRUB_WINDOW)).slice(0, 120).replace(/\s+/g, ' ').trim();
}

/** Reads an API key file (at most 4 KiB), trimmed; throws naming the file, never its content. */
export async function readKeyFile(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(KEY_FILE_MAX + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return keyFrom(path, buf, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The same, synchronously: read once at start so a missing file fails before anything runs. */
export function readKeyFileSync(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(KEY_FILE_MAX + 1);
    return keyFrom(path, buf, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

function keyFrom(path: string, buf: Buffer, bytesRead: number): string {
  if (bytesRead > KEY_FILE_MAX) throw new Error(`${path} is larger than ${KEY_FILE_MAX} bytes; it does not hold an API key`);
  const key = buf.subarray(0, bytesRead).toString('utf8').trim();
  if (!key) throw new Error(`${path} is empty`);
  return key;
}

export interface HeadscaleClientOptions {
  config: HeadscaleConfig;
  dispatcher: Dispatcher;
  clock: Clock;
  userAgent: string;
  /** The API key to send now (a key file can change it between cycles). */
  apiKey: () => string;
  random?: () => number;
  /** The process's secret registry (the key and its header form are in it already). */
  secrets?: Redactor;
  logger?: Logger;
}

/** How one GET is made. */
export interface GetOptions {
  /** Retry network errors, 429 and 5xx within the deadline (default true). */
  retry?: boolean;
}

/**
 * Client of Headscale's REST API (`/api/v1`, Bearer API key) over an undici dispatcher:
 * capped exponential backoff with jitter for network errors, 429 and 5xx, `Retry-After`
 * honoured across calls but bounded by `max_retry_after`, bodies limited while they stream, and
 * error text scrubbed of secrets. Failures are `ApiCallError`s with the bounded error kinds.
 */
export class HeadscaleClient {
  private readonly _o: HeadscaleClientOptions;
  private readonly _origin: string;
  private readonly _basePath: string;
  private readonly _secrets: Redactor;
  private readonly _once: OnceLogger;
  private _notBeforeMs = 0;
  requests = 0;

  constructor(o: HeadscaleClientOptions) {
    this._o = o;
    const u = new URL(o.config.url);
    this._origin = u.origin;
    this._basePath = u.pathname.replace(/\/+$/, '');
    this._secrets = o.secrets ?? new Redactor();
    this._once = new OnceLogger(o.logger ?? nopLogger);
  }

  private _scrub = (t: string): string => this._secrets.scrub(t);

  /** GET `<url><path>` (path starts with `/api/v1/`), retried within `deadlineMs`. */
  async get(path: string, signal: AbortSignal, deadlineMs: number, opts: GetOptions = {}): Promise<string> {
    const random = this._o.random ?? Math.random;
    const retry = opts.retry ?? true;
    let attempt = 0;
    for (;;) {
      const now = this._o.clock.now();
      if (now < this._notBeforeMs) {
        const wait = this._notBeforeMs - now;
        if (now + wait > deadlineMs) throw new ApiCallError('http_429', `Headscale asked to wait ${Math.ceil(wait / 1000)}s (Retry-After); skipping this cycle`, { retryAfterMs: wait });
        await sleep(wait, signal);
      }
      try {
        const body = await this._send(`${this._basePath}${path}`, signal);
        this._once.ok('retry_after');
        return body;
      } catch (err) {
        const e = err instanceof ApiCallError ? err : new ApiCallError('network', this._scrub(errorMessage(err)), { cause: err });
        if (signal.aborted || !retry || !e.retryable || attempt >= this._o.config.max_retries) throw e;
        const backoff = Math.min(10_000, 500 * 2 ** attempt) * (0.75 + random() * 0.5);
        const retryAfter = e.retryAfterMs === undefined ? undefined : this._bounded(e.retryAfterMs);
        const wait = retryAfter ?? backoff;
        if (retryAfter !== undefined) this._notBeforeMs = this._o.clock.now() + retryAfter;
        if (this._o.clock.now() + wait > deadlineMs) throw e;
        attempt++;
        await sleep(wait, signal);
      }
    }
  }

  /** A proxy in front of Headscale must not stop polling for days with one header. */
  private _bounded(ms: number): number {
    const cap = this._o.config.max_retry_after;
    if (ms <= cap) return ms;
    this._once.fail('retry_after', 'capped', 'Headscale asked to wait longer than max_retry_after (Retry-After); waiting max_retry_after instead', {
      retry_after_s: Number.isFinite(ms) ? Math.round(ms / 1000) : String(ms),
      max_retry_after_s: cap / 1000,
    });
    return cap;
  }

  private async _send(path: string, signal: AbortSignal): Promise<string> {
    const c = this._o.config;
    this.requests++;
    const { res, text } = await requestWithLimits(
      this._o.dispatcher,
      { origin: this._origin, path, method: 'GET', headers: { 'user-agent': this._o.userAgent, accept: 'application/json', authorization: `Bearer ${this._o.apiKey()}` } },
      { signal, timeoutMs: c.timeout, maxBytes: c.max_body_size, scrub: this._scrub },
    );
    const status = res.statusCode;
    if (status >= 200 && status < 300) return text;
    const msg = errorText(text, this._scrub);
    const ra = parseRetryAfter(res.headers['retry-after'], this._o.clock.now());
    const retryAfter = ra !== undefined ? { retryAfterMs: ra } : {};
    if (status === 429) throw new ApiCallError('http_429', `Headscale rate limit (429): ${msg}`, { status, ...retryAfter });
    if (status >= 500) throw new ApiCallError('http_5xx', `Headscale server error (${status}): ${msg}`, { status, ...retryAfter });
    if (status === 401) throw new ApiCallError('auth', `Headscale rejected the API key (401): ${msg}; create one with headscale apikeys create (an expired key is rejected too)`, { status });
    if (status === 403) throw new ApiCallError('auth', `Headscale denied access (403): ${msg}`, { status });
    throw new ApiCallError('http_status', `Headscale answered ${status}: ${msg}${status === 404 ? ' (is url the Headscale server, and is it 0.28 or later?)' : ''}`, { status });
  }
}
