import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { SeverityNumber, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { defaultRegistry } from '../../src/components.ts';
import { ConfigError } from '../../src/errors.ts';
import { loadConfig } from '../../src/app.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { PipelineService } from '../../src/pipeline/service.ts';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import { buildService, families, memoryLogger, sampleValue } from '../../test/helpers/index.ts';
import { OtlpReceiver } from '../../test/helpers/otlp-receiver.ts';
import { OtlpGrpcReceiver } from '../../test/helpers/otlp-grpc-receiver.ts';
import { LogsSource, logRecord } from '../../test/helpers/logs-source.ts';
import { configSchema, signalSettings } from './config.ts';
import type { OtlpExporterComponent } from './otlp.ts';

const scope = { name: 'tsmetrics/test_logs', version: '1.2.3' };

/** A logs pipeline `test_logs → otlp` (and whatever else `exporters` names). */
function logsService(t: TestContext, otlp: Record<string, unknown>, opts: { logger?: ReturnType<typeof memoryLogger> } = {}) {
  const source = new LogsSource();
  const logger = opts.logger ?? memoryLogger();
  const service = buildService(
    {
      receivers: { test_logs: {} },
      exporters: { otlp: { self_telemetry: { enabled: false }, ...otlp } },
      service: { pipelines: { logs: { receivers: ['test_logs'], exporters: ['otlp'] } } },
    },
    { registry: defaultRegistry([source.factory]), logger: logger.logger },
  );
  t.after(() => service.shutdown(AbortSignal.timeout(3000)));
  const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
  const deliver = async (batch: readonly ReadableLogRecord[]) => {
    source.pending.push(batch);
    await service.collectNow();
  };
  return { service, exporter, deliver, lines: logger.lines };
}

async function receiver(t: TestContext): Promise<OtlpReceiver> {
  const rx = new OtlpReceiver();
  await rx.start();
  t.after(() => rx.stop());
  return rx;
}

async function selfMetrics(service: PipelineService) {
  const { resourceMetrics } = await service.telemetry.collect();
  const { PrometheusSerializer } = await import('@opentelemetry/exporter-prometheus');
  return families(new PrometheusSerializer('', false).serialize(resourceMetrics));
}

/** An attribute of every AnyValue kind; sent as given, and what the decoded record must hold. */
const RICH_ATTRIBUTES = {
  str: 'hello',
  int: 42,
  negative: -7,
  big: 2 ** 53 - 1,
  dbl: 0.25,
  flag: false,
  strings: ['a', 'b'],
  numbers: [1, 2.5],
  nested: { k: 'v', n: 1, deeper: { ok: true } },
  bytes: new Uint8Array([0, 1, 254, 255]),
  unicode: 'ünïcode 🚀',
};

/** Records of every kind a log record can carry, in two resources of one batch. */
function richBatch(): ReadableLogRecord[] {
  const flows = resourceFromAttributes({ 'service.name': 'overridden-by-identity', 'tailscale.tailnet': 'example.com', 'receiver.own': 'flow-logs' });
  const audit = resourceFromAttributes({ 'tailscale.tailnet': 'corp.example', 'receiver.own': 'audit' });
  const attributes = RICH_ATTRIBUTES as unknown as Attributes;
  return [
    logRecord(flows, scope, { hrTime: [1_700_000_000, 123_456_789], hrTimeObserved: [1_700_000_001, 5], severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'flow started', attributes, eventName: 'tailscale.network.flow' }),
    logRecord(audit, scope, { hrTime: [1_600_000_000, 0], severityNumber: SeverityNumber.WARN2, severityText: 'WARN2', body: { action: 'login', actor: { id: 7, admin: true } }, attributes: { only: 'audit' } }),
    logRecord(flows, scope, { body: ['x', 1, true, 2.5, { k: 'v' }] }),
    logRecord(flows, scope, { body: true }),
    logRecord(flows, scope, { body: 12345678901 }),
    logRecord(flows, scope, { body: -0.5, spanContext: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 } }),
  ];
}

type Decoded = ReturnType<OtlpReceiver['records']>;

