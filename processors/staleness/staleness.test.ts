import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchBuilder } from '../../src/model/batch.ts';
import { isStale } from '../../src/model/stale.ts';
import { createStalenessProcessor } from './staleness.ts';

// The processor keeps per-series entries stamped with the cycle that saw them; these cases pin
// what a consumer sees from that bookkeeping: which series get an end marker, and when.

const resource = resourceFromAttributes({ 'service.name': 'test' });
const config = { grace_period: 0, grace_intervals: 2, markers: true };

/** A batch with a gauge `g` holding one point per attributes object (objects used as given). */
function batch(series: Attributes[], extraScope?: Attributes[]): ResourceMetrics {
  const bb = new BatchBuilder(resource, { name: 'a' });
  const g = bb.gauge('g', 'help');
  for (const a of series) g.add(a, 1, 1000);
  const rm = bb.build();
  if (extraScope) {
    const b2 = new BatchBuilder(resource, { name: 'b' });
    const g2 = b2.gauge('g', 'help');
    for (const a of extraScope) g2.add(a, 2, 1000);
    rm.scopeMetrics.push(...b2.build().scopeMetrics);
  }
  return rm;
}

/** The `series` label of every end marker in the processed batch, sorted. */
function markers(out: ResourceMetrics): string[] {
  const names: string[] = [];
  for (const sm of out.scopeMetrics) for (const m of sm.metrics) for (const p of m.dataPoints as DataPoint<unknown>[]) if (isStale(p)) names.push(String(p.attributes.series));
  return names.sort();
}

let time = 0;
const info = () => ({ source: 'src', time: (time += 1000), interval: 1000 });

test('staleness: a series under a new attributes object each cycle (a processor rebuilding them) gets no marker', () => {
  const proc = createStalenessProcessor(config);
  for (let i = 0; i < 4; i++) {
    const out = proc.process(batch([{ series: 'a' }, { series: 'b' }]), info());
    assert.deepEqual(markers(out), []);
  }
  assert.equal(proc.trackedSeries(), 2);
});

test('staleness: a series that disappears gets exactly one marker, and one that comes back is live', () => {
  const proc = createStalenessProcessor(config);
  const a = { series: 'a' };
  const b = { series: 'b' };
  assert.deepEqual(markers(proc.process(batch([a, b]), info())), []);
  assert.deepEqual(markers(proc.process(batch([a]), info())), ['b']);
  assert.deepEqual(markers(proc.process(batch([a]), info())), []);
  assert.deepEqual(markers(proc.process(batch([a, b]), info())), []);
  assert.deepEqual(markers(proc.process(batch([b]), info())), ['a']);
});

test('staleness: one attributes object twice in a cycle does not hide a series that ended', () => {
  // Two points sharing an object count as one series seen: the bookkeeping must not mistake
  // "as many points as entries" for "every entry seen".
  const proc = createStalenessProcessor(config);
  const a = { series: 'a' };
  const b = { series: 'b' };
  proc.process(batch([a, b]), info());
  assert.deepEqual(markers(proc.process(batch([a, a]), info())), ['b']);
});

test('staleness: a metric in two scopes is one set of series; a metric missing whole ends every series', () => {
  const proc = createStalenessProcessor(config);
  const a = { series: 'a' };
  const b = { series: 'b' };
  const c = { series: 'c' };
  proc.process(batch([a], [b, c]), info());
  // b moves to the first scope: still one series; c is gone.
  assert.deepEqual(markers(proc.process(batch([a, b]), info())), ['c']);
  const empty = new BatchBuilder(resource, { name: 'a' });
  empty.gauge('other', 'help').add({ series: 'x' }, 1, 1000);
  assert.deepEqual(markers(proc.process(empty.build(), info())), ['a', 'b']);
  assert.equal(proc.trackedSeries(), 1);
});

test('staleness: a replaced object whose labels changed ends the old series', () => {
  const proc = createStalenessProcessor(config);
  proc.process(batch([{ series: 'a', v: '1' }]), info());
  const out = proc.process(batch([{ series: 'a', v: '2' }]), info());
  assert.deepEqual(markers(out), ['a']);
  const marker = out.scopeMetrics.flatMap((sm) => sm.metrics.flatMap((m) => m.dataPoints as DataPoint<unknown>[])).find((p) => isStale(p));
  assert.equal(marker?.attributes.v, '1');
});
