/**
 * Hostile review of the per-scrape render of the Prometheus page (label texts cached on the
 * attributes objects, large pages written into UTF-8 buffers and streamed as they render).
 * What a source, a processor, a library caller or an HTTP client can throw at it: odd attributes
 * objects, one object in several metrics and formats, multi-byte text across buffer boundaries,
 * concurrent scrapes, clients that leave, HEAD, and renders that throw after the headers went out.
 * Wherever the official serializer applies, the bytes a client reads are compared with its output.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { Attributes } from '@opentelemetry/api';
import type { DataPoint, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchBuilder } from '../src/model/batch.ts';
import type { PipelineService } from '../src/pipeline/service.ts';
import { serializePrometheusText } from '../exporters/prometheus/serializer.ts';
import { serveBatch, type ServedBatch } from './helpers/serve-batch.ts';

const official = new PrometheusSerializer(undefined, false, undefined, true, true);
const OM = 'application/openmetrics-text;version=1.0.0';
const UTF8 = 'text/plain;version=0.0.4;escaping=allow-utf-8';

type Served = ServedBatch;

function serve(t: TestContext, batch: ResourceMetrics): Promise<Served> {
  return serveBatch(t, batch, { maxConnections: 64, maxConnectionsPerIp: 16, maxMetricsStreams: 8 });
}

interface Raw {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body's bytes as sent (gunzipped when it came compressed and complete). */
  body: Buffer;
  /** Whether the body arrived whole (false: the server cut it). */
  complete: boolean;
}

/** A GET (or HEAD) over loopback that keeps the body's bytes and notices a cut body. */
function fetchRaw(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        let body = Buffer.concat(chunks);
        if (complete && res.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(res.complete));
      res.on('aborted', () => done(false));
      res.on('error', () => done(false));
      res.on('close', () => done(res.complete));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads the first chunk of the body, then closes the connection. */
function leaveAfterFirstChunk(url: string, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
    req.end();
  });
}

async function exceptions(svc: PipelineService): Promise<number> {
  let n = 0;
  for (const sm of (await svc.telemetry.collect()).resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name !== 'tsmetrics_component_errors') continue;
      for (const p of m.dataPoints) if (p.attributes.component_id === 'prometheus' && p.attributes.error_type === 'exception') n += p.value as number;
    }
  }
  return n;
}

/** Waits until the server has finished with the connection a client left (no timing assertion). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 200));

/** A gauge point whose value is read through `value` (a hostile source's getter). */
function pointWith(attributes: Attributes, value: () => number): DataPoint<number> {
  return {
    attributes,
    startTime: [1, 0],
    endTime: [1, 0],
    get value() {
      return value();
    },
  } as DataPoint<number>;
}

/** `n` device series, then a metric `last` whose one point is read through `value`. */
function largeBatch(n: number, value: () => number = () => 1, metrics = 1): ResourceMetrics {
  const b = new BatchBuilder({}, { name: 't' });
  for (let m = 0; m < metrics; m++) {
    const g = b.gauge(`g${m}`, 'h');
    for (let i = 0; i < n; i++) g.add({ device_id: `d${i}`, device_name: `host-${i}.tail.ts.net`, path: m % 2 ? 'derp' : 'direct' }, i, 1000);
  }
  b.gauge('last', 'h').points.push(pointWith({ x: 'y' }, value));
  return b.build();
}

function hostileAttributes(): Attributes[] {
  const nullProto = Object.create(null) as Attributes;
  nullProto.device_id = 'np';
  nullProto.device_name = 'null-proto';
  const nullProtoDotted = Object.create(null) as Attributes;
  nullProtoDotted['a.b'] = 'dotted';
  nullProtoDotted.c = 'x';
  const withSymbol = { device_id: 's', [Symbol('hidden')]: 'not a label', device_name: 'sym' } as Attributes;
  const getter = {} as Attributes;
  Object.defineProperty(getter, 'device_id', { enumerable: true, get: () => 'from-getter' });
  Object.defineProperty(getter, 'hidden', { enumerable: false, value: 'not a label' });
  getter.device_name = 'g';
  return [
    nullProto,
    nullProtoDotted,
    withSymbol,
    getter,
    JSON.parse('{"__proto__":"own key","device_id":"p"}') as Attributes,
    { num: 3, flag: true, neg: -0.5, big: 1e21, nan: Number.NaN },
    { list: ['a', 'b"c', 1] as unknown as string[], none: null as unknown as string, undef: undefined },
    { 'a.b': 'x', 'b-c': 'y', 'ü': 'z' },
    { __name__: 'sneaky', device_id: 'n' },
    { le: 'gauge-le', quantile: '0.5' },
    {},
    { device_id: 'lone', v: 'a\uD800b', w: '\uDC00', x: 'pair😀', y: 'quote " back \\ nl \n end' },
    { long: '€'.repeat(70_000) + '😀'.repeat(10_000) },
    { 'k😀': 'emoji key', 'j\uD800': 'lone key' },
  ];
}

