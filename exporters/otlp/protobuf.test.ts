import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { BatchBuilder } from '../../src/model/batch.ts';
import { markStale } from '../../src/model/stale.ts';
import { decodeProtobuf, type WireMetric } from '../../test/helpers/otlp-receiver.ts';
import { encodeMetricsRequest } from './protobuf.ts';

const T = 1_700_000_000_123;
const official = (rm: ResourceMetrics): Buffer => Buffer.from(ProtobufMetricsSerializer.serializeRequest(rm) as Uint8Array);
const ours = (rm: ResourceMetrics): Buffer => Buffer.from(encodeMetricsRequest(rm));

/** Attribute sets a receiver or a user can produce: every value type, UTF-8 beyond ASCII, long text. */
function variedAttributes(i: number): Attributes[] {
  return [
    {},
    { device_id: `n${i}CNTRL`, device_name: `host-${i}.tail4c8e1a.ts.net`, path: 'derp' },
    { name: 'café ünïcödé', emoji: '🦊🚀 ok', cjk: '東京' },
    { long: 'x'.repeat(200), longer: 'é'.repeat(150), [`k${'y'.repeat(130)}`]: 'long key' },
    { int: 42 + i, zero: 0, neg: -7, big: 2 ** 40, float: 1.5, nan: Number.NaN, inf: Number.POSITIVE_INFINITY },
    { yes: true, no: false, empty: '' },
    { list: ['a', 'b'], nums: [1, 2.5], mixed: 'scalar too' },
    { big_set: 'z'.repeat(1500) }, // beyond what the cache keeps
  ];
}

function variedBatch(opts: { stale: boolean; histograms: boolean }): ResourceMetrics {
  const b = new BatchBuilder({ 'service.name': 'tsmetrics', 'host.name': 'hôte' }, { name: 'tsmetrics/test', version: '1.0' });
  const g = b.gauge('test_gauge', 'A gauge.');
  const c = b.counter('test_total', 'A counter.');
  const h = opts.histograms ? b.metric('test_seconds', 'A histogram.', 'histogram') : undefined;
  for (let i = 0; i < 3; i++) {
    for (const [k, attrs] of variedAttributes(i).entries()) {
      g.add(attrs, k === 4 ? Number.NaN : i * 10 + k - 5.25, T + i);
      c.add(attrs, i * 1000 + k, T + i, T - 60_000);
      h?.addHistogram(attrs, { count: i + k, sum: i * 0.5, buckets: { boundaries: [0.1, 1, 10], counts: [i, k, 1, 0] } }, T + i, T - 60_000);
    }
  }
  const rm = b.build();
  if (opts.stale) {
    for (const m of rm.scopeMetrics[0]?.metrics ?? []) m.dataPoints.forEach((p, n) => n % 3 === 1 && markStale(p));
  }
  return rm;
}

/**
 * The official serializer's request, decoded, as ours must decode: it cannot write staleness, so
 * its stale points are given the marker (flags 1, no value; a histogram marker has count 0 and no
 * buckets), and its histogram buckets are taken from the batch (it packs repeated fields, which
 * the test decoder reads as one value).
 */
function expected(rm: ResourceMetrics): ReturnType<typeof decodeProtobuf> {
  const want = decodeProtobuf(official(rm));
  const points = rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.dataPoints));
  want.metrics.forEach((m: WireMetric, i) => {
    m.points.forEach((p, n) => {
      const src = points[i]?.[n] as { flags?: number; value: unknown };
      if (m.kind === 'histogram') {
        const v = src.value as { buckets: { boundaries: number[]; counts: number[] } };
        p.bucketCounts = v.buckets.counts;
        p.explicitBounds = v.buckets.boundaries;
      }
      if (src.flags) {
        p.flags = 1;
        delete p.value;
        if (m.kind === 'histogram') Object.assign(p, { count: 0, bucketCounts: [], explicitBounds: [] });
      }
    });
  });
  return want;
}

test('a varied batch decodes to exactly what the official serializer sends, stale points carrying the flag instead of a value', () => {
  for (const opts of [
    { stale: false, histograms: false },
    { stale: true, histograms: false },
    { stale: false, histograms: true },
    { stale: true, histograms: true },
  ]) {
    const rm = variedBatch(opts);
    const want = expected(rm);
    // Twice: the second encode meets every attributes object already seen.
    assert.deepEqual(decodeProtobuf(ours(rm)), want, JSON.stringify(opts));
    assert.deepEqual(decodeProtobuf(ours(rm)), want, `${JSON.stringify(opts)}, again`);
    const flagged = decodeProtobuf(ours(rm)).metrics.flatMap((m) => m.points.filter((p) => p.flags === 1));
    assert.equal(flagged.length > 0, opts.stale);
  }
});

test('without stale points or histograms our bytes are the official bytes, first encode and every one after', () => {
  const rm = variedBatch({ stale: false, histograms: false });
  const theirs = official(rm);
  assert.ok(ours(rm).equals(theirs), 'first encode');
  assert.ok(ours(rm).equals(theirs), 'second encode');
  // Another batch sharing the same attributes objects, in another order and under other metrics.
  const attrs = rm.scopeMetrics[0]?.metrics[0]?.dataPoints.map((p) => p.attributes) ?? [];
  const b = new BatchBuilder({ 'service.name': 'tsmetrics' }, { name: 'tsmetrics/other' });
  const g = b.gauge('other_gauge', '');
  for (const a of [...attrs].reverse()) g.add(a, 1, T);
  const other = b.build();
  assert.ok(ours(other).equals(official(other)), 'shared objects in another request');
});