function assertRich(records: Decoded, extra: Record<string, unknown>): void {
  assert.equal(records.length, 6, 'every record once');
  const [flow, audit, arr, bool, int, dbl] = records.toSorted((a, b) => order(a) - order(b));
  assert.ok(flow && audit && arr && bool && int && dbl);
  assert.equal(flow.timeUnixNano, 1_700_000_000_123_456_789n);
  assert.equal(flow.observedTimeUnixNano, 1_700_000_001_000_000_005n);
  assert.deepEqual([flow.severityNumber, flow.severityText, flow.body, flow.eventName], [9, 'INFO', 'flow started', 'tailscale.network.flow']);
  assert.deepEqual(flow.attributes, RICH_ATTRIBUTES);
  assert.equal(audit.timeUnixNano, 1_600_000_000_000_000_000n);
  assert.deepEqual([audit.severityNumber, audit.severityText], [14, 'WARN2']);
  assert.deepEqual(audit.body, { action: 'login', actor: { id: 7, admin: true } });
  assert.deepEqual(arr.body, ['x', 1, true, 2.5, { k: 'v' }]);
  assert.equal(bool.body, true);
  assert.equal(int.body, 12345678901);
  assert.equal(dbl.body, -0.5);
  assert.deepEqual([dbl.traceId, dbl.spanId, dbl.flags], ['0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', 1]);
  for (const r of records) {
    assert.deepEqual(r.scope, { name: 'tsmetrics/test_logs', version: '1.2.3', attributes: {} });
    assert.equal(r.resource['service.name'], 'tsmetrics', 'identity wins over the receiver’s own');
    assert.equal(r.resource['service.instance.id'], hostname());
    assert.match(String(r.resource['service.version']), /^\d+\.\d+\.\d+/);
    for (const [k, v] of Object.entries(extra)) assert.equal(r.resource[k], v, 'resource_attributes win');
  }
  assert.equal(flow.resource['tailscale.tailnet'], 'example.com');
  assert.equal(flow.resource['receiver.own'], 'flow-logs');
  assert.equal(audit.resource['tailscale.tailnet'], 'corp.example');
  assert.equal(audit.resource['receiver.own'], 'audit');
}

function order(r: Decoded[number]): number {
  if (r.eventName) return 0;
  if (r.attributes.only) return 1;
  if (Array.isArray(r.body)) return 2;
  if (typeof r.body === 'boolean') return 3;
  return typeof r.body === 'number' && Number.isInteger(r.body) ? 4 : 5;
}

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  test(`OTLP logs over ${protocol}: every field of every record, grouped by resource, at the endpoint’s /v1/logs`, async (t) => {
    const rx = await receiver(t);
    const { exporter, deliver, service } = logsService(t, { endpoint: rx.url, protocol, compression: protocol === 'http/json' ? 'gzip' : 'none', headers: { 'x-tenant': 'acme' }, logs_headers: { 'x-signal': 'logs' }, metrics_headers: { 'x-metrics-only': '1' }, resource_attributes: { 'deployment.environment': 'prod' } });
    await deliver(richBatch());
    await exporter.flush();
    assert.equal(rx.requests.length, 0, 'nothing went to /v1/metrics');
    assert.equal(rx.logRequests.length, 1, 'one request for the batch');
    const req = rx.logRequests[0];
    assert.ok(req);
    assert.match(req.contentType, protocol === 'http/json' ? /application\/json/ : /application\/x-protobuf/);
    assert.deepEqual([req.headers['x-tenant'], req.headers['x-signal'], req.headers['x-metrics-only']], ['acme', 'logs', undefined]);
    if (protocol === 'http/json') assert.equal(req.encoding, 'gzip');
    assert.equal(req.resourceLogs.length, 2, 'one ResourceLogs per input resource, not per record');
    assert.deepEqual(req.resourceLogs.map((rl) => rl.scopeLogs.reduce((n, s) => n + s.records.length, 0)), [5, 1]);
    assertRich(rx.records(), { 'deployment.environment': 'prod' });
    assert.deepEqual([exporter.stats.sentLogBatches, exporter.stats.sentLogRecords, exporter.stats.droppedLogRecords, exporter.stats.sentPoints], [1, 6, 0, 0]);
    const self = await selfMetrics(service);
    assert.equal(sampleValue(self, 'tsmetrics_component_sent_log_records_total', { component_id: 'otlp' }), 6);
    assert.equal(sampleValue(self, 'tsmetrics_component_received_log_records_total', { component_id: 'otlp' }), 6);
  });
}

test('OTLP logs over gRPC: the LogsService receives every field of every record, with metadata', async (t) => {
  const rx = new OtlpGrpcReceiver();
  await rx.start();
  t.after(() => rx.stop());
  const { exporter, deliver } = logsService(t, { endpoint: rx.url, protocol: 'grpc', compression: 'gzip', headers: { 'x-tenant': 'acme' }, resource_attributes: { 'k8s.pod.name': 'tsmetrics-0' } });
  await deliver(richBatch());
  await exporter.flush();
  assert.equal(rx.requests.length, 0, 'nothing on the metrics service');
  assert.equal(rx.logRequests.length, 1);
  assert.equal(rx.logRequests[0]?.metadata['x-tenant'], 'acme');
  assertRich(rx.records(), { 'k8s.pod.name': 'tsmetrics-0' });
  assert.equal(exporter.stats.sentLogRecords, 6);
});

