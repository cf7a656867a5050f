import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataPoint, MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchBuilder } from '../../src/model/batch.ts';
import { isStale, markStale } from '../../src/model/stale.ts';
import { serializePrometheusText } from '../../exporters/prometheus/serializer.ts';
import { jsonSerializer } from '../../exporters/otlp/serializer.ts';
import { compileRelabelConfigs, type RelabelConfig } from './engine.ts';
import { RelabelCache, relabelBatch } from './processor.ts';

function batch(build: (b: BatchBuilder) => void): ResourceMetrics {
  const b = new BatchBuilder({}, { name: 'test' });
  build(b);
  return b.build();
}

function metric(rm: ResourceMetrics, name: string): MetricData | undefined {
  return rm.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
}

const attrsOf = (m: MetricData | undefined): unknown[] => (m?.dataPoints ?? []).map((p) => p.attributes);

test('a metric no rule changes comes out as the input metric itself, its points untouched', () => {
  const input = batch((b) => {
    b.gauge('tailscaled_up', 'up').add({ device_name: 'gw-1.tail.ts.net' }, 1, 1000);
    b.gauge('tailscale_device_online', 'online').add({ device_id: '7' }, 1, 1000);
  });
  const rules = compileRelabelConfigs([{ source_labels: ['device_name'], regex: '([^.]+)\\..*', target_label: 'host', replacement: '$1' }]);
  const before = metric(input, 'tailscale_device_online');
  for (const cache of [undefined, new RelabelCache()]) {
    const out = relabelBatch(input, rules, cache);
    assert.equal(metric(out, 'tailscale_device_online'), before, 'unchanged metric passed through');
    assert.equal(metric(out, 'tailscale_device_online')?.dataPoints[0], before?.dataPoints[0]);
    assert.deepEqual(attrsOf(metric(out, 'tailscaled_up')), [{ device_name: 'gw-1.tail.ts.net', host: 'gw-1' }]);
    assert.deepEqual(out.scopeMetrics[0]?.metrics.map((m) => m.descriptor.name), ['tailscaled_up', 'tailscale_device_online'], 'order kept');
  }
  assert.deepEqual(attrsOf(metric(input, 'tailscaled_up')), [{ device_name: 'gw-1.tail.ts.net' }], 'input not modified');
});

test('series renamed onto a metric that passed through unchanged join it without modifying the input', () => {
  const input = batch((b) => {
    b.counter('tailscaled_inbound_bytes_total', 'bytes in').add({ path: 'direct_ipv4' }, 20, 1000);
    b.counter('tailscaled_inbound_bytes_legacy_total', 'bytes in').add({ path: 'derp' }, 10, 1000);
  });
  const rules = compileRelabelConfigs([{ source_labels: ['__name__'], regex: 'tailscaled_inbound_bytes_legacy_total', target_label: '__name__', replacement: 'tailscaled_inbound_bytes_total' }]);
  const out = relabelBatch(input, rules, new RelabelCache());
  assert.deepEqual(out.scopeMetrics[0]?.metrics.map((m) => m.descriptor.name), ['tailscaled_inbound_bytes_total']);
  assert.deepEqual(attrsOf(metric(out, 'tailscaled_inbound_bytes_total')), [{ path: 'direct_ipv4' }, { path: 'derp' }]);
  assert.deepEqual(attrsOf(metric(input, 'tailscaled_inbound_bytes_total')), [{ path: 'direct_ipv4' }], 'input metric keeps its own points');
  assert.match(serializePrometheusText(out), /tailscaled_inbound_bytes_total\{path="derp"\} 10/);
});

test('an end-of-series marker keeps its flag when relabel rewrites its labels; live points get none', () => {
  const input = batch((b) => {
    const g = b.gauge('tailscaled_up', 'up');
    g.add({ device_name: 'gw-1.tail.ts.net' }, 1, 1000);
    g.add({ device_name: 'gw-2.tail.ts.net' }, 1, 1000);
  });
  markStale(metric(input, 'tailscaled_up')?.dataPoints[1] as object);
  const rules = compileRelabelConfigs([{ source_labels: ['device_name'], regex: '([^.]+)\\..*', target_label: 'host', replacement: '$1' }]);
  const cache = new RelabelCache();
  for (let cycle = 0; cycle < 2; cycle++) {
    const out = relabelBatch(input, rules, cache);
    const points = metric(out, 'tailscaled_up')?.dataPoints as DataPoint<number>[];
    assert.deepEqual(points.map((p) => [p.attributes.host, isStale(p)]), [['gw-1', false], ['gw-2', true]]);
    assert.ok(!('flags' in (points[0] as object)), 'no flags field invented on a live point');
    const wire = JSON.parse(new TextDecoder().decode(jsonSerializer.serializeRequest(out))) as { resourceMetrics: [{ scopeMetrics: [{ metrics: [{ gauge: { dataPoints: Array<{ flags?: number; attributes: Array<{ key: string; value: { stringValue: string } }> }> } }] }] }] };
    const sent = wire.resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints;
    assert.deepEqual(sent.map((p) => [p.attributes.find((a) => a.key === 'host')?.value.stringValue, p.flags ?? 0]), [['gw-1', 0], ['gw-2', 1]], 'OTLP carries NO_RECORDED_VALUE for the marker');
  }
});

