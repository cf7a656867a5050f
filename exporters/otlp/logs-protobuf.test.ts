import { test } from 'node:test';
import { prng } from '../../src/simulator/model.ts';
import assert from 'node:assert/strict';
import { SeverityNumber, type Attributes, type HrTime } from '@opentelemetry/api';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { LogsBatch } from '../../src/model/logs.ts';
import { logRecord } from '../../test/helpers/logs-source.ts';
import { encodeLogsRequest } from './logs-protobuf.ts';
import { splitLogsByEncodedSize } from './logs-size.ts';

type Scope = ReadableLogRecord['instrumentationScope'];

/** What the official serializer writes for the batch. */
function official(batch: LogsBatch): Buffer {
  const out = ProtobufLogsSerializer.serializeRequest(batch as ReadableLogRecord[]);
  assert.ok(out);
  return Buffer.from(out);
}

function assertSameBytes(batch: LogsBatch, what: string): void {
  const ours = Buffer.from(encodeLogsRequest(batch));
  const theirs = official(batch);
  if (ours.equals(theirs)) return;
  let at = 0;
  while (at < ours.length && ours[at] === theirs[at]) at++;
  assert.fail(`${what}: ${ours.length} bytes against ${theirs.length}, first difference at byte ${at}: ${ours.subarray(at, at + 16).toString('hex')} against ${theirs.subarray(at, at + 16).toString('hex')}`);
}

const LONG = 'x'.repeat(200);
const VERY_LONG = 'flow '.repeat(5000); // a length prefix of three bytes
const UNICODE = 'ünïcode 🚀 日本語 — ℕ';
const LONG_UNICODE = '日本語🚀'.repeat(20); // short in characters, over 127 bytes

/** Every AnyValue kind, nested; the odd numbers and strings included. */
const EVERY_KIND: Record<string, unknown> = {
  str: 'hello',
  empty: '',
  long: LONG,
  unicode: UNICODE,
  longUnicode: LONG_UNICODE,
  loneHigh: 'a\ud800b',
  loneLowAtEnd: 'end\udc00',
  zero: 0,
  negZero: -0,
  int: 42,
  negative: -7,
  minInt32: -(2 ** 31),
  maxUint32: 2 ** 32 - 1,
  twoTo32: 2 ** 32,
  big: 2 ** 53 - 1,
  huge: 2 ** 62,
  hugeNegative: -(2 ** 62),
  beyondInt64: 2 ** 64,
  dbl: 0.25,
  negDbl: -1e-300,
  nan: NaN,
  inf: Infinity,
  negInf: -Infinity,
  yes: true,
  no: false,
  strings: ['a', '', 'ü'],
  mixed: [1, 2.5, true, null, 'x', [[]], {}],
  emptyArray: [],
  emptyObject: {},
  nested: { k: 'v', n: 1, deeper: { ok: true, deepest: { list: [{ a: 1 }, { b: [2, 3] }] } } },
  bytes: new Uint8Array([0, 1, 127, 128, 254, 255]),
  emptyBytes: new Uint8Array(0),
  buffer: Buffer.from('buffer bytes'),
  nothing: null,
  missing: undefined,
  [UNICODE]: 'a non-ASCII key',
  '': 'an empty key',
};