test('odd attributes objects render as the official serializer writes them, on the first render and from the cached text after it', () => {
  const b = new BatchBuilder({}, { name: 't' });
  const g = b.gauge('edge', 'help');
  const c = b.counter('edge_requests_total', 'c');
  const attrs = hostileAttributes();
  attrs.forEach((a, i) => {
    g.add(a, i, 1000);
    c.add(a, i * 2, 1000);
  });
  const batch = b.build();
  const want = official.serialize(batch);
  for (let round = 0; round < 3; round++) assert.equal(serializePrometheusText(batch), want, `render ${round}`);
  // The cache is invisible: no own enumerable key, nothing in JSON or a spread.
  for (const a of attrs) {
    if (Object.getPrototypeOf(a) === null || Object.isFrozen(a)) continue;
    assert.deepEqual(Object.keys({ ...a }), Object.keys(a));
    assert.equal(Object.getOwnPropertySymbols(a).filter((s) => Object.prototype.propertyIsEnumerable.call(a, s) && s.description === 'tsmetrics.prometheus.labels').length, 0);
  }
  assert.doesNotMatch(JSON.stringify(attrs.slice(0, 5)), /tsmetrics/);
});

test('copies and replacements of a rendered attributes object render their own labels (the cache never travels with a spread or Object.assign)', () => {
  const base: Attributes = { device_id: 'a', device_name: 'one' };
  const b1 = new BatchBuilder({}, { name: 't' });
  b1.gauge('g', 'h').add(base, 1, 1000);
  serializePrometheusText(b1.build());
  const b2 = new BatchBuilder({}, { name: 't' });
  b2.gauge('g', 'h')
    .add({ ...base, device_name: 'two' }, 1, 1000)
    .add(Object.assign({}, base, { device_id: 'b' }), 2, 1000)
    .add(structuredClone(base), 3, 1000)
    .add({ ...base, extra: 'x' }, 4, 1000);
  const batch = b2.build();
  assert.equal(serializePrometheusText(batch), official.serialize(batch));
});

test('a point with no attributes object renders without labels, as before the label cache (one source cannot make the whole page fail)', () => {
  const b = new BatchBuilder({}, { name: 't' });
  const g = b.gauge('g', 'h').add({ a: 'b' }, 1, 1000);
  g.points.push({ attributes: undefined as unknown as Attributes, value: 2, startTime: [1, 0], endTime: [1, 0] });
  g.points.push({ attributes: null as unknown as Attributes, value: 3, startTime: [1, 0], endTime: [1, 0] });
  assert.equal(serializePrometheusText(b.build()), '# HELP g h\n# TYPE g gauge\ng{a="b"} 1\ng 2\ng 3\n');
});

test('one attributes object in a gauge and a histogram: `le` is renamed on the histogram only, whichever metric is rendered first', () => {
  for (const histogramFirst of [true, false]) {
    const attrs: Attributes = { le: 'mine', device_id: 'd' };
    const b = new BatchBuilder({}, { name: 't' });
    const hist = () => b.metric('lat', 'l', 'histogram').addHistogram(attrs, { buckets: { boundaries: [1], counts: [1, 1] }, count: 2, sum: 3 }, 1000);
    if (histogramFirst) hist();
    b.gauge('g', 'h').add(attrs, 1, 1000);
    if (!histogramFirst) hist();
    const text = serializePrometheusText(b.build());
    const again = serializePrometheusText(b.build());
    assert.equal(again, text);
    assert.match(text, /^g\{le="mine",device_id="d"\} 1$/m);
    assert.match(text, /^lat_bucket\{exported_le="mine",device_id="d",le="1"\} 1$/m);
    assert.match(text, /^lat_bucket\{exported_le="mine",device_id="d",le="\+Inf"\} 2$/m);
    assert.match(text, /^lat_count\{exported_le="mine",device_id="d"\} 2$/m);
  }
});

