import { isIP } from 'node:net';
import { ApiCallError } from '../client.ts';
import { b01, boundedCalls, devicesByNodeId, listOf, parseJson, records, str, strings, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const SERVICE_METRICS = {
  count: ['tailscale_services', 'Number of Tailscale Services.', 'length of vipServices[]'],
  info: ['tailscale_service_info', 'A Tailscale Service and its addresses (value is always 1).', 'name, addrs[0] (IPv4), addrs[1] (IPv6)'],
  port: ['tailscale_service_port', 'A port a Service offers, as protocol:port (value is always 1).', 'ports[]'],
  tag: ['tailscale_service_tag', 'A tag of a Service (value is always 1).', 'tags[]'],
} as const satisfies Record<string, MetricDef>;

export const SERVICE_HOST_METRICS = {
  host: ['tailscale_service_host', 'A device hosting a Service, with its approval level (value is always 1); device_id/device_name come from the inventory.', 'hosts[].stableNodeID (or nodeId), approvalLevel, configured'],
  approved: ['tailscale_service_host_approved', 'Whether a host is approved to serve the Service (1) or not (0).', 'hosts[].approvalLevel starts with approved'],
  hosts: ['tailscale_service_hosts', 'Devices hosting the Service.', 'length of hosts[]'],
  approvedHosts: ['tailscale_service_approved_hosts', 'Approved devices hosting the Service.', 'hosts[] approved'],
} as const satisfies Record<string, MetricDef>;

interface Service {
  name: string;
  ipv4: string;
  ipv6: string;
  ports: string[];
  tags: string[];
}

function decodeService(ctx: CollectorContext, r: Record<string, unknown>): Service | undefined {
  const name = str(r.name);
  if (!name) return undefined;
  const addrs = strings(ctx, r.addrs, 'Service addresses') ?? [];
  return {
    name,
    // The API sends [IPv4, IPv6]; take each by family so a reordered list still lands right.
    ipv4: addrs.find((a) => isIP(a) === 4) ?? '',
    ipv6: addrs.find((a) => isIP(a) === 6) ?? '',
    ports: strings(ctx, r.ports, 'Service ports') ?? [],
    tags: strings(ctx, r.tags, 'Service tags') ?? [],
  };
}

async function listServices(ctx: CollectorContext): Promise<Service[]> {
  const { text } = await ctx.get(`${ctx.client.tailnetPath}/services`);
  return records(ctx, listOf(parseJson(text, 'Service list'), 'vipServices', 'Service list', ctx.limits.maxItems), 'Services', (r) => decodeService(ctx, r), (s) => s.name);
}

/** `services`: one `GET …/services` (the list key is `vipServices`). */
export function servicesCollector(): Collector {
  return {
    async collect(ctx: CollectorContext) {
      const services = await listServices(ctx);
      const o = ctx.out;
      o.gauge(SERVICE_METRICS.count, {}, services.length);
      for (const s of services) {
        const id = { service: s.name };
        o.gauge(SERVICE_METRICS.info, { ...id, ipv4: s.ipv4, ipv6: s.ipv6 }, 1);
        for (const port of s.ports) o.gauge(SERVICE_METRICS.port, { ...id, port }, 1);
        for (const tag of s.tags) o.gauge(SERVICE_METRICS.tag, { ...id, tag }, 1);
      }
    },
  };
}

interface Host {
  nodeId: string;
  approvalLevel: string;
  configured: string;
}

function decodeHost(r: Record<string, unknown>): Host | undefined {
  // The spec names the key stableNodeID; the official Go client says the API sends nodeId.
  const nodeId = str(r.stableNodeID) ?? str(r.nodeId);
  if (!nodeId) return undefined;
  return { nodeId, approvalLevel: str(r.approvalLevel) ?? '', configured: str(r.configured) ?? '' };
}

/**
 * `service_hosts`: the Services list, then `GET …/services/{svc}/devices` per Service — the one
 * per-entity call, so at most `max_calls` per cycle (in name order), `max_concurrent` at a time.
 * Hosts are joined with the device inventory by nodeId, never with per-device calls. Listing
 * hosts needs the `services` and `devices:core` scopes (write scopes, even to read), which is why
 * it is its own collector: without them, `services` keeps working.
 */
export function serviceHostsCollector(): Collector {
  return {
    async collect(ctx: CollectorContext) {
      const services = (await listServices(ctx)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const { results, skipped } = await boundedCalls(services, ctx.settings.max_calls, ctx.settings.max_concurrent, async (s) => {
        const { text } = await ctx.get(`${ctx.client.tailnetPath}/services/${encodeURIComponent(s.name)}/devices`);
        return records(ctx, listOf(parseJson(text, 'Service host list'), 'hosts', 'Service host list', ctx.limits.maxItems), 'Service hosts', decodeHost, (h) => h.nodeId);
      });
      if (skipped) ctx.drop('limit', 'Services whose hosts were not listed this cycle (collectors.service_hosts.max_calls)', skipped);
      // A missing scope fails every call alike: report the collector down rather than a partial.
      const denied = results.find((r) => r.error instanceof ApiCallError && (r.error.status === 403 || r.error.status === 404));
      if (denied) throw denied.error;
      const failed = results.filter((r) => r.error !== undefined);
      if (failed.length && failed.length === results.length) throw failed[0]?.error;
      if (failed.length) ctx.drop('decode', 'Services whose host list could not be read this cycle', failed.length);
      const byNode = devicesByNodeId(ctx.devices());
      const o = ctx.out;
      for (const r of results) {
        if (!r.value) continue;
        const service = r.item.name;
        let approved = 0;
        for (const h of r.value) {
          const d = byNode.get(h.nodeId);
          // A host missing from the inventory keeps its node_id and goes without the device labels.
          const id = { service, node_id: h.nodeId, ...(d ? { device_id: d.id, device_name: d.name } : {}) };
          const ok = h.approvalLevel.startsWith('approved');
          if (ok) approved++;
          o.gauge(SERVICE_HOST_METRICS.host, { ...id, approval_level: h.approvalLevel, configured: h.configured }, 1);
          o.gauge(SERVICE_HOST_METRICS.approved, id, b01(ok));
        }
        o.gauge(SERVICE_HOST_METRICS.hosts, { service }, r.value.length);
        o.gauge(SERVICE_HOST_METRICS.approvedHosts, { service }, approved);
      }
    },
  };
}