test('OTLP logs: a resource without a tailnet takes the inventory’s; metrics and logs share one exporter, each on its own path', async (t) => {
  const rx = await receiver(t);
  const { exporter, deliver } = logsService(t, { endpoint: rx.url });
  const bare = resourceFromAttributes({ 'receiver.own': 'x' });
  await deliver([logRecord(bare, scope, { body: 'a' }), logRecord(bare, scope, { body: 'b' })]);
  await exporter.flush();
  const recs = rx.records();
  assert.deepEqual(recs.map((r) => r.body), ['a', 'b']);
  assert.equal(rx.logRequests[0]?.resourceLogs.length, 1, 'records of one resource stay together');
  assert.equal(recs[0]?.resource['tailscale.tailnet'], undefined, 'no inventory, no tailnet');
  assert.equal(recs[0]?.resource['service.name'], 'tsmetrics');
});

for (const max of [0, 1_000_000]) {
  test(`OTLP logs: a batch that cannot be encoded fails alone, at once, counted and logged; the batches around it arrive (max_request_bytes ${max})`, async (t) => {
    // A body that refers to itself cannot be written by any encoder. Before, its throw escaped
    // as an unhandled rejection (failing this file) and its deadline later cut off the next
    // batch in flight.
    const rx = await receiver(t);
    const logger = memoryLogger();
    const { exporter, deliver } = logsService(t, { endpoint: rx.url, max_request_bytes: max, timeout: '3s' }, { logger });
    const res = resourceFromAttributes({ 'tailscale.tailnet': 'example.com' });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const began = Date.now();
    await deliver([logRecord(res, scope, { body: 'before' })]);
    await deliver([logRecord(res, scope, { body: cyclic as never }), logRecord(res, scope, { body: 'same batch' })]);
    await deliver([logRecord(res, scope, { body: 'after' })]);
    await exporter.flush();
    assert.deepEqual(rx.records().map((r) => r.body), ['before', 'after']);
    assert.deepEqual([exporter.stats.sentLogBatches, exporter.stats.droppedLogBatches, exporter.stats.droppedLogRecords], [2, 1, 2]);
    assert.ok(Date.now() - began < 2500, 'the broken batch does not wait for its deadline');
    assert.equal(logger.lines.filter((l) => l.includes('OTLP logs export failed') && l.includes('could not be encoded')).length, 1);
  });
}

test('OTLP logs: 429 and 503 with Retry-After are retried; a Retry-After past the deadline is not waited for; a failing endpoint drops and counts records as logs, logged once per kind', async (t) => {
  const rx = await receiver(t);
  const logger = memoryLogger();
  const { exporter, deliver, service } = logsService(t, { endpoint: rx.url, timeout: '5s' }, { logger });
  rx.script.push({ status: 429, retryAfter: '1' }, { status: 503 });
  await deliver(richBatch());
  await exporter.flush();
  assert.equal(rx.logRequests.length, 1, 'arrived after two retries');
  assert.deepEqual([exporter.stats.sentLogBatches, exporter.stats.droppedLogBatches], [1, 0]);
  // A Retry-After past the deadline is not waited for: the batch fails after one request.
  rx.script.push({ status: 503, retryAfter: '3600' }, { status: 200 });
  await deliver(richBatch());
  await exporter.flush();
  assert.deepEqual([exporter.stats.sentLogBatches, exporter.stats.droppedLogBatches, rx.script.length], [1, 1, 1]);
  rx.script.length = 0;
  // A final status: the batch is dropped.
  rx.script.push({ status: 400 }, { status: 400 });
  await deliver(richBatch());
  await deliver(richBatch());
  await exporter.flush();
  assert.deepEqual([exporter.stats.droppedLogBatches, exporter.stats.droppedLogRecords, exporter.stats.droppedPoints], [3, 18, 0]);
  const self = await selfMetrics(service);
  assert.equal(sampleValue(self, 'tsmetrics_component_dropped_log_records_total', { component_id: 'otlp' }), 18);
  assert.equal(sampleValue(self, 'tsmetrics_component_dropped_points_total', { component_id: 'otlp' }), undefined);
  const failed = logger.lines.filter((l) => l.includes('OTLP logs export failed'));
  assert.equal(failed.length, 2, 'one line per kind of failure (503, then 400), not one per batch');
  assert.match(failed[1] ?? '', /\/v1\/logs/);
  await deliver(richBatch());
  await exporter.flush();
  assert.equal(exporter.stats.sentLogBatches, 2);
  assert.ok(logger.lines.some((l) => l.includes('OTLP logs export recovered')));
});