test('two attributes objects with equal content encode alike, and each encodes as itself', () => {
  const b = new BatchBuilder({}, { name: 'eq' });
  const g = b.gauge('eq_gauge', '');
  const one = { device_id: 'nA', device_name: 'a' };
  const two = { device_id: 'nA', device_name: 'a' };
  g.add(one, 1, T).add(two, 2, T).add(one, 3, T);
  const rm = b.build();
  for (let round = 0; round < 2; round++) {
    assert.ok(ours(rm).equals(official(rm)));
    assert.deepEqual(
      decodeProtobuf(ours(rm)).metrics[0]?.points.map((p) => [p.attributes, p.value]),
      [
        [one, 1],
        [two, 2],
        [one, 3],
      ],
    );
  }
});

test('a new attributes object made from an encoded one sends its own values, never the bytes of the one it came from', () => {
  const first = { device_id: 'nOLD', device_name: 'old-name', online: true };
  const send = (attrs: Attributes): Record<string, unknown> | undefined => {
    const b = new BatchBuilder({}, { name: 'copy' });
    b.gauge('copy_gauge', '').add(attrs, 1, T);
    const rm = b.build();
    assert.ok(ours(rm).equals(official(rm)));
    return decodeProtobuf(ours(rm)).metrics[0]?.points[0]?.attributes;
  };
  assert.deepEqual(send(first), first);
  // What processors do: a spread copy, changed; a fresh object with other values; a key removed.
  const changed = { ...first, device_name: 'new-name' };
  assert.deepEqual(send(changed), { device_id: 'nOLD', device_name: 'new-name', online: true });
  assert.deepEqual(send({ device_id: 'nNEW', device_name: 'other', online: false }), { device_id: 'nNEW', device_name: 'other', online: false });
  const { online: _, ...fewer } = first;
  assert.deepEqual(send(fewer), { device_id: 'nOLD', device_name: 'old-name' });
  assert.deepEqual(send(first), first);
});

test('encoding leaves attributes objects as they were to every reader: keys, JSON, spreads, clones, equality', () => {
  const attrs = { device_id: 'nX', device_name: 'x', n: 3 };
  const before = { keys: Object.keys(attrs), json: JSON.stringify(attrs), spread: { ...attrs }, clone: structuredClone(attrs) };
  const b = new BatchBuilder({}, { name: 'same' });
  b.gauge('same_gauge', '').add(attrs, 1, T);
  b.metric('same_seconds', '', 'histogram').addHistogram(attrs, { count: 1, sum: 1, buckets: { boundaries: [1], counts: [1, 0] } }, T);
  ours(b.build());
  const forIn: string[] = [];
  for (const k in attrs) forIn.push(k);
  assert.deepEqual(forIn, before.keys);
  assert.deepEqual(Object.keys(attrs), before.keys);
  assert.equal(JSON.stringify(attrs), before.json);
  assert.deepStrictEqual({ ...attrs }, before.spread);
  assert.deepStrictEqual(structuredClone(attrs), before.clone);
  assert.deepStrictEqual(attrs, before.spread);
});

test('frozen attributes objects, and one object on both a gauge and a histogram, encode right every time', () => {
  const frozen = Object.freeze({ device_id: 'nF', device_name: 'frozen' });
  const both = { device_id: 'nB', device_name: 'both' };
  const b = new BatchBuilder({}, { name: 'kinds' });
  b.gauge('kinds_gauge', '').add(frozen, 1, T).add(both, 2, T);
  b.metric('kinds_seconds', '', 'histogram').addHistogram(both, { count: 2, sum: 3, buckets: { boundaries: [1], counts: [1, 1] } }, T).addHistogram(frozen, { count: 0, sum: 0, buckets: { boundaries: [1], counts: [0, 0] } }, T);
  const rm = b.build();
  const want = expected(rm);
  for (let round = 0; round < 3; round++) assert.deepEqual(decodeProtobuf(ours(rm)), want);
});

test('an object whose prototype is an encoded attributes object, and a proxy that refuses new properties, send their own values', () => {
  const send = (attrs: Attributes): Record<string, unknown> | undefined => {
    const b = new BatchBuilder({}, { name: 'proto' });
    b.gauge('proto_gauge', '').add(attrs, 1, T);
    return decodeProtobuf(ours(b.build())).metrics[0]?.points[0]?.attributes;
  };
  const parent = { device_id: 'd1' };
  assert.deepEqual(send(parent), { device_id: 'd1' });
  const child = Object.create(parent) as Attributes;
  child.device_id = 'd2';
  assert.equal(send(child)?.device_id, 'd2');
  const refusing = new Proxy({ device_id: 'p1' } as Attributes, { defineProperty: () => false });
  assert.deepEqual(send(refusing), { device_id: 'p1' });
  assert.deepEqual(send(refusing), { device_id: 'p1' });
});