function richBatch(): ReadableLogRecord[] {
  const flows = resourceFromAttributes({ 'service.name': 'tsmetrics', 'tailscale.tailnet': 'example.com', 'host.name': UNICODE });
  const audit = resourceFromAttributes({ 'tailscale.tailnet': 'corp.example', list: ['a', 'b'], n: 3 }, { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' });
  const bare = resourceFromAttributes({});
  const scopeA: Scope = { name: 'tsmetrics/tailscale_logs', version: '1.2.3' };
  const scopeB: Scope = { name: 'tsmetrics/other', schemaUrl: 'https://example.com/scope-schema', attributes: { 'scope.attr': 'v', num: 2 }, droppedAttributesCount: 4 } as Scope;
  const scopeC: Scope = { name: '', version: '' };
  const attrs = EVERY_KIND as unknown as Attributes;
  const t: HrTime = [1_700_000_000, 123_456_789];
  return [
    logRecord(flows, scopeA, { hrTime: t, hrTimeObserved: [1_700_000_001, 5], severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'flow started', attributes: attrs, eventName: 'tailscale.network.flow' }),
    logRecord(audit, scopeB, { hrTime: [1_600_000_000, 0], severityNumber: SeverityNumber.WARN2, severityText: 'WARN2', body: { action: 'login', actor: { id: 7, admin: true } }, attributes: { only: 'audit' } }),
    logRecord(flows, scopeA, { body: ['x', 1, true, 2.5, { k: 'v' }] }),
    logRecord(flows, scopeB, { body: EVERY_KIND as never, droppedAttributesCount: 3 }),
    logRecord(bare, scopeC, { hrTime: [0, 0], hrTimeObserved: [0, 0] }),
    logRecord(audit, scopeA, { body: null as never, severityText: '', eventName: '' }),
    logRecord(flows, scopeA, { body: VERY_LONG, attributes: { [LONG]: VERY_LONG } }),
    logRecord(audit, scopeB, { body: new Uint8Array([9, 8, 7]), spanContext: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 } }),
    logRecord(audit, scopeB, { body: 0, spanContext: { traceId: '0AF7651916CD43DD8448EB211C80319C', spanId: 'B7AD6B7169203331', traceFlags: 0 } }),
    logRecord(bare, scopeA, { body: -1, hrTime: [4_294_967_295, 999_999_999], hrTimeObserved: [2 ** 31, 1], severityNumber: SeverityNumber.FATAL4 }),
    logRecord(flows, scopeA, { body: false, attributes: { a: '', b: 0, c: false } }),
    logRecord(bare, scopeB, { body: {}, severityNumber: SeverityNumber.UNSPECIFIED }),
    // Times as performance-derived clocks can make them: fractions of a second and of a nanosecond.
    logRecord(bare, scopeC, { hrTime: [1_700_000_000.75, 123.5], hrTimeObserved: [65_536.5, 999_999_999.9] }),
  ];
}

test('the logs encoder writes the official serializer’s bytes for records of every kind, in several resources and scopes', () => {
  const batch = richBatch();
  assertSameBytes(batch, 'the whole batch');
  for (let i = 0; i < batch.length; i++) assertSameBytes([batch[i] as ReadableLogRecord], `record ${i} alone`);
  assertSameBytes([...batch].reverse(), 'the batch reversed');
});

test('the logs encoder writes the official serializer’s bytes for an empty batch and for records of tailscale_logs’ shape', () => {
  assertSameBytes([], 'no records');
  const resource = resourceFromAttributes({ 'service.name': 'tsmetrics', 'tailscale.tailnet': 'example.com' });
  const scope: Scope = { name: 'tsmetrics/tailscale_logs', version: '0.1.0' };
  const batch: ReadableLogRecord[] = [];
  for (let i = 0; i < 2000; i++) {
    batch.push(
      logRecord(resource, scope, {
        hrTime: [1_764_000_000 + i, (i * 7919) % 1e9],
        severityNumber: SeverityNumber.INFO,
        eventName: 'tailscale.network.flow',
        attributes: { 'tailscale.node.id': `n${String(i % 50).padStart(6, '0')}CNTRL`, 'network.transport': 'tcp', 'source.address': '100.64.0.1', 'source.port': 40000 + i, 'destination.address': 'fd7a:115c:a1e0::1', 'destination.port': 443, 'network.io.tx.bytes': i * 1000, 'network.io.rx.packets': i, 'tailscale.traffic.kind': 'virtual' },
      }),
    );
  }
  assertSameBytes(batch, 'flow records');
});

test('times before 1970 (an API\'s zero time), far in the future or with nanoseconds out of range are written as the official serializer writes them', () => {
  const bare = resourceFromAttributes({});
  const scope: Scope = { name: 's' };
  const goZero: HrTime = [-62_135_596_800, 0]; // 0001-01-01T00:00:00Z
  for (const [hrTime, hrTimeObserved] of [
    [goZero, [1_700_000_000, 0]],
    [[-1, 5], [-1, -5]],
    [[0, -1_500_000_000], [1, 2_000_000_000]],
    [[2 ** 34, 1], [1e10, 999_999_999]],
    [[-0.5, 0.5], [17_179_869_183, 999_999_999]],
  ] as Array<[HrTime, HrTime]>) {
    assertSameBytes([logRecord(bare, scope, { hrTime, hrTimeObserved, body: 'x' })], `times ${JSON.stringify([hrTime, hrTimeObserved])}`);
  }
});

/** The simulator's seeded generator, so a failure names a batch that can be replayed. */
const rng = prng;

const ALPHABET = ['a', 'Z', '0', ' ', '.', '-', 'é', 'ß', '日', '🚀', '\ud800', '\u0000', '\u007f', '\u0080', '\u07ff', '\u0800', '\uffff'];

function generator(seed: number) {
  const r = rng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const str = (): string => {
    const shape = int(10);
    const n = shape < 6 ? int(12) : shape < 9 ? int(60) : int(3000);
    let s = '';
    for (let i = 0; i < n; i++) s += r() < 0.85 ? String.fromCharCode(97 + int(26)) : pick(ALPHABET);
    return s;
  };
  const num = (): number => pick([() => int(200), () => -int(1e6), () => r() * 1e6 - 5e5, () => Math.floor(r() * 2 ** 53), () => -Math.floor(r() * 2 ** 60), () => pick([NaN, Infinity, -Infinity, -0, 2 ** 63, -(2 ** 63)])])();
  const value = (depth: number): unknown => {
    const kind = int(depth > 2 ? 5 : 9);
    switch (kind) {
      case 0:
        return str();
      case 1:
        return num();
      case 2:
        return r() < 0.5;
      case 3:
        return new Uint8Array(Array.from({ length: int(20) }, () => int(256)));
      case 4:
        return pick([null, undefined, '']);
      case 5:
      case 6:
        return Array.from({ length: int(5) }, () => value(depth + 1));
      default:
        return kvs(depth + 1);
    }
  };
  const kvs = (depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = int(6); i > 0; i--) out[str()] = value(depth);
    return out;
  };
  const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdefABCDEF'[int(22)]).join('');
  const time = (): HrTime => [pick([0, int(2 ** 32), 1_764_000_000 + int(100_000)]), pick([0, int(1e9), 999_999_999])];
  const resources: Resource[] = Array.from({ length: 1 + int(3) }, () => resourceFromAttributes(kvs(1) as Attributes, r() < 0.3 ? { schemaUrl: str() } : undefined));
  const scopes: Scope[] = Array.from({ length: 1 + int(3) }, () => {
    const s: Record<string, unknown> = { name: str() };
    if (r() < 0.5) s.version = str();
    if (r() < 0.3) s.schemaUrl = str();
    if (r() < 0.3) s.attributes = kvs(1);
    if (r() < 0.2) s.droppedAttributesCount = int(10);
    return s as unknown as Scope;
  });
  const record = (): ReadableLogRecord => {
    const fields: Record<string, unknown> = { hrTime: time(), hrTimeObserved: r() < 0.2 ? [0, 0] : time(), attributes: r() < 0.9 ? kvs(0) : {}, droppedAttributesCount: r() < 0.8 ? 0 : int(1000) };
    if (r() < 0.7) fields.severityNumber = int(25);
    if (r() < 0.5) fields.severityText = str();
    if (r() < 0.8) fields.body = value(0);
    if (r() < 0.4) fields.eventName = str();
    if (r() < 0.3) fields.spanContext = { traceId: r() < 0.9 ? hex(32) : '', spanId: r() < 0.9 ? hex(16) : '', traceFlags: int(3) };
    return logRecord(pick(resources), pick(scopes), fields as Partial<ReadableLogRecord>);
  };
  return { batch: (): ReadableLogRecord[] => Array.from({ length: int(40) }, record) };
}

