import { ErrorCode, TsmetricsError } from '../../src/errors.ts';
import { boundLabel } from '../../src/model/labels.ts';

/**
 * Decoding of Headscale's REST v1 bodies (0.28 and 0.29 grpc-gateway/protojson, 0.30 Huma).
 * Every field is optional and type-checked: a wrong type counts as absent, unknown fields are
 * ignored, `null` lists are empty, IDs may be strings (uint64 as protojson writes them) or
 * numbers, and timestamps are strict RFC 3339 with any offset and 0–9 fractional digits. No
 * secret is kept: a pre-auth key's `key` (shown in full for keys made before 0.28) is never read.
 */

/** The body is not what the endpoint returns, or its list is longer than allowed. */
export class HeadscaleDecodeError extends TsmetricsError {
  /** `too_large` when a list holds more entries than allowed, else `decode`. */
  readonly kind: 'decode' | 'too_large';
  constructor(message: string, kind: 'decode' | 'too_large' = 'decode') {
    super(ErrorCode.API_DECODE, message);
    this.name = 'HeadscaleDecodeError';
    this.kind = kind;
  }
}

/** Owner of a node or pre-auth key, as embedded in it. */
export interface HeadscaleUserRef {
  readonly id: string;
  readonly name: string;
  readonly email: string;
}

export interface HeadscaleNode {
  readonly id: string;
  /** `name`: the hostname the client reported (not unique, any characters). */
  readonly hostname: string;
  /** `givenName`: the MagicDNS label. */
  readonly givenName: string;
  readonly addresses: readonly string[];
  /** The pseudo-user `tagged-devices` for tagged nodes in list responses. */
  readonly user: HeadscaleUserRef | undefined;
  readonly online: boolean | undefined;
  readonly lastSeenMs: number | undefined;
  /** null: the node key never expires (`null` or the zero time); undefined: missing or unreadable. */
  readonly expiryMs: number | null | undefined;
  readonly createdMs: number | undefined;
  /** `auth_key`, `cli`, `oidc`, `unspecified`, or `other` for a value this version does not know. */
  readonly registerMethod: string | undefined;
  readonly approvedRoutes: readonly string[] | undefined;
  readonly availableRoutes: readonly string[] | undefined;
  readonly subnetRoutes: readonly string[] | undefined;
  readonly tags: readonly string[];
  /** From the pre-auth key the node registered with; false when it registered without one. */
  readonly ephemeral: boolean | undefined;
}

export interface HeadscaleUser {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  /** `oidc`, or empty for local users. */
  readonly provider: string;
  readonly createdMs: number | undefined;
}

export interface HeadscalePreAuthKey {
  readonly id: string;
  /** Absent for tag-only keys (0.28+ sends `user: null`). */
  readonly user: HeadscaleUserRef | undefined;
  readonly reusable: boolean | undefined;
  readonly ephemeral: boolean | undefined;
  readonly used: boolean | undefined;
  readonly expirationMs: number | undefined;
  readonly createdMs: number | undefined;
  readonly aclTags: readonly string[];
}

export interface HeadscaleApiKey {
  readonly id: string;
  /** The public part (`hskey-api-<prefix>-***`, legacy `<7 chars>***`); never the secret. */
  readonly prefix: string;
  readonly expirationMs: number | undefined;
  readonly createdMs: number | undefined;
  readonly lastSeenMs: number | undefined;
}

/** One decoded list: its entries, those skipped (no usable id, duplicate) and the items cut by `max_node_items`. */
export interface Decoded<T> {
  readonly items: T[];
  readonly skipped: number;
  readonly truncated: number;
}

export interface DecodeLimits {
  /** Most entries in the list. */
  readonly maxEntries: number;
  /** Most addresses, tags or routes of one entry. */
  readonly maxItems: number;
}

/** Longest string kept from any field; labels are cut further when emitted. */
const STRING_MAX = 1024;
/** An address longer than this is not an IP address; it is dropped. */
const ADDRESS_MAX = 64;
const ID_MAX = 64;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? boundLabel(v, STRING_MAX) : undefined);

