import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { SeverityNumber, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { defaultRegistry } from '../../src/components.ts';
import type { OutputStream } from '../../src/log/logger.ts';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import { buildService, manualClock } from '../../test/helpers/index.ts';
import { LogsSource, logRecord } from '../../test/helpers/logs-source.ts';
import { createDebugExporterFactory, type DebugExporterComponent } from './index.ts';
import { MAX_LINE_CHARS, MAX_VALUE_CHARS } from './format.ts';

/** What a reader of the pipe sees: the bytes, split into lines. */
function capture(): { stream: PassThrough; lines: () => string[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

const scope = { name: 'tsmetrics/test', version: '1' };

function logsPipeline(t: TestContext, debug: Record<string, unknown>, stream: OutputStream, clock = manualClock(1_700_000_000_000)) {
  const source = new LogsSource();
  const service = buildService(
    {
      receivers: { test_logs: {} },
      exporters: { debug },
      service: { pipelines: { logs: { receivers: ['test_logs'], exporters: ['debug'] } } },
    },
    { registry: defaultRegistry([source.factory, createDebugExporterFactory({ stdout: stream, stderr: stream })]), clock },
  );
  t.after(() => service.shutdown(AbortSignal.timeout(2000)));
  const deliver = async (batch: readonly ReadableLogRecord[]) => {
    source.pending.push(batch);
    await service.collectNow();
  };
  return { service, deliver, clock, exporter: service.exporters.get('debug') as DebugExporterComponent };
}

const flows = resourceFromAttributes({ 'tailscale.tailnet': 'example.com', 'service.name': 'tsmetrics' });
function flowBatch(n = 2): ReadableLogRecord[] {
  return Array.from({ length: n }, (_, i) =>
    logRecord(flows, scope, { hrTime: [1_700_000_000, 5], severityNumber: SeverityNumber.INFO, severityText: 'INFO', eventName: 'tailscale.network.flow', body: `flow ${i}`, attributes: { src: '100.64.0.1', dst_port: 443, proto: 'tcp' } }),
  );
}

// Anything a terminal could act on: C0/C1 controls, DEL, separators, bidi controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

test('debug text: basic is one summary line per batch; normal one line per record; detailed adds the resource and every attribute', async (t) => {
  for (const [verbosity, expected] of [
    ['basic', ['logs pipeline=logs source=test_logs resource_logs=1 log_records=2']],
    [
      'normal',
      [
        'logs pipeline=logs source=test_logs resource_logs=1 log_records=2',
        'log time=2023-11-14T22:13:20.000000005Z severity=INFO severity_number=9 event=tailscale.network.flow body="flow 0"',
        'log time=2023-11-14T22:13:20.000000005Z severity=INFO severity_number=9 event=tailscale.network.flow body="flow 1"',
      ],
    ],
    [
      'detailed',
      [
        'logs pipeline=logs source=test_logs resource_logs=1 log_records=2',
        'resource index=0 attributes={tailscale.tailnet=example.com service.name=tsmetrics}',
        'log time=2023-11-14T22:13:20.000000005Z severity=INFO severity_number=9 event=tailscale.network.flow body="flow 0" observed=2023-11-14T22:13:20.000000005Z resource_index=0 scope=tsmetrics/test attributes={src=100.64.0.1 dst_port=443 proto=tcp}',
        'log time=2023-11-14T22:13:20.000000005Z severity=INFO severity_number=9 event=tailscale.network.flow body="flow 1" observed=2023-11-14T22:13:20.000000005Z resource_index=0 scope=tsmetrics/test attributes={src=100.64.0.1 dst_port=443 proto=tcp}',
      ],
    ],
  ] as const) {
    const out = capture();
    const { deliver } = logsPipeline(t, { verbosity }, out.stream);
    await deliver(flowBatch());
    assert.deepEqual(out.lines(), expected, verbosity);
  }
});

test('debug json: one JSON object per line, values as they were', async (t) => {
  const out = capture();
  const { deliver } = logsPipeline(t, { verbosity: 'detailed', format: 'json' }, out.stream);
  const res = resourceFromAttributes({ 'tailscale.tailnet': 'example.com' });
  await deliver([logRecord(res, scope, { body: { action: 'login', n: [1, 2.5, true] }, attributes: { bytes: new Uint8Array([1, 2]) } as unknown as Attributes })]);
  const objs = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(objs, [
    { kind: 'logs', pipeline: 'logs', source: 'test_logs', resource_logs: 1, log_records: 1 },
    { kind: 'resource', index: 0, attributes: { 'tailscale.tailnet': 'example.com' } },
    {
      kind: 'log',
      time: '2023-11-14T22:13:20.123456789Z',
      body: { action: 'login', n: [1, 2.5, true] },
      observed: '2023-11-14T22:13:20.123456789Z',
      resource_index: 0,
      scope: 'tsmetrics/test',
      attributes: { bytes: { bytes: 'AQI=', length: 2 } },
    },
  ]);
});

test('debug metrics: a real tailscale_api pipeline, summary, one line per metric, and points in detailed', async (t) => {
  const sim = new TailnetSimulator({ devices: 3 });
  await sim.start();
  t.after(() => sim.stop());
  for (const verbosity of ['basic', 'normal', 'detailed'] as const) {
    const out = capture();
    const service = buildService(
      {
        receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], tailnet: sim.tailnet, interval: '1h' } },
        exporters: { debug: { verbosity } },
        service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['debug'] } } },
      },
      { registry: defaultRegistry([createDebugExporterFactory({ stdout: out.stream })]) },
    );
    t.after(() => service.shutdown(AbortSignal.timeout(2000)));
    await service.collectNow();
    const lines = out.lines();
    const summary = lines.filter((l) => l.startsWith('metrics '));
    assert.equal(summary.length, 1, verbosity);
    assert.match(summary[0] ?? '', /^metrics pipeline=metrics source=tailscale_api resource_metrics=1 metrics=\d+ data_points=\d+$/);
    const metricLines = lines.filter((l) => l.startsWith('metric '));
    const online = metricLines.find((l) => l.includes('name=tailscale_device_online '));
    if (verbosity === 'basic') assert.equal(lines.length, 1);
    else {
      assert.equal(online, 'metric name=tailscale_device_online type=gauge data_points=3');
      assert.equal(metricLines.length, Number(/ metrics=(\d+)/.exec(summary[0] ?? '')?.[1]), 'one line per metric');
    }
    const points = lines.filter((l) => l.startsWith('point metric=tailscale_device_online '));
    if (verbosity === 'detailed') {
      assert.equal(points.length, 3);
      for (const d of sim.devices) assert.ok(points.some((p) => p.includes(`device_id=${d.api.id}`)), d.api.id);
      assert.ok(lines.some((l) => l.startsWith('resource attributes={') && l.includes(`tailscale.tailnet=${sim.tailnet}`)));
    } else assert.equal(points.length, 0);
  }
});

