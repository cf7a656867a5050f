import type { Dispatcher } from 'undici';
import { ErrorCode, TsmetricsError, errorMessage } from '../../src/errors.ts';
import type { Clock } from '../../src/component/types.ts';
import type { ErrorKind } from '../../src/telemetry/self.ts';
import type { TailscaleApiConfig } from './config.ts';
import { BodyTooLargeError, readBodyLimited } from '../../src/util/body.ts';
import { nopLogger, OnceLogger, Redactor, type Logger } from '../../src/log/logger.ts';

/** A failed API call, classified by the bounded error kinds the self-metrics use. */
export class ApiCallError extends TsmetricsError {
  readonly kind: ErrorKind;
  readonly status: number | undefined;
  /** ms to wait before the next call (from `Retry-After`), when the API asked for it. */
  readonly retryAfterMs: number | undefined;
  constructor(kind: ErrorKind, message: string, opts: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(kind === 'auth' ? ErrorCode.API_AUTH : kind === 'network' ? ErrorCode.API_NETWORK : kind === 'decode' || kind === 'too_large' ? ErrorCode.API_DECODE : ErrorCode.API_HTTP, message, { cause: opts.cause });
    this.name = 'ApiCallError';
    this.kind = kind;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
  }
  get retryable(): boolean {
    return this.kind === 'network' || this.kind === 'http_429' || this.kind === 'http_5xx';
  }
}

/** Parses `Retry-After` (delta seconds or an HTTP date) into ms from `nowMs`. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const date = Date.parse(t);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Scrubbing looks this far into an error body; the message keeps far less of it. */
const SCRUB_WINDOW = 4096;

/**
 * The API's error message, scrubbed of secrets before it is shortened: shortening first could
 * cut a secret in two and leave a part the redactor no longer recognises.
 */
function apiMessage(body: string, scrub: (text: string) => string): string {
  try {
    const j = JSON.parse(body) as { message?: unknown };
    if (typeof j.message === 'string') return scrub(j.message.slice(0, SCRUB_WINDOW)).slice(0, 200);
  } catch {
    // not JSON; fall through
  }
  return scrub(body.slice(0, SCRUB_WINDOW)).slice(0, 120).replace(/\s+/g, ' ');
}

export interface ApiClientOptions {
  config: TailscaleApiConfig;
  dispatcher: Dispatcher;
  clock: Clock;
  userAgent: string;
  /** Random source for jitter (tests pass a fixed one). */
  random?: () => number;
  /**
   * The process's secret registry: the credentials, their wire forms and every access token are
   * added the moment they are known, so no printout can carry them.
   */
  secrets?: Redactor;
  /** Says (once per episode) when a Retry-After was cut to `max_retry_after`. */
  logger?: Logger;
}

/**
 * Tailscale API v2 client over an undici dispatcher (connections reused across cycles): API-key
 * or OAuth client-credentials auth with a cached token renewed before it expires, one re-auth on
 * 401, and capped exponential backoff with jitter for network errors, 429 and 5xx.
 */
export class TailscaleApiClient {
  private readonly _o: ApiClientOptions;
  private readonly _origin: string;
  private readonly _basePath: string;
  private _token: { value: string; renewAtMs: number } | undefined;
  /** The API told us (Retry-After) not to call before this time. */
  private _notBeforeMs = 0;
  private readonly _secrets: Redactor;
  private readonly _once: OnceLogger;
  /** The `Authorization` value of API-key auth. */
  private readonly _basic: string | undefined;
  requests = 0;

  constructor(o: ApiClientOptions) {
    this._o = o;
    const u = new URL(o.config.api_url);
    this._origin = u.origin;
    this._basePath = u.pathname.replace(/\/+$/, '');
    this._secrets = o.secrets ?? new Redactor();
    this._once = new OnceLogger(o.logger ?? nopLogger);
    const c = o.config;
    if (c.api_key) {
      const b64 = Buffer.from(`${c.api_key}:`).toString('base64');
      this._basic = `Basic ${b64}`;
      this._secrets.add(c.api_key);
      this._secrets.add(b64);
    }
    if (c.oauth_client_secret) {
      // The secret travels form-encoded, so an echo of the request body shows it in that form.
      this._secrets.add(c.oauth_client_secret);
      this._secrets.add(encodeURIComponent(c.oauth_client_secret));
      this._secrets.add(new URLSearchParams({ s: c.oauth_client_secret }).toString().slice(2));
    }
  }

  private _scrub = (text: string): string => this._secrets.scrub(text);

  /** `Retry-After` bounded by `max_retry_after`: an API (or a proxy) must not stop polling for days. */
  private _boundedRetryAfter(ms: number): number {
    const cap = this._o.config.max_retry_after;
    if (ms <= cap) return ms;
    this._once.fail('retry_after', 'capped', 'Tailscale API asked to wait longer than max_retry_after (Retry-After); waiting max_retry_after instead', {
      retry_after_s: Number.isFinite(ms) ? Math.round(ms / 1000) : String(ms),
      max_retry_after_s: cap / 1000,
    });
    return cap;
  }

  /** `GET /api/v2/tailnet/{tailnet}/devices?fields=all`, retried within `deadlineMs`. */
  async listDevices(signal: AbortSignal, deadlineMs: number): Promise<string> {
    const path = `${this._basePath}/api/v2/tailnet/${encodeURIComponent(this._o.config.tailnet)}/devices?fields=all`;
    return this._withRetry(() => this._authedGet(path, signal), signal, deadlineMs);
  }