/** An ID: a non-empty string (protojson writes uint64 as one) or a non-negative safe integer. */
function idOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v.length > 0 && v.length <= ID_MAX && !/[\u0000-\u001f]/.test(v) ? v : undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  return undefined;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 time strictly (not `Date.parse`, which also takes "Aug 24" or a bare year).
 * Returns `null` for Go's zero time (year 1: "unset"), undefined for anything unreadable.
 */
export function rfc3339Ms(v: unknown): number | null | undefined {
  if (typeof v !== 'string' || v.length > 40) return undefined;
  const m = RFC3339.exec(v);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return undefined;
  if (y <= 1) return null;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  if (date.getUTCMonth() !== mo - 1) return undefined; // 31 April and the like
  // A leap second (:60) is read as the last second of its minute.
  date.setUTCHours(h, mi, Math.min(s, 59), Number(((m[7] ?? '') + '000').slice(0, 3)));
  let ms = date.getTime();
  if (!m[8]) {
    const sign = m[9] === '-' ? -1 : 1;
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    ms -= sign * (oh * 60 + om) * 60_000;
  }
  return Number.isFinite(ms) ? ms : undefined;
}

/** A time that must be a real instant: the zero time and unreadable values are absent. */
const time = (v: unknown): number | undefined => rfc3339Ms(v) ?? undefined;

interface Ctx {
  readonly maxItems: number;
  truncated: number;
}

/** A string list: `null`/missing = absent, non-strings dropped, cut at `maxItems` (counted). */
function strList(v: unknown, ctx: Ctx, maxLen = STRING_MAX): string[] | undefined {
  if (v === null) return [];
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const x of v) {
    if (typeof x !== 'string' || x.length > maxLen * 2) continue;
    if (out.length >= ctx.maxItems) {
      ctx.truncated++;
      break;
    }
    out.push(boundLabel(x, maxLen));
  }
  return out;
}

function userRef(v: unknown): HeadscaleUserRef | undefined {
  if (!isObj(v)) return undefined;
  const id = idOf(v.id);
  if (id === undefined) return undefined;
  return { id, name: str(v.name) ?? '', email: str(v.email) ?? '' };
}

function registerMethod(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const m = v.replace(/^REGISTER_METHOD_/, '').toLowerCase();
  return /^(auth_key|cli|oidc|unspecified)$/.test(m) ? m : 'other';
}

/** Decodes one Node object; undefined when it has no usable `id`. */
export function decodeNode(raw: unknown, ctx: Ctx): HeadscaleNode | undefined {
  if (!isObj(raw)) return undefined;
  const id = idOf(raw.id);
  if (id === undefined) return undefined;
  const expiry = raw.expiry === null ? null : rfc3339Ms(raw.expiry);
  const pak = isObj(raw.preAuthKey) ? raw.preAuthKey : undefined;
  return {
    id,
    hostname: str(raw.name) ?? '',
    givenName: str(raw.givenName) ?? '',
    addresses: (strList(raw.ipAddresses, ctx, ADDRESS_MAX) ?? []).filter((a) => a.length <= ADDRESS_MAX),
    user: userRef(raw.user),
    online: bool(raw.online),
    lastSeenMs: time(raw.lastSeen),
    expiryMs: expiry,
    createdMs: time(raw.createdAt),
    registerMethod: registerMethod(raw.registerMethod),
    approvedRoutes: strList(raw.approvedRoutes, ctx),
    availableRoutes: strList(raw.availableRoutes, ctx),
    subnetRoutes: strList(raw.subnetRoutes, ctx),
    tags: strList(raw.tags, ctx) ?? [],
    // Only a pre-auth key makes a node ephemeral; no key (CLI, OIDC) means it is not.
    ephemeral: raw.preAuthKey === null ? false : pak ? bool(pak.ephemeral) : undefined,
  };
}

export function decodeUser(raw: unknown): HeadscaleUser | undefined {
  if (!isObj(raw)) return undefined;
  const id = idOf(raw.id);
  if (id === undefined) return undefined;
  return { id, name: str(raw.name) ?? '', email: str(raw.email) ?? '', provider: str(raw.provider) ?? '', createdMs: time(raw.createdAt) };
}

