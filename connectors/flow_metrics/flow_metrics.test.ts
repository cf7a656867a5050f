import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTsmetrics } from '../../src/app.ts';
import { defaultRegistry } from '../../src/components.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import type { OtlpExporterComponent } from '../../exporters/otlp/otlp.ts';
import { buildService, families, http, manualClock, renderPrometheus, sampleValue } from '../../test/helpers/index.ts';
import { OtlpReceiver } from '../../test/helpers/otlp-receiver.ts';
import { tempDir } from '../../test/helpers/system.ts';
import { auditMetricsConnectorFactory } from '../audit_metrics/index.ts';
import { auditRecord, fixedLogsReceiverFactory, flowRecord } from '../common/test-logs.ts';
import { flowMetricsConnectorFactory } from './index.ts';

const GW = { id: 'nGw1CNTRL', name: 'gw-01.example.ts.net', tags: ['tag:router'] };
const DB = { id: 'nDb1CNTRL', name: 'db-01.example.ts.net' };
const LAPTOP = { id: 'nLp1CNTRL', name: 'laptop.example.ts.net' };

/** One collection of the fake logs source: what a poll of the flow and audit logs returns. */
function records(): LogsBatch {
  return [
    // gw → db over TCP, reported twice in the window: summed.
    flowRecord({ type: 'virtual', protocol: 'tcp', reporter: GW.id, src: { address: '100.64.0.1', port: 51000, device: GW }, dst: { address: '100.64.0.2', port: 5432, device: DB }, counts: { tx_bytes: 1000, tx_packets: 10, rx_bytes: 4000, rx_packets: 20 } }),
    flowRecord({ type: 'virtual', protocol: 'tcp', reporter: GW.id, src: { address: '100.64.0.1', port: 51002, device: GW }, dst: { address: '100.64.0.2', port: 5432, device: DB }, counts: { tx_bytes: 500, tx_packets: 5 } }),
    // Through the subnet router to a LAN host: the destination is an address.
    flowRecord({ type: 'subnet', protocol: 'udp', reporter: LAPTOP.id, src: { address: '100.64.0.3', port: 40000, device: LAPTOP }, dst: { address: '192.168.1.20', port: 53 }, counts: { tx_bytes: 80, tx_packets: 1, rx_bytes: 160, rx_packets: 1 } }),
    // An anonymised exit entry: no destination at all.
    flowRecord({ type: 'exit', reporter: LAPTOP.id, src: { address: '100.64.0.3', device: LAPTOP }, counts: { tx_bytes: 7000, tx_packets: 9 } }),
    // The underlay: its own traffic_type, never mixed into virtual.
    flowRecord({ type: 'physical', reporter: GW.id, src: { address: '100.64.0.2', device: DB }, dst: { address: '127.3.3.40', port: 2 }, counts: { tx_bytes: 1200, tx_packets: 12, rx_bytes: 4300, rx_packets: 22 } }),
    // Hostile counts: rejected and counted, never summed.
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: GW }, dst: { device: DB }, counts: { tx_bytes: -5 } }),
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: GW }, dst: { device: DB }, counts: { rx_bytes: Number.NaN } }),
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: GW }, dst: { device: DB }, counts: { tx_packets: 2 ** 60 } }),
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: GW }, dst: { device: DB }, counts: { tx_bytes: '1000' } }),
    auditRecord({ event: 'NODE.UPDATE.ALLOWED_IPS', action: 'UPDATE', actor: 'USER', target: 'NODE' }),
    auditRecord({ event: 'NODE.UPDATE.ACL_TAGS', action: 'UPDATE', actor: 'USER', target: 'NODE' }),
    auditRecord({ event: 'TAILNET.UPDATE.ACL', action: 'UPDATE', actor: 'OAUTH_CLIENT', target: 'TAILNET', error: 'policy does not parse' }),
  ];
}

const YAML = `
receivers:
  fixed_logs: {}
connectors:
  flow_metrics: {}
  audit_metrics: {}
exporters:
  prometheus: {}
service:
  pipelines:
    logs:
      receivers: [fixed_logs]
      exporters: [flow_metrics, audit_metrics]
    metrics:
      receivers: [flow_metrics, audit_metrics]
      exporters: [prometheus]
`;

