/**
 * The simulated tailnet: devices shaped like the Tailscale API's device objects, and the client
 * metrics each device's tailscaled would serve. Deterministic for a given seed and time, so tests
 * can compute what they expect.
 */

/** A device object exactly as the API returns it with `fields=all` (every field optional). */
export type ApiDevice = Record<string, unknown> & { id: string; name: string };

interface Template {
  hostname: string;
  os: string;
  version: string;
  user: string;
  tags?: string[];
  online: boolean;
  keyExpiryDisabled: boolean;
  expiresInDays: number | null; // null = zero time
  advertised: string[];
  enabled: string[];
  external?: boolean;
  ephemeral?: boolean;
  updateAvailable?: boolean;
  shieldsUp?: boolean;
  multipleConnections?: boolean;
  authorized?: boolean;
  ssh?: boolean;
  serials?: string[];
  relayServer?: boolean;
  services?: string[];
  hardNat?: boolean;
  homeRegion: string;
  distro?: { name: string; version: string; codeName: string };
}

/** Device archetypes of a typical tailnet: routers, laptops, phones, CI, shared-in, servers. */
const TEMPLATES: Template[] = [
  { hostname: 'gw', os: 'linux', version: '1.102.3-t4f1c2a9e0-g7d2b19c8a', user: 'alice@example.com', tags: ['tag:exporter', 'tag:router'], online: true, keyExpiryDisabled: true, expiresInDays: -120, advertised: ['0.0.0.0/0', '10.20.0.0/16', '192.168.50.0/24', '::/0'], enabled: ['0.0.0.0/0', '10.20.0.0/16', '::/0'], ssh: true, relayServer: true, services: ['svc:grafana', 'svc:prometheus'], homeRegion: 'Frankfurt', distro: { name: 'ubuntu', version: '24.04', codeName: 'noble' } },
  { hostname: 'laptop', os: 'macOS', version: '1.102.2-t0c8e1b5a7-g3a9f2d6e41', user: 'alice@example.com', online: true, keyExpiryDisabled: false, expiresInDays: 10, advertised: [], enabled: [], serials: ['C02FK3Q1MD6T'], homeRegion: 'Frankfurt' },
  { hostname: 'phone', os: 'iOS', version: '1.100.1-t9a3e5c7b1-g4c6d8e0f2', user: 'bob@example.com', online: false, keyExpiryDisabled: false, expiresInDays: 125, advertised: [], enabled: [], updateAvailable: true, hardNat: true, homeRegion: 'Frankfurt' },
  { hostname: 'metrics', os: 'linux', version: '1.102.3-t4f1c2a9e0-g7d2b19c8a', user: 'alice@example.com', tags: ['tag:exporter', 'tag:monitoring'], online: true, keyExpiryDisabled: true, expiresInDays: null, advertised: [], enabled: [], ssh: true, homeRegion: 'Frankfurt', distro: { name: 'debian', version: '12', codeName: 'bookworm' } },
  { hostname: 'ci-runner', os: 'linux', version: '1.102.3-t4f1c2a9e0-g7d2b19c8a', user: 'ops@example.com', tags: ['tag:ci', 'tag:exporter'], online: true, keyExpiryDisabled: true, expiresInDays: null, advertised: [], enabled: [], ephemeral: true, hardNat: true, homeRegion: 'Amsterdam', distro: { name: 'alpine', version: '3.22.1', codeName: '' } },
  { hostname: 'nas', os: 'linux', version: '', user: 'dave@partner.example', online: true, keyExpiryDisabled: true, expiresInDays: 40, advertised: [], enabled: [], external: true, homeRegion: '' },
  { hostname: 'desktop', os: 'windows', version: '1.84.3-t2b5d7f9a1-g8e0c2a4b6', user: 'carol@example.com', tags: ['tag:exporter'], online: true, keyExpiryDisabled: true, expiresInDays: -600, advertised: [], enabled: [], updateAvailable: true, shieldsUp: true, multipleConnections: true, serials: ['5CG2041XQZ'], homeRegion: 'London' },
  { hostname: 'rpi', os: 'linux', version: '1.102.3-t4f1c2a9e0-g7d2b19c8a', user: 'bob@example.com', tags: ['tag:exporter', 'tag:lab'], online: true, keyExpiryDisabled: false, expiresInDays: 180, advertised: ['192.168.77.0/24'], enabled: [], authorized: false, homeRegion: 'Frankfurt', distro: { name: 'debian', version: '12', codeName: 'bookworm' } },
];

const REGIONS = ['Amsterdam', 'Frankfurt', 'London', 'New York City', 'Paris', 'Warsaw'];
const REGION_IDS: Record<string, number> = { 'New York City': 1, 'San Francisco': 2, Singapore: 3, Frankfurt: 4, London: 6, Amsterdam: 11, Paris: 18, Warsaw: 20 };

