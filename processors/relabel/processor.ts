import type { Attributes } from '@opentelemetry/api';
import type { DataPoint, MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { Processor } from '../../src/component/types.ts';
import type { FlaggedPoint } from '../../src/model/stale.ts';
import { compileRelabelConfigs, relabelCompiled, type CompiledRule } from './engine.ts';
import type { RelabelProcessorConfig } from './config.ts';

function labelsOf(name: string, attrs: Attributes): Record<string, string> {
  const l: Record<string, string> = { __name__: name };
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined && v !== null) l[k] = typeof v === 'string' ? v : String(v);
  }
  return l;
}

/** A series' relabel result under one metric name: its metric name (`''`: dropped) and attributes. */
class Series {
  readonly name: string;
  readonly attributes: Record<string, string>;
  /**
   * The attributes object of the series that came right after this one in its metric last
   * time, and that series' result. Receivers emit a metric's series in much the same order
   * every cycle (a device's series together), so the next result is usually found here with
   * one comparison instead of a hash lookup.
   */
  nextAttrs: object | undefined = undefined;
  next: Series | undefined = undefined;
  constructor(name: string, attributes: Record<string, string>) {
    this.name = name;
    this.attributes = attributes;
  }
}

const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** The result for a series dropped because of its metric's name alone (never cached or chained). */
const DROPPED_BY_NAME = new Series('', NO_LABELS);

/**
 * Whether relabeled `out` has exactly the labels of `attrs`, in the same order (so `attrs`
 * itself can stand for it, and an untouched series is not copied).
 */
function sameLabels(attrs: Attributes, out: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(out);
  let i = 0;
  for (const k in attrs) {
    // Also false for values a rule never sees as they are (null, undefined, numbers).
    if (keys[i] !== k || attrs[k] !== out[k]) return false;
    i++;
  }
  return i === keys.length;
}

/** What is known about one metric name under one rule list. */
interface MetricPlan {
  /** Results by input attributes object. */
  readonly memo: WeakMap<object, Series>;
  /**
   * The rules drop every series of this name whatever its attributes (a leading keep/drop on
   * `__name__` alone), unless an attribute itself is called `__name__`.
   */
  readonly droppedByName: boolean;
}

/**
 * Whether the leading rules that read nothing but `__name__` (keep and drop, which write
 * nothing) already drop `name`; those rules cannot see any other label, so the answer holds
 * for every series of the metric.
 */
function dropsByName(name: string, rules: readonly CompiledRule[]): boolean {
  let n = 0;
  while (n < rules.length) {
    const r = rules[n] as CompiledRule;
    if ((r.action !== 'keep' && r.action !== 'drop') || !r.sourceLabels.every((s) => s === '__name__')) break;
    n++;
  }
  return n > 0 && relabelCompiled({ __name__: name }, rules.slice(0, n)) === null;
}

/** A copy of `p` with other attributes: the point's known fields, and `flags` (stale markers) when it has one. */
function withAttributes(p: DataPoint<unknown>, attributes: Attributes): DataPoint<unknown> {
  const q: DataPoint<unknown> = { attributes, value: p.value, startTime: p.startTime, endTime: p.endTime };
  const flags = (p as FlaggedPoint).flags;
  if (flags !== undefined) (q as FlaggedPoint).flags = flags;
  return q;
}

/** One output metric of a scope; `borrowed` while it is the input metric itself, passed through. */
interface Slot {
  metric: MetricData;
  borrowed: boolean;
}

/** The points that go to a slot (copying a borrowed input metric first, which must not change). */
function pointsOf(slot: Slot): DataPoint<unknown>[] {
  if (slot.borrowed) {
    slot.metric = { ...slot.metric, dataPoints: slot.metric.dataPoints.slice() } as MetricData;
    slot.borrowed = false;
  }
  return slot.metric.dataPoints as DataPoint<unknown>[];
}

