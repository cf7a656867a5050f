import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchBuilder } from '../src/model/batch.ts';
import { isStale } from '../src/model/stale.ts';
import { relabelBatch } from './relabel/processor.ts';
import { compileRelabelConfigs } from './relabel/engine.ts';
import { createStalenessProcessor } from './staleness/staleness.ts';
import { deviceSelector } from './device_filter/filter.ts';
import type { Device } from '../src/pipeline/inventory.ts';

function batch(build: (b: BatchBuilder) => void): ResourceMetrics {
  const b = new BatchBuilder({}, { name: 'test' });
  build(b);
  return b.build();
}

function points(rm: ResourceMetrics, name: string): Array<DataPoint<number>> {
  return rm.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as Array<DataPoint<number>>);
}

test('relabel over a batch: renaming __name__ moves the series to the renamed metric, drops remove points', () => {
  const input = batch((b) => {
    const c = b.counter('tailscaled_inbound_bytes_total', 'bytes in');
    c.add({ device_id: '1', path: 'derp' }, 10, 1000);
    c.add({ device_id: '1', path: 'direct_ipv4' }, 20, 1000);
    b.gauge('tailscaled_health_messages', 'health').add({ device_id: '1', type: 'warning' }, 1, 1000);
  });
  const rules = compileRelabelConfigs([
    { source_labels: ['__name__', 'path'], regex: 'tailscaled_inbound_bytes_total;derp', target_label: '__name__', replacement: 'tailscale_derp_inbound_bytes_total' },
    { source_labels: ['__name__'], regex: 'tailscaled_health_.*', action: 'drop' },
    { regex: 'device_id', action: 'labelmap', replacement: 'node' },
  ]);
  const out = relabelBatch(input, rules);
  const renamed = out.scopeMetrics[0]?.metrics.find((m) => m.descriptor.name === 'tailscale_derp_inbound_bytes_total');
  assert.ok(renamed, 'renamed metric exists');
  assert.equal(renamed.descriptor.description, 'bytes in', 'keeps HELP');
  assert.equal((renamed as { isMonotonic?: boolean }).isMonotonic, true, 'keeps the counter type');
  assert.deepEqual(renamed.dataPoints.map((p) => p.attributes), [{ device_id: '1', path: 'derp', node: '1' }]);
  assert.deepEqual(points(out, 'tailscaled_inbound_bytes_total').map((p) => p.attributes.path), ['direct_ipv4']);
  assert.equal(points(out, 'tailscaled_health_messages').length, 0);
  assert.ok(!out.scopeMetrics[0]?.metrics.some((m) => m.descriptor.name === 'tailscaled_health_messages'), 'empty metric removed');
  assert.equal(points(input, 'tailscaled_inbound_bytes_total').length, 2, 'the input batch is not modified');
});

const dev = (p: Partial<Device>): Device => ({ id: '1', nodeId: 'n1', name: 'gw-01.tail.ts.net', hostname: 'gw-01', addresses: [], tags: [], online: true, os: 'linux', authorized: true, isExternal: false, user: '', tailnet: '', ...p });

test('device_filter selector: include/exclude globs on name, short name, hostname and id; tags any/all; online only', () => {
  const base = { include_devices: [], exclude_devices: [], required_tags: [], tag_match: 'any' as const, online_only: false };
  assert.equal(deviceSelector({ ...base, include_devices: ['gw-*'] })(dev({})), true);
  assert.equal(deviceSelector({ ...base, include_devices: ['GW-01'] })(dev({})), true, 'case-insensitive, short name');
  assert.equal(deviceSelector({ ...base, include_devices: ['db-*'] })(dev({})), false);
  assert.equal(deviceSelector({ ...base, exclude_devices: ['*.tail.ts.net'] })(dev({})), false);
  assert.equal(deviceSelector({ ...base, include_devices: ['1'] })(dev({})), true, 'by id');
  assert.equal(deviceSelector({ ...base, required_tags: ['tag:prod', 'tag:edge'] })(dev({ tags: ['tag:edge'] })), true);
  assert.equal(deviceSelector({ ...base, required_tags: ['tag:prod', 'tag:edge'], tag_match: 'all' })(dev({ tags: ['tag:edge'] })), false);
  assert.equal(deviceSelector({ ...base, online_only: true })(dev({ online: false })), false);
});

