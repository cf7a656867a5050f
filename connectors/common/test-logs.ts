// Test support (not shipped as a component): log records shaped exactly as the `tailscale_logs`
// receiver emits them, and a tiny logs receiver that delivers fixed batches.
import type { Attributes } from '@opentelemetry/api';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsConsumer, ReceiverFactory } from '../../src/component/types.ts';
import { defineSchema } from '../../src/config/schema.ts';
import { msToHrTime } from '../../src/model/batch.ts';
import type { LogsBatch } from '../../src/model/logs.ts';

const SCOPE = { name: 'tsmetrics/tailscale_logs' };
const resources = new Map<string, Resource>();
function resourceOf(tailnet: string): Resource {
  let r = resources.get(tailnet);
  if (!r) {
    r = resourceFromAttributes({ 'service.name': 'tsmetrics', 'tailscale.tailnet': tailnet });
    resources.set(tailnet, r);
  }
  return r;
}

export function logRecord(eventName: string, attributes: Attributes, tailnet = 'example.com', severityNumber = 9): ReadableLogRecord {
  const t = msToHrTime(Date.now());
  return {
    hrTime: t,
    hrTimeObserved: t,
    severityNumber,
    severityText: severityNumber >= 13 ? 'WARN' : 'INFO',
    eventName,
    resource: resourceOf(tailnet),
    instrumentationScope: SCOPE,
    attributes,
    droppedAttributesCount: 0,
  };
}

export interface FlowEnd {
  address?: string;
  port?: number;
  device?: { id: string; name: string; tags?: string[] };
}

/** A `tailscale.network.flow` record; `counts` keys are tx_bytes, tx_packets, rx_bytes, rx_packets. */
export function flowRecord(o: { type?: string; protocol?: string; reporter?: string; src?: FlowEnd; dst?: FlowEnd; counts?: Record<string, unknown>; tailnet?: string; extra?: Attributes }): ReadableLogRecord {
  const a: Record<string, unknown> = {};
  if (o.type !== undefined) a['tailscale.flow.traffic_type'] = o.type;
  if (o.protocol !== undefined) a['tailscale.flow.protocol'] = o.protocol;
  for (const [side, end] of [['source', o.src], ['destination', o.dst]] as const) {
    if (!end) continue;
    if (end.address !== undefined) a[`${side}.address`] = end.address;
    if (end.port) a[`${side}.port`] = end.port;
    if (end.device) {
      a[`tailscale.${side}.device.id`] = end.device.id;
      a[`tailscale.${side}.device.name`] = end.device.name;
      if (end.device.tags) a[`tailscale.${side}.device.tags`] = end.device.tags;
    }
  }
  for (const [k, v] of Object.entries(o.counts ?? {})) a[`tailscale.flow.${k}`] = v;
  if (o.reporter !== undefined) a['tailscale.node.id'] = o.reporter;
  return logRecord('tailscale.network.flow', { ...(a as Attributes), ...o.extra }, o.tailnet);
}

export function auditRecord(o: { event?: string; action?: unknown; actor?: unknown; target?: unknown; error?: string; origin?: string; tailnet?: string; extra?: Attributes }): ReadableLogRecord {
  const a: Record<string, unknown> = { 'tailscale.audit.origin': o.origin ?? 'ADMIN_CONSOLE' };
  if (o.event !== undefined) a['tailscale.audit.event'] = o.event;
  if (o.action !== undefined) a['tailscale.audit.action'] = o.action;
  if (o.actor !== undefined) a['tailscale.audit.actor.type'] = o.actor;
  if (o.target !== undefined) a['tailscale.audit.target.type'] = o.target;
  if (o.error !== undefined) a['tailscale.audit.error'] = o.error;
  return logRecord('tailscale.configuration.audit', { ...(a as Attributes), ...o.extra }, o.tailnet, o.error ? 13 : 9);
}

/**
 * A logs receiver for tests: each cycle delivers the next batch of `batches` (the last one
 * again once they run out) and reports the cycle as its source.
 */
export function fixedLogsReceiverFactory(batches: () => LogsBatch[]): ReceiverFactory<Record<string, never>> {
  return {
    kind: 'receiver',
    type: 'fixed_logs',
    stability: 'development',
    description: 'Test receiver: delivers fixed log records.',
    signals: ['logs'],
    configSchema: defineSchema<Record<string, never>>({}),
    createReceiver: () => {
      throw new Error('fixed_logs emits logs only');
    },
    createLogsReceiver: (settings, _config, next: LogsConsumer) => {
      let i = 0;
      const source = settings.id.key;
      const cycle = async (): Promise<void> => {
        const all = batches();
        const batch = all[Math.min(i++, all.length - 1)] ?? [];
        const startMs = settings.clock.now();
        settings.telemetry.received(settings.id.key, batch.length, 'logs');
        await next.consumeLogs(batch, { source: settings.id.key, time: startMs, interval: 60_000 });
        settings.telemetry.cycle(source, { ok: true, startMs, endMs: settings.clock.now() });
      };
      return { start: async () => undefined, shutdown: async () => undefined, collectNow: cycle };
    },
  };
}
