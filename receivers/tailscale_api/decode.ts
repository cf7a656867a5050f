import { ErrorCode, TsmetricsError } from '../../src/errors.ts';

/** The API's device object, every field optional and type-checked (wrong type = absent). */
export interface ApiDeviceRecord {
  id: string;
  nodeId?: string;
  name?: string;
  hostname?: string;
  addresses?: string[];
  user?: string;
  clientVersion?: string;
  updateAvailable?: boolean;
  os?: string;
  created?: string;
  connectedToControl?: boolean;
  lastSeen?: string;
  keyExpiryDisabled?: boolean;
  expires?: string;
  authorized?: boolean;
  isExternal?: boolean;
  multipleConnections?: boolean;
  blocksIncomingConnections?: boolean;
  enabledRoutes?: string[];
  advertisedRoutes?: string[];
  tags?: string[];
  tailnetLockError?: string;
  sshEnabled?: boolean;
  isEphemeral?: boolean;
  postureSerials?: number;
  connectivity?: {
    endpoints?: number;
    mappingVariesByDestIP?: boolean;
    latency: Array<{ region: string; latencyMs: number; preferred: boolean }>;
    clientSupports: Array<{ feature: string; value: boolean }>;
  };
}

/** The API answered with something that is not a device list, or with too long a list. */
export class ApiDecodeError extends TsmetricsError {
  /** `too_large` when the list holds more devices than allowed, else `decode`. */
  readonly kind: 'decode' | 'too_large';
  constructor(message: string, kind: 'decode' | 'too_large' = 'decode') {
    super(ErrorCode.API_DECODE, message);
    this.name = 'ApiDecodeError';
    this.kind = kind;
  }
}

/** The position part of a JSON.parse error, without the quoted input V8 puts in its message. */
export function jsonErrorWhere(err: unknown): string {
  const m = /at position \d+(?: \(line \d+ column \d+\))?/.exec(err instanceof Error ? err.message : '');
  return m ? m[0] : /end of JSON input/.test(err instanceof Error ? err.message : '') ? 'unexpected end of input' : 'unexpected token';
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
/**
 * Most entries kept from one list field of one device (tags, routes, addresses, endpoints,
 * latency regions). Real devices have a handful; one hostile record with millions of tags would
 * otherwise become millions of series and gigabytes of heap.
 */
export const MAX_LIST_ITEMS = 256;
/** Longest string kept from a list entry (route, tag, address); longer ones are dropped. */
const MAX_ITEM_LENGTH = 1024;

/** Strings of a list, de-duplicated, at most MAX_LIST_ITEMS of them. */
const strList = (v: unknown): string[] | undefined => {
  if (!Array.isArray(v)) return undefined;
  const out = new Set<string>();
  for (const x of v) {
    if (out.size >= MAX_LIST_ITEMS) break;
    if (typeof x === 'string' && x.length <= MAX_ITEM_LENGTH) out.add(x);
  }
  return [...out];
};
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

const FEATURES: Array<[string, string]> = [
  ['hairPinning', 'hairpinning'],
  ['ipv6', 'ipv6'],
  ['pcp', 'pcp'],
  ['pmp', 'pmp'],
  ['udp', 'udp'],
  ['upnp', 'upnp'],
];

/** Decodes one device object; returns undefined when it has no usable `id`. */
export function decodeDevice(raw: unknown): ApiDeviceRecord | undefined {
  if (!isObj(raw)) return undefined;
  const id = str(raw.id) ?? (typeof raw.id === 'number' ? String(raw.id) : undefined);
  if (!id) return undefined;
  const d: ApiDeviceRecord = { id };
  const set = <K extends keyof ApiDeviceRecord>(k: K, v: ApiDeviceRecord[K] | undefined): void => {
    if (v !== undefined) d[k] = v;
  };
  set('nodeId', str(raw.nodeId));
  set('name', str(raw.name));
  set('hostname', str(raw.hostname));
  set('addresses', strList(raw.addresses));
  set('user', str(raw.user));
  set('clientVersion', str(raw.clientVersion));
  set('updateAvailable', bool(raw.updateAvailable));
  set('os', str(raw.os));
  set('created', str(raw.created));
  set('connectedToControl', bool(raw.connectedToControl));
  set('lastSeen', str(raw.lastSeen));
  set('keyExpiryDisabled', bool(raw.keyExpiryDisabled));
  set('expires', str(raw.expires));
  set('authorized', bool(raw.authorized));
  set('isExternal', bool(raw.isExternal));
  set('multipleConnections', bool(raw.multipleConnections));
  set('blocksIncomingConnections', bool(raw.blocksIncomingConnections));
  set('enabledRoutes', strList(raw.enabledRoutes));
  set('advertisedRoutes', strList(raw.advertisedRoutes));
  set('tags', strList(raw.tags));
  set('tailnetLockError', str(raw.tailnetLockError));
  set('sshEnabled', bool(raw.sshEnabled));
  set('isEphemeral', bool(raw.isEphemeral));
  if (isObj(raw.postureIdentity)) {
    const serials = strList(raw.postureIdentity.serialNumbers);
    d.postureSerials = serials ? serials.length : 0;
  }
  if (isObj(raw.clientConnectivity)) {
    const cc = raw.clientConnectivity;
    const latency: Array<{ region: string; latencyMs: number; preferred: boolean }> = [];
    if (isObj(cc.latency)) {
      for (const [region, v] of Object.entries(cc.latency)) {
        if (latency.length >= MAX_LIST_ITEMS) break;
        if (isObj(v) && typeof v.latencyMs === 'number' && Number.isFinite(v.latencyMs)) latency.push({ region, latencyMs: v.latencyMs, preferred: v.preferred === true });
      }
    }
    const clientSupports: Array<{ feature: string; value: boolean }> = [];
    if (isObj(cc.clientSupports)) {
      for (const [key, feature] of FEATURES) {
        const v = bool(cc.clientSupports[key]);
        if (v !== undefined) clientSupports.push({ feature, value: v });
      }
    }
    const eps = strList(cc.endpoints);
    d.connectivity = { latency, clientSupports, ...(eps ? { endpoints: eps.length } : {}), ...(bool(cc.mappingVariesByDestIP) !== undefined ? { mappingVariesByDestIP: cc.mappingVariesByDestIP as boolean } : {}) };
  }
  return d;
}

/**
 * Decodes the `GET …/devices` body. Throws `ApiDecodeError` when the body is not JSON or has no
 * `devices` list, and (kind `too_large`) when the list holds more than `maxDevices` entries,
 * before any of them is decoded; devices without an id are skipped and counted in `skipped`.
 */
export function decodeDeviceList(text: string, maxDevices = Infinity): { devices: ApiDeviceRecord[]; skipped: number } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // The parser quotes the input; an API that echoes a credential would put it in our logs.
    throw new ApiDecodeError(`device list is not valid JSON (${jsonErrorWhere(err)})`);
  }
  if (!isObj(data) || !Array.isArray(data.devices)) throw new ApiDecodeError('device list has no "devices" array');
  if (data.devices.length > maxDevices) throw new ApiDecodeError(`device list has ${data.devices.length} entries, more than max_devices (${maxDevices})`, 'too_large');
  const devices: ApiDeviceRecord[] = [];
  let skipped = 0;
  const seen = new Set<string>();
  for (const raw of data.devices) {
    const d = decodeDevice(raw);
    if (!d || seen.has(d.id)) skipped++;
    else {
      seen.add(d.id);
      devices.push(d);
    }
  }
  return { devices, skipped };
}
