import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Attributes } from '@opentelemetry/api';
import { AttributeInterner } from '../../src/model/intern.ts';
import { decodeDeviceList, type ApiDeviceRecord } from './decode.ts';
import { buildApiBatch, type BuildOptions } from './metrics.ts';

const FIXTURE = new URL('../../test/fixtures/api-devices-fields-all.json', import.meta.url);

function series(batch: ResourceMetrics): Map<string, Attributes> {
  const out = new Map<string, Attributes>();
  for (const sm of batch.scopeMetrics) {
    for (const m of sm.metrics) {
      for (const p of m.dataPoints as DataPoint<unknown>[]) out.set(`${m.descriptor.name} ${JSON.stringify(p.attributes)}`, p.attributes);
    }
  }
  return out;
}

test('API series keep their attributes object while a device’s labels stay the same, and never take another device’s', () => {
  const fixture = readFileSync(FIXTURE, 'utf8');
  const first = decodeDeviceList(fixture).devices;
  const opts = (interner?: AttributeInterner): BuildOptions => ({ nowMs: Date.parse('2026-12-04T12:00:00Z'), includeUserEmail: true, tailnetLabel: 'example.com', maxLabel: 256, resource: {}, scopeVersion: 'test', ...(interner ? { interner } : {}) });
  const interner = new AttributeInterner();
  const one = series(buildApiBatch(first, opts(interner)));

  // Next cycle: the list comes back in another order and one device was renamed.
  const renamed = first[0] as ApiDeviceRecord;
  const second: ApiDeviceRecord[] = [...first.slice(1).reverse(), { ...renamed, name: 'renamed.tail4c8e1a.ts.net' }];
  const two = series(buildApiBatch(second, opts(interner)));

  // What is written is exactly what a build without interning writes.
  assert.deepEqual([...two.keys()].sort(), [...series(buildApiBatch(second, opts())).keys()].sort());
  let kept = 0;
  for (const [key, attrs] of two) {
    const before = one.get(key);
    if (attrs.device_id === renamed.id) {
      assert.equal(before, undefined, key);
      assert.equal(attrs.device_name, 'renamed.tail4c8e1a.ts.net');
    } else if (before) {
      assert.equal(attrs, before, `${key} got a new attributes object`);
      kept++;
    }
  }
  assert.ok(kept > 50, `only ${kept} series kept their object`);
});
