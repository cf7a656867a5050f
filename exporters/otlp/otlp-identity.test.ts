import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { credentials } from '@grpc/grpc-js';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import { defaultRegistry } from '../../src/components.ts';
import { loadConfig } from '../../src/app.ts';
import { ConfigError } from '../../src/errors.ts';
import { PipelineService } from '../../src/pipeline/service.ts';
import { markStale } from '../../src/model/stale.ts';
import type { OtlpExporterComponent } from './otlp.ts';
import { GrpcTransport } from './grpc-transport.ts';
import { configSchema } from './config.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { buildService, families, memoryLogger, renderPrometheus } from '../../test/helpers/index.ts';
import { OtlpGrpcReceiver } from '../../test/helpers/otlp-grpc-receiver.ts';
import { decodeProtobuf } from '../../test/helpers/otlp-receiver.ts';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { BatchBuilder } from '../../src/model/batch.ts';
import { encodeMetricsRequest } from './protobuf.ts';
import { tailnetSnapshot } from '../../bench/lib.ts';

async function receiver(t: TestContext): Promise<OtlpGrpcReceiver> {
  const rx = new OtlpGrpcReceiver();
  await rx.start();
  t.after(() => rx.stop());
  return rx;
}

async function simulator(t: TestContext, opts: ConstructorParameters<typeof TailnetSimulator>[0] = {}): Promise<TailnetSimulator> {
  const sim = new TailnetSimulator({ devices: 6, ...opts });
  await sim.start();
  t.after(() => sim.stop());
  return sim;
}

/** One cycle of `service`, flushed to the OTLP endpoint. */
async function cycleOnce(t: TestContext, service: PipelineService): Promise<void> {
  t.after(() => service.shutdown(AbortSignal.timeout(2000)));
  await service.collectNow();
  await (service.exporters.get('otlp') as OtlpExporterComponent).flush();
}

test('sharded replicas are told apart behind a Collector: service.instance.id is host/shard-N, the shard is on the resource, and the same replica gets the same id after a restart', async (t) => {
  const sim = await simulator(t, { deviceServers: false });
  const rx = await receiver(t);
  const replica = (index: number): PipelineService =>
    buildService({
      receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } },
      exporters: { otlp: { endpoint: rx.url, protocol: 'grpc', shard_index: index, shard_count: 3 } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['otlp'] } } },
    });
  await cycleOnce(t, replica(1));
  await cycleOnce(t, replica(2));
  await cycleOnce(t, replica(1)); // "restarted"
  const ids = rx.requests.map((r) => [r.resource['service.instance.id'], r.resource['tsmetrics.shard.index'], r.resource['tsmetrics.shard.count']]);
  assert.deepEqual(ids, [
    [`${hostname()}/shard-1`, 1, 3],
    [`${hostname()}/shard-2`, 2, 3],
    [`${hostname()}/shard-1`, 1, 3],
  ]);
});

test('instance_id and resource_attributes override the default identity (OTEL_RESOURCE_ATTRIBUTES wins over everything)', async (t) => {
  const sim = await simulator(t, { deviceServers: false });
  const rx = await receiver(t);
  const run = (otlp: Record<string, unknown>) =>
    cycleOnce(
      t,
      buildService({
        receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } },
        exporters: { otlp: { endpoint: rx.url, protocol: 'grpc', ...otlp } },
        service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['otlp'] } } },
      }),
    );
  await run({ instance_id: 'east-1' });
  await run({ instance_id: 'east-1', resource_attributes: { 'service.instance.id': 'from-resource', 'deployment.environment': 'prod', 'service.name': 'ts-east' } });
  assert.deepEqual(
    rx.requests.map((r) => [r.resource['service.instance.id'], r.resource['service.name'], r.resource['deployment.environment']]),
    [
      ['east-1', 'tsmetrics', undefined],
      ['from-resource', 'ts-east', 'prod'],
    ],
  );
});

