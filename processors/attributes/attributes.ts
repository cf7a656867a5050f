import { createHmac } from 'node:crypto';
import type { Attributes } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Processor } from '../../src/component/types.ts';
import { mapMetrics, withPoints } from '../../src/model/batch.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { compilePattern, type AttributesConfig } from './config.ts';

/** Verdicts on attribute keys are cached; a stream of distinct hostile keys cannot grow it past this. */
const KEY_CACHE_MAX = 4096;

type KeyTest = (key: string) => boolean;

/** Exact names and case-sensitive `*` globs (attribute names are case-sensitive, unlike device names). */
function globTest(pattern: string): KeyTest {
  if (!pattern.includes('*')) return (k) => k === pattern;
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return (k) => re.test(k);
}

function regexTest(pattern: string): KeyTest {
  const re = compilePattern(pattern);
  return (k) => re.matches(k);
}

/** The text an action or rule sees for a value of any type. */
function text(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v) ?? '';
}

/** What to do with each key, in action order; the last matching action wins. */
type Plan = 'keep' | 'delete' | 'hash';

/**
 * The `attributes` processor: deletes, hashes or keeps only the attributes it is told, and drops
 * whole records or data points whose attribute matches, for logs and metrics alike.
 */
export function createAttributesProcessor(c: AttributesConfig): Processor {
  const actions = c.actions.map((a) => ({ test: a.key !== undefined ? globTest(a.key) : regexTest(a.pattern as string), action: a.action }));
  const keepOnly = c.keep_only.map(globTest);
  const drops = c.drop_when.map((r) => {
    const re = r.pattern !== undefined ? compilePattern(r.pattern) : undefined;
    return { key: r.key, matches: (v: unknown) => (re ? re.matches(text(v)) : r.value !== undefined ? text(v) === r.value : true) };
  });
  const noop = actions.length === 0 && keepOnly.length === 0 && drops.length === 0;
  const plans = new Map<string, Plan>();
  const planOf = (key: string): Plan => {
    let p = plans.get(key);
    if (p !== undefined) return p;
    p = keepOnly.length && !keepOnly.some((t) => t(key)) ? 'delete' : 'keep';
    for (const a of actions) if (a.test(key)) p = a.action;
    if (plans.size >= KEY_CACHE_MAX) plans.clear();
    plans.set(key, p);
    return p;
  };
  const hash = (v: unknown): string => createHmac('sha256', c.hash_key).update(text(v)).digest('hex').slice(0, c.hash_length);
  const dropped = (attrs: Attributes): boolean => drops.some((d) => attrs[d.key] !== undefined && d.matches(attrs[d.key]));
  /** The rewritten attributes, or the same object when nothing changes. */
  const rewrite = (attrs: Attributes): Attributes => {
    let out: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(attrs)) {
      const p = planOf(k);
      if (p === 'keep') continue;
      out ??= { ...attrs };
      if (p === 'delete') delete out[k];
      else out[k] = hash(v);
    }
    return (out ?? attrs) as Attributes;
  };

  return {
    async start() {},
    async shutdown() {},
    process(batch: ResourceMetrics): ResourceMetrics {
      if (noop) return batch;
      return mapMetrics(batch, (m) => {
        let changed = false;
        const pts: DataPoint<unknown>[] = [];
        for (const p of m.dataPoints as DataPoint<unknown>[]) {
          if (dropped(p.attributes)) {
            changed = true;
            continue;
          }
          const attributes = rewrite(p.attributes);
          if (attributes !== p.attributes) changed = true;
          pts.push(attributes === p.attributes ? p : { ...p, attributes });
        }
        return changed ? withPoints(m, pts as DataPoint<number>[]) : m;
      });
    },
    processLogs(batch: LogsBatch): LogsBatch {
      if (noop) return batch;
      const out: ReadableLogRecord[] = [];
      for (const rec of batch) {
        if (dropped(rec.attributes)) continue;
        const attributes = rewrite(rec.attributes);
        out.push(attributes === rec.attributes ? rec : withAttributes(rec, attributes));
      }
      return out;
    },
  };
}

/**
 * A copy of `rec` with other attributes. Fields are copied one by one: a record may be an SDK
 * class whose fields are getters, which an object spread would lose.
 */
function withAttributes(rec: ReadableLogRecord, attributes: Attributes): ReadableLogRecord {
  return {
    hrTime: rec.hrTime,
    hrTimeObserved: rec.hrTimeObserved,
    ...(rec.spanContext ? { spanContext: rec.spanContext } : {}),
    ...(rec.severityText !== undefined ? { severityText: rec.severityText } : {}),
    ...(rec.severityNumber !== undefined ? { severityNumber: rec.severityNumber } : {}),
    ...(rec.body !== undefined ? { body: rec.body } : {}),
    ...(rec.eventName !== undefined ? { eventName: rec.eventName } : {}),
    resource: rec.resource,
    instrumentationScope: rec.instrumentationScope,
    attributes,
    droppedAttributesCount: rec.droppedAttributesCount,
  };
}
