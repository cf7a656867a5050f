import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { BatchBuilder } from '../../src/model/batch.ts';
import { makeDevice, renderClientMetrics } from '../../src/simulator/model.ts';
import { parseExposition } from '../../receivers/device_metrics/exposition.ts';
import { convertFamilies, StartTimeTracker } from '../../receivers/device_metrics/convert.ts';
import { serializePrometheusText } from './serializer.ts';

const official = new PrometheusSerializer(undefined, false, undefined, true, true);

test('the fast serializer writes exactly what @opentelemetry/exporter-prometheus writes', () => {
  const bb = new BatchBuilder({}, { name: 'x' });
  for (let i = 0; i < 50; i++) {
    const d = makeDevice(i, { seed: 3, suffix: 'tail.ts.net', exporterShare: 1 });
    convertFamilies(parseExposition(renderClientMetrics(d, 2e12, 1e12)), { out: bb, deviceLabels: { device_id: String(i), device_name: `d${i}` }, timeMs: 2e12, tracker: new StartTimeTracker(), familyAllowed: () => true, maxLabel: 128 });
  }
  // Edge cases: escapes, non-string attributes, NaN/±Inf, no labels, histograms, a counter without _total, dotted names.
  bb.gauge('edge', 'help with \\ backslash\nand newline').add({ 'k.dot': 'quote " back \\ nl \n', num: 3, flag: true }, NaN, 2e12).add({}, Infinity, 2e12).add({ x: '' }, -Infinity, 2e12);
  bb.counter('requests', '').add({ a: 'b' }, 1e21, 2e12);
  bb.metric('lat', 'latency', 'histogram').addHistogram({ p: 'q' }, { buckets: { boundaries: [0.1, 1], counts: [2, 3, 1] }, count: 6, sum: 4.5 }, 2e12).addHistogram({}, { buckets: { boundaries: [], counts: [4] }, count: 4 }, 2e12);
  bb.gauge('1leading', 'x').add({}, 1, 2e12);
  const rm = bb.build();
  // Two scopes with the same family merge into one HELP/TYPE block; a TYPE conflict drops it.
  const other = new BatchBuilder({}, { name: 'y' });
  other.gauge('edge', 'other help').add({ second: 'scope' }, 2, 2e12);
  other.counter('conflict_total', 'c').add({}, 1, 2e12);
  other.gauge('conflict_total', 'g').add({}, 1, 2e12);
  rm.scopeMetrics.push(...other.build().scopeMetrics);
  assert.equal(serializePrometheusText(rm), official.serialize(rm));
  assert.equal(serializePrometheusText({ resource: rm.resource, scopeMetrics: [] }), official.serialize({ resource: rm.resource, scopeMetrics: [] }));
});
