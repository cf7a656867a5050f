import { SeverityNumber, type AnyValue, type AttributeValue, type Attributes, type HrTime } from '@opentelemetry/api';

/** A map AnyValue (the API types AnyValue as unknown). */
type AnyValueMap = Record<string, AnyValue>;
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Device } from '../../src/pipeline/inventory.ts';
import { boundedString, countOf, endpointOf, isObject, isZeroTime, parseTime, type Endpoint, type Time } from './decode.ts';
import { addressFacts, addressKey, DERP_MAGIC_IP, type Privacy } from './privacy.ts';

export const FLOW_EVENT = 'tailscale.network.flow';
export const AUDIT_EVENT = 'tailscale.configuration.audit';

/** Why a record or entry was not emitted (the `reason` of `tsmetrics_logs_records_dropped`). */
export type DropReason = 'malformed' | 'too_large' | 'limit' | 'outside_window' | 'max_records';

/** What identifies a device: from the inventory (authoritative) or from the record itself. */
interface NodeInfo {
  readonly id?: string;
  readonly nodeId?: string;
  readonly name?: string;
  readonly tags?: readonly string[];
}

/** The inventory by address and by nodeId, built once per poll. */
export class DeviceIndex {
  readonly byAddress = new Map<string, Device>();
  readonly byNode = new Map<string, Device>();
  constructor(devices: readonly Device[]) {
    for (const d of devices) {
      if (d.nodeId) this.byNode.set(d.nodeId, d);
      for (const a of d.addresses) {
        const k = addressKey(a);
        if (k) this.byAddress.set(k, d);
      }
    }
  }
}

/** What mapping needs besides the record: shared objects of the batch, limits, privacy, drops. */
export interface MapContext {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  /** When this poll read the records. */
  readonly observed: HrTime;
  readonly privacy: Privacy;
  readonly maxString: number;
  readonly maxList: number;
  readonly devices: DeviceIndex;
  drop(reason: DropReason, n?: number): void;
}

const PROTOCOLS: Readonly<Record<number, string>> = { 0: 'unknown', 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp', 99: 'tsmp' };
const PROTOCOL_NAMES: Readonly<Record<string, string>> = { tcp: 'tcp', udp: 'udp', icmp: 'icmp', 'ipv6-icmp': 'ipv6-icmp', icmpv6: 'ipv6-icmp', tsmp: 'tsmp', unknown: 'unknown', '': 'unknown' };

/**
 * The protocol name of `proto`: an integer on the wire (Tailscale's JSON), a string enum in the
 * API spec; both are accepted. Other numbers stay numbers (as text); anything else is undefined.
 */
export function protocolOf(v: unknown): string | undefined {
  if (v === undefined || v === null) return 'unknown';
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 255 ? (PROTOCOLS[v] ?? String(v)) : undefined;
  if (typeof v !== 'string' || v.length > 16) return undefined;
  const s = v.toLowerCase();
  if (/^\d{1,3}$/.test(s)) return protocolOf(Number(s));
  return PROTOCOL_NAMES[s] ?? (/^[a-z0-9-]+$/.test(s) ? s : undefined);
}

const TRAFFIC: ReadonlyArray<readonly [key: string, type: string]> = [
  ['virtualTraffic', 'virtual'],
  ['subnetTraffic', 'subnet'],
  ['exitTraffic', 'exit'],
  ['physicalTraffic', 'physical'],
];

const INFO = { severityNumber: SeverityNumber.INFO, severityText: 'INFO' } as const;

function strings(v: unknown, ctx: MapContext): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const x of v) {
    if (typeof x !== 'string') continue;
    if (out.length >= ctx.maxList) {
      ctx.drop('limit');
      break;
    }
    out.push(boundedString(x, ctx.maxString) as string);
  }
  return out;
}

/** The nodes a flow record names (`srcNode`, `dstNodes`), by address. */
function recordNodes(rec: Record<string, unknown>, ctx: MapContext): Map<string, NodeInfo> {
  const m = new Map<string, NodeInfo>();
  const add = (n: unknown): void => {
    if (!isObject(n) || !Array.isArray(n.addresses)) return;
    const info: { nodeId?: string; name?: string; tags?: string[] } = {};
    if (typeof n.nodeId === 'string') info.nodeId = boundedString(n.nodeId, ctx.maxString) as string;
    if (typeof n.name === 'string') info.name = boundedString(n.name, ctx.maxString) as string;
    if (Array.isArray(n.tags)) info.tags = strings(n.tags, ctx) as string[];
    const addresses = n.addresses as unknown[];
    for (let i = 0, len = Math.min(addresses.length, ctx.maxList); i < len; i++) {
      const a = addresses[i];
      const k = typeof a === 'string' && a.length <= 64 ? addressKey(a) : undefined;
      if (k) m.set(k, info);
    }
  };
  add(rec.srcNode);
  if (Array.isArray(rec.dstNodes)) {
    const list = rec.dstNodes as unknown[];
    if (list.length > ctx.maxList) ctx.drop('limit', list.length - ctx.maxList);
    for (let i = 0, len = Math.min(list.length, ctx.maxList); i < len; i++) add(list[i]);
  }
  return m;
}