test('the logs encoder writes the official serializer’s bytes for 200 random batches (seeded)', () => {
  for (let seed = 1; seed <= 200; seed++) assertSameBytes(generator(seed).batch(), `seed ${seed}`);
});

test('requests cut by the size split are written from its measurement, each with the official serializer’s bytes, within the limit', () => {
  for (let seed = 1000; seed < 1040; seed++) {
    const g = generator(seed);
    const batch = [...g.batch(), ...g.batch(), ...g.batch()];
    const whole = official(batch).length;
    for (const limit of [256, 2048, Math.max(1, whole >> 1), whole + 64]) {
      const parts = splitLogsByEncodedSize(batch, limit);
      assert.deepEqual(parts.flat(), batch, `seed ${seed}, limit ${limit}: every record once, in order`);
      for (const [k, part] of parts.entries()) {
        assertSameBytes(part, `seed ${seed}, limit ${limit}, part ${k}`);
        if (part.length > 1) assert.ok(official(part).length <= limit, `seed ${seed}, limit ${limit}, part ${k} of ${part.length} records is ${official(part).length} bytes`);
      }
    }
  }
});

test('records far larger than the ones before them (the encoder’s buffer grows part-way through a record) keep the official serializer’s bytes', () => {
  const resource = resourceFromAttributes({ 'service.name': 'tsmetrics' });
  const scope: Scope = { name: 'tsmetrics/test' };
  const tiny = Array.from({ length: 50 }, () => logRecord(resource, scope));
  assertSameBytes(tiny, 'tiny records');
  const big = logRecord(resource, scope, { body: { text: 'y'.repeat(100_000), list: Array.from({ length: 2000 }, (_, i) => ({ i, s: `entry ${i} ü` })) }, attributes: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`key.${i}`, `value ${i}`])) });
  assertSameBytes([...tiny.slice(0, 3), big, ...tiny.slice(0, 3)], 'a large record among tiny ones');
});