test('with a cache, the same input attributes give the same output object every cycle', () => {
  const input = batch((b) => b.gauge('tailscaled_up', 'up').add({ device_name: 'gw-1.tail.ts.net' }, 1, 1000));
  const rules = compileRelabelConfigs([{ source_labels: ['device_name'], regex: '([^.]+)\\..*', target_label: 'host', replacement: '$1' }]);
  const cache = new RelabelCache();
  const a = metric(relabelBatch(input, rules, cache), 'tailscaled_up')?.dataPoints[0];
  const b = metric(relabelBatch(input, rules, cache), 'tailscaled_up')?.dataPoints[0];
  assert.ok(a && b);
  assert.notEqual(a, b, 'points are new each cycle');
  assert.equal(a.attributes, b.attributes, 'attributes object is stable');
});

test('a drop on __name__ removes the whole metric, but a series whose own __name__ attribute names another metric moves there', () => {
  const rules: RelabelConfig[] = [{ source_labels: ['__name__'], regex: 'tailscaled_peer_relay_.*', action: 'drop' }, { source_labels: ['a'], target_label: 'b' }];
  const input = batch((b) => {
    const g = b.gauge('tailscaled_peer_relay_endpoints', 'relay');
    g.add({ a: '1' }, 1, 1000);
    g.add({ a: '2', __name__: 'tailscaled_relay_renamed' }, 2, 1000);
    b.gauge('tailscaled_up', 'up').add({ a: '3' }, 1, 1000);
  });
  for (const cache of [undefined, new RelabelCache()]) {
    const out = relabelBatch(input, compileRelabelConfigs(rules), cache);
    assert.deepEqual(out.scopeMetrics[0]?.metrics.map((m) => m.descriptor.name), ['tailscaled_relay_renamed', 'tailscaled_up']);
    assert.deepEqual(attrsOf(metric(out, 'tailscaled_relay_renamed')), [{ a: '2', b: '2' }]);
    assert.deepEqual(attrsOf(metric(out, 'tailscaled_up')), [{ a: '3', b: '3' }]);
  }
});

test('a metric with some series dropped keeps the others in order', () => {
  const input = batch((b) => {
    const c = b.counter('tailscaled_inbound_bytes_total', 'bytes in');
    for (const path of ['direct_ipv4', 'derp', 'direct_ipv6', 'peer_relay']) c.add({ path }, 1, 1000);
  });
  const rules = compileRelabelConfigs([{ source_labels: ['path'], regex: 'derp|peer_relay', action: 'drop' }]);
  const out = relabelBatch(input, rules, new RelabelCache());
  assert.deepEqual(attrsOf(metric(out, 'tailscaled_inbound_bytes_total')), [{ path: 'direct_ipv4' }, { path: 'direct_ipv6' }]);
  assert.equal(metric(out, 'tailscaled_inbound_bytes_total')?.dataPoints[0], metric(input, 'tailscaled_inbound_bytes_total')?.dataPoints[0], 'unchanged points are not copied');
});

test('changed, dropped and renamed series of one metric, and a later metric renamed onto it, all land in order', () => {
  const input = batch((b) => {
    const a = b.counter('a_total', 'a');
    for (const k of ['1', '2', '3', '4', '5']) a.add({ k }, Number(k), 1000);
    b.counter('b_total', 'b').add({ k: '6' }, 6, 1000);
    b.counter('c_total', 'c').add({ k: '7' }, 7, 1000);
  });
  const rules = compileRelabelConfigs([
    { source_labels: ['k'], regex: '2', action: 'drop' },
    { source_labels: ['k'], regex: '[34]', target_label: '__name__', replacement: 'b_total' },
    { source_labels: ['k'], regex: '[57]', target_label: 'odd', replacement: 'yes' },
    { source_labels: ['__name__'], regex: 'c_total', target_label: '__name__', replacement: 'a_total' },
  ]);
  const cache = new RelabelCache();
  for (let cycle = 0; cycle < 2; cycle++) {
    const out = relabelBatch(input, rules, cache);
    assert.deepEqual(out.scopeMetrics[0]?.metrics.map((m) => m.descriptor.name), ['a_total', 'b_total']);
    assert.deepEqual(attrsOf(metric(out, 'a_total')), [{ k: '1' }, { k: '5', odd: 'yes' }, { k: '7', odd: 'yes' }]);
    assert.deepEqual(metric(out, 'a_total')?.dataPoints.map((p) => p.value), [1, 5, 7]);
    assert.deepEqual(attrsOf(metric(out, 'b_total')), [{ k: '3' }, { k: '4' }, { k: '6' }]);
    assert.equal(metric(out, 'b_total')?.descriptor.description, 'a', 'a renamed series makes the metric with its own HELP, as the first to arrive');
  }
  assert.equal(metric(input, 'a_total')?.dataPoints.length, 5, 'input not modified');
});