/** Who is behind an address: the inventory first (the record's node fields are self-reported). */
function lookup(k: string, nodes: Map<string, NodeInfo>, ctx: MapContext): NodeInfo | undefined {
  const rec = nodes.get(k);
  const inv = ctx.devices.byAddress.get(k) ?? (rec?.nodeId ? ctx.devices.byNode.get(rec.nodeId) : undefined);
  if (!inv && !rec) return undefined;
  const nodeId = inv?.nodeId || rec?.nodeId;
  const name = inv?.name || rec?.name;
  const tags = inv ? inv.tags : rec?.tags;
  // Bounded here, once per record and address, not once per connection entry.
  const out: { id?: string; nodeId?: string; name?: string; tags?: readonly string[] } = {};
  if (inv?.id) out.id = boundedString(inv.id, ctx.maxString) as string;
  if (nodeId) out.nodeId = boundedString(nodeId, ctx.maxString) as string;
  if (name) out.name = boundedString(name, ctx.maxString) as string;
  if (tags) out.tags = tags.slice(0, ctx.maxList).map((t) => boundedString(t, ctx.maxString) as string);
  return out;
}

/** The attribute names of one side of a connection, made once. */
interface SideKeys {
  readonly address: string;
  readonly port: string;
  readonly id: string;
  readonly nodeId: string;
  readonly name: string;
  readonly tags: string;
}
const sideKeys = (side: 'source' | 'destination'): SideKeys => ({
  address: `${side}.address`,
  port: `${side}.port`,
  id: `tailscale.${side}.device.id`,
  nodeId: `tailscale.${side}.device.node_id`,
  name: `tailscale.${side}.device.name`,
  tags: `tailscale.${side}.device.tags`,
});
const SOURCE = sideKeys('source');
const DESTINATION = sideKeys('destination');

/** Where the record's timestamps come from: `logged` is the filter time, `end` the latest. */
export interface FlowTimes {
  readonly logged: Time;
  readonly start: Time;
  readonly end: Time;
}

/** The timestamps of a flow record, or undefined when it lacks a valid one (malformed). */
export function flowTimes(rec: unknown): FlowTimes | undefined {
  if (!isObject(rec)) return undefined;
  const logged = parseTime(rec.logged);
  const start = parseTime(rec.start);
  const end = parseTime(rec.end);
  return logged && start && end ? { logged, start, end } : undefined;
}

/** What every entry of one flow record shares while it is mapped. */
interface FlowRecord {
  readonly nodeId: string;
  readonly t: FlowTimes;
  readonly nodes: Map<string, NodeInfo>;
  /** `lookup` by address key, per record: its entries name the same few devices again and again. */
  readonly resolved: Map<string, NodeInfo | undefined>;
  readonly ctx: MapContext;
}

/**
 * One network flow record → one log record per connection entry of each traffic array. A bad
 * entry costs itself (counted as malformed); a record without valid times or node id costs the
 * record (the caller counts it).
 */
export function mapFlow(rec: Record<string, unknown>, t: FlowTimes, ctx: MapContext): ReadableLogRecord[] | undefined {
  const nodeId = boundedString(rec.nodeId, ctx.maxString);
  if (!nodeId) return undefined;
  const f: FlowRecord = { nodeId, t, nodes: recordNodes(rec, ctx), resolved: new Map(), ctx };
  const out: ReadableLogRecord[] = [];
  for (const [key, type] of TRAFFIC) {
    const list = rec[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) {
      ctx.drop('malformed');
      continue;
    }
    if (list.length > ctx.maxList) ctx.drop('limit', list.length - ctx.maxList);
    for (let i = 0, len = Math.min(list.length, ctx.maxList); i < len; i++) {
      const r = mapEntry(list[i] as unknown, type, f);
      if (r) out.push(r);
      else ctx.drop('malformed');
    }
  }
  return out;
}