export function decodePreAuthKey(raw: unknown, ctx: Ctx): HeadscalePreAuthKey | undefined {
  if (!isObj(raw)) return undefined;
  const id = idOf(raw.id);
  if (id === undefined) return undefined;
  return {
    id,
    user: userRef(raw.user),
    reusable: bool(raw.reusable),
    ephemeral: bool(raw.ephemeral),
    used: bool(raw.used),
    expirationMs: time(raw.expiration),
    createdMs: time(raw.createdAt),
    aclTags: strList(raw.aclTags, ctx) ?? [],
  };
}

export function decodeApiKey(raw: unknown): HeadscaleApiKey | undefined {
  if (!isObj(raw)) return undefined;
  const id = idOf(raw.id);
  if (id === undefined) return undefined;
  return { id, prefix: str(raw.prefix) ?? '', expirationMs: time(raw.expiration), createdMs: time(raw.createdAt), lastSeenMs: time(raw.lastSeen) };
}

/** The position part of a JSON.parse error, without the quoted input V8 puts in its message. */
function jsonErrorWhere(err: unknown): string {
  const msg = err instanceof Error ? err.message : '';
  const m = /at position \d+(?: \(line \d+ column \d+\))?/.exec(msg);
  return m ? m[0] : /end of JSON input/.test(msg) ? 'unexpected end of input' : 'unexpected token';
}

function parseBody(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // The parser quotes the input; a body that echoes a credential would reach our logs.
    throw new HeadscaleDecodeError(`${what} is not valid JSON (${jsonErrorWhere(err)})`);
  }
}

/**
 * Decodes `{"<field>": [...]}`. Throws when the body is not JSON or lacks the list (`null`
 * counts as empty, as Go writes a nil slice), and (`too_large`) when the list is longer than
 * `maxEntries`, before any entry is decoded. Entries without a usable id, and repeated ids, are
 * skipped and counted.
 */
function decodeList<T extends { id: string }>(text: string, field: string, what: string, limits: DecodeLimits, one: (raw: unknown, ctx: Ctx) => T | undefined): Decoded<T> {
  const data = parseBody(text, what);
  if (!isObj(data) || !(field in data) || (data[field] !== null && !Array.isArray(data[field]))) throw new HeadscaleDecodeError(`${what} has no "${field}" list`);
  const list = (data[field] ?? []) as unknown[];
  if (list.length > limits.maxEntries) throw new HeadscaleDecodeError(`${what} has ${list.length} entries, more than allowed (${limits.maxEntries})`, 'too_large');
  const ctx: Ctx = { maxItems: limits.maxItems, truncated: 0 };
  const items: T[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const raw of list) {
    const x = one(raw, ctx);
    if (!x || seen.has(x.id)) skipped++;
    else {
      seen.add(x.id);
      items.push(x);
    }
  }
  return { items, skipped, truncated: ctx.truncated };
}

/** `GET /api/v1/node`. */
export const decodeNodes = (text: string, limits: DecodeLimits): Decoded<HeadscaleNode> => decodeList(text, 'nodes', 'node list', limits, decodeNode);
/** `GET /api/v1/user`. */
export const decodeUsers = (text: string, limits: DecodeLimits): Decoded<HeadscaleUser> => decodeList(text, 'users', 'user list', limits, decodeUser);
/** `GET /api/v1/preauthkey`. */
export const decodePreAuthKeys = (text: string, limits: DecodeLimits): Decoded<HeadscalePreAuthKey> => decodeList(text, 'preAuthKeys', 'pre-auth key list', limits, decodePreAuthKey);
/** `GET /api/v1/apikey`. */
export const decodeApiKeys = (text: string, limits: DecodeLimits): Decoded<HeadscaleApiKey> => decodeList(text, 'apiKeys', 'API key list', limits, decodeApiKey);

/** `GET /api/v1/health`: `{"databaseConnectivity": bool}`. */
export function decodeHealth(text: string): boolean {
  const data = parseBody(text, 'health response');
  const v = isObj(data) ? bool(data.databaseConnectivity) : undefined;
  if (v === undefined) throw new HeadscaleDecodeError('health response has no boolean "databaseConnectivity"');
  return v;
}
