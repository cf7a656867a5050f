import type { Dispatcher } from 'undici';
import { ErrorCode, TsmetricsError, errorMessage } from '../../src/errors.ts';
import type { Clock } from '../../src/component/types.ts';
import type { ErrorKind } from '../../src/telemetry/self.ts';
import type { TailscaleApiConfig } from './config.ts';
import { BodyTooLargeError, readBodyLimited } from '../../src/util/body.ts';
import { nopLogger, OnceLogger, Redactor, type Logger } from '../../src/log/logger.ts';
import { readSecretFile, SecretFileError } from '../../src/config/secrets-file.ts';
import { Limiter } from '../../src/util/limiter.ts';
import { sleep } from '../../src/util/abort.ts';

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
  /** Told about every request sent (after the limiter), with the tag of the call that made it. */
  onRequest?: (tag: string) => void;
}

/** Options of one API call. */
export interface GetOptions {
  readonly signal: AbortSignal;
  /** Retries end before this time (ms since the epoch). */
  readonly deadlineMs: number;
  /** The scope the call needs; a 403 names it. */
  readonly scope?: string;
  /** `Accept` header; `null` sends none (the policy file then comes as HuJSON). Default JSON. */
  readonly accept?: string | null;
  /** Who is calling (a collector name), for the request counter. */
  readonly tag?: string;
}

/** A successful answer: the body and the response headers that matter. */
export interface ApiResponse {
  readonly text: string;
  readonly etag: string | undefined;
}

/** Which credential this client authenticates with, and the key id it has in the keys API. */
export interface CredentialIdentity {
  readonly type: 'api_key' | 'oauth_client' | 'federated_identity';
  /** The key's id (`k…CNTRL`), when it can be told from the credential. */
  readonly keyId: string | undefined;
}

const READ_SUFFIX = ':read';

/**
 * Tailscale API v2 client over an undici dispatcher (connections reused across cycles), shared by
 * every collector of a receiver: API-key auth, OAuth client credentials or workload identity
 * federation (an ID token from a file exchanged for an access token) with one cached token renewed
 * before it expires, one re-auth on 401, capped exponential backoff with jitter for network
 * errors, 429 and 5xx, one `Retry-After` state, one body limit and a bound on requests in flight.
 */
export class TailscaleApiClient {
  private readonly _o: ApiClientOptions;
  private readonly _origin: string;
  private readonly _basePath: string;
  private _token: { value: string; renewAtMs: number } | undefined;
  /** The token request in flight: collectors that need a token at once share one request. */
  private _tokenPending: Promise<string> | undefined;
  /** The API told us (Retry-After) not to call before this time. */
  private _notBeforeMs = 0;
  private readonly _secrets: Redactor;
  private readonly _once: OnceLogger;
  /** The `Authorization` value of API-key auth. */
  private _basic: string | undefined;
  private _apiKey: string | undefined;
  private readonly _limiter: Limiter;
  /** Scopes of the current OAuth token, as the token endpoint granted them (undefined: unknown). */
  private _granted: ReadonlySet<string> | undefined;
  requests = 0;

  constructor(o: ApiClientOptions) {
    this._o = o;
    const u = new URL(o.config.api_url);
    this._origin = u.origin;
    this._basePath = u.pathname.replace(/\/+$/, '');
    this._secrets = o.secrets ?? new Redactor();
    this._once = new OnceLogger(o.logger ?? nopLogger);
    this._limiter = new Limiter(Math.max(1, o.config.max_concurrent_requests ?? 4));
    const c = o.config;
    // A file that went away after validation leaves the client without a key; the first call
    // then fails as `auth` and names the file.
    const key = c.api_key || (c.api_key_file ? this._tryRead(c.api_key_file) : undefined);
    if (key) this._useApiKey(key);
    if (c.oauth_client_secret) this._registerClientSecret(c.oauth_client_secret);
  }

  /** The credential in use and its key id (for `tailscale_credential_*`). */
  get credential(): CredentialIdentity {
    const c = this._o.config;
    if (this._apiKey !== undefined || c.api_key_file) {
      // API access tokens are `tskey-api-<keyId>-<secret>`.
      const m = /^tskey-api-([A-Za-z0-9]+)-/.exec(this._apiKey ?? '');
      return { type: 'api_key', keyId: m?.[1] };
    }
    if (c.oauth_id_token_file) return { type: 'federated_identity', keyId: c.oauth_client_id || undefined };
    // Client secrets embed the client id (`tskey-client-<id>-<secret>`); tools may pass a dummy id.
    const fromSecret = /^tskey-client-([A-Za-z0-9]+)-/.exec(c.oauth_client_secret)?.[1];
    return { type: 'oauth_client', keyId: /^k[A-Za-z0-9]+$/.test(c.oauth_client_id) ? c.oauth_client_id : fromSecret };
  }