/** Gives a slot with no points yet an array for up to `n` (filled by index, then cut to length). */
function sized(slot: Slot, n: number): DataPoint<unknown>[] {
  const points = new Array<DataPoint<unknown>>(n);
  (slot.metric as { dataPoints: DataPoint<unknown>[] }).dataPoints = points;
  return points;
}

/** Appends the first `n` points of `from` (a loop: a spread of a large metric could overflow the stack). */
function pushFirst(to: DataPoint<unknown>[], from: readonly DataPoint<unknown>[], n: number): void {
  for (let i = 0; i < n; i++) to.push(from[i] as DataPoint<unknown>);
}

/**
 * Applies rules to every point of a batch. A point whose `__name__` changes moves to the
 * renamed metric (same type and HELP); points a rule drops are removed; empty metrics vanish.
 * A metric none of whose points changes is passed through as the input object itself.
 */
export function relabelBatch(batch: ResourceMetrics, rules: readonly CompiledRule[], cache?: RelabelCache): ResourceMetrics {
  if (rules.length === 0) return batch;
  const scopeMetrics: ScopeMetrics[] = [];
  for (const sm of batch.scopeMetrics) {
    const slots: Slot[] = [];
    const byName = new Map<string, Slot>();
    // The slot a metric's points with `newName` go to, made on first use (so metrics keep the
    // order in which their first point arrives); `made` says whether this call made it.
    let made = false;
    const slotFor = (m: MetricData, newName: string): Slot => {
      let slot = byName.get(newName);
      made = false;
      if (!slot) {
        slot = { metric: { ...m, descriptor: newName === m.descriptor.name ? m.descriptor : { ...m.descriptor, name: newName }, dataPoints: [] } as MetricData, borrowed: false };
        byName.set(newName, slot);
        slots.push(slot);
        made = true;
      } else if (slot.metric.dataPointType !== m.dataPointType) {
        // A rename onto a metric of another type cannot share a family; keep it apart.
        const key = `${newName}\u0000${m.dataPointType}`;
        let apart = byName.get(key);
        if (!apart) {
          apart = { metric: { ...m, descriptor: { ...m.descriptor, name: newName }, dataPoints: [] } as MetricData, borrowed: false };
          byName.set(key, apart);
          slots.push(apart);
          made = true;
        }
        slot = apart;
      }
      return slot;
    };
    for (const m of sm.metrics) {
      const name = m.descriptor.name;
      const plan = cache ? cache.plan(name, rules) : { memo: undefined, droppedByName: dropsByName(name, rules) };
      const memo = plan.memo;
      const droppedByName = plan.droppedByName;
      const points = m.dataPoints as DataPoint<unknown>[];
      // The slot for points that keep this metric's name, looked up once per metric.
      let own: Slot | undefined;
      let ownFresh = false;
      let renamedTo: string | undefined;
      let renamedSlot: Slot | undefined;
      // While every point so far goes to `own` unchanged, nothing is copied: `kept` counts them,
      // and the metric passes through whole if that holds to the end.
      let unchanged = true;
      let kept = 0;
      // A slot this metric made holds only its points, so its array is sized once (at most
      // every point) and filled by index; `ownN` is how many it holds.
      let ownPoints: DataPoint<unknown>[] | undefined;
      let ownN = 0;
      let prev: Series | undefined;
      for (let i = 0; i < points.length; i++) {
        const p = points[i] as DataPoint<unknown>;
        const attrs = p.attributes;
        let hit: Series;
        if (prev !== undefined && prev.nextAttrs === attrs) hit = prev.next as Series;
        else if (droppedByName && attrs.__name__ == null) hit = DROPPED_BY_NAME;
        else {
          let found = memo?.get(attrs);
          if (found === undefined) {
            const out = relabelCompiled(labelsOf(name, attrs), rules);
            const newName = out?.__name__;
            if (out) delete out.__name__;
            // A series without a name cannot be exported: dropped like a rule drop.
            found = out && newName ? new Series(newName, sameLabels(attrs, out) ? (attrs as Record<string, string>) : out) : new Series('', NO_LABELS);
            memo?.set(attrs, found);
          }
          hit = found;
          if (memo !== undefined) {
            if (prev !== undefined) {
              prev.nextAttrs = attrs;
              prev.next = hit;
            }
          }
        }
        if (memo !== undefined && hit !== DROPPED_BY_NAME) prev = hit;
        let slot: Slot | null = null;
        if (hit.name !== '') {
          if (hit.name === name) {
            if (!own) {
              own = slotFor(m, name);
              ownFresh = made;
            }
            slot = own;
          } else if (hit.name === renamedTo) slot = renamedSlot as Slot;
          else {
            // Renamed series of a metric mostly share their new name: looked up once per run.
            renamedTo = hit.name;
            slot = renamedSlot = slotFor(m, hit.name);
          }
          if (unchanged && slot === own && hit.attributes === attrs) {
            kept++;
            continue;
          }
        }
        if (unchanged) {
          unchanged = false;
          if (kept > 0) {
            if (ownFresh) {
              ownPoints = sized(own as Slot, points.length);
              for (; ownN < kept; ownN++) ownPoints[ownN] = points[ownN] as DataPoint<unknown>;
            } else pushFirst(pointsOf(own as Slot), points, kept);
          }
        }
        if (slot === null) continue;
        const q = hit.attributes === attrs ? p : withAttributes(p, hit.attributes);
        if (slot === own && ownFresh) (ownPoints ??= sized(own, points.length))[ownN++] = q;
        else pointsOf(slot).push(q);
      }
      if (ownPoints !== undefined) ownPoints.length = ownN;
      // The last series has no successor: it must not keep one that went away alive.
      if (prev !== undefined && prev.nextAttrs !== undefined) {
        prev.nextAttrs = undefined;
        prev.next = undefined;
      }
      if (unchanged && kept > 0) {
        const slot = own as Slot;
        // Only this metric's points went there, all as they were: the output is the input.
        if (ownFresh && kept === points.length && slot.metric.dataPoints.length === 0) {
          slot.metric = m;
          slot.borrowed = true;
        } else pushFirst(pointsOf(slot), points, kept);
      }
    }
    const metrics = slots.map((s) => s.metric).filter((m) => m.dataPoints.length > 0);
    if (metrics.length) scopeMetrics.push({ scope: sm.scope, metrics });
  }
  return { resource: batch.resource, scopeMetrics };
}