test('logs → flow_metrics and audit_metrics → metrics → prometheus: GET /metrics serves the counters, summed across polls', async (t) => {
  const dir = tempDir('tsm-flow-e2e-');
  t.after(() => dir.remove());
  const file = join(dir.path, 'otel-config.yaml');
  writeFileSync(file, YAML);
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [records()]), flowMetricsConnectorFactory, auditMetricsConnectorFactory]);
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'error' }, configFile: file, registry, port: 0, write: () => undefined });
  t.after(() => running.stop(AbortSignal.timeout(3000)));
  await running.service.collectNow();
  const res = await http(`${running.url}/metrics`);
  assert.equal(res.status, 200);
  const f = families(res.body);
  assert.equal(f.get('tailscale_network_flow_bytes_total')?.type, 'counter');
  assert.equal(f.get('tailscale_network_flow_packets_total')?.type, 'counter');
  const flow = { traffic_type: 'virtual', protocol: 'tcp', src_device: GW.name, dst_device: DB.name, tailnet: 'example.com' };
  assert.equal(sampleValue(f, 'tailscale_network_flow_bytes_total', { ...flow, direction: 'tx' }), 1500);
  assert.equal(sampleValue(f, 'tailscale_network_flow_bytes_total', { ...flow, direction: 'rx' }), 4000);
  assert.equal(sampleValue(f, 'tailscale_network_flow_packets_total', { ...flow, direction: 'tx' }), 15);
  assert.equal(sampleValue(f, 'tailscale_network_flow_packets_total', { ...flow, direction: 'rx' }), 20);
  assert.equal(sampleValue(f, 'tailscale_network_flow_bytes_total', { traffic_type: 'subnet', protocol: 'udp', src_device: LAPTOP.name, dst_device: '192.168.1.20', direction: 'rx' }), 160);
  assert.equal(sampleValue(f, 'tailscale_network_flow_bytes_total', { traffic_type: 'exit', protocol: 'unknown', src_device: LAPTOP.name, dst_device: 'unknown', direction: 'tx' }), 7000);
  assert.equal(sampleValue(f, 'tailscale_network_flow_bytes_total', { traffic_type: 'exit', src_device: LAPTOP.name, direction: 'rx' }), 0, 'a missing count is 0');
  assert.equal(sampleValue(f, 'tailscale_network_flow_bytes_total', { traffic_type: 'physical', src_device: DB.name, dst_device: '127.3.3.40', direction: 'rx' }), 4300);
  // Nothing but the five accepted records made series: 5 series × 2 directions.
  assert.equal(f.get('tailscale_network_flow_bytes_total')?.samples.length, 8);
  assert.equal(sampleValue(f, 'tsmetrics_flow_metrics_rejected_records_total', { component_id: 'flow_metrics' }), 4);
  const audit = { event_type: 'node', action: 'update', actor_type: 'user', tailnet: 'example.com' };
  assert.equal(f.get('tailscale_configuration_events_total')?.type, 'counter');
  assert.equal(sampleValue(f, 'tailscale_configuration_events_total', { ...audit, result: 'success' }), 2);
  assert.equal(sampleValue(f, 'tailscale_configuration_events_total', { event_type: 'tailnet', action: 'update', actor_type: 'oauth_client', result: 'failed' }), 1);

  // The second poll adds to the same counters (the exporter serves the connector's full snapshot).
  await running.service.collectNow();
  const g = families((await http(`${running.url}/metrics`)).body);
  assert.equal(sampleValue(g, 'tailscale_network_flow_bytes_total', { ...flow, direction: 'tx' }), 3000);
  assert.equal(sampleValue(g, 'tailscale_network_flow_bytes_total', { traffic_type: 'physical', direction: 'tx' }), 2400);
  assert.equal(sampleValue(g, 'tailscale_configuration_events_total', { ...audit, result: 'success' }), 4);
  assert.equal(sampleValue(g, 'tsmetrics_flow_metrics_rejected_records_total', { component_id: 'flow_metrics' }), 8);
});

