import { isIP } from 'node:net';
import { ErrorCode, TsmetricsError } from '../../src/errors.ts';

/**
 * Defensive decoding of tailscaled's `GET /localapi/v0/status` (`ipnstate.Status`).
 *
 * The LocalAPI is explicitly unstable and the daemon on the other end of the socket is not ours
 * (a sidecar, the host's tailscaled), so every field is optional: unknown fields are ignored, a
 * field of the wrong type counts as absent, and a peer entry that cannot be identified fails
 * that peer alone. Only a body that is not a JSON object, or one whose structure is far larger
 * than any real netmap, fails the whole status.
 */

/** The status body could not be used at all. */
export class StatusDecodeError extends TsmetricsError {
  /** `decode` (not JSON / not an object) or `limit` (too many JSON containers). */
  readonly kind: 'decode' | 'limit';
  constructor(kind: 'decode' | 'limit', message: string) {
    super(ErrorCode.API_DECODE, message);
    this.name = 'StatusDecodeError';
    this.kind = kind;
  }
}

/** `ipn.State` names; anything else is reported as `other`. */
export const BACKEND_STATES = ['NoState', 'InUseOtherUser', 'NeedsLogin', 'NeedsMachineAuth', 'Stopped', 'Starting', 'Running'] as const;

/** How traffic to a peer flows right now (see `derivePath`). */
export type PeerPath = 'direct' | 'peer_relay' | 'derp' | 'idle' | 'offline';
export const PEER_PATHS: readonly PeerPath[] = ['direct', 'peer_relay', 'derp', 'idle', 'offline'];

/**
 * Objects and arrays a status body may contain. A real peer costs about ten (the peer, its
 * address lists, its owner's profile), so this admits ~40,000 peers while keeping what
 * `JSON.parse` builds from a hostile body of tiny containers to tens of megabytes.
 */
export const MAX_STATUS_CONTAINERS = 400_000;
/** Health strings looked at; tailscaled has a few dozen warnables in all. */
export const MAX_HEALTH_ENTRIES = 64;
/** Tags kept per peer (the label joins them). */
export const MAX_TAGS = 32;
/** Own Tailscale addresses kept (one IPv4 and one IPv6 in practice). */
export const MAX_OWN_ADDRESSES = 8;

/** One peer (or Self), with only the fields the receiver reports. */
export interface PeerRecord {
  /** Key in the `Peer` map (`nodekey:…`); empty for Self. */
  readonly key: string;
  /** Stable node id (`n…CNTRL`; decimal on Headscale): the join key to the inventory. */
  readonly id: string;
  readonly hostName: string;
  readonly dnsName: string;
  readonly os: string;
  readonly tags: readonly string[];
  readonly online: boolean | undefined;
  readonly active: boolean | undefined;
  readonly curAddr: string;
  /** Home DERP region code of the peer (our own for Self). */
  readonly relay: string;
  readonly peerRelay: string;
  readonly rxBytes: number | undefined;
  readonly txBytes: number | undefined;
  readonly inEngine: boolean | undefined;
  readonly lastHandshakeMs: number | undefined;
  readonly lastSeenMs: number | undefined;
  readonly keyExpiryMs: number | undefined;
  readonly expired: boolean | undefined;
  readonly exitNode: boolean | undefined;
  readonly exitNodeOption: boolean | undefined;
}

export interface LocalStatus {
  /** One of `BACKEND_STATES`, or `other` (unknown or missing). */
  readonly backendState: string;
  readonly version: string;
  readonly tun: boolean | undefined;
  /** Own addresses that parse as IPs. */
  readonly tailscaleIps: readonly string[];
  readonly self: PeerRecord | undefined;
  /** Health strings (at most `MAX_HEALTH_ENTRIES`). */
  readonly health: readonly string[];
  /** Health strings the body had, including those beyond the cap. */
  readonly healthTotal: number;
  readonly tailnet: { readonly name: string; readonly magicDnsSuffix: string } | undefined;
  /** Well-formed peers, one per stable id, sorted by id (then map key). */
  readonly peers: readonly PeerRecord[];
  /** Peer entries that could not be used (not an object, no id, a second entry for an id). */
  readonly malformed: number;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
/** Byte counters: finite, non-negative numbers only. */
const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

// Go's time.Time JSON is RFC 3339 with 0–9 fractional digits. Date.parse alone also accepts
// loose forms ("12345" is the year 12345), so the shape is checked first.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const ZERO_TIME_MS = Date.UTC(1, 0, 1, 0, 0, 0) + 86_400_000; // anything on or before 0001-01-02 is "never"

/** An RFC 3339 time in ms; undefined for absent, malformed or Go's zero time ("never"). */
export function statusTime(v: unknown): number | undefined {
  if (typeof v !== 'string' || v.length > 40 || !RFC3339.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) || t <= ZERO_TIME_MS ? undefined : t;
}

function stringList(v: unknown, max: number): string[] {
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const x of v) {
    if (out.length >= max) break;
    if (typeof x === 'string' && x !== '') out.push(x);
  }
  return out;
}

