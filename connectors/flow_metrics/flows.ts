import type { Attributes, Counter } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { BatchInfo, Connector, ConnectorOutputs, Settings } from '../../src/component/types.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { BatchBuilder } from '../../src/model/batch.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { VERSION } from '../../src/version.ts';
import { labelValue } from '../common/labels.ts';
import type { FlowMetricsConfig } from './config.ts';

/** The log record this connector counts (what `tailscale_logs` emits per connection). */
export const FLOW_EVENT = 'tailscale.network.flow';

export const FLOW_METRICS = {
  bytes: ['tailscale_network_flow_bytes', 'Bytes of network flows seen in Tailscale network flow logs, by direction as the reporting device saw it (tx sent, rx received).'],
  packets: ['tailscale_network_flow_packets', 'Packets of network flows seen in Tailscale network flow logs, by direction as the reporting device saw it (tx sent, rx received).'],
} as const;

/**
 * The largest count one record may carry. A node flushes its counters every few seconds (at most
 * some minutes when it was asleep), so 2^48 bytes (about 281 TB) in one record is far beyond any
 * link; above it the record is corrupt or hostile, and summing it would spoil the counter for good.
 */
export const MAX_RECORD_COUNT = 2 ** 48;

const TRAFFIC_TYPES = new Set(['virtual', 'subnet', 'exit', 'physical']);
const PROTOCOL_NAMES = new Set(['tcp', 'udp', 'icmp', 'ipv6-icmp', 'tsmp', 'unknown']);
const PROTOCOL_NUMBERS: Record<number, string> = { 0: 'unknown', 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp', 99: 'tsmp' };
const COUNT_KEYS = ['tx_bytes', 'rx_bytes', 'tx_packets', 'rx_packets'] as const;
type Counts = Record<(typeof COUNT_KEYS)[number], number>;

/** `traffic_type`: one of the four kinds, `unknown` when absent, `other` for anything else. */
function trafficType(v: unknown): string {
  if (v === undefined) return 'unknown';
  return typeof v === 'string' && TRAFFIC_TYPES.has(v) ? v : 'other';
}

/** `protocol`: a known name or an IP protocol number 0–255; anything else is `other`. */
function protocol(v: unknown): string {
  if (v === undefined) return 'unknown';
  if (typeof v === 'string') {
    if (PROTOCOL_NAMES.has(v)) return v;
    if (/^\d{1,3}$/.test(v) && Number(v) <= 255) return PROTOCOL_NUMBERS[Number(v)] ?? String(Number(v));
    return 'other';
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255) return PROTOCOL_NUMBERS[v] ?? String(v);
  return 'other';
}

/** The four counts, a missing one as 0; undefined when any is not a whole number in [0, MAX_RECORD_COUNT]. */
function counts(attrs: Attributes): Counts | undefined {
  const out = { tx_bytes: 0, rx_bytes: 0, tx_packets: 0, rx_packets: 0 };
  for (const k of COUNT_KEYS) {
    const v = attrs[`tailscale.flow.${k}`];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_RECORD_COUNT) return undefined;
    out[k] = v;
  }
  return out;
}

interface Series {
  readonly attributes: Attributes;
  readonly startMs: number;
  lastMs: number;
  tx_bytes: number;
  rx_bytes: number;
  tx_packets: number;
  rx_packets: number;
}

/**
 * `flow_metrics`: sums flow log records into cumulative counters and, after every logs batch,
 * emits the whole snapshot of every live series (the Prometheus exporter replaces a source's
 * snapshot each time, so a partial batch would hide series).
 */
export class FlowMetricsConnector implements Connector {
  private readonly _settings: Settings;
  private readonly _config: FlowMetricsConfig;
  private readonly _next: ConnectorOutputs;
  private readonly _series = new Map<string, Series>();
  /** How many of `_series` are `other` ones; they do not count against max_series. */
  private _overflowSeries = 0;
  private readonly _overflow: Counter;
  private readonly _rejected: Counter;
  private readonly _once: OnceLogger;
  private readonly _resource: Attributes = { 'service.name': 'tsmetrics', 'service.version': VERSION };
  private _stopped = false;