test('values repeated across records (the same objects and equal copies), bodies around 128 bytes and nested maps reusing keys keep the official serializer’s bytes', () => {
  const resource = resourceFromAttributes({ 'service.name': 'tsmetrics' });
  const scope: Scope = { name: 'tsmetrics/test' };
  const tags = ['tag:a', 'tag:b'];
  const nested = { k: 'v', n: 7 };
  const pool: unknown[] = ['tcp', 'udp', 'x'.repeat(40), UNICODE, LONG_UNICODE, LONG, 0, -0, 7, 2 ** 32, -1, NaN, 0.5, true, tags, nested, [nested, 'y'], new Uint8Array([1, 2, 3]), '', undefined, null];
  const keys = ['a', 'network.type', 'k', '', 'é', 'x'.repeat(130), 'tailscale.destination.device.node_id'];
  for (let seed = 1; seed <= 60; seed++) {
    const r = prng(seed);
    const int = (n: number): number => Math.floor(r() * n);
    const value = (): unknown => {
      const v = pool[int(pool.length)];
      // An equal copy, not the same object, half the time.
      if (typeof v === 'string' && r() < 0.5) return `${v} `.slice(0, v.length);
      if (Array.isArray(v) && r() < 0.5) return [...v];
      return v;
    };
    const kvs = (): Record<string, unknown> => Object.fromEntries(Array.from({ length: int(keys.length + 1) }, () => [keys[int(keys.length)] as string, r() < 0.15 ? kvsShallow() : value()]));
    const kvsShallow = (): Record<string, unknown> => Object.fromEntries(Array.from({ length: int(4) }, () => [keys[int(keys.length)] as string, value()]));
    const batch = Array.from({ length: 1 + int(300) }, () =>
      logRecord(resource, scope, {
        attributes: kvs() as Attributes,
        // Bodies of 100 to 160 bytes: their length prefix takes one byte or two, record after record.
        ...(r() < 0.8 ? { body: { pad: 'p'.repeat(90 + int(60)), ...kvsShallow() } } : {}),
      }),
    );
    assertSameBytes(batch, `seed ${seed}`);
  }
});

test('a flood of distinct keys (more than the KeyValue cache holds, so it starts over mid-record) keeps the official serializer’s bytes', () => {
  const resource = resourceFromAttributes({ 'service.name': 'tsmetrics' });
  const scope: Scope = { name: 'tsmetrics/test' };
  const common = { 'tailscale.flow.protocol': 'tcp', 'network.type': 'ipv4', 'source.port': 443 };
  const batch = Array.from({ length: 60 }, (_, r) =>
    logRecord(resource, scope, {
      attributes: { ...common, ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`junk.${r}.${i}`, i % 3 ? 'x' : r])) } as Attributes,
      body: { proto: 6, src: '100.64.0.1:1', ...Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`b.${r}.${i}`, 'v'])) },
    }),
  );
  assertSameBytes(batch, 'flooded keys');
  assertSameBytes([...batch, ...batch], 'flooded keys, the same records again');
});