  /**
   * Whether the current OAuth token carries `scope` (`all` covers everything, `all:read` every
   * read scope, a write scope its read scope). Undefined when unknown: API keys act with their
   * user's permissions, and a token response may omit `scope`.
   */
  hasScope(scope: string): boolean | undefined {
    const g = this._granted;
    if (!g) return undefined;
    if (g.has(scope) || g.has('all')) return true;
    if (scope.endsWith(READ_SUFFIX)) return g.has('all:read') || g.has(scope.slice(0, -READ_SUFFIX.length));
    return false;
  }

  private _useApiKey(key: string): void {
    const b64 = Buffer.from(`${key}:`).toString('base64');
    this._apiKey = key;
    this._basic = `Basic ${b64}`;
    this._secrets.add(key);
    this._secrets.add(b64);
  }

  private _registerClientSecret(secret: string): void {
    // The secret travels form-encoded, so an echo of the request body shows it in that form.
    this._secrets.add(secret);
    this._secrets.add(encodeURIComponent(secret));
    this._secrets.add(new URLSearchParams({ s: secret }).toString().slice(2));
  }

  private _tryRead(file: string): string | undefined {
    try {
      return readSecretFile(file);
    } catch {
      return undefined;
    }
  }

  /** Reads a secret file for a renewal; a failure is an `auth` error naming the file. */
  private _readForRenewal(file: string): string {
    try {
      return readSecretFile(file);
    } catch (err) {
      throw new ApiCallError('auth', err instanceof SecretFileError ? err.message : errorMessage(err), { cause: err });
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
    return (await this.get(`${this.tailnetPath}/devices?fields=all`, { signal, deadlineMs, scope: 'devices:core:read', tag: 'devices' })).text;
  }

  /** `/tailnet/{tailnet}` with the configured tailnet, for building paths. */
  get tailnetPath(): string {
    return `/tailnet/${encodeURIComponent(this._o.config.tailnet)}`;
  }

  /** An authenticated `GET /api/v2<path>`, retried within `o.deadlineMs`. */
  async get(path: string, o: GetOptions): Promise<ApiResponse> {
    const full = `${this._basePath}/api/v2${path}`;
    return this._withRetry(() => this._authedGet(full, o), o.signal, o.deadlineMs);
  }

  private async _withRetry<T>(call: () => Promise<T>, signal: AbortSignal, deadlineMs: number): Promise<T> {
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

  private async _authedGet(path: string, o: GetOptions): Promise<ApiResponse> {
    if (this._basic || this._o.config.api_key_file) {
      try {
        return await this._get(path, this._basicAuth(), o);
      } catch (err) {
        // A rotated key file takes effect on the first 401 after the rotation.
        if (!(err instanceof ApiCallError) || err.status !== 401 || !this._o.config.api_key_file) throw err;
        const key = this._readForRenewal(this._o.config.api_key_file);
        if (key === this._apiKey) throw err;
        this._useApiKey(key);
        return this._get(path, this._basicAuth(), o);
      }
    }
    const token = await this._oauthToken(o.signal, false);
    try {
      return await this._get(path, `Bearer ${token}`, o);
    } catch (err) {
      if (!(err instanceof ApiCallError) || err.status !== 401) throw err;
      // The token may have been revoked or expired early: one fresh token, one retry.
      const fresh = await this._oauthToken(o.signal, true);
      return this._get(path, `Bearer ${fresh}`, o);
    }
  }

  private _basicAuth(): string {
    if (this._basic) return this._basic;
    // The key file could not be read at start; try again, and fail naming the file.
    this._useApiKey(this._readForRenewal(this._o.config.api_key_file));
    return this._basic as unknown as string;
  }

  /** The cached token, or one new token request shared by every caller that needs it now. */
  private _oauthToken(signal: AbortSignal, force: boolean): Promise<string> {
    const now = this._o.clock.now();
    if (!force && this._token && now < this._token.renewAtMs) return Promise.resolve(this._token.value);
    if (this._tokenPending) return this._tokenPending;
    const p = this._fetchToken(signal).finally(() => {
      if (this._tokenPending === p) this._tokenPending = undefined;
    });
    this._tokenPending = p;
    return p;
  }

  private async _fetchToken(signal: AbortSignal): Promise<string> {
    const c = this._o.config;
    let path: string;
    let form: URLSearchParams;
    if (c.oauth_id_token_file) {
      // Workload identity federation: the platform rotates the ID token file, so it is read for
      // every exchange. The exchange has no scope parameter; the identity fixes the scopes.
      const jwt = this._readForRenewal(c.oauth_id_token_file);
      this._secrets.add(jwt, 'tailscale_api:id_token');
      path = `${this._basePath}/api/v2/oauth/token-exchange`;
      form = new URLSearchParams({ client_id: c.oauth_client_id, jwt });
    } else {
      const secret = c.oauth_client_secret_file ? this._readForRenewal(c.oauth_client_secret_file) : c.oauth_client_secret;
      this._registerClientSecret(secret);
      path = `${this._basePath}/api/v2/oauth/token`;
      form = new URLSearchParams({ grant_type: 'client_credentials', client_id: c.oauth_client_id, client_secret: secret });
      if (c.oauth_scopes.length) form.set('scope', c.oauth_scopes.join(' '));
    }
    const { text: body } = await this._send('POST', path, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), signal, 'oauth');
    let parsed: { access_token?: unknown; expires_in?: unknown; scope?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw new ApiCallError('decode', 'OAuth token response is not JSON');
    }
    if (typeof parsed.access_token !== 'string' || !parsed.access_token) throw new ApiCallError('decode', 'OAuth token response has no access_token');
    // A real access token is well under a kilobyte; a huge one would be sent on every request.
    if (parsed.access_token.length > 8192) throw new ApiCallError('decode', `OAuth token response has an access_token of ${parsed.access_token.length} characters (at most 8192 accepted)`);
    // One slot per client: a renewed token replaces the old one in the redactor.
    this._secrets.add(parsed.access_token, `tailscale_api:access_token:${c.oauth_client_id}`);
    // What the token may do decides whether a 404 means "no scope" or "nothing there".
    this._granted = typeof parsed.scope === 'string' && parsed.scope.length <= 4096 ? new Set(parsed.scope.split(/\s+/).filter(Boolean)) : undefined;
    const lifetimeMs = (typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? Math.min(parsed.expires_in, 86_400) : 3600) * 1000;
    // Renew well before expiry: at 90% of the lifetime, and at least a minute early.
    const margin = Math.max(Math.min(60_000, lifetimeMs / 2), lifetimeMs * 0.1);
    this._token = { value: parsed.access_token, renewAtMs: this._o.clock.now() + lifetimeMs - margin };
    return parsed.access_token;
  }

  private _get(path: string, authorization: string, o: GetOptions): Promise<ApiResponse> {
    const accept = o.accept === undefined ? 'application/json' : o.accept;
    return this._send('GET', path, { authorization, ...(accept === null ? {} : { accept }) }, undefined, o.signal, o.tag ?? 'api', o.scope);
  }

  private _send(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal, tag: string, scope?: string): Promise<ApiResponse> {
    return this._limiter.schedule(() => this._sendNow(method, path, headers, body, signal, tag, scope));
  }

  private async _sendNow(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal, tag: string, scope: string | undefined): Promise<ApiResponse> {
    const c = this._o.config;
    if (signal.aborted) throw signal.reason;
    this.requests++;
    this._o.onRequest?.(tag);
    const { res, text } = await requestWithLimits(this._o.dispatcher, { origin: this._origin, path, method, headers: { 'user-agent': this._o.userAgent, ...headers }, ...(body !== undefined ? { body } : {}) }, { signal, timeoutMs: c.timeout, maxBytes: c.max_body_size, scrub: this._scrub });
    const status = res.statusCode;
    if (status >= 200 && status < 300) {
      const etag = res.headers.etag;
      return { text, etag: typeof etag === 'string' && etag.length <= 256 ? etag : undefined };
    }
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
    if (status === 403) throw new ApiCallError('auth', `API denied access (403): ${msg}${scope ? `; the credential needs the ${scope} scope` : ''}`, { status });
    throw new ApiCallError('http_status', `API answered ${status}: ${msg}`, { status });
  }
}

/**
 * One HTTP exchange with an API, bounded the same way for every API client (Tailscale,
 * Headscale): the whole exchange by `timeoutMs`, the body by `maxBytes` while it streams.
 * Transport failures become `network` and an oversized body `too_large`, with the error text
 * scrubbed of secrets before it can be printed.
 */
export async function requestWithLimits(
  dispatcher: Dispatcher,
  request: Pick<Dispatcher.RequestOptions, 'origin' | 'path' | 'method' | 'headers' | 'body'>,
  o: { signal: AbortSignal; timeoutMs: number; maxBytes: number; scrub: (text: string) => string },
): Promise<{ res: Dispatcher.ResponseData; text: string }> {
  // One controller per exchange, released as soon as it ends: AbortSignal.timeout would keep its
  // timer (and AbortSignal.any a weak entry on the receiver's signal) until the timeout passed.
  const ac = new AbortController();
  const abort = (): void => ac.abort(o.signal.aborted ? o.signal.reason : new DOMException('The operation timed out.', 'TimeoutError'));
  const timer = setTimeout(abort, o.timeoutMs);
  if (o.signal.aborted) abort();
  else o.signal.addEventListener('abort', abort, { once: true });
  try {
    let res: Dispatcher.ResponseData;
    try {
      res = await dispatcher.request({ ...request, signal: ac.signal, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs });
    } catch (err) {
      throw new ApiCallError('network', o.scrub(`request failed: ${errorMessage(err)}`), { cause: err });
    }
    const text = await readBodyLimited(res.body, o.maxBytes).catch((err: unknown) => {
      if (err instanceof BodyTooLargeError) throw new ApiCallError('too_large', err.message);
      throw new ApiCallError('network', o.scrub(`reading the response failed: ${errorMessage(err)}`), { cause: err });
    });
    return { res, text };
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', abort);
  }
}
