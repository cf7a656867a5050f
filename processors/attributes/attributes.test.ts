import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { defaultRegistry } from '../../src/components.ts';
import { resolveConfig, type RawServiceConfig } from '../../src/config/service.ts';
import { ConfigError, type ConfigProblem } from '../../src/errors.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { buildService, families, renderPrometheus } from '../../test/helpers/index.ts';
import { flowMetricsConnectorFactory } from '../../connectors/flow_metrics/index.ts';
import { fixedLogsReceiverFactory, flowRecord } from '../../connectors/common/test-logs.ts';
import { attributesProcessorFactory } from './index.ts';

const KEY = 'k3y-for-tests';
const hmac = (v: string, n = 16) => createHmac('sha256', KEY).update(v).digest('hex').slice(0, n);
const GW = { id: 'nGw1CNTRL', name: 'gw-01.example.ts.net', tags: ['tag:router'] };

function records(): LogsBatch {
  return [
    flowRecord({ type: 'exit', protocol: 'tcp', src: { address: '100.64.0.3', port: 50000 }, dst: { address: '198.51.100.7', port: 443 }, counts: { tx_bytes: 100 } }),
    flowRecord({ type: 'virtual', protocol: 'udp', src: { address: '100.64.0.1', device: GW }, dst: { address: '100.64.0.2' }, counts: { tx_bytes: 10 } }),
    flowRecord({ type: 'physical', src: { address: '100.64.0.2' }, dst: { address: '127.3.3.40', port: 2 }, counts: { tx_bytes: 999 } }),
  ];
}

function service(raw: { logs?: Record<string, unknown>; metrics?: Record<string, unknown> }, batch: LogsBatch = records()) {
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [batch]), flowMetricsConnectorFactory, attributesProcessorFactory]);
  const processors: Record<string, unknown> = {};
  if (raw.logs) processors['attributes/logs'] = raw.logs;
  if (raw.metrics) processors['attributes/metrics'] = raw.metrics;
  return buildService(
    {
      receivers: { fixed_logs: {} },
      processors,
      connectors: { flow_metrics: {} },
      exporters: { prometheus: {} },
      service: {
        pipelines: {
          logs: { receivers: ['fixed_logs'], processors: raw.logs ? ['attributes/logs'] : [], exporters: ['flow_metrics'] },
          metrics: { receivers: ['flow_metrics'], processors: raw.metrics ? ['attributes/metrics'] : [], exporters: ['prometheus'] },
        },
      },
    },
    { registry },
  );
}

async function txSamples(s: ReturnType<typeof service>) {
  await s.start();
  await s.collectNow();
  const body = await renderPrometheus(s);
  return { body, tx: (families(body).get('tailscale_network_flow_bytes_total')?.samples ?? []).filter((x) => x.labels.direction === 'tx') };
}

test('attributes on logs: hash an address with HMAC-SHA256, delete by pattern, drop records whose attribute matches', async (t) => {
  const s = service({
    logs: {
      hash_key: KEY,
      actions: [
        { key: 'source.address', action: 'hash' },
        { pattern: 'tailscale\\.(source|destination)\\.device\\..*', action: 'delete' },
      ],
      drop_when: [{ key: 'tailscale.flow.traffic_type', value: 'physical' }],
    },
  });
  t.after(() => s.shutdown(AbortSignal.timeout(3000)));
  const { tx, body } = await txSamples(s);
  // The device name was deleted, so flow_metrics labels the source by its (hashed) address.
  assert.deepEqual(tx.map((x) => [x.labels.traffic_type, x.labels.src_device, x.value]).sort(), [['exit', hmac('100.64.0.3'), 100], ['virtual', hmac('100.64.0.1'), 10]]);
  assert.ok(!body.includes('100.64.0.3') && !body.includes('gw-01'), 'neither the address nor the deleted name is served');
  assert.ok(!body.includes('traffic_type="physical"'), 'the physical record was dropped');
  assert.match(body, /tsmetrics_component_dropped_log_records_total\{component_id="attributes\/logs"\} 1/);
});

test('attributes keep_only on logs: every other attribute goes', async (t) => {
  const s = service({ logs: { keep_only: ['tailscale.flow.*', 'destination.address'] } });
  t.after(() => s.shutdown(AbortSignal.timeout(3000)));
  const { tx } = await txSamples(s);
  assert.ok(tx.length > 0);
  for (const x of tx) assert.equal(x.labels.src_device, 'unknown', 'source names and addresses are gone');
  assert.deepEqual(tx.map((x) => x.labels.dst_device).sort(), ['100.64.0.2', '127.3.3.40', '198.51.100.7']);
});

