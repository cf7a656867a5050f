import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRegistry } from '../../src/components.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import type { Device } from '../../src/pipeline/inventory.ts';
import { buildService, families, renderPrometheus, sampleValue } from '../../test/helpers/index.ts';
import { auditMetricsConnectorFactory } from '../../connectors/audit_metrics/index.ts';
import { flowMetricsConnectorFactory } from '../../connectors/flow_metrics/index.ts';
import { auditRecord, fixedLogsReceiverFactory, flowRecord } from '../../connectors/common/test-logs.ts';

const device = (id: string, nodeId: string, name: string, tags: string[] = []): Device => ({ id, nodeId, name, hostname: name.split('.')[0] ?? '', addresses: [], tags, online: true, os: 'linux', authorized: true, isExternal: false, user: '', tailnet: 'example.com' });

test('device_filter in a logs pipeline keeps flow records by their reporting device and audit records by their target node', async (t) => {
  const gw = device('1001', 'nGw1CNTRL', 'gw-01.example.ts.net', ['tag:router']);
  const router = device('1002', 'nRt1CNTRL', 'subnet-router.example.ts.net', ['tag:router']);
  const laptop = device('1003', 'nLp1CNTRL', 'laptop.example.ts.net');
  const batch: LogsBatch = [
    flowRecord({ type: 'virtual', protocol: 'tcp', reporter: gw.nodeId, src: { address: '100.64.0.1', device: { id: gw.nodeId, name: gw.name } }, dst: { address: '100.64.0.3', device: { id: laptop.nodeId, name: laptop.name } }, counts: { tx_bytes: 10 } }),
    // The same connection as the laptop reported it: the laptop is not tagged, so this goes.
    flowRecord({ type: 'virtual', protocol: 'tcp', reporter: laptop.nodeId, src: { address: '100.64.0.3', device: { id: laptop.nodeId, name: laptop.name } }, dst: { address: '100.64.0.1', device: { id: gw.nodeId, name: gw.name } }, counts: { rx_bytes: 10 } }),
    // A subnet router reports the LAN host as the source: only tailscale.node.id names it, and the inventory knows it.
    flowRecord({ type: 'subnet', protocol: 'udp', reporter: router.nodeId, src: { address: '192.168.1.20' }, dst: { address: '100.64.0.3' }, counts: { tx_bytes: 20 } }),
    // A device the inventory does not know yet is judged by the tags the record carries.
    flowRecord({ type: 'virtual', protocol: 'tcp', reporter: 'nNew1CNTRL', src: { device: { id: 'nNew1CNTRL', name: 'new.example.ts.net', tags: ['tag:router'] } }, dst: { address: '100.64.0.1' }, counts: { tx_bytes: 30 } }),
    // Hostile: an id that is not a string identifies nobody, so the record passes like a series without device_id.
    flowRecord({ type: 'virtual', protocol: 'tcp', extra: { 'tailscale.node.id': 7 }, src: { address: '100.64.0.50' }, dst: { address: '100.64.0.51' }, counts: { tx_bytes: 40 } }),
    auditRecord({ action: 'UPDATE', actor: 'USER', target: 'NODE', extra: { 'tailscale.audit.target.id': laptop.nodeId, 'tailscale.audit.target.name': laptop.name } }),
    auditRecord({ action: 'UPDATE', actor: 'USER', target: 'NODE', extra: { 'tailscale.audit.target.id': gw.nodeId } }),
    auditRecord({ action: 'UPDATE', actor: 'USER', target: 'TAILNET' }),
  ];
  const registry = defaultRegistry([fixedLogsReceiverFactory(() => [batch]), flowMetricsConnectorFactory, auditMetricsConnectorFactory]);
  const service = buildService(
    {
      receivers: { fixed_logs: {} },
      processors: { device_filter: { required_tags: ['tag:router'] } },
      connectors: { flow_metrics: {}, audit_metrics: {} },
      exporters: { prometheus: {} },
      service: { pipelines: { logs: { receivers: ['fixed_logs'], processors: ['device_filter'], exporters: ['flow_metrics', 'audit_metrics'] }, metrics: { receivers: ['flow_metrics', 'audit_metrics'], exporters: ['prometheus'] } } },
    },
    { registry },
  );
  t.after(() => service.shutdown(AbortSignal.timeout(3000)));
  service.inventory.publish({ source: 'tailscale_api', tailnet: 'example.com', devices: [gw, router, laptop], fetchedMs: Date.now(), fresh: true });
  await service.start();
  await service.collectNow();
  const f = families(await renderPrometheus(service));
  const tx = (f.get('tailscale_network_flow_bytes_total')?.samples ?? []).filter((s) => s.labels.direction === 'tx');
  assert.deepEqual(tx.map((s) => [s.labels.src_device, s.value]).sort(), [['100.64.0.50', 40], ['192.168.1.20', 20], ['gw-01.example.ts.net', 10], ['new.example.ts.net', 30]]);
  assert.equal(sampleValue(f, 'tailscale_network_flow_bytes_total', { src_device: laptop.name, direction: 'rx' }), undefined, "the laptop's own report is gone");
  const events = f.get('tailscale_configuration_events_total')?.samples ?? [];
  assert.deepEqual(events.map((s) => [s.labels.event_type, s.value]).sort(), [['node', 1], ['tailnet', 1]]);
  assert.equal(sampleValue(f, 'tsmetrics_component_dropped_log_records_total', { component_id: 'device_filter' }), 2);
});