/** An HTTP server that takes requests and never answers them. */
async function silentServer(t: TestContext): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const server: Server = createServer(() => {
    n++;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`, requests: () => n };
}

test('OTLP logs: the queue is bounded and the whole exchange has a deadline; shutdown names the logs batches it cut off', async (t) => {
  const silent = await silentServer(t);
  const { exporter, deliver, service } = logsService(t, { logs_endpoint: silent.url, logs_timeout: '300ms', timeout: '10s', max_queue_batches: 2 });
  // One batch goes on the wire and hangs until the deadline; of the four behind it two are kept.
  for (let i = 0; i < 5; i++) await deliver([logRecord(resourceFromAttributes({}), scope, { body: `batch ${i}` })]);
  assert.equal(exporter.stats.droppedLogBatches, 2, 'the oldest beyond max_queue_batches');
  await exporter.flush();
  assert.equal(exporter.stats.droppedLogBatches, 5, 'every batch that hung was cut at logs_timeout and counted');
  assert.equal(exporter.stats.sentLogBatches, 0);
  assert.ok(silent.requests() >= 3);
  // Shutdown with a batch in flight that never finishes.
  await deliver([logRecord(resourceFromAttributes({}), scope, { body: 'last' })]);
  await deliver([logRecord(resourceFromAttributes({}), scope, { body: 'after last' })]);
  await service.shutdown(AbortSignal.timeout(150));
  assert.equal(exporter.shutdownCutOff(), '2 logs batches not sent (the endpoint had not taken them by the deadline)');
  assert.equal(exporter.stats.droppedLogBatches, 7);
});

test('OTLP logs: a batch over max_request_bytes goes as several requests of whole records, each within the limit, every record once and in order', async (t) => {
  const rx = await receiver(t);
  const { exporter, deliver } = logsService(t, { endpoint: rx.url, max_request_bytes: 4096 });
  const res = resourceFromAttributes({ 'tailscale.tailnet': 'example.com' });
  const batch = Array.from({ length: 300 }, (_, i) => logRecord(res, scope, { body: `record ${i} ${'x'.repeat(i % 50)}`, attributes: { i, src: `100.64.0.${i % 250}` } }));
  // One record alone is over the limit: it travels by itself.
  batch.splice(150, 0, logRecord(res, scope, { body: 'y'.repeat(10_000), attributes: { i: -1 } }));
  await deliver(batch);
  await exporter.flush();
  assert.ok(rx.logRequests.length > 3, `${rx.logRequests.length} requests`);
  const alone = rx.logRequests.filter((r) => r.resourceLogs[0]?.scopeLogs[0]?.records[0]?.attributes.i === -1);
  assert.deepEqual(alone.map((r) => r.resourceLogs[0]?.scopeLogs[0]?.records.length), [1], 'the oversized record went alone');
  rx.logRequests.forEach((r, i) => {
    if (alone.includes(r)) return;
    assert.ok(r.bytes <= 4096, `${r.bytes} bytes`);
    // Not needlessly small: a part is cut only when the next record would not fit.
    if (i < rx.logRequests.length - 1 && !alone.includes(rx.logRequests[i + 1] as (typeof rx.logRequests)[number])) assert.ok(r.bytes > 4096 - 200, `${r.bytes} bytes`);
  });
  assert.deepEqual(rx.records().map((r) => r.attributes.i), batch.map((r) => r.attributes.i));
  for (const r of rx.records()) assert.equal(r.resource['tailscale.tailnet'], 'example.com', 'every part has the resource');
  assert.deepEqual([exporter.stats.sentLogBatches, exporter.stats.sentLogRecords], [1, 301]);
});

test('logs_endpoint: derived from a /v1/metrics endpoint, else the default; a bad one is named by its key', () => {
  const parse = (c: Record<string, unknown>) => {
    const r = parseConfig(configSchema, c, 'test', 'otlp');
    if (!r.ok) throw new Error(r.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    return signalSettings(r.config, 'logs');
  };
  assert.equal(parse({ endpoint: 'https://c.example:4318/v1/metrics' }).endpoint, 'https://c.example:4318/v1/logs');
  assert.equal(parse({ endpoint: 'https://c.example/ingest/otlp' }).endpoint, 'http://localhost:4318/v1/logs');
  assert.equal(parse({}).endpoint, 'http://localhost:4318/v1/logs');
  assert.equal(parse({ endpoint: 'c.example:4317', protocol: 'grpc' }).endpoint, 'c.example:4317');
  assert.equal(parse({ endpoint: 'https://c.example:4318/v1/metrics', logs_protocol: 'grpc' }).endpoint, 'http://localhost:4317');
  assert.deepEqual(parse({ logs_endpoint: 'https://logs.example/v1/logs', logs_timeout: '2s', logs_compression: 'gzip', timeout: '9s' }), {
    signal: 'logs',
    endpoint: 'https://logs.example/v1/logs',
    protocol: 'http/protobuf',
    headers: {},
    compression: 'gzip',
    timeout: 2000,
    insecure: false,
  });
  const r = parseConfig(configSchema, { logs_endpoint: 'ftp://x/v1/logs' }, 'test', 'otlp');
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => p.path), ['otlp.logs_endpoint']);
  const g = parseConfig(configSchema, { logs_protocol: 'grpc', logs_headers: { 'Bad Key': '1' } }, 'test', 'otlp');
  assert.ok(!g.ok);
  assert.match(g.problems[0]?.path ?? '', /^otlp\.logs_headers\.Bad Key$/);
});

test('environment: OTEL_EXPORTER_OTLP_LOGS_* win over the general variables for logs, and the general endpoint gets /v1/logs', () => {
  const base = { TS_API_KEY: 'tskey-api-x' };
  const otlpOf = (env: Record<string, string>) => loadConfig({ ...base, ...env }).exporters.get('otlp')?.config as Record<string, unknown> & Parameters<typeof signalSettings>[0];
  const general = otlpOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/', OTEL_EXPORTER_OTLP_HEADERS: 'x-a=1', OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-m=2' });
  assert.deepEqual(signalSettings(general, 'logs'), { signal: 'logs', endpoint: 'http://collector:4318/v1/logs', protocol: 'http/protobuf', headers: { 'x-a': '1' }, compression: 'none', timeout: 10_000, insecure: false });
  assert.deepEqual(signalSettings(general, 'metrics').headers, { 'x-a': '1', 'x-m': '2' });
  const specific = otlpOf({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'https://logs.example/custom/path',
    OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'x-l=3',
    OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: '2500',
    OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: 'gzip',
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
  });
  assert.deepEqual(signalSettings(specific, 'logs'), { signal: 'logs', endpoint: 'https://logs.example/custom/path', protocol: 'http/json', headers: { 'x-l': '3' }, compression: 'gzip', timeout: 2500, insecure: false });
  assert.equal(signalSettings(specific, 'metrics').endpoint, 'http://collector:4318/v1/metrics');
  // gRPC: the general endpoint is used as given; only a metrics endpoint is set: logs take the default.
  assert.equal(signalSettings(otlpOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), 'logs').endpoint, 'http://collector:4317');
  assert.equal(signalSettings(otlpOf({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:4318/v1/metrics' }), 'logs').endpoint, 'http://localhost:4318/v1/logs');
  assert.throws(() => otlpOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'smtp' }), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path === 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL'));
});

test('environment: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT alone sends the logs there, and no metrics anywhere', async (t) => {
  const rx = await receiver(t);
  const sim = new TailnetSimulator({ deviceServers: false });
  await sim.start();
  t.after(() => sim.stop());
  const logger = memoryLogger();
  const env = { ...sim.env(), OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: rx.logsUrl, SCRAPE_INTERVAL: '1h', TS_LOG_INITIAL_WINDOW: '30m' };
  const config = loadConfig(env);
  const otlpConfig = config.exporters.get('otlp')?.config as Parameters<typeof signalSettings>[0] & { self_telemetry: { enabled: boolean } };
  assert.ok(otlpConfig, 'an otlp exporter is made for the logs');
  assert.equal(signalSettings(otlpConfig, 'logs').endpoint, rx.logsUrl);
  assert.equal(otlpConfig.self_telemetry.enabled, false, 'its own metrics have nowhere to go');
  const service = new PipelineService(defaultRegistry(), config, { logger: logger.logger });
  t.after(() => service.shutdown(AbortSignal.timeout(3000)));
  await service.start();
  await service.collectNow();
  const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
  await exporter.flush();
  assert.ok(rx.records().some((r) => r.eventName === 'tailscale.network.flow'), 'flow logs arrived');
  assert.ok(rx.records().some((r) => r.eventName === 'tailscale.configuration.audit'), 'audit logs arrived');
  assert.equal(rx.requests.length, 0, 'no metrics request: the logs endpoint is not a metrics endpoint');
  assert.equal(exporter.stats.sentPoints, 0);
});