  constructor(settings: Settings, config: FlowMetricsConfig, next: ConnectorOutputs) {
    this._settings = settings;
    this._config = config;
    this._next = next;
    this._once = new OnceLogger(settings.logger);
    this._overflow = settings.meter.createCounter('tsmetrics_flow_metrics_overflow_records', {
      description: 'Flow log records summed into the src_device="other" / dst_device="other" series because max_series was reached.',
    });
    this._rejected = settings.meter.createCounter('tsmetrics_flow_metrics_rejected_records', {
      description: 'Flow log records not counted because a byte or packet count was not a whole number between 0 and 2^48.',
    });
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {
    this._stopped = true;
  }

  /** Live series (memory bound: at most max_series plus the `other` ones). */
  get seriesCount(): number {
    return this._series.size;
  }

  async consumeLogs(batch: LogsBatch, info: BatchInfo): Promise<void> {
    if (this._stopped) return;
    const now = this._settings.clock.now();
    this._evict(now);
    let overflowed = 0;
    let rejected = 0;
    for (const rec of batch) {
      if (rec.eventName !== FLOW_EVENT) continue;
      const r = this._add(rec, now);
      if (r === 'overflow') overflowed++;
      else if (r === 'rejected') rejected++;
    }
    const component_id = this._settings.id.key;
    if (overflowed) {
      this._overflow.add(overflowed, { component_id });
      this._once.fail('overflow', 'limit', 'flow_metrics reached max_series; new source/destination pairs are counted as "other"', { max_series: this._config.max_series });
    }
    if (rejected) {
      this._rejected.add(rejected, { component_id });
      this._settings.telemetry.dropped(component_id, rejected, 'logs');
      this._settings.telemetry.error(component_id, 'decode', rejected);
      this._once.fail('rejected', 'decode', 'flow log records with a negative, fractional, non-numeric or implausibly large count were not counted', { records: rejected });
    } else this._once.ok('rejected');
    // One snapshot per collection: its parts are counted as they come, the last one sends it.
    if (info.more) return;
    const out = this._next.metrics;
    if (out) await out.consume(this._snapshot(now), { source: component_id, time: now, interval: info.interval });
  }

  private _add(rec: ReadableLogRecord, now: number): 'ok' | 'overflow' | 'rejected' {
    const a = rec.attributes;
    const c = counts(a);
    if (!c) return 'rejected';
    const max = this._config.max_label_length;
    const src = labelValue(a['tailscale.source.device.name'], max) ?? labelValue(a['source.address'], max) ?? 'unknown';
    const dstName = labelValue(a['tailscale.destination.device.name'], max);
    const isDevice = dstName !== undefined || labelValue(a['tailscale.destination.device.id']) !== undefined;
    const dstAddress = labelValue(a['destination.address'], max);
    const dst = dstName ?? (dstAddress === undefined ? 'unknown' : !isDevice && this._config.destination_addresses === 'drop' ? 'external' : dstAddress);
    const tailnet = labelValue(rec.resource.attributes['tailscale.tailnet'], max) ?? '';
    const type = trafficType(a['tailscale.flow.traffic_type']);
    const proto = protocol(a['tailscale.flow.protocol']);
    let overflow = false;
    let key = seriesKey(tailnet, type, proto, src, dst);
    let s = this._series.get(key);
    if (!s && this._series.size - this._overflowSeries >= this._config.max_series) {
      overflow = true;
      key = seriesKey(tailnet, type, proto, 'other', 'other', true);
      s = this._series.get(key);
    }
    if (!s) {
      const labels = overflow ? { src: 'other', dst: 'other' } : { src, dst };
      s = { attributes: { src_device: labels.src, dst_device: labels.dst, traffic_type: type, protocol: proto, tailnet }, startMs: now, lastMs: now, tx_bytes: 0, rx_bytes: 0, tx_packets: 0, rx_packets: 0 };
      this._series.set(key, s);
      if (overflow) this._overflowSeries++;
    }
    s.lastMs = now;
    for (const k of COUNT_KEYS) s[k] += c[k];
    return overflow ? 'overflow' : 'ok';
  }

  private _evict(now: number): void {
    const before = now - this._config.series_ttl;
    for (const [key, s] of this._series) {
      if (s.lastMs >= before) continue;
      this._series.delete(key);
      if (key.startsWith('\u0001')) this._overflowSeries--;
    }
  }

  private _snapshot(now: number): ReturnType<BatchBuilder['build']> {
    const bb = new BatchBuilder(this._resource, { name: 'tsmetrics/flow_metrics', version: VERSION });
    const bytes = bb.counter(...FLOW_METRICS.bytes);
    const packets = bb.counter(...FLOW_METRICS.packets);
    for (const s of this._series.values()) {
      bytes.add({ ...s.attributes, direction: 'tx' }, s.tx_bytes, now, s.startMs);
      bytes.add({ ...s.attributes, direction: 'rx' }, s.rx_bytes, now, s.startMs);
      packets.add({ ...s.attributes, direction: 'tx' }, s.tx_packets, now, s.startMs);
      packets.add({ ...s.attributes, direction: 'rx' }, s.rx_packets, now, s.startMs);
    }
    return bb.build();
  }
}

/** Unambiguous map key; `other` series start with \u0001 so a device named "other" never merges with them. */
function seriesKey(tailnet: string, type: string, proto: string, src: string, dst: string, other = false): string {
  return `${other ? '\u0001' : ''}${JSON.stringify([tailnet, type, proto, src, dst])}`;
}