test('two tailnets in one process: every batch of every receiver names its tailnet on the resource; device batches are split by tailnet; /metrics has the tailnet label', async (t) => {
  const a = await simulator(t, { tailnet: 'a.example.com' });
  // The second tailnet's devices get their own ids; their addresses reach the first's servers.
  const b = await simulator(t, { tailnet: 'b.example.com', deviceServers: false, devices_json: a.apiDevices().map((d) => ({ ...d, id: `${d.id}9`, nodeId: `${String(d.nodeId)}b` })) });
  const rx = await receiver(t);
  const service = buildService({
    receivers: {
      'tailscale_api/a': { api_url: a.apiUrl, api_key: a.apiKeys[0], tailnet: a.tailnet, tailnet_label: 'a.example.com', interval: '1h' },
      'tailscale_api/b': { api_url: b.apiUrl, api_key: b.apiKeys[0], tailnet: b.tailnet, tailnet_label: 'b.example.com', interval: '1h' },
      device_metrics: { interval: '1h', port: a.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s', require_tag: false },
    },
    exporters: { prometheus: {}, otlp: { endpoint: rx.url, protocol: 'grpc' } },
    service: { pipelines: { metrics: { receivers: ['tailscale_api/a', 'tailscale_api/b', 'device_metrics'], exporters: ['prometheus', 'otlp'] } } },
  });
  await cycleOnce(t, service);
  const seen = new Set<string>();
  for (const r of rx.requests) {
    const tailnet = r.resource['tailscale.tailnet'];
    assert.ok(tailnet === 'a.example.com' || tailnet === 'b.example.com', `every request names its tailnet (${String(tailnet)})`);
    for (const m of r.metrics) {
      for (const p of m.points) {
        assert.equal(p.attributes.tailnet, tailnet, `${m.name}: a point sits in its own tailnet's resource`);
        if (m.name.startsWith('tsmetrics_device_scrape_')) seen.add(String(tailnet));
      }
    }
  }
  assert.deepEqual([...seen].sort(), ['a.example.com', 'b.example.com'], 'the one device batch went out as one resource per tailnet');
  const up = families(await renderPrometheus(service)).get('tsmetrics_device_scrape_up');
  assert.deepEqual([...new Set(up?.samples.map((s) => s.labels.tailnet))].sort(), ['a.example.com', 'b.example.com'], 'the same tailnets as labels on /metrics');
});

test('a label value no tailnet was configured with cannot create a resource: it goes with the inventory’s tailnet', async (t) => {
  const sim = await simulator(t);
  const rx = await receiver(t);
  const service = buildService({
    receivers: {
      tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], tailnet: sim.tailnet, interval: '1h' },
      device_metrics: { interval: '1h', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s' },
    },
    processors: { relabel: { rules: [{ target_label: 'tailnet', replacement: 'made-up-by-a-rule', source_labels: ['device_id'], regex: '(.+)' }] } },
    exporters: { otlp: { endpoint: rx.url, protocol: 'grpc' } },
    service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: ['relabel'], exporters: ['otlp'] } } },
  });
  await cycleOnce(t, service);
  assert.equal(rx.requests.length, 2);
  assert.deepEqual(rx.requests.map((r) => r.resource['tailscale.tailnet']), [sim.tailnet, sim.tailnet]);
});

test('environment: OTEL_EXPORTER_OTLP_PROTOCOL=grpc (and the METRICS_ variants winning), headers merged, OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, shards, temporality and the self-telemetry switch reach the wire', async (t) => {
  const sim = await simulator(t);
  const rx = await receiver(t);
  const env = {
    ...sim.env(),
    LOG_LEVEL: 'error',
    SCRAPE_INTERVAL: '1h',
    REQUIRE_EXPORTER_TAG: 'false',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: rx.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-a=1,x-b=2',
    OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-b=metrics%20only',
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'Delta',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,k8s.pod.name=tsmetrics-2',
    OTEL_SERVICE_NAME: 'tsmetrics-east',
    OTLP_SELF_TELEMETRY: 'false',
    SHARD_COUNT: '3',
    SHARD_INDEX: '2',
  };
  const registry = defaultRegistry();
  const config = loadConfig(env, { registry });
  const exporterConfig = config.exporters.get('otlp')?.config as { self_telemetry: { enabled: boolean }; temporality_preference: string };
  assert.deepEqual([exporterConfig.self_telemetry.enabled, exporterConfig.temporality_preference], [false, 'delta']);
  const service = new PipelineService(registry, config, { logger: memoryLogger().logger });
  await cycleOnce(t, service);
  assert.ok(rx.requests.length >= 1, 'the metrics endpoint was used as given, over gRPC');
  for (const r of rx.requests) {
    assert.deepEqual([r.metadata['x-a'], r.metadata['x-b']], ['1', 'metrics only']);
    assert.deepEqual(
      [r.resource['service.name'], r.resource['service.instance.id'], r.resource['tsmetrics.shard.index'], r.resource['deployment.environment'], r.resource['k8s.pod.name']],
      ['tsmetrics-east', `${hostname()}/shard-2`, 2, 'prod', 'tsmetrics-2'],
    );
  }
  assert.equal(rx.points('tsmetrics_source_up').length, 0);
});

