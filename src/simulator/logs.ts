/**
 * The simulated tailnet's logging API: network flow logs and configuration audit logs, derived
 * from the simulated devices and the clock, so the same window always returns the same records
 * (once they are visible). Flow records use the devices' own addresses, node ids and names and
 * cover all four traffic types, IPv4 and IPv6, TCP/UDP/ICMP/TSMP, DERP-relayed and direct
 * paths, and exit traffic anonymised or full depending on the tailnet's exit-flow logging, which
 * the audit log switches on and off. Some records are stamped minutes after their traffic, and
 * some become visible only minutes after their `logged` time, as the real service does.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ApiDevice } from './model.ts';
import { prng } from './model.ts';

const SEC = 1000;
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Every this many ms some devices flush a flow record. */
const SLOT = 20 * SEC;
/** The longest `logged − start` the simulator produces (the measured maximum is about 14 min). */
const MAX_LATE = 14 * MIN;
/** The longest a record stays invisible after its `logged` time. */
const MAX_VISIBILITY = 9 * MIN;

export interface LogsSimContext {
  readonly now: () => number;
  readonly tailnet: string;
  /** The devices present at a time (ephemeral ones churn with time). */
  readonly devicesAt: (t: number) => ApiDevice[];
  /** Ephemeral devices are replaced every this many ms (0: never). */
  readonly ephemeralLifetimeMs: number;
  /** Whether the device list is the simulator's own (churn events only then). */
  readonly generated: boolean;
  /** The policy file text of a version (tailnet-api.ts rotates three every 15 minutes). */
  readonly policyText: (version: number) => string;
  /** The OAuth client that "changes" the policy (gitops). */
  readonly oauthClientId: string;
}

/** RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's RFC3339Nano writes it. */
function isoNano(ms: number, extraNs: number): string {
  const base = new Date(ms).toISOString(); // …ss.mmmZ
  const frac = (base.slice(20, 23) + String(extraNs).padStart(6, '0')).replace(/0+$/, '');
  return `${base.slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}
const hexId = (s: string, n = 32): string => createHash('sha256').update(s).digest('hex').slice(0, n);
const userId = (login: string): string => `u${hexId(login, 10)}CNTRL`;

/** Exit-flow logging is on in the second half of every hour. */
export function exitFlowLoggingOn(t: number): boolean {
  return t % HOUR >= 30 * MIN;
}

interface Node {
  nodeId: string;
  name: string;
  addresses: string[];
  os?: string;
  user?: string;
  tags?: string[];
}

function nodeOf(d: ApiDevice): Node {
  const tags = Array.isArray(d.tags) ? [...(d.tags as string[])].sort() : undefined;
  return {
    nodeId: String(d.nodeId),
    name: d.name,
    addresses: [...((d.addresses as string[] | undefined) ?? [])],
    ...(typeof d.os === 'string' && d.os ? { os: d.os } : {}),
    ...(tags && tags.length ? { tags } : { user: String(d.user ?? '') }),
  };
}

const ep = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);
const has = (d: ApiDevice, route: string): boolean => Array.isArray(d.enabledRoutes) && (d.enabledRoutes as string[]).includes(route);

type Flow = Record<string, unknown>;

/** Generates the logs; pure functions of the clock and the device list. */
export class TailnetLogsSimulator {
  private readonly _c: LogsSimContext;

  constructor(c: LogsSimContext) {
    this._c = c;
  }

  /** The flow records of one slot (every reporter's record), visible or not. */
  slotRecords(k: number): Array<{ rec: Flow; loggedMs: number; visibleMs: number }> {
    const t0 = k * SLOT;
    const rand = prng(k * 2654435761);
    const devices = this._c.devicesAt(t0).filter((d) => d.isExternal !== true && d.connectedToControl !== false && typeof d.nodeId === 'string' && Array.isArray(d.addresses) && (d.addresses as string[]).length > 0);
    if (devices.length < 2) return [];
    const out: Array<{ rec: Flow; loggedMs: number; visibleMs: number }> = [];
    const exitNode = devices.find((d) => has(d, '0.0.0.0/0'));
    const subnetRouter = devices.find((d) => Array.isArray(d.enabledRoutes) && (d.enabledRoutes as string[]).some((r) => r !== '0.0.0.0/0' && r !== '::/0'));
    let n = 0;
    for (const d of devices) {
      if (n >= 4 || rand() > 0.4) continue;
      n++;
      const me = nodeOf(d);
      const peers = devices.filter((p) => p !== d);
      const peer = peers[Math.floor(rand() * peers.length)] as ApiDevice;
      const pn = nodeOf(peer);
      const v4 = me.addresses[0] as string;
      const v6 = me.addresses[1] ?? v4;
      const pv4 = pn.addresses[0] as string;
      const pv6 = pn.addresses[1] ?? pv4;
      const cnt = (scale: number, oneWay = false): Flow => {
        const tx = 1 + Math.floor(rand() * 40 * scale);
        const rx = oneWay ? 0 : 1 + Math.floor(rand() * 40 * scale);
        return { txPkts: tx, txBytes: tx * (60 + Math.floor(rand() * 1200)), ...(rx ? { rxPkts: rx, rxBytes: rx * (60 + Math.floor(rand() * 1200)) } : {}) };
      };
      const eport = 32768 + Math.floor(rand() * 28000);
      const virtual: Flow[] = [{ proto: 6, src: ep(v4, eport), dst: ep(pv4, [5252, 22, 443][Math.floor(rand() * 3)] as number), ...cnt(3) }];
      if (rand() < 0.5) virtual.push({ proto: 17, src: ep(v6, eport + 1), dst: ep(pv6, 53), ...cnt(1) });
      if (rand() < 0.3) virtual.push({ proto: 1, src: ep(v4, 0), dst: ep(pv4, 0), ...cnt(0.1) });
      if (rand() < 0.2) virtual.push({ proto: 58, src: ep(v6, 0), dst: ep(pv6, 0), ...cnt(0.1) });
      if (rand() < 0.15) virtual.push({ proto: 99, src: ep(v4, 0), dst: ep(pv4, 0), ...cnt(0.05, true) });
      const rec: Flow = {};
      const dstNodes = new Map<string, Node>([[pn.nodeId, pn]]);
      const physical: Flow[] = [];
      const path = (p: ApiDevice): void => {
        const region = [4, 6, 11][Math.floor(rand() * 3)] as number;
        const cc = p.clientConnectivity as { endpoints?: string[] } | undefined;
        const direct = cc?.endpoints?.[0];
        physical.push({ src: ep((p.addresses as string[])[0] as string, 0), dst: direct && rand() < 0.6 ? direct : `127.3.3.40:${region}`, ...cnt(4) });
      };
      path(peer);
      const subnet: Flow[] = [];
      if (subnetRouter && subnetRouter !== d && rand() < 0.5) {
        const route = ((subnetRouter.enabledRoutes as string[]).find((r) => r !== '0.0.0.0/0' && r !== '::/0') as string).split('/')[0] as string;
        const host = route.replace(/\.0$/, `.${10 + Math.floor(rand() * 200)}`);
        subnet.push({ proto: 6, src: ep(v4, eport + 2), dst: ep(host, 445), ...cnt(5) });
        dstNodes.set(String(subnetRouter.nodeId), nodeOf(subnetRouter));
        if (subnetRouter !== peer) path(subnetRouter);
      }
      const exit: Flow[] = [];
      const full = exitFlowLoggingOn(t0);
      if (exitNode && exitNode !== d && rand() < 0.5) {
        const internet = `198.51.100.${1 + Math.floor(rand() * 250)}`;
        exit.push(full ? { proto: 6, src: ep(v4, eport + 3), dst: ep(internet, 443), ...cnt(20) } : { src: ep(v4, 0), ...cnt(20) });
        dstNodes.set(String(exitNode.nodeId), nodeOf(exitNode));
        if (exitNode !== peer) path(exitNode);
      } else if (exitNode === d && rand() < 0.7) {
        // The exit node's side: internet on the src, the client on the dst.
        const internet = `203.0.113.${1 + Math.floor(rand() * 250)}`;
        exit.push(full ? { proto: 17, src: ep(internet, 443), dst: ep(pv4, eport + 4), ...cnt(20) } : { dst: ep(pv4, 0), ...cnt(20) });
      }
      const startMs = t0 + Math.floor(rand() * 3000);
      const startNs = Math.floor(rand() * 1e6);
      const endMs = startMs + 5000 + Math.floor(rand() * 10);
      // One record in 23 is stamped minutes after its traffic; one in 11 shows up late.
      const lateBy = k % 23 === n ? 3 * MIN + Math.floor(rand() * (MAX_LATE - 3 * MIN)) : 7000 + Math.floor(rand() * 2000);
      const loggedMs = startMs + lateBy;
      const visibleMs = loggedMs + ((k + n) % 11 === 0 ? 2 * MIN + Math.floor(rand() * (MAX_VISIBILITY - 2 * MIN)) : 0);
      Object.assign(rec, {
        logged: isoNano(loggedMs, Math.floor(rand() * 1000) * 1000),
        nodeId: me.nodeId,
        start: isoNano(startMs, startNs),
        end: isoNano(endMs, Math.floor(rand() * 1e6)),
        srcNode: me,
        dstNodes: [...dstNodes.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)),
        virtualTraffic: virtual.sort(byTuple),
        ...(subnet.length ? { subnetTraffic: subnet } : {}),
        ...(exit.length ? { exitTraffic: exit } : {}),
        physicalTraffic: physical.sort(byTuple),
      });
      out.push({ rec, loggedMs, visibleMs });
    }
    return out;
  }

  /** Flow records whose `logged` lies in [startMs, endMs] and that are visible now, in `logged` order. */
  network(startMs: number, endMs: number): Flow[] {
    const now = this._c.now();
    const s = Math.max(startMs, now - 30 * DAY);
    const e = Math.min(endMs, now);
    const out: Array<{ rec: Flow; loggedMs: number }> = [];
    for (let k = Math.floor((s - MAX_LATE - SLOT) / SLOT); k * SLOT <= e; k++) {
      for (const r of this.slotRecords(k)) if (r.loggedMs >= s && r.loggedMs <= e && r.visibleMs <= now) out.push(r);
    }
    return out.sort((a, b) => a.loggedMs - b.loggedMs).map((r) => r.rec);
  }

  /** Audit events with eventTime in [startMs, endMs] that are visible now, chronological. */
  configuration(startMs: number, endMs: number): Flow[] {
    const now = this._c.now();
    const s = Math.max(startMs, now - 90 * DAY);
    const e = Math.min(endMs, now);
    const evs: Array<{ ev: Flow; t: number; visibleMs: number }> = [];
    const tailnetTarget = { id: `T${hexId(this._c.tailnet, 10)}CNTRL`, name: this._c.tailnet, type: 'TAILNET' };
    const alice = { id: userId('alice@example.com'), type: 'USER', loginName: 'alice@example.com', displayName: 'Alice' };
    const oauth = { id: this._c.oauthClientId, type: 'OAUTH_CLIENT', loginName: '', displayName: 'OAuth client' };
    const push = (t: number, f: Flow, visibleDelay = 0): void => {
      if (t < s || t > e) return;
      evs.push({ t, visibleMs: t + visibleDelay, ev: { eventTime: isoNano(t, (t % 997) * 1000), type: 'CONFIG', deferredAt: '0001-01-01T00:00:00Z', eventGroupID: hexId(`${t}:${JSON.stringify(f.target)}:${String(f.action)}`), ...f } });
    };
    const each = (period: number, offset: number, fn: (t: number, j: number) => void): void => {
      for (let j = Math.floor((s - offset) / period); j * period + offset <= e; j++) fn(j * period + offset, j);
    };
    // The policy file changes every 15 minutes (gitops through an OAuth client).
    each(15 * MIN, 1234, (t, j) => {
      push(t, { origin: 'CONFIG_API', actor: oauth, target: { ...tailnetTarget, property: 'ACL' }, action: 'UPDATE', old: this._c.policyText((((j - 1) % 3) + 3) % 3), new: this._c.policyText(((j % 3) + 3) % 3), actionDetails: 'gitops: netops/tailnet-policy' });
    });
    // Exit-flow logging: on at :30, off at :00 (the flow logs follow it).
    each(HOUR, 30 * MIN + 40, (t) => push(t, { origin: 'ADMIN_CONSOLE', actor: alice, target: { ...tailnetTarget, property: 'LOG_EXIT_FLOWS' }, action: 'ENABLE', old: false, new: true }));
    each(HOUR, 40, (t) => push(t, { origin: 'ADMIN_CONSOLE', actor: alice, target: { ...tailnetTarget, property: 'LOG_EXIT_FLOWS' }, action: 'DISABLE', old: true, new: false }));
    // tsmetrics' own token, minted hourly.
    each(HOUR, 5 * MIN, (t) => push(t, { origin: 'CONFIG_API', actor: oauth, target: { id: `k${hexId(String(t), 10)}CNTRL`, name: '', type: 'OAUTH_ACCESS_TOKEN' }, action: 'CREATE', actionDetails: 'scopes - all:read' }));
    // A newcomer signs up every half hour and is approved ten minutes later (the approval shows up late).
    each(30 * MIN, 0, (t, j) => {
      const login = `newcomer-${j % 1000}@example.com`;
      const user = { id: userId(login), name: login, type: 'USER' };
      push(t, { origin: 'IDENTITY_PROVIDER', actor: { id: user.id, type: 'USER', loginName: login, displayName: login.split('@')[0] }, target: user, action: 'CREATE' });
      push(t + 10 * MIN, { origin: 'ADMIN_CONSOLE', actor: alice, target: user, action: 'APPROVE' }, 3 * MIN);
    });
    // A failed route change every two hours, and a deferred one every three.
    each(2 * HOUR, 45 * MIN, (t) => push(t, { origin: 'CONFIG_API', actor: oauth, target: { id: 'nSimGw000011CNTRL', name: `gw-01.${this._c.tailnet}`, type: 'NODE', isEphemeral: false, property: 'ALLOWED_IPS' }, action: 'UPDATE', old: ['10.20.0.0/16'], new: ['10.20.0.0/16', '10.300.0.0/16'], error: 'invalid IP prefix "10.300.0.0/16"' }));
    each(3 * HOUR, 50 * MIN, (t) => {
      push(t, { origin: 'ADMIN_CONSOLE', actor: alice, target: { id: 'nSimGw000011CNTRL', name: `gw-01.${this._c.tailnet}`, type: 'NODE', isEphemeral: false, property: 'ALLOWED_IPS' }, action: 'UPDATE', old: ['10.20.0.0/16'], new: ['10.20.0.0/16', '192.168.50.0/24'] });
      const last = evs[evs.length - 1];
      if (last && last.t === t) last.ev.deferredAt = isoNano(t + 2 * SEC, 0);
    });
    // An API key every day at 08:00.
    each(DAY, 8 * HOUR, (t) => push(t, { origin: 'ADMIN_CONSOLE', actor: alice, target: { id: `k${hexId(`api${t}`, 10)}CNTRL`, name: '', type: 'API_KEY' }, action: 'CREATE', actionDetails: 'expires in 90 days' }));
    // Ephemeral devices come and go with their generations.
    const life = this._c.ephemeralLifetimeMs;
    if (this._c.generated && life > 0) {
      each(life, 0, (t) => {
        for (const d of this._c.devicesAt(t + 1)) {
          if (d.isEphemeral !== true) continue;
          const owner = String(d.user ?? '');
          const actor = { id: userId(owner), type: 'USER', loginName: owner, displayName: owner.split('@')[0] };
          const target = { id: String(d.nodeId), name: d.name, type: 'NODE', isEphemeral: true };
          const group = { eventGroupID: hexId(`create:${String(d.nodeId)}`) };
          push(t + 1, { origin: 'NODE', actor, target, action: 'CREATE', ...group });
          push(t + 1, { origin: 'NODE', actor, target: { ...target, property: 'ACL_TAGS' }, action: 'UPDATE', old: [], new: [...((d.tags as string[] | undefined) ?? [])], ...group });
          push(t + life - SEC, { origin: 'CONTROL', actor: { id: '', type: 'AUTOMATED_WORKER', loginName: '', displayName: 'ephemeral node cleanup' }, target, action: 'DELETE' });
        }
      });
    }
    return evs
      .filter((x) => x.visibleMs <= now)
      .sort((a, b) => a.t - b.t)
      .map((x) => x.ev);
  }

  /** Serves `GET …/logging/{network,configuration}?start=&end=` (after auth and scope checks). */
  serve(type: 'network' | 'configuration', url: URL, res: ServerResponse): true {
    const start = Date.parse(url.searchParams.get('start') ?? '');
    const end = Date.parse(url.searchParams.get('end') ?? '');
    if (!url.searchParams.get('start') || !url.searchParams.get('end')) return json(res, 400, { message: 'start and end are required' });
    if (!Number.isFinite(start) || !Number.isFinite(end)) return json(res, 400, { message: 'invalid start or end: must be RFC 3339' });
    if (type === 'network') return json(res, 200, { logs: end < start ? [] : this.network(start, end) });
    return json(res, 200, { version: '1.1', tailnet: this._c.tailnet, logs: end < start ? [] : this.configuration(start, end) });
  }
}

function byTuple(a: Flow, b: Flow): number {
  const k = (f: Flow): string => `${String(f.src ?? '')} ${String(f.dst ?? '')} ${String(f.proto ?? 0).padStart(3, '0')}`;
  return k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0;
}

function json(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
  return true;
}