/** Two structurally equal batches whose attributes objects are distinct. */
function formatsBatch(): ResourceMetrics {
  const b = new BatchBuilder({}, { name: 't' });
  const inherited = Object.create({ device_id: 'inherited', 'dev.name': 'inh' }) as Attributes;
  inherited.path = 'derp';
  const attrs: Attributes[] = [{ device_id: 'a', 'dev.name': 'x' }, { device_id: 'b', device_name: 'é "q"\n' }, { 'a.b': '1', a_b: '2' }, inherited, { le: 'g' }, {}];
  const g = b.gauge('g.dotted', 'h');
  const c = b.counter('c_total', 'h');
  const h = b.metric('lat', 'l', 'histogram');
  for (const a of attrs) {
    g.add(a, 1, 2000, 1000);
    c.add(a, 2, 2000, 1000);
    h.addHistogram(a, { buckets: { boundaries: [1], counts: [1, 1] }, count: 2, sum: 3 }, 2000, 1000);
  }
  return b.build();
}

test('every format reads the same from objects first rendered in another format: no text leaks between 0.0.4, OpenMetrics and the escaping schemes', async (t) => {
  const accepts = [undefined, OM, UTF8, `${OM};escaping=dots`, `${OM};escaping=allow-utf-8`, 'text/plain;escaping=values'];
  // Oracle: each format scraped first, from a server whose objects nothing has rendered yet.
  const first = new Map<string | undefined, string>();
  for (const a of accepts) {
    const { url } = await serve(t, formatsBatch());
    first.set(a, (await fetchRaw(url, { headers: a ? { accept: a } : {} })).body.toString('utf8'));
  }
  const text = first.get(undefined) ?? '';
  assert.match(text, /^g_dotted\{a_b="1",exported_a_b="2"\} 1$/m);
  assert.match(text, /^g_dotted\{le="g"\} 1$/m);
  assert.match(text, /^lat_count\{exported_le="g"\} 2$/m);
  assert.match(text, /^g_dotted\{path="derp"\} 1$/m);
  // Then every order on one server: each format still reads as it does when scraped first.
  const { url } = await serve(t, formatsBatch());
  for (const order of [accepts, [...accepts].reverse()]) {
    for (const a of order) {
      const r = await fetchRaw(url, { headers: a ? { accept: a } : {} });
      assert.equal(r.body.toString('utf8'), first.get(a), `Accept: ${a ?? '(none)'}`);
    }
  }
  // An inherited key is not the object's label in any format.
  for (const [a, body] of first) assert.doesNotMatch(body, /inherited|inh"/, `Accept: ${a ?? '(none)'}`);
});

/** 6,000 series with multi-byte, 4-byte and lone-surrogate values of every length, and lines over 256 KiB. */
function multibyteBatch(): ResourceMetrics {
  const b = new BatchBuilder({}, { name: 't' });
  const g = b.gauge('mb', 'multi-byte ü 😀');
  for (let i = 0; i < 6_000; i++) {
    const n = i % 97;
    const v = i % 3 === 0 ? '€'.repeat(n) : i % 3 === 1 ? `${'x'.repeat(n)}😀` : `${'é'.repeat(n)}\uD83D`;
    g.add({ device_id: `d${i}`, v }, i, 1000);
  }
  // Longer than a buffer part, in bytes and in UTF-16 units ×3.
  g.add({ device_id: 'huge', v: '€'.repeat(300_000) }, 1, 1000);
  g.add({ device_id: 'huge2', v: `${'😀'.repeat(90_000)}\uDC00` }, 2, 1000);
  for (let i = 0; i < 2_000; i++) g.add({ device_id: `after${i}`, v: '漢字'.repeat(i % 50) }, i, 1000);
  return b.build();
}

test('a large page of multi-byte text, lines longer than a buffer part and lone surrogates: plain and gzip bytes equal the official page, scrape after scrape', async (t) => {
  const batch = multibyteBatch();
  const want = Buffer.from(official.serialize(batch), 'utf8');
  const { url } = await serve(t, batch);
  for (let scrape = 0; scrape < 2; scrape++) {
    const plain = await fetchRaw(url);
    assert.equal(plain.status, 200);
    assert.ok(plain.complete);
    assert.equal(plain.headers['content-length'], undefined, 'streamed');
    assert.ok(plain.body.equals(want), `scrape ${scrape}: plain bytes`);
    const gz = await fetchRaw(url, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gz.body.equals(want), `scrape ${scrape}: gzip bytes`);
  }
});

test('concurrent scrapes of fresh objects in different formats interleave their renders and each reads as it does alone', async (t) => {
  const batch = largeBatch(12_000, () => 1, 6);
  const alone = largeBatch(12_000, () => 1, 6);
  const { url: aloneUrl } = await serve(t, alone);
  const wantOm = (await fetchRaw(aloneUrl, { headers: { accept: OM } })).body;
  const wantUtf8 = (await fetchRaw(aloneUrl, { headers: { accept: UTF8 } })).body;
  const want = Buffer.from(official.serialize(batch), 'utf8');
  const { url } = await serve(t, batch);
  const [text, om, gz, utf8, text2] = await Promise.all([
    fetchRaw(url),
    fetchRaw(url, { headers: { accept: OM } }),
    fetchRaw(url, { headers: { 'accept-encoding': 'gzip' } }),
    fetchRaw(url, { headers: { accept: UTF8 } }),
    fetchRaw(url),
  ]);
  for (const r of [text, om, gz, utf8, text2]) assert.equal(r.status, 200);
  assert.ok(text.body.equals(want), 'text');
  assert.ok(text2.body.equals(want), 'second text');
  assert.ok(gz.body.equals(want), 'gzip');
  assert.ok(om.body.equals(wantOm), 'OpenMetrics');
  assert.ok(utf8.body.equals(wantUtf8), 'allow-utf-8');
  assert.ok(om.complete && text.complete && gz.complete && utf8.complete && text2.complete);
});

test('a client that leaves mid-page stops the render, is not counted as an error, and the next scrape is whole', async (t) => {
  let reads = 0;
  const batch = largeBatch(60_000, () => ++reads, 4);
  const { url, svc } = await serve(t, batch);
  for (const headers of [{}, { 'accept-encoding': 'gzip' }, { accept: OM }] as Record<string, string>[]) {
    await leaveAfterFirstChunk(url, headers);
    await settle();
    assert.equal(reads, 0, `the rest of the page is not rendered for nobody (${JSON.stringify(headers)})`);
  }
  assert.equal(await exceptions(svc), 0, 'a client leaving is not a failure of the page');
  const r = await fetchRaw(url);
  assert.ok(r.complete);
  assert.ok(r.body.equals(Buffer.from(official.serialize(largeBatch(60_000, () => 1, 4)), 'utf8')));
  assert.equal(reads, 1);
});

test('HEAD of a large page renders nothing and sends no body', async (t) => {
  let reads = 0;
  const { url, svc } = await serve(t, largeBatch(6_000, () => ++reads));
  const r = await fetchRaw(url, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 0);
  assert.equal(reads, 0);
  assert.equal(await exceptions(svc), 0);
  assert.ok((await fetchRaw(url)).complete);
  assert.equal(reads, 1);
});

test('a render that throws after the headers went out cuts the body, is counted once, and the process goes on serving', async (t) => {
  const bad = largeBatch(30_000, () => {
    throw new Error('hostile getter');
  }, 2);
  const { url, svc, exp } = await serve(t, bad);
  for (const headers of [{}, { 'accept-encoding': 'gzip' }, { accept: OM }] as Record<string, string>[]) {
    const before = await exceptions(svc);
    const r = await fetchRaw(url, { headers });
    assert.equal(r.status, 200, 'the headers were already sent');
    assert.equal(r.complete, false, `a cut body, not a short page that looks whole (${JSON.stringify(headers)})`);
    assert.ok(r.body.length > 0, 'the first parts were streamed before the failure');
    await settle();
    assert.equal((await exceptions(svc)) - before, 1);
  }
  // A good batch from the source: served whole and exact, from objects the failed renders left half-cached.
  const good = largeBatch(30_000, () => 7, 2);
  await exp.consume(good, { source: 'x', time: 2000, interval: 30_000 });
  const r = await fetchRaw(url);
  assert.ok(r.complete);
  assert.ok(r.body.equals(Buffer.from(official.serialize(good), 'utf8')));
});

test('a small page whose render throws is a 500 (counted), not a cut 200', async (t) => {
  const b = new BatchBuilder({}, { name: 't' });
  b.gauge('g', 'h').add({ a: 'b' }, 1, 1000).points.push(pointWith({}, () => {
    throw new Error('hostile getter');
  }));
  const { url, svc } = await serve(t, b.build());
  const r = await fetchRaw(url);
  assert.equal(r.status, 500);
  assert.match(r.body.toString('utf8'), /hostile getter/);
  assert.equal(await exceptions(svc), 1);
});

test('the first byte of a large page is sent before its last metric is rendered (a bound: rendering is lazy per metric, not per page)', async (t) => {
  let reads = 0;
  const { url } = await serve(t, largeBatch(20_000, () => ++reads, 3));
  await new Promise<void>((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      res.once('data', () => {
        assert.equal(reads, 0);
        res.resume();
        res.on('end', () => resolve());
      });
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(reads, 1);
});