function decodePeer(key: string, v: unknown): PeerRecord | undefined {
  if (!isObject(v)) return undefined;
  const id = str(v.ID);
  if (id === '') return undefined;
  return {
    key,
    id,
    hostName: str(v.HostName),
    dnsName: str(v.DNSName),
    os: str(v.OS),
    tags: stringList(v.Tags, MAX_TAGS),
    online: bool(v.Online),
    active: bool(v.Active),
    curAddr: str(v.CurAddr),
    relay: str(v.Relay),
    peerRelay: str(v.PeerRelay),
    rxBytes: count(v.RxBytes),
    txBytes: count(v.TxBytes),
    inEngine: bool(v.InEngine),
    lastHandshakeMs: statusTime(v.LastHandshake),
    lastSeenMs: statusTime(v.LastSeen),
    keyExpiryMs: statusTime(v.KeyExpiry),
    expired: bool(v.Expired),
    exitNode: bool(v.ExitNode),
    exitNodeOption: bool(v.ExitNodeOption),
  };
}

/** Counts `{` and `[` (an upper bound on containers: brackets inside strings count too). */
function containers(text: string, stopAt: number): number {
  let n = 0;
  for (const ch of ['{', '[']) {
    for (let i = text.indexOf(ch); i !== -1; i = text.indexOf(ch, i + 1)) if (++n > stopAt) return n;
  }
  return n;
}

/**
 * Decodes a status body. Throws `StatusDecodeError` only when the body as a whole is unusable;
 * everything below the top level degrades field by field and peer by peer.
 */
export function decodeStatus(text: string): LocalStatus {
  if (containers(text, MAX_STATUS_CONTAINERS) > MAX_STATUS_CONTAINERS) {
    throw new StatusDecodeError('limit', `status has more than ${MAX_STATUS_CONTAINERS} JSON objects and arrays`);
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw new StatusDecodeError('decode', `status is not JSON: ${err instanceof Error ? err.message.slice(0, 200) : 'parse error'}`);
  }
  if (!isObject(root)) throw new StatusDecodeError('decode', 'status is not a JSON object');

  const state = str(root.BackendState);
  const backendState = (BACKEND_STATES as readonly string[]).includes(state) ? state : 'other';
  const tailscaleIps = stringList(root.TailscaleIPs, MAX_OWN_ADDRESSES).filter((a) => a.length <= 45 && isIP(a) !== 0);
  const healthAll = Array.isArray(root.Health) ? root.Health : [];
  const health = stringList(healthAll, MAX_HEALTH_ENTRIES);
  const ct = root.CurrentTailnet;
  const tailnet = isObject(ct) ? { name: str(ct.Name), magicDnsSuffix: str(ct.MagicDNSSuffix) } : undefined;
  const self = decodePeer('', root.Self);

  const peers: PeerRecord[] = [];
  let malformed = 0;
  if (isObject(root.Peer)) {
    for (const key in root.Peer) {
      const p = decodePeer(key, root.Peer[key]);
      if (p) peers.push(p);
      else malformed++;
    }
  } else if (root.Peer !== undefined && root.Peer !== null) malformed++;
  // Sorted so that which peers fit under max_peers does not depend on map order, and one entry
  // per stable id: two entries for one id would print the same series twice.
  peers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const unique: PeerRecord[] = [];
  for (const p of peers) {
    if (unique.length && (unique[unique.length - 1] as PeerRecord).id === p.id) malformed++;
    else unique.push(p);
  }
  return {
    backendState,
    version: str(root.Version),
    tun: bool(root.TUN),
    tailscaleIps,
    self,
    health,
    healthTotal: healthAll.filter((h) => typeof h === 'string' && h !== '').length,
    tailnet,
    peers: unique,
    malformed,
  };
}