test('debug sampling: the first sampling_initial batches of a second, then every sampling_thereafter-th; a new second starts over', async (t) => {
  const out = capture();
  const { deliver, clock, exporter } = logsPipeline(t, { sampling_initial: 2, sampling_thereafter: 3 }, out.stream);
  for (let i = 1; i <= 8; i++) await deliver(flowBatch(i));
  // Batches 1, 2, then 5 and 8.
  assert.deepEqual(out.lines().map((l) => /log_records=(\d+)/.exec(l)?.[1]), ['1', '2', '5', '8']);
  clock.advance(1000);
  await deliver(flowBatch(9));
  assert.equal(out.lines().at(-1)?.match(/log_records=(\d+)/)?.[1], '9', 'a new second');
  assert.deepEqual([exporter.stats.written, exporter.stats.sampledOut], [5, 4]);
});

test('debug: device strings with ANSI escapes, newlines, bidi overrides and a 1 MB attribute come out escaped, one line each, bounded', async (t) => {
  const hostile = '\u001b[31mred\u001b[0m\nforged line\r\u202eevil\u0007\u009b';
  const huge = 'A'.repeat(1024 * 1024);
  const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, 'v'.repeat(2000)]));
  const res = resourceFromAttributes({ 'host.name': hostile });
  const batch = [
    logRecord(res, scope, { body: hostile, severityText: hostile, eventName: hostile, attributes: { [hostile]: hostile, big: huge } }),
    logRecord(res, scope, { body: many, attributes: many }),
  ];
  for (const format of ['text', 'json'] as const) {
    const out = capture();
    const { deliver } = logsPipeline(t, { verbosity: 'detailed', format }, out.stream);
    await deliver(batch);
    const lines = out.lines();
    assert.equal(lines.length, 4, `${format}: summary, resource, two records — no line was split by a newline in the data`);
    for (const l of lines) {
      assert.ok(!CONTROL.test(l), `${format}: no control character: ${JSON.stringify(l.slice(0, 200))}`);
      assert.ok(l.length <= MAX_LINE_CHARS + 64, `${format}: ${l.length} chars`);
    }
    const first = lines[2] ?? '';
    assert.ok(first.length < 8 * MAX_VALUE_CHARS, 'the 1 MB attribute is cut');
    if (format === 'text') {
      assert.ok(first.includes('body="\\x1b[31mred\\x1b[0m\\nforged line\\r\\u202eevil\\x07\\x9b"'), first.slice(0, 300));
      assert.ok(first.includes(`big="${'A'.repeat(MAX_VALUE_CHARS)}…(+${huge.length - MAX_VALUE_CHARS} chars)"`));
      assert.match(lines[3] ?? '', /…\(line cut, \+\d+ chars\)$/);
    } else {
      const rec = JSON.parse(first) as { body: string; severity: string; attributes: Record<string, string> };
      assert.equal(rec.body, hostile, 'JSON carries the exact string, escaped');
      assert.equal(rec.attributes.big, `${'A'.repeat(MAX_VALUE_CHARS)}…(+${huge.length - MAX_VALUE_CHARS} chars)`);
      const wide = JSON.parse(lines[3] ?? '') as Record<string, unknown>;
      assert.deepEqual([wide.kind, wide.omitted], ['log', ['body', 'attributes']], 'an oversized line keeps its short fields and says what it left out');
    }
  }
});

