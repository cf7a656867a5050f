/**
 * The identity resource for log records: what identity.ts does for metrics, for logs batches.
 *
 * A record's resource cannot be changed in place (batches are shared by every pipeline that
 * carries them), so each outgoing record is a small view of the original with the new resource.
 * One new Resource is built per distinct input resource (and tailnet), once per exporter when it
 * keeps a `ResourceCache`, so records that shared a resource still share one — across batches too,
 * which the exporter's queue may join — and the serializer keeps them in one ResourceLogs.
 */
import type { AnyValue, Attributes, HrTime, SeverityNumber, SpanContext } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsBatch } from '../../src/model/logs.ts';
import type { InventoryHub } from '../../src/pipeline/inventory.ts';
import { TAILNET_ATTRIBUTE } from './identity.ts';

/** Record attribute naming a tailnet (as the point attribute `tailnet` does for metrics). */
const TAILNET_LABEL = 'tailnet';

/** A record seen with another resource; every other field is the original's. */
class ResourcedRecord implements ReadableLogRecord {
  readonly resource: Resource;
  readonly #r: ReadableLogRecord;
  constructor(r: ReadableLogRecord, resource: Resource) {
    this.#r = r;
    this.resource = resource;
  }
  get hrTime(): HrTime {
    return this.#r.hrTime;
  }
  get hrTimeObserved(): HrTime {
    return this.#r.hrTimeObserved;
  }
  get spanContext(): SpanContext | undefined {
    return this.#r.spanContext;
  }
  get severityText(): string | undefined {
    return this.#r.severityText;
  }
  get severityNumber(): SeverityNumber | undefined {
    return this.#r.severityNumber;
  }
  get body(): AnyValue | undefined {
    return this.#r.body;
  }
  get eventName(): string | undefined {
    return this.#r.eventName;
  }
  get instrumentationScope(): InstrumentationScope & { attributes?: Attributes; droppedAttributesCount?: number } {
    return this.#r.instrumentationScope;
  }
  get attributes(): Attributes {
    return this.#r.attributes;
  }
  get droppedAttributesCount(): number {
    return this.#r.droppedAttributesCount;
  }
}

/**
 * The batch with every record's resource merged with the identity: the record's resource
 * attributes, then `identity`, then the tailnet, then `extra` (`resource_attributes`), last wins.
 * A resource that names its tailnet keeps it; otherwise a record's `tailnet` attribute decides
 * when the inventory knows that tailnet, else the inventory's only tailnet, else none.
 */
/**
 * The outgoing resources per input resource: one tailnet's, or one per record tailnet. Weakly
 * held, so a receiver's resource that is replaced (its tailnet renamed) is forgotten with it; the
 * record tailnets it maps are those the inventory knows, which are few.
 */
export type ResourceCache = WeakMap<Resource, Resource | Map<string | undefined, Resource>>;

export function logsWithIdentity(batch: LogsBatch, identity: Attributes, extra: Attributes, inventory: InventoryHub | undefined, cache?: ResourceCache): LogsBatch {
  if (batch.length === 0) return batch;
  let known: Set<string> | undefined;
  let fallback: string | undefined;
  const knownTailnets = (): Set<string> => {
    if (!known) {
      known = new Set<string>();
      for (const s of inventory?.all() ?? []) if (s.tailnet) known.add(s.tailnet);
      fallback = known.size === 1 ? ([...known][0] as string) : undefined;
    }
    return known;
  };
  // Per input resource: its own tailnet (a string) or a map from a record's tailnet to the output.
  // Valid across batches of one exporter: `identity` and `extra` are its configuration.
  const out: ResourceCache | Map<Resource, Resource | Map<string | undefined, Resource>> = cache ?? new Map();
  const build = (base: Resource, tailnet: string | undefined): Resource =>
    resourceFromAttributes({ ...base.attributes, ...identity, ...(tailnet !== undefined ? { [TAILNET_ATTRIBUTE]: tailnet } : {}), ...extra }, base.schemaUrl ? { schemaUrl: base.schemaUrl } : undefined);
  let lastIn: Resource | undefined;
  let lastOut: Resource | Map<string | undefined, Resource> | undefined;
  const result = new Array<ReadableLogRecord>(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i] as ReadableLogRecord;
    const base = r.resource;
    let target = base === lastIn ? lastOut : out.get(base);
    if (target === undefined) {
      const own = base.attributes[TAILNET_ATTRIBUTE];
      target = typeof own === 'string' && own !== '' ? build(base, own) : new Map();
      out.set(base, target);
    }
    lastIn = base;
    lastOut = target;
    let resource: Resource;
    if (target instanceof Map) {
      const label = r.attributes[TAILNET_LABEL];
      const set = knownTailnets();
      const tailnet = typeof label === 'string' && set.has(label) ? label : fallback;
      let res = target.get(tailnet);
      if (!res) target.set(tailnet, (res = build(base, tailnet)));
      resource = res;
    } else resource = target;
    result[i] = new ResourcedRecord(r, resource);
  }
  return result;
}