function mapEntry(entry: unknown, type: string, f: FlowRecord): ReadableLogRecord | undefined {
  if (!isObject(entry)) return undefined;
  const src = entry.src === undefined ? undefined : endpointOf(entry.src);
  const dst = entry.dst === undefined ? undefined : endpointOf(entry.dst);
  if ((entry.src !== undefined && !src) || (entry.dst !== undefined && !dst)) return undefined;
  const proto = protocolOf(entry.proto);
  const txBytes = countOf(entry.txBytes);
  const txPkts = countOf(entry.txPkts);
  const rxBytes = countOf(entry.rxBytes);
  const rxPkts = countOf(entry.rxPkts);
  if (proto === undefined || txBytes === undefined || txPkts === undefined || rxBytes === undefined || rxPkts === undefined) return undefined;
  const a: Attributes = { 'tailscale.flow.traffic_type': type, 'tailscale.flow.protocol': proto };
  if (proto === 'tcp' || proto === 'udp') a['network.transport'] = proto;
  const family = src?.family ?? dst?.family;
  if (family) a['network.type'] = family === 4 ? 'ipv4' : 'ipv6';
  const derp = type === 'physical' && dst?.address === DERP_MAGIC_IP;
  // The body is the entry as sent; it is copied only when privacy changes an address in it.
  let body = entry as AnyValueMap;
  if (src) body = side(a, body, entry, src, SOURCE, 'src', false, f);
  if (dst) body = side(a, body, entry, dst, DESTINATION, 'dst', derp, f);
  if (derp && dst) a['tailscale.flow.derp_region'] = dst.port;
  a['tailscale.flow.tx_bytes'] = txBytes;
  a['tailscale.flow.tx_packets'] = txPkts;
  a['tailscale.flow.rx_bytes'] = rxBytes;
  a['tailscale.flow.rx_packets'] = rxPkts;
  a['tailscale.flow.start'] = f.t.start.text;
  a['tailscale.flow.end'] = f.t.end.text;
  a['tailscale.node.id'] = f.nodeId;
  a['tailscale.flow.logged'] = f.t.logged.text;
  return logRecord(f.ctx, f.t.start.hr, FLOW_EVENT, INFO, body, a);
}

/** One side's attributes (privacy applied); returns the body, copied if privacy changed it. */
function side(a: Attributes, body: AnyValueMap, entry: object, ep: Endpoint, keys: SideKeys, field: 'src' | 'dst', isDerp: boolean, f: FlowRecord): AnyValueMap {
  const ctx = f.ctx;
  let address: string | undefined = ep.address;
  const facts = addressFacts(ep.address);
  const k = facts.key;
  if (!isDerp && !facts.tailnet && !(k !== undefined && (f.nodes.has(k) || ctx.devices.byAddress.has(k)))) {
    address = ctx.privacy.address(ep.address);
    if (address !== ep.address) {
      if (body === entry) body = { ...body };
      if (address === undefined) delete body[field];
      else body[field] = ep.family === 6 ? `[${address}]:${ep.port}` : `${address}:${ep.port}`;
    }
  }
  if (address !== undefined) a[keys.address] = address;
  if (isDerp) return body;
  if (ep.port !== 0) a[keys.port] = ep.port;
  if (k === undefined) return body;
  let info = f.resolved.get(k);
  if (info === undefined && !f.resolved.has(k)) {
    info = lookup(k, f.nodes, ctx);
    f.resolved.set(k, info);
  }
  if (info) {
    if (info.id) a[keys.id] = info.id;
    if (info.nodeId) a[keys.nodeId] = info.nodeId;
    if (info.name) a[keys.name] = info.name;
    if (info.tags) a[keys.tags] = info.tags as string[];
  }
  return body;
}

function logRecord(ctx: MapContext, hrTime: HrTime, eventName: string, sev: { severityNumber: SeverityNumber; severityText: string }, body: AnyValue, attributes: Attributes): ReadableLogRecord {
  return { hrTime, hrTimeObserved: ctx.observed, eventName, severityNumber: sev.severityNumber, severityText: sev.severityText, body, resource: ctx.resource, instrumentationScope: ctx.scope, attributes, droppedAttributesCount: 0 };
}

/** Actions that take something away or stop it; their events are WARN (a failed change is ERROR). */
const WARN_ACTIONS: ReadonlySet<string> = new Set(['DELETE', 'REVOKE', 'SUSPEND', 'DISABLE', 'EXPIRED', 'CANCEL']);