  private async _withRetry(call: () => Promise<string>, signal: AbortSignal, deadlineMs: number): Promise<string> {
    const random = this._o.random ?? Math.random;
    let attempt = 0;
    for (;;) {
      const now = this._o.clock.now();
      if (now < this._notBeforeMs) {
        // Honour an earlier Retry-After even across cycles: do not call before it passes.
        const wait = this._notBeforeMs - now;
        if (now + wait > deadlineMs) throw new ApiCallError('http_429', `API asked to wait ${Math.ceil(wait / 1000)}s (Retry-After); skipping this cycle`, { retryAfterMs: wait });
        await sleep(wait, signal);
      }
      try {
        const body = await call();
        this._once.ok('retry_after');
        return body;
      } catch (err) {
        const e = err instanceof ApiCallError ? err : new ApiCallError('network', this._scrub(errorMessage(err)), { cause: err });
        if (signal.aborted || !e.retryable || attempt >= this._o.config.max_retries) throw e;
        const backoff = Math.min(10_000, 500 * 2 ** attempt);
        const jittered = backoff * (0.75 + random() * 0.5);
        const retryAfter = e.retryAfterMs === undefined ? undefined : this._boundedRetryAfter(e.retryAfterMs);
        const wait = retryAfter ?? jittered;
        if (retryAfter !== undefined) this._notBeforeMs = this._o.clock.now() + retryAfter;
        if (this._o.clock.now() + wait > deadlineMs) throw e;
        attempt++;
        await sleep(wait, signal);
      }
    }
  }

  private async _authedGet(path: string, signal: AbortSignal): Promise<string> {
    if (this._basic) return this._get(path, this._basic, signal);
    const token = await this._oauthToken(signal, false);
    try {
      return await this._get(path, `Bearer ${token}`, signal);
    } catch (err) {
      if (!(err instanceof ApiCallError) || err.status !== 401) throw err;
      // The token may have been revoked or expired early: one fresh token, one retry.
      const fresh = await this._oauthToken(signal, true);
      return this._get(path, `Bearer ${fresh}`, signal);
    }
  }

  private async _oauthToken(signal: AbortSignal, force: boolean): Promise<string> {
    const now = this._o.clock.now();
    if (!force && this._token && now < this._token.renewAtMs) return this._token.value;
    const c = this._o.config;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: c.oauth_client_id, client_secret: c.oauth_client_secret });
    if (c.oauth_scopes.length) form.set('scope', c.oauth_scopes.join(' '));
    const body = await this._send('POST', `${this._basePath}/api/v2/oauth/token`, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), signal);
    let parsed: { access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw new ApiCallError('decode', 'OAuth token response is not JSON');
    }
    if (typeof parsed.access_token !== 'string' || !parsed.access_token) throw new ApiCallError('decode', 'OAuth token response has no access_token');
    this._secrets.add(parsed.access_token);
    const lifetimeMs = (typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 3600) * 1000;
    // Renew well before expiry: at 90% of the lifetime, and at least a minute early.
    const margin = Math.max(Math.min(60_000, lifetimeMs / 2), lifetimeMs * 0.1);
    this._token = { value: parsed.access_token, renewAtMs: this._o.clock.now() + lifetimeMs - margin };
    return parsed.access_token;
  }

  private _get(path: string, authorization: string, signal: AbortSignal): Promise<string> {
    return this._send('GET', path, { authorization, accept: 'application/json' }, undefined, signal);
  }

  private async _send(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<string> {
    const c = this._o.config;
    this.requests++;
    let res: Dispatcher.ResponseData;
    try {
      res = await this._o.dispatcher.request({
        origin: this._origin,
        path,
        method,
        headers: { 'user-agent': this._o.userAgent, ...headers },
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.any([signal, AbortSignal.timeout(c.timeout)]),
        headersTimeout: c.timeout,
        bodyTimeout: c.timeout,
      });
    } catch (err) {
      throw new ApiCallError('network', this._scrub(`request failed: ${errorMessage(err)}`), { cause: err });
    }
    const text = await readBodyLimited(res.body, c.max_body_size).catch((err: unknown) => {
      if (err instanceof BodyTooLargeError) throw new ApiCallError('too_large', err.message);
      throw new ApiCallError('network', this._scrub(`reading the response failed: ${errorMessage(err)}`), { cause: err });
    });
    const status = res.statusCode;
    if (status >= 200 && status < 300) return text;
    const msg = apiMessage(text, this._scrub);
    if (status === 429) {
      const ra = parseRetryAfter(res.headers['retry-after'], this._o.clock.now());
      throw new ApiCallError('http_429', `API rate limit (429): ${msg}`, { status, ...(ra !== undefined ? { retryAfterMs: ra } : {}) });
    }
    if (status >= 500) {
      const ra = parseRetryAfter(res.headers['retry-after'], this._o.clock.now());
      throw new ApiCallError('http_5xx', `API server error (${status}): ${msg}`, { status, ...(ra !== undefined ? { retryAfterMs: ra } : {}) });
    }
    if (status === 401) throw new ApiCallError('auth', `API rejected the credential (401): ${msg}`, { status });
    if (status === 403) throw new ApiCallError('auth', `API denied access (403): ${msg}; the credential needs the devices:core:read scope`, { status });
    throw new ApiCallError('http_status', `API answered ${status}: ${msg}`, { status });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