/** Small deterministic PRNG (mulberry32) so a seed always yields the same tailnet. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Loopback address of simulated device `index` (127.0.0.2 upward; 127.0.0.1 stays free). */
export function loopbackAddress(index: number): string {
  const n = index + 2;
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function keyHex(rand: () => number): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += hex(Math.floor(rand() * 0xffffffff), 8);
  return s;
}

/** Per-device state behind its client metrics. */
export interface DeviceMetricsState {
  readonly version: string;
  readonly relayServer: boolean;
  readonly services: readonly string[];
  readonly advertisedRoutes: number;
  readonly approvedRoutes: number;
  readonly homeRegionId: number;
  /** Byte/packet rates per second by path, used to grow counters. */
  readonly rates: Readonly<Record<string, number>>;
  readonly base: number;
}

export interface SimDevice {
  /** Index in the simulator (stable across churn for non-ephemeral devices). */
  readonly index: number;
  readonly api: ApiDevice;
  readonly metrics: DeviceMetricsState;
  /** The device runs tailscaled with the web client (serves :5252/metrics). */
  readonly servesMetrics: boolean;
  /** Built from the uniform (benchmark) archetype. */
  readonly uniform?: boolean;
}

export interface TailnetOptions {
  /** Number of devices (default 12); the first eight are one of each archetype. */
  devices?: number;
  /** Explicit device names (TEST_DEVICES); their count wins over `devices`. */
  names?: readonly string[];
  seed?: number;
  /** MagicDNS suffix. */
  suffix?: string;
  /** Share of generated devices (beyond the first eight) tagged `tag:exporter`. */
  exporterShare?: number;
  /** Every device is the subnet-router archetype (online, tagged, all 15 families): benchmarks. */
  uniform?: boolean;
}

