import { SeverityNumber, type AnyValue, type AttributeValue, type Attributes, type HrTime } from '@opentelemetry/api';

/** A map AnyValue (the API types AnyValue as unknown). */
type AnyValueMap = Record<string, AnyValue>;
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Device } from '../../src/pipeline/inventory.ts';
import { boundedString, countOf, isObject, isZeroTime, parseEndpoint, parseTime, type Endpoint, type Time } from './decode.ts';
import { addressKey, DERP_MAGIC_IP, inTailnetRanges, type Privacy } from './privacy.ts';

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
    if (!isObject(n)) return;
    const info: NodeInfo = {
      ...(typeof n.nodeId === 'string' ? { nodeId: boundedString(n.nodeId, ctx.maxString) as string } : {}),
      ...(typeof n.name === 'string' ? { name: boundedString(n.name, ctx.maxString) as string } : {}),
      ...(Array.isArray(n.tags) ? { tags: strings(n.tags, ctx) as string[] } : {}),
    };
    if (!Array.isArray(n.addresses)) return;
    for (const a of n.addresses.slice(0, ctx.maxList)) {
      const k = typeof a === 'string' && a.length <= 64 ? addressKey(a) : undefined;
      if (k) m.set(k, info);
    }
  };
  add(rec.srcNode);
  if (Array.isArray(rec.dstNodes)) {
    if (rec.dstNodes.length > ctx.maxList) ctx.drop('limit', rec.dstNodes.length - ctx.maxList);
    for (const n of rec.dstNodes.slice(0, ctx.maxList)) add(n);
  }
  return m;
}

/** Who is behind an address: the inventory first (the record's node fields are self-reported). */
function lookup(ep: Endpoint, nodes: Map<string, NodeInfo>, ctx: MapContext): NodeInfo | undefined {
  const k = addressKey(ep.address);
  if (!k) return undefined;
  const rec = nodes.get(k);
  const inv = ctx.devices.byAddress.get(k) ?? (rec?.nodeId ? ctx.devices.byNode.get(rec.nodeId) : undefined);
  if (!inv && !rec) return undefined;
  const nodeId = inv?.nodeId || rec?.nodeId;
  const name = inv?.name || rec?.name;
  const tags = inv ? inv.tags : rec?.tags;
  return { ...(inv ? { id: inv.id } : {}), ...(nodeId ? { nodeId } : {}), ...(name ? { name } : {}), ...(tags ? { tags } : {}) };
}

function enrich(a: Attributes, side: 'source' | 'destination', info: NodeInfo | undefined, ctx: MapContext): void {
  if (!info) return;
  const p = `tailscale.${side}.device.`;
  if (info.id) a[`${p}id`] = boundedString(info.id, ctx.maxString) as string;
  if (info.nodeId) a[`${p}node_id`] = boundedString(info.nodeId, ctx.maxString) as string;
  if (info.name) a[`${p}name`] = boundedString(info.name, ctx.maxString) as string;
  if (info.tags) a[`${p}tags`] = info.tags.slice(0, ctx.maxList).map((t) => boundedString(t, ctx.maxString) as string);
}

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

/**
 * One network flow record → one log record per connection entry of each traffic array. A bad
 * entry costs itself (counted as malformed); a record without valid times or node id costs the
 * record (the caller counts it).
 */
export function mapFlow(rec: Record<string, unknown>, t: FlowTimes, ctx: MapContext): ReadableLogRecord[] | undefined {
  const nodeId = boundedString(rec.nodeId, ctx.maxString);
  if (!nodeId) return undefined;
  const nodes = recordNodes(rec, ctx);
  const out: ReadableLogRecord[] = [];
  const known = (ep: Endpoint): boolean => {
    const k = addressKey(ep.address);
    return inTailnetRanges(ep.address) || (k !== undefined && (nodes.has(k) || ctx.devices.byAddress.has(k)));
  };
  for (const [key, type] of TRAFFIC) {
    const list = rec[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) {
      ctx.drop('malformed');
      continue;
    }
    if (list.length > ctx.maxList) ctx.drop('limit', list.length - ctx.maxList);
    for (const entry of list.slice(0, ctx.maxList)) {
      const r = mapEntry(entry, type, nodeId, t, nodes, known, ctx);
      if (r) out.push(r);
      else ctx.drop('malformed');
    }
  }
  return out;
}

function mapEntry(entry: unknown, type: string, nodeId: string, t: FlowTimes, nodes: Map<string, NodeInfo>, known: (ep: Endpoint) => boolean, ctx: MapContext): ReadableLogRecord | undefined {
  if (!isObject(entry)) return undefined;
  const src = entry.src === undefined ? undefined : parseEndpoint(entry.src);
  const dst = entry.dst === undefined ? undefined : parseEndpoint(entry.dst);
  if ((entry.src !== undefined && !src) || (entry.dst !== undefined && !dst)) return undefined;
  const proto = protocolOf(entry.proto);
  const txBytes = countOf(entry.txBytes);
  const txPkts = countOf(entry.txPkts);
  const rxBytes = countOf(entry.rxBytes);
  const rxPkts = countOf(entry.rxPkts);
  if (proto === undefined || txBytes === undefined || txPkts === undefined || rxBytes === undefined || rxPkts === undefined) return undefined;
  const body: AnyValueMap = { ...(entry as AnyValueMap) };
  const a: Attributes = { 'tailscale.flow.traffic_type': type, 'tailscale.flow.protocol': proto };
  if (proto === 'tcp' || proto === 'udp') a['network.transport'] = proto;
  const family = src?.family ?? dst?.family;
  if (family) a['network.type'] = family === 4 ? 'ipv4' : 'ipv6';
  const derp = type === 'physical' && dst?.address === DERP_MAGIC_IP;
  const side = (ep: Endpoint | undefined, name: 'source' | 'destination', field: 'src' | 'dst', isDerp: boolean): void => {
    if (!ep) return;
    let address: string | undefined = ep.address;
    if (!isDerp && !known(ep)) {
      address = ctx.privacy.address(ep.address);
      if (address !== ep.address) {
        if (address === undefined) delete body[field];
        else body[field] = ep.family === 6 ? `[${address}]:${ep.port}` : `${address}:${ep.port}`;
      }
    }
    if (address !== undefined) a[`${name}.address`] = address;
    if (ep.port !== 0 && !isDerp) a[`${name}.port`] = ep.port;
    if (!isDerp) enrich(a, name, lookup(ep, nodes, ctx), ctx);
  };
  side(src, 'source', 'src', false);
  side(dst, 'destination', 'dst', derp);
  if (derp && dst) a['tailscale.flow.derp_region'] = dst.port;
  a['tailscale.flow.tx_bytes'] = txBytes;
  a['tailscale.flow.tx_packets'] = txPkts;
  a['tailscale.flow.rx_bytes'] = rxBytes;
  a['tailscale.flow.rx_packets'] = rxPkts;
  a['tailscale.flow.start'] = t.start.text;
  a['tailscale.flow.end'] = t.end.text;
  a['tailscale.node.id'] = nodeId;
  a['tailscale.flow.logged'] = t.logged.text;
  return logRecord(ctx, t.start.hr, FLOW_EVENT, INFO, body, a);
}

function logRecord(ctx: MapContext, hrTime: HrTime, eventName: string, sev: { severityNumber: SeverityNumber; severityText: string }, body: AnyValue, attributes: Attributes): ReadableLogRecord {
  return { hrTime, hrTimeObserved: ctx.observed, eventName, ...sev, body, resource: ctx.resource, instrumentationScope: ctx.scope, attributes, droppedAttributesCount: 0 };
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
