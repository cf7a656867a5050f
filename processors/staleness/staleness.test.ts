import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Attributes } from '@opentelemetry/api';
import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchBuilder } from '../../src/model/batch.ts';
import { isStale } from '../../src/model/stale.ts';
import { createStalenessProcessor } from './staleness.ts';

// The processor keeps per-series entries stamped with the cycle that saw them; these cases pin
// what a consumer sees from that bookkeeping: which series get an end marker, and when.

const resource = { 'service.name': 'test' };
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

/** Runs one batch through the processor (which works synchronously and always returns one). */
function run(proc: ReturnType<typeof createStalenessProcessor>, rm: ResourceMetrics): ResourceMetrics {
  const out = proc.process(rm, info());
  assert.ok(out && !(out instanceof Promise));
  return out;
}

test('staleness: a series under a new attributes object each cycle (a processor rebuilding them) gets no marker', () => {
  const proc = createStalenessProcessor(config);
  for (let i = 0; i < 4; i++) {
    const out = run(proc, batch([{ series: 'a' }, { series: 'b' }]));
    assert.deepEqual(markers(out), []);
  }
  assert.equal(proc.trackedSeries(), 2);
});

test('staleness: a series that disappears gets exactly one marker, and one that comes back is live', () => {
  const proc = createStalenessProcessor(config);
  const a = { series: 'a' };
  const b = { series: 'b' };
  assert.deepEqual(markers(run(proc, batch([a, b]))), []);
  assert.deepEqual(markers(run(proc, batch([a]))), ['b']);
  assert.deepEqual(markers(run(proc, batch([a]))), []);
  assert.deepEqual(markers(run(proc, batch([a, b]))), []);
  assert.deepEqual(markers(run(proc, batch([b]))), ['a']);
});

test('staleness: one attributes object twice in a cycle does not hide a series that ended', () => {
  // Two points sharing an object count as one series seen: the bookkeeping must not mistake
  // "as many points as entries" for "every entry seen".
  const proc = createStalenessProcessor(config);
  const a = { series: 'a' };
  const b = { series: 'b' };
  run(proc, batch([a, b]));
  assert.deepEqual(markers(run(proc, batch([a, a]))), ['b']);
});

test('staleness: a metric in two scopes is one set of series; a metric missing whole ends every series', () => {
  const proc = createStalenessProcessor(config);
  const a = { series: 'a' };
  const b = { series: 'b' };
  const c = { series: 'c' };
  run(proc, batch([a], [b, c]));
  // b moves to the first scope: still one series; c is gone.
  assert.deepEqual(markers(run(proc, batch([a, b]))), ['c']);
  const empty = new BatchBuilder(resource, { name: 'a' });
  empty.gauge('other', 'help').add({ series: 'x' }, 1, 1000);
  assert.deepEqual(markers(run(proc, empty.build())), ['a', 'b']);
  assert.equal(proc.trackedSeries(), 1);
});

test('staleness: a replaced object whose labels changed ends the old series', () => {
  const proc = createStalenessProcessor(config);
  run(proc, batch([{ series: 'a', v: '1' }]));
  const out = run(proc, batch([{ series: 'a', v: '2' }]));
  assert.deepEqual(markers(out), ['a']);
  const marker = out.scopeMetrics.flatMap((sm) => sm.metrics.flatMap((m) => m.dataPoints as DataPoint<unknown>[])).find((p) => isStale(p));
  assert.equal(marker?.attributes.v, '1');
});

test('staleness: an object seen twice in a cycle keeps an ended look-alike (equal labels) from being marked', () => {
  const proc = createStalenessProcessor(config);
  const x = { series: 'a' };
  const lookalike = { series: 'a' };
  run(proc, batch([x, lookalike]));
  assert.deepEqual(markers(run(proc, batch([x, x]))), []);
});