/** A peer's current path, with the DERP region when relayed and the address family when known. */
export interface PathInfo {
  readonly path: PeerPath;
  readonly derpRegion?: string;
  readonly family?: 'ipv4' | 'ipv6';
}

/** `ip:port` or `[v6]:port`, and peer-relay `ip:port:vni:n` / `[v6]:port:vni:n`. */
const familyOf = (addr: string): 'ipv4' | 'ipv6' => (addr.startsWith('[') ? 'ipv6' : 'ipv4');

/**
 * Derives the connection path the way `tailscale status` does: a direct UDP address in use wins,
 * then a peer relay, then DERP — but DERP only while we are sending to the peer, because `Relay`
 * is the peer's home region whether or not traffic uses it. A peer with none of these is `idle`
 * (its last path is unknown, and never reported as DERP), or `offline` when control says so.
 */
export function derivePath(p: Pick<PeerRecord, 'curAddr' | 'peerRelay' | 'active' | 'relay' | 'online'>): PathInfo {
  if (p.curAddr !== '') return { path: 'direct', family: familyOf(p.curAddr) };
  if (p.peerRelay !== '') return { path: 'peer_relay', family: familyOf(p.peerRelay) };
  if (p.active === true && p.relay !== '') return { path: 'derp', derpRegion: p.relay };
  if (p.online === false) return { path: 'offline' };
  return { path: 'idle' };
}

/**
 * Health texts mapped to tailscaled's own warnable codes (health/warnings.go), so a label value
 * can be looked up in Tailscale's documentation. The status carries only the rendered text,
 * which embeds arguments (versions, region names, durations, error strings), so the text itself
 * can never be a label. Patterns are tried on at most `HEALTH_MATCH_CHARS` characters.
 */
const HEALTH_CODES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^A security update from version /, 'security-update-available'],
  [/^An update from version /, 'update-available'],
  [/^This is an unstable version of Tailscale/, 'is-using-unstable-version'],
  [/because the network is down/, 'network-status'],
  [/^Tailscale is stopped/, 'wantrunning-false'],
  [/^The local log is misconfigured/, 'local-log-config-error'],
  [/^You are logged out/, 'login-state'],
  [/^Unable to connect to the Tailscale coordination server/, 'not-in-map-poll'],
  [/could not connect to any relay server/, 'no-derp-home'],
  [/could not connect to the (?:'[^']*'|relay server with ID)/, 'no-derp-connection'],
  [/hasn't heard from the (?:'[^']*' relay server|home relay server)/, 'derp-timed-out'],
  [/^The relay server #\S* is reporting an issue/, 'derp-region-error'],
  [/couldn't listen for incoming UDP connections/, 'no-udp4-bind'],
  [/hasn't received a network map from the coordination server/, 'mapresponse-timeout'],
  [/could not establish an encrypted connection with/, 'tls-connection-failed'],
  [/^The MagicSock function \S+ is not running/, 'magicsock-receive-func-error'],
  [/envknob configuration stored on disk/, 'apply-disk-config'],
  [/^The coordination server is reporting an? health issue/, 'control-health'],
  [/^Tailscale is starting/, 'warming-up'],
  // Not warnables: two messages ipnlocal appends to the list itself.
  [/advertising routes but --accept-routes is false/, 'accept-routes-off'],
  [/^Tailscale SSH enabled, but/, 'ssh-unavailable'],
];
const HEALTH_MATCH_CHARS = 512;

/** 32-bit FNV-1a over UTF-16 code units, as 8 hex digits. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * A bounded, stable code for one health text: tailscaled's warnable code when the text is one
 * we know, else `other-<hash>` of the text with its arguments removed (quoted parts, numbers),
 * so the same warning about another region or version keeps its code.
 */
export function healthCode(text: string): string {
  const t = text.length > HEALTH_MATCH_CHARS ? text.slice(0, HEALTH_MATCH_CHARS) : text;
  for (const [re, code] of HEALTH_CODES) if (re.test(t)) return code;
  const shape = t
    .toLowerCase()
    .replace(/'[^']*'|"[^"]*"|`[^`]*`/g, '')
    .replace(/[0-9][0-9a-f.:_-]*/g, '#')
    .replace(/\s+/g, ' ')
    .trim();
  return `other-${fnv1a(shape)}`;
}