test('staleness: a failing device keeps its series for the grace period, then they end with a marker', () => {
  const p = createStalenessProcessor({ grace_period: 0, grace_intervals: 2, markers: true });
  const cycle = (t: number, up: Record<string, boolean>) =>
    batch((b) => {
      const c = b.counter('tailscaled_inbound_bytes_total', '');
      const u = b.gauge('tsmetrics_device_scrape_up', '');
      for (const [id, ok] of Object.entries(up)) {
        u.add({ device_id: id }, ok ? 1 : 0, t);
        if (ok) c.add({ device_id: id, path: 'derp' }, t, t, 0);
      }
    });
  const info = (t: number) => ({ source: 'device_metrics', time: t, interval: 1000 });
  let out = p.process(cycle(1000, { a: true, b: true }), info(1000)) as ResourceMetrics;
  assert.equal(points(out, 'tailscaled_inbound_bytes_total').length, 2);
  // b fails: its last series is carried within the grace period (2 intervals), up says 0 at once.
  out = p.process(cycle(2000, { a: true, b: false }), info(2000)) as ResourceMetrics;
  assert.deepEqual(points(out, 'tailscaled_inbound_bytes_total').map((x) => [x.attributes.device_id, x.value]).sort(), [['a', 2000], ['b', 1000]]);
  assert.equal(points(out, 'tsmetrics_device_scrape_up').find((x) => x.attributes.device_id === 'b')?.value, 0);
  out = p.process(cycle(3000, { a: true, b: false }), info(3000)) as ResourceMetrics;
  assert.equal(points(out, 'tailscaled_inbound_bytes_total').filter((x) => !isStale(x)).length, 2, 'still within grace');
  // Past the grace period the series ends: one stale marker, then nothing.
  out = p.process(cycle(4000, { a: true, b: false }), info(4000)) as ResourceMetrics;
  const bPoints = points(out, 'tailscaled_inbound_bytes_total').filter((x) => x.attributes.device_id === 'b');
  assert.equal(bPoints.length, 1);
  assert.ok(isStale(bPoints[0] as object), 'the ended series gets a NO_RECORDED_VALUE marker');
  out = p.process(cycle(5000, { a: true, b: false }), info(5000)) as ResourceMetrics;
  assert.equal(points(out, 'tailscaled_inbound_bytes_total').filter((x) => x.attributes.device_id === 'b').length, 0, 'marker sent once');
});

test('staleness: a series that disappears (label change) gets exactly one marker', () => {
  const p = createStalenessProcessor({ grace_period: 0, grace_intervals: 2, markers: true });
  const info = (t: number) => ({ source: 'tailscale_api', time: t, interval: 1000 });
  p.process(batch((b) => b.gauge('tailscale_device_info', '').add({ device_id: '1', version: '1.0' }, 1, 1000)), info(1000));
  const out = p.process(batch((b) => b.gauge('tailscale_device_info', '').add({ device_id: '1', version: '1.1' }, 1, 2000)), info(2000)) as ResourceMetrics;
  const pts = points(out, 'tailscale_device_info');
  assert.deepEqual(pts.filter((x) => !isStale(x)).map((x) => x.attributes.version), ['1.1']);
  assert.deepEqual(pts.filter((x) => isStale(x)).map((x) => x.attributes.version), ['1.0']);
});

test('staleness: a processor that rebuilds attribute objects every cycle causes no false markers', () => {
  const p = createStalenessProcessor({ grace_period: 0, grace_intervals: 2, markers: true });
  const info = (t: number) => ({ source: 'x', time: t, interval: 1000 });
  // Fresh objects with the same labels each cycle (not interned), plus one real change.
  const cycle = (t: number, version: string) =>
    batch((b) => {
      b.gauge('tailscale_device_info', '').add({ device_id: '1', version }, 1, t);
      b.gauge('tailscale_device_online', '').add({ device_id: '1' }, 1, t).add({ device_id: '2' }, 1, t);
    });
  p.process(cycle(1000, '1.0'), info(1000));
  let out = p.process(cycle(2000, '1.0'), info(2000)) as ResourceMetrics;
  assert.equal(out.scopeMetrics.flatMap((s) => s.metrics).flatMap((m) => m.dataPoints as DataPoint<unknown>[]).filter((x) => isStale(x as object)).length, 0, 'same labels, new objects: no marker');
  out = p.process(cycle(3000, '1.1'), info(3000)) as ResourceMetrics;
  assert.deepEqual(points(out, 'tailscale_device_info').filter((x) => isStale(x)).map((x) => x.attributes.version), ['1.0'], 'a real change still ends the old series');
  assert.equal(points(out, 'tailscale_device_online').filter((x) => isStale(x)).length, 0);
});

test('staleness soak: 20% of devices replaced every cycle for 500 cycles, tracked series stay flat', () => {
  const p = createStalenessProcessor({ grace_period: 0, grace_intervals: 2, markers: true });
  const devices = 100;
  const sizes: number[] = [];
  let next = devices;
  let live = Array.from({ length: devices }, (_, i) => i);
  for (let cycle = 0; cycle < 500; cycle++) {
    // Replace 20 devices; every fifth device fails this cycle.
    live = [...live.slice(20), ...Array.from({ length: 20 }, () => next++)];
    const t = 1000 * (cycle + 1);
    const b = batch((bb) => {
      const c = bb.counter('tailscaled_inbound_bytes_total', '');
      const u = bb.gauge('tsmetrics_device_scrape_up', '');
      for (const id of live) {
        const ok = (id + cycle) % 5 !== 0;
        u.add({ device_id: String(id) }, ok ? 1 : 0, t);
        if (ok) for (const path of ['derp', 'direct_ipv4', 'direct_ipv6']) c.add({ device_id: String(id), path }, t, t);
      }
    });
    p.process(b, { source: 'device_metrics', time: t, interval: 1000 });
    if (cycle >= 100) sizes.push(p.trackedSeries());
  }
  const first = sizes[0] as number;
  const max = Math.max(...sizes);
  // Tracked series are bounded by the live tailnet (~100 devices × 4 series + held), not by history.
  assert.ok(max <= first * 1.05, `tracked series grew from ${first} to ${max}`);
  assert.ok(max < 1000);
});
