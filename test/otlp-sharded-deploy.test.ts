/**
 * The sharded Kubernetes example (deploy/kubernetes-sharded.yaml): its replicas push OTLP/gRPC to
 * the Collector it ships, and each replica's identity is on what arrives there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { defaultRegistry } from '../src/components.ts';
import { loadConfig } from '../src/app.ts';
import { PipelineService } from '../src/pipeline/service.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import type { OtlpExporterComponent } from '../exporters/otlp/otlp.ts';
import { memoryLogger } from './helpers/index.ts';
import { OtlpGrpcReceiver } from './helpers/otlp-grpc-receiver.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes documents, read as plain YAML */
const docs = parseAllDocuments(readFileSync(fileURLToPath(new URL('../deploy/kubernetes-sharded.yaml', import.meta.url)), 'utf8')).map((d) => d.toJS() as any);
const statefulSet = docs.find((d) => d.kind === 'StatefulSet');
const collectorConfig = parseYaml(docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'otel-collector').data['config.yaml']) as any;
const collectorService = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'otel-collector');

/** The container's environment as the kubelet would give it to pod `tsmetrics-shard-<ordinal>`. */
function podEnv(ordinal: number): Record<string, string> {
  const pod = { 'metadata.name': `tsmetrics-shard-${ordinal}`, 'metadata.namespace': statefulSet.metadata.namespace, "metadata.labels['apps.kubernetes.io/pod-index']": String(ordinal) } as Record<string, string>;
  const out: Record<string, string> = {};
  for (const e of statefulSet.spec.template.spec.containers[0].env as Array<{ name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }>) {
    // $(VAR) refers to a variable defined earlier in the list, as in Kubernetes.
    out[e.name] = e.valueFrom ? (pod[e.valueFrom.fieldRef.fieldPath] as string) : (e.value ?? '').replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => out[v] ?? '');
  }
  return out;
}

test('sharded example: replicas push OTLP/gRPC to the port the Collector’s OTLP gRPC receiver listens on, and the Collector keeps resource attributes as labels', () => {
  const env = podEnv(1);
  assert.equal(env.OTEL_EXPORTER_OTLP_PROTOCOL, 'grpc');
  const target = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT as string);
  assert.equal(target.pathname, '/', 'a gRPC endpoint has no path');
  assert.equal(collectorConfig.receivers.otlp.protocols.grpc.endpoint, `0.0.0.0:${target.port}`);
  assert.ok(collectorService.spec.ports.some((p: { port: number }) => String(p.port) === target.port));
  assert.equal(target.hostname, `${collectorService.metadata.name}.${collectorService.metadata.namespace}.svc`);
  assert.equal(collectorConfig.exporters.prometheus.resource_to_telemetry_conversion.enabled, true);
  const dropped = collectorConfig.processors['resource/identity'].attributes.filter((a: { action: string }) => a.action === 'delete').map((a: { key: string }) => a.key);
  for (const keep of ['service.instance.id', 'tsmetrics.shard.index', 'tailscale.tailnet']) assert.ok(!dropped.includes(keep), `${keep} reaches the Collector's Prometheus endpoint`);
  assert.deepEqual(collectorConfig.service.pipelines.metrics.processors, ['resource/identity', 'batch']);
});

test('sharded example: each pod’s batches arrive over gRPC carrying its own service.instance.id, shard and pod name', async (t) => {
  const sim = new TailnetSimulator({ devices: 9 });
  await sim.start();
  const rx = new OtlpGrpcReceiver();
  await rx.start();
  t.after(async () => {
    await rx.stop();
    await sim.stop();
  });
  const seen = new Map<string, Set<string>>();
  for (const ordinal of [0, 1, 2]) {
    const env = { ...podEnv(ordinal), ...sim.env(), LOG_LEVEL: 'error', SCRAPE_INTERVAL: '1h', ENV: 'development', OTEL_EXPORTER_OTLP_ENDPOINT: rx.url };
    const registry = defaultRegistry();
    const service = new PipelineService(registry, loadConfig(env, { registry }), { logger: memoryLogger().logger });
    t.after(() => service.shutdown(AbortSignal.timeout(2000)));
    const before = rx.requests.length;
    await service.collectNow();
    const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
    await exporter.pushSelfTelemetry();
    await exporter.flush();
    for (const r of rx.requests.slice(before)) {
      // What the Collector's Prometheus exporter turns into the service_instance_id label.
      const id = String(r.resource['service.instance.id']);
      assert.equal(id, `${hostname()}/shard-${ordinal}`, 'in the pod, the host name is the pod name');
      assert.equal(r.resource['tsmetrics.shard.index'], ordinal);
      assert.equal(r.resource['k8s.pod.name'], `tsmetrics-shard-${ordinal}`);
      const own = r.metrics.some((m) => m.name === 'tsmetrics_source_up');
      assert.equal(r.resource['tailscale.tailnet'], own ? undefined : sim.tailnet, 'pipeline batches name the tailnet; the process’s own metrics do not');
      const names = seen.get(id) ?? new Set<string>();
      for (const m of r.metrics) names.add(m.name);
      seen.set(id, names);
    }
  }
  assert.equal(seen.size, 3, 'three replicas, three instances');
  for (const names of seen.values()) assert.ok(names.has('tsmetrics_source_up'), 'every shard’s own health arrives under its own identity');
  assert.ok(seen.get(`${hostname()}/shard-0`)?.has('tailscale_device_online'), 'shard 0 sends the API metrics');
  assert.ok(!seen.get(`${hostname()}/shard-1`)?.has('tailscale_device_online'), 'the other shards only scrape devices');
});