/**
 * Relabel results per metric name and attributes object. Receivers keep a series' attributes
 * object across cycles while its labels are unchanged, so in steady state a series is relabeled
 * once, not every cycle — and its output object stays the same too, which keeps identity for
 * the processors after this one. Entries go away with their attributes objects (an entry also
 * holds its successor's attributes object, until the next batch shows who follows it now).
 */
export class RelabelCache {
  private readonly _byName = new Map<string, MetricPlan & { readonly rules: readonly CompiledRule[] }>();
  /** What is known about `name` under `rules` (one cache serves one rule list). */
  plan(name: string, rules: readonly CompiledRule[]): MetricPlan {
    let m = this._byName.get(name);
    if (!m || m.rules !== rules) {
      m = { memo: new WeakMap(), droppedByName: dropsByName(name, rules), rules };
      this._byName.set(name, m);
    }
    return m;
  }
}

/** `relabel` processor: Prometheus metric relabeling over OpenTelemetry batches. */
export function createRelabelProcessor(config: RelabelProcessorConfig): Processor {
  const rules = compileRelabelConfigs(config.rules, config.name_validation_scheme);
  const cache = new RelabelCache();
  return {
    async start() {},
    async shutdown() {},
    process: (batch) => relabelBatch(batch, rules, cache),
  };
}