test('debug: a closed pipe neither throws nor stops the pipeline; nothing more is written to it', async (t) => {
  // The reader end of a loopback connection goes away, as `tsmetrics | head -1` does.
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => server.close());
  const socket: Socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  t.after(() => socket.destroy());
  const { deliver, exporter } = logsPipeline(t, { verbosity: 'detailed' }, socket);
  for (let i = 0; i < 50; i++) {
    await deliver(flowBatch(20));
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 50));
  await deliver(flowBatch(20));
  assert.equal(exporter.stats.written, 51, 'every batch was taken');
  assert.ok(socket.destroyed, 'the pipe broke');
  // A stream that fails every write, as a pipe whose reader is gone.
  const failing = new Writable({ write: (_c, _e, cb) => cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) });
  const broken = logsPipeline(t, {}, failing);
  for (let i = 0; i < 5; i++) await broken.deliver(flowBatch());
  assert.equal(broken.exporter.stats.written, 5);
});

test('debug: a reader that stops reading costs lines, not memory or time; it is told how many it missed', async (t) => {
  const held: Array<() => void> = [];
  let received = '';
  const stalled = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _e, cb) {
      received += chunk.toString('utf8');
      held.push(cb);
    },
  });
  const { deliver, exporter } = logsPipeline(t, { verbosity: 'normal' }, stalled);
  const big = Array.from({ length: 200 }, () => logRecord(flows, scope, { body: 'x'.repeat(900) }));
  for (let i = 0; i < 20; i++) await deliver(big);
  assert.equal(exporter.stats.written, 20, 'every batch was taken while nothing was read');
  assert.ok(stalled.writableLength <= 1024 * 1024 + 16 * 1024, `${stalled.writableLength} bytes held`);
  assert.ok(exporter.stats.lines * 900 > 2 * 1024 * 1024, 'more was offered than is held');
  // The reader catches up: the next line says how many were dropped.
  const drain = async () => {
    while (stalled.writableLength > 0 || held.length) {
      held.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
  };
  await drain();
  await deliver(flowBatch(1));
  await drain();
  assert.match(received, /\n\d+ log lines dropped: the reader was not keeping up\nlogs pipeline=logs source=test_logs resource_logs=1 log_records=1\n/);
});
