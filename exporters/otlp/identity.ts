/**
 * Who sent a batch, and for which tailnet: the resource every OTLP batch carries.
 *
 * Behind a Collector, replicas are told apart only by their resource, so each one gets a
 * `service.instance.id` that survives restarts, and sharded ones say which shard they are. The
 * tailnet is a resource attribute on every batch: receivers that read one tailnet set it
 * themselves; device batches, which mix devices of every inventory, are split by tailnet here.
 */
import { hostname } from 'node:os';
import type { Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { InventoryHub } from '../../src/pipeline/inventory.ts';
import { VERSION } from '../../src/version.ts';
import type { OtlpExporterConfig } from './config.ts';

/** Resource attribute naming the tailnet a batch describes. */
export const TAILNET_ATTRIBUTE = 'tailscale.tailnet';
/** Point attribute receivers add when `tailnet_label` is configured (the `/metrics` label). */
const TAILNET_LABEL = 'tailnet';

/**
 * The default `service.instance.id`: the host name (a Kubernetes pod's name, stable for a
 * StatefulSet pod across restarts), and `/shard-<index>` when the scrape is sharded, so two shards
 * on one host are still two instances.
 */
export function defaultInstanceId(c: Pick<OtlpExporterConfig, 'shard_index' | 'shard_count'>, host: string = hostname()): string {
  const h = host || 'localhost';
  return c.shard_count > 1 ? `${h}/shard-${c.shard_index}` : h;
}

/**
 * Resource attributes every batch gets, in order of precedence (last wins): the receiver's
 * own, then tsmetrics' identity (`service.name`, `service.version`, `service.instance.id` —
 * `instance_id` or {@link defaultInstanceId} — and the shard when sharded), then
 * `resource_attributes` (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME).
 */
export function identityAttributes(c: Pick<OtlpExporterConfig, 'instance_id' | 'shard_index' | 'shard_count'>, host?: string): Attributes {
  return {
    'service.name': 'tsmetrics',
    'service.version': VERSION,
    'service.instance.id': c.instance_id || defaultInstanceId(c, host),
    ...(c.shard_count > 1 ? { 'tsmetrics.shard.index': c.shard_index, 'tsmetrics.shard.count': c.shard_count } : {}),
  };
}

/** One outgoing ResourceMetrics with the final resource. */
function withResource(base: Attributes, identity: Attributes, extra: Attributes, tailnet: string | undefined, scopeMetrics: ScopeMetrics[]): ResourceMetrics {
  return { resource: resourceFromAttributes({ ...base, ...identity, ...(tailnet !== undefined ? { [TAILNET_ATTRIBUTE]: tailnet } : {}), ...extra }), scopeMetrics };
}

/**
 * The batch as it goes out: one ResourceMetrics per tailnet, each with the identity resource.
 *
 * A batch whose resource names its tailnet is sent as it is. Otherwise each point belongs to
 * the tailnet its `tailnet` label names, when that is one the inventory knows (a label value
 * nobody configured cannot create a resource); points without one belong to the inventory's
 * only tailnet, or to none when the process watches several. A batch of one tailnet — nearly
 * every batch — is not copied.
 */
export function resourceGroups(batch: ResourceMetrics, identity: Attributes, extra: Attributes, inventory: InventoryHub | undefined): ResourceMetrics[] {
  const base = batch.resource.attributes;
  const own = base[TAILNET_ATTRIBUTE];
  if (typeof own === 'string' && own !== '') return [withResource(base, identity, extra, own, batch.scopeMetrics)];
  const known = new Set<string>();
  for (const s of inventory?.all() ?? []) if (s.tailnet) known.add(s.tailnet);
  const fallback = known.size === 1 ? ([...known][0] as string) : undefined;
  const tailnetOf = (attrs: Attributes): string | undefined => {
    const t = attrs[TAILNET_LABEL];
    return typeof t === 'string' && known.has(t) ? t : fallback;
  };
  // First pass: which tailnets occur. Most batches have one, and need no copy.
  const seen = new Set<string | undefined>();
  scan: for (const sm of batch.scopeMetrics) {
    for (const m of sm.metrics) {
      for (const p of m.dataPoints) {
        seen.add(tailnetOf(p.attributes));
        if (seen.size > 1) break scan;
      }
    }
  }
  if (seen.size <= 1) return [withResource(base, identity, extra, seen.size ? [...seen][0] : fallback, batch.scopeMetrics)];
  const groups = new Map<string | undefined, ScopeMetrics[]>();
  for (const sm of batch.scopeMetrics) {
    const perGroup = new Map<string | undefined, MetricData[]>();
    for (const m of sm.metrics) {
      const split = new Map<string | undefined, unknown[]>();
      for (const p of m.dataPoints) {
        const t = tailnetOf(p.attributes);
        let list = split.get(t);
        if (!list) split.set(t, (list = []));
        list.push(p);
      }
      for (const [t, points] of split) {
        let ms = perGroup.get(t);
        if (!ms) perGroup.set(t, (ms = []));
        ms.push({ ...m, dataPoints: points } as MetricData);
      }
    }
    for (const [t, metrics] of perGroup) {
      let sms = groups.get(t);
      if (!sms) groups.set(t, (sms = []));
      sms.push({ scope: sm.scope, metrics });
    }
  }
  return [...groups].map(([t, sms]) => withResource(base, identity, extra, t, sms));
}