test('attributes on metrics: hash a label, delete another, drop points by RE2 pattern', async (t) => {
  const s = service({ metrics: { hash_key: KEY, hash_length: 12, actions: [{ key: 'src_device', action: 'hash' }, { key: 'tail*', action: 'delete' }], drop_when: [{ key: 'traffic_type', pattern: 'phys.*' }] } });
  t.after(() => s.shutdown(AbortSignal.timeout(3000)));
  const { tx } = await txSamples(s);
  assert.deepEqual(tx.map((x) => [x.labels.traffic_type, x.labels.src_device]).sort(), [['exit', hmac('100.64.0.3', 12)], ['virtual', hmac(GW.name, 12)]]);
  assert.ok(tx.every((x) => x.labels.tailnet === undefined));
});

test('hostile attributes: thousands of distinct keys, a backtracking-prone pattern on a 1 MB value, values of every type', async (t) => {
  const many: Record<string, unknown> = {};
  for (let i = 0; i < 10_000; i++) many[`junk.${i}`] = i;
  const batch: LogsBatch = [
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { address: '100.64.0.1' }, counts: { tx_bytes: 1 }, extra: many as never }),
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { address: '100.64.0.2' }, counts: { tx_bytes: 2 }, extra: { note: 'a'.repeat(1 << 20) } }),
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { address: '100.64.0.4' }, counts: { tx_bytes: 4 }, extra: { note: ['a', 1, true] as never } }),
  ];
  const s = service({ logs: { hash_key: KEY, actions: [{ key: 'junk.*', action: 'delete' }, { key: 'destination.*', action: 'hash' }], drop_when: [{ key: 'note', pattern: '(a+)+b' }, { key: 'note', pattern: '\\["a",1,true\\]' }] } }, batch);
  t.after(() => s.shutdown(AbortSignal.timeout(3000)));
  const { tx } = await txSamples(s);
  // RE2 answers `(a+)+b` on a megabyte of `a` in linear time (a backtracking engine would not return).
  assert.deepEqual(tx.map((x) => [x.labels.src_device, x.value]).sort(), [['100.64.0.1', 1], ['100.64.0.2', 2]]);
});

function problems(raw: RawServiceConfig): ConfigProblem[] {
  try {
    resolveConfig(raw, defaultRegistry([attributesProcessorFactory]), 'otel-config.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.problems];
  }
  assert.fail('the config was accepted');
}

test('bad attributes settings name the key and what is wrong; a rewriting attributes processor must come after staleness', () => {
  const pipe = (procs: string[]) => ({ metrics: { receivers: ['tailscale_api'], processors: procs, exporters: ['prometheus'] } });
  const p = problems({
    receivers: { tailscale_api: { api_key: 'tskey-api-x' } },
    processors: {
      attributes: { actions: [{ key: 'a', pattern: 'b', action: 'hash' }, { pattern: '(', action: 'delete' }, { key: 'x', action: 'rename' }, 'nope'], drop_when: [{ value: 'x' }, { key: 'k', value: 'v', pattern: 'p' }], hash_length: 100 },
      staleness: {},
    },
    exporters: { prometheus: {} },
    service: { pipelines: pipe(['attributes', 'staleness']) },
  });
  const at = (path: string) => p.find((x) => x.path === path)?.message ?? `(nothing at ${path}: ${JSON.stringify(p)})`;
  assert.match(at('processors.attributes.actions[0]'), /exactly one of key .* and pattern/);
  assert.match(at('processors.attributes.actions[1].pattern'), /not a valid RE2 regular expression/);
  assert.match(at('processors.attributes.actions[2].action'), /one of: delete, hash/);
  assert.match(at('processors.attributes.actions[3]'), /must be a map/);
  assert.match(at('processors.attributes.drop_when[0].key'), /non-empty attribute name/);
  assert.match(at('processors.attributes.drop_when[1]'), /value or pattern, not both/);
  assert.match(at('processors.attributes.hash_key'), /required when an action is "hash"/);
  assert.match(at('processors.attributes.hash_length'), /between 8 and 64/);
  const q = problems({ receivers: { tailscale_api: { api_key: 'tskey-api-x' } }, processors: { attributes: { actions: [{ key: 'device_name', action: 'delete' }] }, staleness: {} }, exporters: { prometheus: {} }, service: { pipelines: pipe(['attributes', 'staleness']) } });
  assert.match(q.find((x) => x.path === 'service.pipelines.metrics.processors')?.message ?? '', /"attributes" rewrites names and labels, so it must come after "staleness"/);
});
