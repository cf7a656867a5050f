import type { Attributes } from '@opentelemetry/api';
import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Processor, Settings } from '../../src/component/types.ts';
import { mapMetrics, withPoints } from '../../src/model/batch.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import type { Device, DeviceSelector } from '../../src/pipeline/inventory.ts';
import { globMatcher } from '../../src/util/glob.ts';
import type { DeviceFilterConfig } from './config.ts';

/** Builds the selector a device must pass; receivers use it to decide whom to dial. */
export function deviceSelector(c: DeviceFilterConfig): DeviceSelector {
  const inc = c.include_devices.length ? globMatcher(c.include_devices) : undefined;
  const exc = c.exclude_devices.length ? globMatcher(c.exclude_devices) : undefined;
  const names = (d: Device): string[] => [d.name, d.name.split('.')[0] ?? '', d.hostname, d.id, d.nodeId].filter((x) => x !== '');
  return (d) => {
    const ns = names(d);
    if (inc && !ns.some(inc)) return false;
    if (exc && ns.some(exc)) return false;
    if (c.online_only && !d.online) return false;
    if (c.required_tags.length) {
      const has = (t: string): boolean => d.tags.includes(t);
      if (c.tag_match === 'all' ? !c.required_tags.every(has) : !c.required_tags.some(has)) return false;
    }
    return true;
  };
}

const FLOW_EVENT = 'tailscale.network.flow';
const AUDIT_EVENT = 'tailscale.configuration.audit';

/** A string attribute, or '' for anything else (a hostile record's wrong type identifies nobody). */
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Tags as a list: the receiver writes a string array; a comma-separated string is accepted too. */
function tagsOf(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((t): t is string => typeof t === 'string');
  return typeof v === 'string' && v !== '' ? v.split(',').map((t) => t.trim()) : [];
}

/**
 * The device a log record is about, or undefined when it is about none: a flow's reporting
 * device (`tailscale.node.id`, with the `tailscale.source.device.*` the receiver joined), and the
 * target of an audit event on a NODE (`tailscale.audit.target.id` / `.name`, when present).
 */
function recordDevice(attrs: Attributes, eventName: string | undefined, inventory: (id: string) => Device | undefined): Device | undefined {
  let ids: string[];
  let name: string;
  let tags: string[] = [];
  if (eventName === FLOW_EVENT) {
    ids = [str(attrs['tailscale.node.id']), str(attrs['tailscale.source.device.node_id']), str(attrs['tailscale.source.device.id'])];
    name = str(attrs['tailscale.source.device.name']);
    tags = tagsOf(attrs['tailscale.source.device.tags']);
  } else if (eventName === AUDIT_EVENT && str(attrs['tailscale.audit.target.type']).toUpperCase() === 'NODE') {
    ids = [str(attrs['tailscale.audit.target.id'])];
    name = str(attrs['tailscale.audit.target.name']);
  } else return undefined;
  for (const id of ids) {
    const known = id ? inventory(id) : undefined;
    if (known) return known;
  }
  const [id = '', nodeId = ''] = ids.filter((x) => x !== '');
  if (!id && !name) return undefined;
  // Not (yet) in the inventory: judged by what the record carries, as metric series are.
  return { id, nodeId, name, hostname: '', addresses: [], tags, online: true, os: '', authorized: true, isExternal: false, user: '', tailnet: '' };
}

/**
 * `device_filter`: drops every series of devices the selector rejects (by `device_id`), and
 * recomputes `tailscale_device_count` so it counts what is kept. In logs pipelines it drops the
 * flow records whose reporting device, and the audit records whose target node, it rejects.
 */
export function createDeviceFilter(settings: Settings, c: DeviceFilterConfig): Processor {
  const select = deviceSelector(c);
  const noop = !c.include_devices.length && !c.exclude_devices.length && !c.required_tags.length && !c.online_only;
  return {
    async start() {},
    async shutdown() {},
    processLogs(batch: LogsBatch): LogsBatch {
      if (noop) return batch;
      const byId = new Map<string, Device>();
      for (const d of settings.inventory.devices()) {
        byId.set(d.id, d);
        if (d.nodeId) byId.set(d.nodeId, d);
      }
      const kept = batch.filter((rec) => {
        const d = recordDevice(rec.attributes, rec.eventName, (id) => byId.get(id));
        return d === undefined || select(d);
      });
      return kept.length === batch.length ? batch : kept;
    },
    process(batch: ResourceMetrics): ResourceMetrics {
      if (noop) return batch;
      const byId = new Map<string, Device>();
      for (const d of settings.inventory.devices()) byId.set(d.id, d);
      const verdict = new Map<string, boolean>();
      const keep = (attrs: Record<string, unknown>): boolean => {
        const id = attrs.device_id;
        if (typeof id !== 'string') return true;
        let v = verdict.get(id);
        if (v === undefined) {
          const known = byId.get(id);
          // A device the inventory does not know yet is judged by the labels it carries.
          const d: Device = known ?? { id, nodeId: '', name: String(attrs.device_name ?? ''), hostname: '', addresses: [], tags: [], online: true, os: '', authorized: true, isExternal: false, user: '', tailnet: '' };
          v = select(d);
          verdict.set(id, v);
        }
        return v;
      };
      const kept = mapMetrics(batch, (m) => {
        const pts = (m.dataPoints as DataPoint<unknown>[]).filter((p) => keep(p.attributes));
        return pts.length === m.dataPoints.length ? m : withPoints(m, pts as DataPoint<number>[]);
      });
      // The count follows the filter: per tailnet label, the devices whose info series survived.
      return mapMetrics(kept, (m) => {
        if (m.descriptor.name !== 'tailscale_device_count') return m;
        const info = kept.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === 'tailscale_device_info');
        const pts = (m.dataPoints as DataPoint<number>[]).map((p) => {
          const tn = p.attributes.tailnet;
          const n = info ? info.dataPoints.filter((q) => q.attributes.tailnet === tn).length : 0;
          return { ...p, value: n };
        });
        return withPoints(m, pts);
      });
    },
  };
}