test('environment: a gRPC endpoint from OTEL_EXPORTER_OTLP_ENDPOINT gets no /v1/metrics; bad values are named by their variable', () => {
  const base = { TS_API_KEY: 'tskey-api-x' };
  const cfg = loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
  assert.equal((cfg.exporters.get('otlp')?.config as { endpoint: string }).endpoint, 'http://collector:4317');
  const http = loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
  assert.equal((http.exporters.get('otlp')?.config as { endpoint: string }).endpoint, 'http://collector:4318/v1/metrics');
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig({ ...base, ...env });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => p.path);
      throw err;
    }
    return [];
  };
  assert.deepEqual(problems({ OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'weekly' }), ['OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE']);
  assert.deepEqual(problems({ OTEL_EXPORTER_OTLP_INSECURE: 'yes' }), ['OTEL_EXPORTER_OTLP_INSECURE']);
  assert.deepEqual(problems({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://collector:4317/v1/metrics', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), ['OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']);
  assert.deepEqual(problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_HEADERS: 'Bad Key=1' }), ['OTEL_EXPORTER_OTLP_HEADERS or OTEL_EXPORTER_OTLP_METRICS_HEADERS']);
  assert.deepEqual(problems({ OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent/ca.pem', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), ['OTEL_EXPORTER_OTLP_CERTIFICATE or OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE']);
});

test('our gRPC requests decode exactly like the official @opentelemetry/exporter-metrics-otlp-grpc exporter’s for the same batch; only a stale point differs, by its flag', async (t) => {
  const rx = await receiver(t);
  const snap = tailnetSnapshot(20);
  const batch: ResourceMetrics = { resource: snap.client.resource, scopeMetrics: snap.client.scopeMetrics };
  const official = new OTLPMetricExporter({ url: rx.url, credentials: credentials.createInsecure() });
  t.after(() => official.shutdown());
  await new Promise((resolve) => official.export(batch, resolve));
  const parsed = parseConfig(configSchema, { protocol: 'grpc', endpoint: rx.url }, 'test', 'otlp');
  assert.ok(parsed.ok);
  const ours = new GrpcTransport(parsed.config, undefined);
  t.after(() => ours.shutdown());
  assert.equal((await ours.export(batch)).code, 0);
  assert.equal(rx.requests.length, 2);
  const [theirs, mine] = rx.requests;
  assert.ok(theirs && mine);
  assert.ok(mine.metrics.reduce((n, m) => n + m.points.length, 0) > 500);
  assert.deepEqual(mine.resource, theirs.resource);
  assert.deepEqual(mine.scopes, theirs.scopes);
  assert.deepEqual(mine.metrics, theirs.metrics);
  // The official serializer cannot say "this series ended"; ours can.
  const first = batch.scopeMetrics[0]?.metrics[0]?.dataPoints[0];
  assert.ok(first);
  markStale(first);
  await new Promise((resolve) => official.export(batch, resolve));
  assert.equal((await ours.export(batch)).code, 0);
  const name = batch.scopeMetrics[0]?.metrics[0]?.descriptor.name;
  const flagOf = (i: number) => rx.requests[i]?.metrics.find((m) => m.name === name)?.points[0];
  assert.equal(flagOf(2)?.flags, 0, 'official: a value, no flag');
  assert.deepEqual([flagOf(3)?.flags, flagOf(3)?.value], [1, undefined], 'ours: NO_RECORDED_VALUE and no value');
});

test('the encoder writes what the official serializer writes for awkward values: unicode and long labels, negative and large integers, booleans, doubles, NaN, ±Inf, times before and after 2038, many points', () => {
  const long = 'ü'.repeat(50) + 'x'.repeat(300);
  const b = new BatchBuilder({ 'service.name': 'tsmetrics', 'big.int': 2 ** 40, neg: -7, flag: true, ratio: 0.25, emoji: '🚀 tailnet' }, { name: 'edge', version: '1' });
  const g = b.gauge('edge_gauge', 'ünïcode help ✓');
  const c = b.counter('edge_total', long);
  for (let i = 0; i < 3000; i++) g.add({ device_id: String(i), name: i % 7 ? `dev-${i}` : long, n: i - 1500 }, i % 11 === 0 ? NaN : i % 13 === 0 ? -Infinity : i / 3, 1_700_000_000_000 + i, 1_600_000_000_000);
  c.add({ device_id: 'late' }, 1e300, Date.UTC(2100, 0, 1), Date.UTC(2039, 0, 1));
  c.add({ device_id: 'epoch' }, Infinity, 0, 0);
  const rm = b.build();
  const ours = decodeProtobuf(Buffer.from(encodeMetricsRequest(rm)));
  const theirs = decodeProtobuf(Buffer.from(ProtobufMetricsSerializer.serializeRequest(rm) as Uint8Array));
  assert.deepEqual(ours, theirs);
  assert.equal(ours.metrics[0]?.points.length, 3000);
  // Wide points: the encoder's table of lengths grows while it records attributes.
  for (const points of [20, 21, 41, 83, 167]) {
    const w = new BatchBuilder({}, { name: 'wide' });
    const m = w.gauge('wide_gauge', '');
    for (let i = 0; i < points; i++) m.add(Object.fromEntries(Array.from({ length: 50 }, (_, k) => [`k${k}`, k % 3 ? `v${i}-${k}` : i * k])), i, 1_700_000_000_000);
    const wide = w.build();
    assert.deepEqual(decodeProtobuf(Buffer.from(encodeMetricsRequest(wide))), decodeProtobuf(Buffer.from(ProtobufMetricsSerializer.serializeRequest(wide) as Uint8Array)), `${points} wide points`);
  }
});
