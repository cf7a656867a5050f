// The page is rendered on every scrape from label texts kept on the attributes objects: these
// tests check that what a client reads — small pages, large streamed ones (plain and gzip),
// the first scrape and the ones after it — is byte for byte what the official serializer writes.
import { test, type TestContext } from 'node:test';
import { request, type IncomingMessage } from 'node:http';
import assert from 'node:assert/strict';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchBuilder } from '../../src/model/batch.ts';
import { http } from '../../test/helpers/index.ts';
import { serveBatch } from '../../test/helpers/serve-batch.ts';
import { TEXT_FORMAT } from './negotiate.ts';
import { expositionBytes, serializePrometheusText } from './serializer.ts';

const official = new PrometheusSerializer(undefined, false, undefined, true, true);

/** `devices` devices × 4 series each, with label values that need escaping or are not ASCII. */
function tailnet(devices: number, extra: Attributes[] = []): ResourceMetrics {
  const b = new BatchBuilder({ 'service.name': 'test' }, { name: 't' });
  const bytes = b.counter('tailscaled_inbound_bytes_total', 'Bytes received from peers.');
  const up = b.gauge('tsmetrics_device_scrape_up', 'Whether the scrape worked.');
  for (let i = 0; i < devices; i++) {
    // The device labels are one object per device, shared by its series' objects as in the receiver.
    const dev = { device_id: `n${i}CNTRL`, device_name: i % 7 === 0 ? `hôst-${i} "quoted"\\path\nline.ts.net` : `gw-${i}.tail4c8e1a.ts.net` };
    for (const path of ['derp', 'direct_ipv4', i % 11 === 0 ? 'ünïcødé 🚀' : 'direct_ipv6']) bytes.add({ ...dev, path }, i * 1000 + path.length, 1000);
    up.add({ ...dev }, 1, 1000);
  }
  for (const a of extra) up.add(a, 0, 1000);
  return b.build();
}

async function serve(t: TestContext, batch: ResourceMetrics): Promise<string> {
  return (await serveBatch(t, batch)).url;
}

test('a large page is streamed in parts, plain and gzip, and reads exactly as the official serializer writes it, scrape after scrape', async (t) => {
  const batch = tailnet(3_000);
  const want = official.serialize(batch);
  const url = await serve(t, batch);
  for (let scrape = 0; scrape < 3; scrape++) {
    const plain = await http(url);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-length'], undefined, 'a page of 12,000 series is streamed, not sent whole');
    assert.equal(plain.body, want, `scrape ${scrape}: plain body`);
    const gz = await http(url, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.body, want, `scrape ${scrape}: gzip body`);
  }
});

test('a small page is sent whole, with its length in bytes (not characters)', async (t) => {
  const batch = tailnet(50);
  const url = await serve(t, batch);
  const r = await http(url);
  assert.equal(r.body, official.serialize(batch));
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body, 'utf8'));
  assert.ok(Buffer.byteLength(r.body, 'utf8') > r.body.length, 'the page has multi-byte characters');
});

test('label texts: equal content renders alike whatever the object; frozen, inherited and refusing objects render their own labels', () => {
  const base = { device_id: 'a', device_name: 'one' };
  const inherited = Object.create(base) as Attributes;
  inherited.path = 'derp';
  const refusing = new Proxy({ device_id: 'p', device_name: 'proxy' } as Attributes, {
    defineProperty: () => {
      throw new Error('no');
    },
  });
  const batch = tailnet(3, [base, Object.freeze({ device_id: 'f', device_name: 'frozen' }), inherited, refusing, { ...base }]);
  const want = official.serialize(batch);
  // The first render makes the texts, the second reads them back.
  assert.equal(serializePrometheusText(batch), want);
  assert.equal(serializePrometheusText(batch), want);
  assert.match(want, /tsmetrics_device_scrape_up\{device_id="f",device_name="frozen"\} 0/);
  assert.match(want, /tsmetrics_device_scrape_up\{path="derp"\} 0/, 'an inherited key is not the object’s label');
  // A text is the object's own: a copy with other values renders its values, not a cached text.
  const copy = { ...base, device_name: 'two' };
  const b2 = new BatchBuilder({}, { name: 't' });
  b2.gauge('g', 'h').add(base, 1, 1000).add(copy, 2, 1000);
  assert.equal(serializePrometheusText(b2.build()), '# HELP g h\n# TYPE g gauge\ng{device_id="a",device_name="one"} 1\ng{device_id="a",device_name="two"} 2\n');
});

test('a large family is rendered in slices: the first part leaves before the family’s last point is read', () => {
  const b = new BatchBuilder({}, { name: 't' });
  const g = b.gauge('tailscaled_home_derp', 'Home DERP region.');
  for (let i = 0; i < 20_000; i++) g.add({ device_id: `n${i}`, device_name: `host-${i}.tail4c8e1a.ts.net` }, i, 1000);
  const batch = b.build();
  const pts = batch.scopeMetrics[0]?.metrics[0]?.dataPoints as Array<{ attributes: Attributes }>;
  const last = pts[pts.length - 1] as { attributes: Attributes };
  const attrs = last.attributes;
  let read = false;
  Object.defineProperty(last, 'attributes', {
    get() {
      read = true;
      return attrs;
    },
  });
  const parts = expositionBytes(batch, TEXT_FORMAT);
  const first = parts.next();
  assert.equal(first.done, false);
  assert.ok((first.value as Buffer).length <= 256 * 1024, `the first part is ${(first.value as Buffer).length} bytes`);
  assert.equal(read, false, 'the last point was not rendered before the first part was handed on');
  const rest = [first.value as Buffer, ...parts];
  assert.equal(read, true);
  assert.equal(Buffer.concat(rest).toString('utf8'), official.serialize(batch));
});

test('HEAD gets the headers the same GET would: the length of a small page, gzip when asked', async (t) => {
  const url = await serve(t, tailnet(50));
  const get = await http(url);
  const head = await http(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], get.headers['content-length']);
  // Read raw: an empty body labelled gzip is what HEAD must send, and no gunzip accepts it.
  const headGz = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { method: 'HEAD', headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
    req.end();
  });
  const getGz = await http(url, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(getGz.headers['content-encoding'], 'gzip');
  assert.equal(headGz.headers['content-encoding'], 'gzip');
  assert.equal(headGz.headers['content-length'], undefined);
});