/** The timestamps of an audit event: `eventTime` (the filter time) and the latest it carries. */
export function auditTimes(ev: unknown): { event: Time; latestMs: number } | undefined {
  if (!isObject(ev)) return undefined;
  const event = parseTime(ev.eventTime);
  if (!event) return undefined;
  let latestMs = event.ms;
  for (const k of ['deferredAt', 'logged']) {
    const x = parseTime(ev[k]);
    if (x && x.ms > latestMs) latestMs = x.ms;
  }
  return { event, latestMs };
}

/** A JSON value as an attribute AnyValue: structure kept, strings and lists bounded, depth ≤ 8. */
export function boundedAny(v: unknown, ctx: MapContext, depth = 0): AnyValue {
  if (typeof v === 'string') return boundedString(v, ctx.maxString) as string;
  if (v === null || typeof v !== 'object') return v as AnyValue;
  if (depth >= 8) return boundedString(JSON.stringify(v), ctx.maxString) as string;
  if (Array.isArray(v)) {
    if (v.length > ctx.maxList) ctx.drop('limit', v.length - ctx.maxList);
    return v.slice(0, ctx.maxList).map((x) => boundedAny(x, ctx, depth + 1));
  }
  const out: AnyValueMap = {};
  let n = 0;
  for (const [k, x] of Object.entries(v)) {
    if (n++ >= ctx.maxList) {
      ctx.drop('limit');
      break;
    }
    out[boundedString(k, ctx.maxString) as string] = boundedAny(x, ctx, depth + 1);
  }
  return out;
}

/** One configuration audit event → one log record; undefined when it lacks what every event has. */
export function mapAudit(ev: Record<string, unknown>, time: Time, ctx: MapContext): ReadableLogRecord | undefined {
  const actor = ev.actor;
  const target = ev.target;
  const action = boundedString(ev.action, ctx.maxString);
  if (!isObject(actor) || !isObject(target) || !action) return undefined;
  const s = (v: unknown): string | undefined => boundedString(v, ctx.maxString);
  const targetType = s(target.type) ?? '';
  const property = s(target.property) ?? '';
  const a: Attributes = { 'tailscale.audit.event': [targetType, action, ...(property ? [property] : [])].join('.'), 'tailscale.audit.action': action };
  const put = (k: string, v: AttributeValue | undefined): void => {
    if (v !== undefined) a[k] = v;
  };
  put('tailscale.audit.origin', s(ev.origin));
  put('tailscale.audit.event_group_id', s(ev.eventGroupID));
  const p = ctx.privacy;
  const actorId = p.actor(s(actor.id));
  const login = p.actor(s(actor.loginName));
  const display = p.actor(s(actor.displayName));
  put('tailscale.audit.actor.id', actorId);
  put('tailscale.audit.actor.type', s(actor.type));
  put('tailscale.audit.actor.login_name', login);
  put('tailscale.audit.actor.display_name', display);
  put('tailscale.audit.actor.tags', strings(actor.tags, ctx));
  put('tailscale.audit.target.id', s(target.id));
  put('tailscale.audit.target.name', s(target.name));
  put('tailscale.audit.target.type', targetType || undefined);
  put('tailscale.audit.target.property', property || undefined);
  if (typeof target.isEphemeral === 'boolean') a['tailscale.audit.target.is_ephemeral'] = target.isEphemeral;
  // OTLP carries any value in an attribute; the SDK's type only names the flat ones.
  if ('old' in ev) a['tailscale.audit.old'] = boundedAny(ev.old, ctx) as AttributeValue;
  if ('new' in ev) a['tailscale.audit.new'] = boundedAny(ev.new, ctx) as AttributeValue;
  put('tailscale.audit.action_details', s(ev.actionDetails) || undefined);
  const error = s(ev.error) || undefined;
  put('tailscale.audit.error', error);
  const deferred = parseTime(ev.deferredAt);
  if (deferred && !isZeroTime(deferred)) a['tailscale.audit.deferred_at'] = deferred.text;
  const sev = error ? { severityNumber: SeverityNumber.ERROR, severityText: 'ERROR' } : WARN_ACTIONS.has(action) ? { severityNumber: SeverityNumber.WARN, severityText: 'WARN' } : INFO;
  // The body is the event as sent, but the privacy settings hold there too.
  let body: AnyValueMap = ev as AnyValueMap;
  if (p.actors !== 'keep') {
    const ab: AnyValueMap = { ...(actor as AnyValueMap) };
    for (const [k, v] of [['id', actorId], ['loginName', login], ['displayName', display]] as const) {
      if (!(k in ab)) continue;
      if (v === undefined) delete ab[k];
      else ab[k] = v;
    }
    body = { ...body, actor: ab };
  }
  return logRecord(ctx, time.hr, AUDIT_EVENT, sev, body, a);
}