function versionTuple(v: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Builds device `index` from its archetype; time-dependent fields are filled in by `deviceAt`. */
export function makeDevice(index: number, opts: { seed: number; suffix: string; name?: string; exporterShare: number; generation?: number; uniform?: boolean }): SimDevice {
  const t = TEMPLATES[opts.uniform ? 0 : index % TEMPLATES.length] as Template;
  const rand = prng(opts.seed * 7919 + index * 104729 + (opts.generation ?? 0) * 31);
  const baseName = opts.name ?? (index < TEMPLATES.length ? `${t.hostname}-${String(index + 1).padStart(2, '0')}` : `${t.hostname}-${hex(index, 4)}`);
  const hostname = opts.generation ? `${baseName}-${hex(opts.generation, 4)}` : baseName;
  const lowered = hostname.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const suffix = t.external ? 'tail9b2d77.ts.net' : opts.suffix;
  const idNum = 1_000_000_000_000_000 + index * 7_919_113 + (opts.generation ?? 0) * 13;
  let tags = t.tags ? [...t.tags] : undefined;
  if (index >= TEMPLATES.length && !t.external && rand() < opts.exporterShare && !tags?.includes('tag:exporter')) tags = [...(tags ?? []), 'tag:exporter'];
  const latency: Record<string, unknown> = {};
  if (!t.external) {
    for (const r of REGIONS) {
      if (r !== t.homeRegion && rand() < 0.5) continue;
      latency[r] = r === t.homeRegion ? { preferred: true, latencyMs: 1 + rand() * 20 } : { latencyMs: 5 + rand() * 90 };
    }
  }
  const api: ApiDevice = {
    // The IPv6 address is from the documentation range (RFC 3849), never a Tailscale one: if
    // someone forgets CLIENT_METRICS_ALLOWED_CIDRS=127.0.0.0/8, the IPv6 fallback of the default
    // ranges must not find a real tailnet address to dial.
    addresses: [loopbackAddress(index), `2001:db8::${hex(index + 2, 4)}`],
    id: String(idNum),
    nodeId: `n${hex(idNum % 0xffffffff, 8)}${index % 10}CNTRL`,
    user: t.user,
    name: `${lowered}.${suffix}`,
    hostname,
    clientVersion: t.version,
    updateAvailable: t.updateAvailable ?? false,
    os: t.os,
    created: t.external ? '' : new Date(Date.UTC(2025, 0, 1) + index * 86_400_000).toISOString().replace('.000', ''),
    connectedToControl: t.online,
    keyExpiryDisabled: t.keyExpiryDisabled,
    expires: '',
    authorized: t.authorized ?? true,
    isExternal: t.external ?? false,
    ...(t.multipleConnections ? { multipleConnections: true } : {}),
    machineKey: t.external ? '' : `mkey:${keyHex(rand)}`,
    nodeKey: `nodekey:${keyHex(rand)}`,
    blocksIncomingConnections: t.shieldsUp ?? false,
    enabledRoutes: [...t.enabled],
    advertisedRoutes: [...t.advertised],
    clientConnectivity: {
      endpoints: [`198.51.100.${index % 250}:41641`, `192.168.1.${index % 250}:41641`],
      mappingVariesByDestIP: t.hardNat ?? false,
      latency,
      clientSupports: { hairPinning: null, ipv6: rand() < 0.5, pcp: false, pmp: rand() < 0.3, udp: true, upnp: rand() < 0.3 },
    },
    ...(tags ? { tags } : {}),
    ...(t.external ? {} : { tailnetLockError: '', tailnetLockKey: `nlpub:${keyHex(rand)}` }),
    sshEnabled: t.ssh ?? false,
    ...(t.serials ? { postureIdentity: { serialNumbers: t.serials } } : t.external ? {} : { postureIdentity: { disabled: true } }),
    isEphemeral: t.ephemeral ?? false,
    ...(t.distro ? { distro: t.distro } : {}),
  };
  const [maj, min] = versionTuple(t.version);
  const exitRoutes = new Set(['0.0.0.0/0', '::/0']);
  const rate = (scale: number): number => Math.round(scale * (0.5 + rand()));
  return {
    index,
    api,
    ...(opts.uniform ? { uniform: true } : {}),
    servesMetrics: !t.external && (maj > 1 || min >= 78),
    metrics: {
      version: t.version,
      relayServer: t.relayServer ?? false,
      services: t.services ?? [],
      advertisedRoutes: t.advertised.filter((r) => !exitRoutes.has(r)).length,
      approvedRoutes: t.enabled.filter((r) => !exitRoutes.has(r)).length,
      homeRegionId: REGION_IDS[t.homeRegion] ?? 0,
      rates: { derp: rate(200), direct_ipv4: rate(50_000), direct_ipv6: rate(5_000), peer_relay_ipv4: 0, peer_relay_ipv6: 0 },
      base: Math.floor(rand() * 1_000_000),
    },
  };
}

/** Sets the time-dependent fields of a device (`expires`, `lastSeen`) relative to `nowMs`. */
export function finishDevice(d: SimDevice, nowMs: number): ApiDevice {
  const t = TEMPLATES[d.uniform ? 0 : d.index % TEMPLATES.length] as Template;
  const day = 86_400_000;
  const api = { ...d.api };
  api.expires = t.expiresInDays === null ? '0001-01-01T00:00:00Z' : new Date(Math.floor(nowMs / day) * day + t.expiresInDays * day).toISOString().replace('.000', '');
  if (!t.online) api.lastSeen = new Date(Math.floor(nowMs / 1000) * 1000 - 3 * 3_600_000).toISOString().replace('.000', '');
  return api;
}

const PATHS = ['derp', 'direct_ipv4', 'direct_ipv6', 'peer_relay_ipv4', 'peer_relay_ipv6'];

/**
 * Renders a device's `/metrics` body the way tailscaled does: text format 0.0.4, families
 * sorted by name, `# TYPE` before `# HELP`, label sets by tailscaled version.
 */
export function renderClientMetrics(d: SimDevice, nowMs: number, startMs: number): string {
  const m = d.metrics;
  const [maj, min] = versionTuple(m.version);
  const atLeast = (mi: number): boolean => maj > 1 || min >= mi;
  const elapsed = Math.max(0, (nowMs - startMs) / 1000);
  const paths = atLeast(86) ? PATHS : PATHS.slice(0, 3);
  const out: string[] = [];
  const fam = (name: string, type: string, help: string, lines: string[]): void => {
    out.push(`# TYPE ${name} ${type}`, `# HELP ${name} ${help}`, ...lines);
  };
  const counter = (rate: number, scale = 1): number => Math.floor(m.base * scale + rate * elapsed * scale);
  // Health warnings come and go: a device has one for a minute out of every five.
  const warnings = Math.floor(nowMs / 60_000 + d.index) % 5 === 0 ? 1 : 0;
  fam('tailscaled_advertised_routes', 'gauge', 'Number of advertised network routes (e.g. by a subnet router)', [`tailscaled_advertised_routes ${m.advertisedRoutes}`]);
  fam('tailscaled_approved_routes', 'gauge', 'Number of approved network routes (e.g. by a subnet router)', [`tailscaled_approved_routes ${m.approvedRoutes}`]);
  fam('tailscaled_health_messages', 'gauge', 'Number of health messages broken down by type.', [`tailscaled_health_messages{type="warning"} ${warnings}`]);
  if (atLeast(94)) fam('tailscaled_home_derp_region_id', 'gauge', "DERP region ID of this node's home relay server", [`tailscaled_home_derp_region_id ${m.homeRegionId}`]);
  fam('tailscaled_inbound_bytes_total', 'counter', 'Counts the number of bytes received from other peers', paths.map((p) => `tailscaled_inbound_bytes_total{path="${p}"} ${counter(m.rates[p] ?? 0, 1000)}`));
  fam('tailscaled_inbound_dropped_packets_total', 'counter', 'Counts the number of dropped packets received by the node from other peers', [
    `tailscaled_inbound_dropped_packets_total{reason="acl"} ${Math.floor(m.base / 50 + elapsed / 10)}`,
    `tailscaled_inbound_dropped_packets_total{reason="error"} ${Math.floor(m.base / 300000)}`,
  ]);
  fam('tailscaled_inbound_packets_total', 'counter', 'Counts the number of packets received from other peers', paths.map((p) => `tailscaled_inbound_packets_total{path="${p}"} ${counter(m.rates[p] ?? 0)}`));
  fam('tailscaled_outbound_bytes_total', 'counter', 'Counts the number of bytes sent to other peers', paths.map((p) => `tailscaled_outbound_bytes_total{path="${p}"} ${counter(m.rates[p] ?? 0, 800)}`));
  fam('tailscaled_outbound_dropped_packets_total', 'counter', 'Counts the number of packets dropped while being sent to other peers', [
    `tailscaled_outbound_dropped_packets_total{reason="error"} ${Math.floor(m.base / 100000)}`,
    `tailscaled_outbound_dropped_packets_total{reason="link_local_unicast"} ${Math.floor(m.base / 20000)}`,
    `tailscaled_outbound_dropped_packets_total{reason="multicast"} ${Math.floor(m.base / 500 + elapsed / 30)}`,
    `tailscaled_outbound_dropped_packets_total{reason="unknown_protocol"} ${Math.floor(m.base / 200000)}`,
  ]);
  fam('tailscaled_outbound_packets_total', 'counter', 'Counts the number of packets sent to other peers', paths.map((p) => `tailscaled_outbound_packets_total{path="${p}"} ${counter(m.rates[p] ?? 0, 0.9)}`));
  if (m.relayServer && atLeast(96)) {
    fam('tailscaled_peer_relay_endpoints', 'gauge', 'Number of allocated Peer Relay endpoints', ['tailscaled_peer_relay_endpoints{state="connecting"} 1', 'tailscaled_peer_relay_endpoints{state="open"} 4']);
  }
  if (m.relayServer && atLeast(94)) {
    const combos = [
      ['udp4', 'udp4'],
      ['udp4', 'udp6'],
      ['udp6', 'udp4'],
      ['udp6', 'udp6'],
    ];
    fam('tailscaled_peer_relay_forwarded_bytes_total', 'counter', 'Number of bytes forwarded via Peer Relay', combos.map(([a, b], i) => `tailscaled_peer_relay_forwarded_bytes_total{transport_in="${a}",transport_out="${b}"} ${i === 0 || i === 3 ? counter(3000, 10) : 0}`));
    fam('tailscaled_peer_relay_forwarded_packets_total', 'counter', 'Number of packets forwarded via Peer Relay', combos.map(([a, b], i) => `tailscaled_peer_relay_forwarded_packets_total{transport_in="${a}",transport_out="${b}"} ${i === 0 || i === 3 ? counter(3000) : 0}`));
  }
  if (atLeast(102)) {
    const svc = [...m.services].sort();
    fam('tailscaled_serve_inbound_bytes_total', 'counter', 'Bytes received from peers on Serve connections for Tailscale Services, labeled by Tailscale Service name.', svc.map((s) => `tailscaled_serve_inbound_bytes_total{service="${s}"} ${counter(100, 3)}`));
    fam('tailscaled_serve_outbound_bytes_total', 'counter', 'Bytes sent to peers on Serve connections for Tailscale Services, labeled by Tailscale Service name.', svc.map((s) => `tailscaled_serve_outbound_bytes_total{service="${s}"} ${counter(100, 90)}`));
  }
  return out.join('\n') + '\n';
}

/** Fields only returned with `?fields=all` (the API's default set omits them). */
export const ALL_ONLY_FIELDS = ['enabledRoutes', 'advertisedRoutes', 'clientConnectivity', 'postureIdentity', 'sshEnabled', 'distro'];

/** The device as the API returns it for `fields=default` (or no `fields`). */
export function defaultFields(d: ApiDevice): ApiDevice {
  const out: ApiDevice = { ...d };
  for (const f of ALL_ONLY_FIELDS) delete out[f];
  return out;
}

export const TEMPLATE_COUNT = TEMPLATES.length;
export function isEphemeralIndex(index: number, uniform = false): boolean {
  if (uniform) return false;
  return (TEMPLATES[index % TEMPLATES.length] as Template).ephemeral === true;
}