test('flow_metrics over OTLP: monotonic cumulative sums whose start time is when the series was first seen; an evicted series comes back with a new start', async (t) => {
  const rx = new OtlpReceiver();
  await rx.start();
  t.after(() => rx.stop());
  const clock = manualClock(Date.UTC(2026, 7, 24, 9, 0, 0));
  const t0 = clock.now();
  const a = flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: GW }, dst: { device: DB }, counts: { tx_bytes: 100, rx_bytes: 10 } });
  const b = flowRecord({ type: 'virtual', protocol: 'udp', src: { device: LAPTOP }, dst: { device: DB }, counts: { tx_bytes: 1 } });
  let batch: LogsBatch = [a];
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [batch]), flowMetricsConnectorFactory]);
  const service = buildService(
    {
      receivers: { fixed_logs: {} },
      connectors: { flow_metrics: { series_ttl: '10m' } },
      exporters: { otlp: { endpoint: rx.url, timeout: '3s' } },
      service: { pipelines: { logs: { receivers: ['fixed_logs'], exporters: ['flow_metrics'] }, metrics: { receivers: ['flow_metrics'], exporters: ['otlp'] } } },
    },
    { registry, clock },
  );
  t.after(() => service.shutdown(AbortSignal.timeout(3000)));
  await service.start();
  const otlp = service.exporters.get('otlp') as OtlpExporterComponent;
  const cycle = async (): Promise<void> => {
    rx.requests.length = 0;
    await service.collectNow();
    await otlp.flush();
  };
  const point = (match: Record<string, string>) => rx.points('tailscale_network_flow_bytes').find((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
  const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;

  await cycle();
  const first = point({ src_device: GW.name, direction: 'tx' });
  assert.equal(first?.metric.kind, 'sum');
  assert.equal(first?.metric.isMonotonic, true);
  assert.equal(first?.metric.temporality, 2, 'cumulative');
  assert.equal(first?.value, 100);
  assert.equal(first?.startTimeUnixNano, ns(t0));
  assert.equal(first?.timeUnixNano, ns(t0));

  clock.advance(60_000);
  batch = [a, b];
  await cycle();
  assert.equal(point({ src_device: GW.name, direction: 'tx' })?.value, 200);
  assert.equal(point({ src_device: GW.name, direction: 'tx' })?.startTimeUnixNano, ns(t0), 'the start time stays');
  assert.equal(point({ src_device: GW.name, direction: 'tx' })?.timeUnixNano, ns(t0 + 60_000));
  assert.equal(point({ src_device: LAPTOP.name, direction: 'tx' })?.startTimeUnixNano, ns(t0 + 60_000), 'a new series starts when first seen');

  // gw → db goes quiet past series_ttl and is forgotten; when it is back it starts from zero.
  batch = [b];
  clock.advance(9 * 60_000);
  await cycle();
  assert.ok(point({ src_device: GW.name }), 'still within series_ttl');
  clock.advance(2 * 60_000);
  await cycle();
  assert.equal(point({ src_device: GW.name }), undefined, 'evicted');
  assert.equal(point({ src_device: LAPTOP.name, direction: 'tx' })?.value, 3, 'three polls saw it');
  batch = [a];
  await cycle();
  assert.equal(point({ src_device: GW.name, direction: 'tx' })?.value, 100);
  assert.equal(point({ src_device: GW.name, direction: 'tx' })?.startTimeUnixNano, ns(clock.now()), 'a re-appearing series gets a new start time');
});

test('max_series: 10× as many source/destination pairs give exactly max_series series plus "other", and the overflow counter counts the rest', async (t) => {
  const max = 50;
  const batch: LogsBatch = Array.from({ length: 10 * max }, (_, i) =>
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { address: `100.64.${i >> 8}.${i & 255}` }, dst: { device: { id: `n${i}`, name: `dev-${i}` } }, counts: { tx_bytes: 10, tx_packets: 1 } }),
  );
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [batch]), flowMetricsConnectorFactory]);
  const service = buildService(
    {
      receivers: { fixed_logs: {} },
      connectors: { flow_metrics: { max_series: max } },
      exporters: { prometheus: {} },
      service: { pipelines: { logs: { receivers: ['fixed_logs'], exporters: ['flow_metrics'] }, metrics: { receivers: ['flow_metrics'], exporters: ['prometheus'] } } },
    },
    { registry },
  );
  t.after(() => service.shutdown(AbortSignal.timeout(3000)));
  await service.start();
  for (let i = 0; i < 2; i++) await service.collectNow();
  const f = families(await renderPrometheus(service));
  const tx = (f.get('tailscale_network_flow_bytes_total')?.samples ?? []).filter((s) => s.labels.direction === 'tx');
  assert.equal(tx.length, max + 1);
  const other = tx.filter((s) => s.labels.src_device === 'other' && s.labels.dst_device === 'other');
  assert.equal(other.length, 1);
  assert.equal(other[0]?.value, 2 * 9 * max * 10, 'the overflow records are summed, not lost');
  assert.equal(tx.filter((s) => s.labels.src_device !== 'other').every((s) => s.value === 20), true, 'the first max_series pairs keep their own series');
  assert.equal(sampleValue(f, 'tsmetrics_flow_metrics_overflow_records_total', { component_id: 'flow_metrics' }), 2 * 9 * max);
});

test('hostile records: wrong attribute types, 1 MB names, unknown protocols and traffic types stay bounded; destination_addresses: drop', async (t) => {
  const huge = 'x'.repeat(1 << 20);
  const batch: LogsBatch = [
    // A name that is not a string falls back to the address; an address that is not one to `unknown`.
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { address: '100.64.0.9' }, dst: { address: '100.64.0.10' }, extra: { 'tailscale.source.device.name': 42, 'destination.address': ['a', 'b'] }, counts: { tx_bytes: 1 } }),
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: { id: 'n1', name: huge } }, dst: { device: { id: 'n2', name: `${huge}y` } }, counts: { tx_bytes: 2 } }),
    // Two different 1 MB names that share their first 256 characters are one series.
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: { id: 'n1', name: `${huge}z` } }, dst: { device: { id: 'n2', name: huge } }, counts: { tx_bytes: 3 } }),
    ...Array.from({ length: 40 }, (_, i) => flowRecord({ type: `kind-${i}`, protocol: `proto-${i}`, src: { device: GW }, dst: { address: `203.0.113.${i}` }, counts: { tx_bytes: 1 } })),
    flowRecord({ type: 'exit', protocol: '17', src: { device: LAPTOP }, dst: { address: '198.51.100.7', port: 443 }, counts: { tx_bytes: 5 } }),
    flowRecord({ type: 'exit', protocol: '300', src: { device: LAPTOP }, dst: { address: '198.51.100.8', port: 443 }, counts: { tx_bytes: 6 } }),
    flowRecord({ type: 'virtual', protocol: 'tcp', src: { device: LAPTOP }, dst: { address: '100.64.0.2', device: DB }, counts: { tx_bytes: 7 } }),
  ];
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [batch]), flowMetricsConnectorFactory]);
  const service = buildService(
    {
      receivers: { fixed_logs: {} },
      connectors: { flow_metrics: { destination_addresses: 'drop' } },
      exporters: { prometheus: {} },
      service: { pipelines: { logs: { receivers: ['fixed_logs'], exporters: ['flow_metrics'] }, metrics: { receivers: ['flow_metrics'], exporters: ['prometheus'] } } },
    },
    { registry },
  );
  t.after(() => service.shutdown(AbortSignal.timeout(3000)));
  await service.start();
  await service.collectNow();
  const body = await renderPrometheus(service);
  assert.ok(body.length < 64 * 1024, `the page stays small (${body.length} bytes)`);
  const samples = (families(body).get('tailscale_network_flow_bytes_total')?.samples ?? []).filter((s) => s.labels.direction === 'tx');
  const find = (m: Record<string, string>) => samples.filter((s) => Object.entries(m).every(([k, v]) => s.labels[k] === v));
  assert.equal(find({ src_device: '100.64.0.9', dst_device: 'unknown' })[0]?.value, 1);
  const long = samples.filter((s) => (s.labels.src_device ?? '').startsWith('xxx'));
  assert.equal(long.length, 1);
  assert.equal(long[0]?.labels.src_device?.length, 256);
  assert.equal(long[0]?.labels.dst_device?.length, 256);
  assert.equal(long[0]?.value, 5);
  // Unknown kinds collapse into `other`, and with destination_addresses: drop the 40 addresses into `external`.
  assert.equal(find({ traffic_type: 'other', protocol: 'other', src_device: GW.name, dst_device: 'external' })[0]?.value, 40);
  assert.equal(find({ traffic_type: 'exit', protocol: 'udp', dst_device: 'external' })[0]?.value, 5);
  assert.equal(find({ traffic_type: 'exit', protocol: 'other', dst_device: 'external' })[0]?.value, 6);
  // A tailnet device stays named whatever destination_addresses says.
  assert.equal(find({ src_device: LAPTOP.name, dst_device: DB.name })[0]?.value, 7);
  assert.equal(samples.length, 6);
});
