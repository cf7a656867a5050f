import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { prng } from '../../src/simulator/model.ts';
import { canonicalJson, flowIdentity, IdentitySet, MAX_DEPTH, recordIdentity } from './dedup.ts';
import { parseEndpoint, parseTime, parseTimeGeneral } from './decode.ts';
import { protocolOf } from './mapping.ts';
import { FUTURE_SLACK_MS, loadState, saveState } from './storage.ts';
import { nextFrom, planWindows } from './window.ts';

const MIN = 60_000;

test('windows cover [from, now] contiguously, share boundaries, and stop at the budget', () => {
  assert.deepEqual(planWindows(0, 35 * MIN, 15 * MIN, 10), [
    { start: 0, end: 15 * MIN },
    { start: 15 * MIN, end: 30 * MIN },
    { start: 30 * MIN, end: 35 * MIN },
  ]);
  assert.deepEqual(planWindows(0, 60 * MIN, 15 * MIN, 2), [
    { start: 0, end: 15 * MIN },
    { start: 15 * MIN, end: 30 * MIN },
  ]);
  assert.deepEqual(planWindows(5, 5, 15 * MIN, 3), [{ start: 5, end: 5 }]);
  assert.deepEqual(planWindows(10, 5, 15 * MIN, 3), [], 'a clock that went back reads nothing');
});

test('the next start re-reads lag behind now, never moves back, and has no overlap while catching up', () => {
  assert.equal(nextFrom(0, 60 * MIN, 60 * MIN, 15 * MIN), 45 * MIN, 'steady state: the last lag again');
  assert.equal(nextFrom(0, 30 * MIN, 600 * MIN, 15 * MIN), 30 * MIN, 'catching up: continue where the poll ended');
  assert.equal(nextFrom(50 * MIN, 60 * MIN, 60 * MIN, 15 * MIN), 50 * MIN, 'never backwards');
  assert.equal(nextFrom(7, undefined, 60 * MIN, 15 * MIN), 7, 'nothing read: unchanged');
});

test('record identities ignore key order; the set prunes by time and is bounded', () => {
  assert.equal(recordIdentity({ a: 1, b: [1, { c: 'x', d: null }] }).id, recordIdentity({ b: [1, { d: null, c: 'x' }], a: 1 }).id);
  assert.notEqual(recordIdentity({ a: 1 }).id, recordIdentity({ a: 2 }).id);
  const s = new IdentitySet(3);
  s.add('a', 1);
  s.add('b', 2);
  s.add('c', 3);
  s.add('d', 4);
  assert.equal(s.has('a'), false, 'the oldest goes first when full');
  assert.equal(s.evicted, 1);
  s.prune(3);
  assert.deepEqual(s.entries(), [['c', 3], ['d', 4]], 'identities before the horizon are forgotten; the horizon itself is kept');
});

test('the canonical text sorts keys by UTF-16 units at every level, index-like and __proto__ keys included; the identity hashes it', () => {
  const cases: Array<[unknown, string]> = [
    [{ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }, '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}'],
    [JSON.parse('{"a":3,"9":2,"10":1}'), '{"10":1,"9":2,"a":3}'],
    [JSON.parse('{"z":1,"__proto__":{"b":1,"a":2}}'), '{"__proto__":{"a":2,"b":1},"z":1}'],
    [{ 'é': 1, e: 2, E: 3, '\u{1f600}': 4, z: [] }, '{"E":3,"e":2,"z":[],"é":1,"\u{1f600}":4}'],
    [{ s: 'a"\\\u0001\ud800', n: -0, m: 1e21 }, '{"m":1e+21,"n":0,"s":"a\\"\\\\\\u0001\\ud800"}'],
    ['x', '"x"'],
    [[{ b: [], a: {} }], '[{"a":{},"b":[]}]'],
  ];
  for (const [v, text] of cases) {
    assert.equal(canonicalJson(v), text);
    assert.deepEqual(recordIdentity(v), { id: createHash('sha256').update(text).digest().subarray(0, 16).toString('base64'), size: text.length, tooDeep: false });
  }
  // The same shapes over and over (as a flow log sends them) still sort each object's own keys.
  for (let i = 0; i < 100; i++) assert.equal(canonicalJson({ y: i, x: { q: 1, p: [i] } }), `{"x":{"p":[${i}],"q":1},"y":${i}}`);
});

test('a flow record is identified by its node, logged time, period and list lengths, whatever else it holds; its size is its compact JSON length', () => {
  const rec = { logged: '2026-08-24T09:20:12.470318Z', nodeId: 'nA1CNTRL', start: '2026-08-24T09:20:00Z', end: '2026-08-24T09:20:05Z', virtualTraffic: [{ proto: 6, src: '100.64.0.1:1', txBytes: 12345, rxBytes: -0.5 }], srcNode: { name: 'a', tags: ['x'], ok: true, gone: null } };
  const id = flowIdentity(rec);
  assert.deepEqual(id, { id: flowIdentity({ ...rec }).id, size: JSON.stringify(rec).length, tooDeep: false });
  const reordered = Object.fromEntries(Object.entries(rec).reverse());
  assert.equal(flowIdentity(reordered).id, id.id, 'key order does not matter');
  for (const k of ['logged', 'nodeId', 'start', 'end'] as const) assert.notEqual(flowIdentity({ ...rec, [k]: `${rec[k]}x` }).id, id.id, `${k} is part of it`);
  assert.notEqual(flowIdentity({ ...rec, virtualTraffic: [...rec.virtualTraffic, ...rec.virtualTraffic] }).id, id.id, 'so is each list\'s length');
  assert.notEqual(flowIdentity({ ...rec, exitTraffic: [] }).id, id.id, 'an empty list is not a missing one');
  // Not a flow record's key fields: the canonical identity, as for any record.
  assert.deepEqual(flowIdentity({ ...rec, nodeId: 7 }), recordIdentity({ ...rec, nodeId: 7 }));
  assert.deepEqual(flowIdentity({ ...rec, logged: 'x'.repeat(257) }), recordIdentity({ ...rec, logged: 'x'.repeat(257) }));
  assert.deepEqual(flowIdentity(['x']), recordIdentity(['x']));
});

test('nesting deeper than MAX_DEPTH is reported, never followed: the identity is still stable and covers the levels above', () => {
  const deep = (levels: number, leaf: unknown): unknown => {
    let v = leaf;
    for (let i = 0; i < levels; i++) v = [v];
    return v;
  };
  const rec = (leaf: unknown) => ({ logged: 'a', nodeId: 'b', start: 'c', end: 'd', x: deep(200_000, leaf) });
  assert.equal(flowIdentity(rec(1)).tooDeep, true);
  assert.equal(recordIdentity(rec(1)).tooDeep, true);
  assert.equal(recordIdentity(rec(1)).id, recordIdentity(rec(2)).id, 'what is below the bound is not part of it');
  assert.notEqual(recordIdentity(rec(1)).id, recordIdentity({ ...rec(1), y: 1 }).id);
  // MAX_DEPTH levels of lists and objects exactly: followed, the canonical JSON as JSON.stringify writes it.
  const ok = deep(MAX_DEPTH, 1);
  assert.deepEqual(recordIdentity(ok), { ...recordIdentity(ok), size: JSON.stringify(ok).length, tooDeep: false });
  assert.equal(recordIdentity(deep(MAX_DEPTH + 1, 1)).tooDeep, true);
  assert.equal(flowIdentity(deep(MAX_DEPTH + 1, 1)).tooDeep, true);
  assert.equal(flowIdentity({ ...rec(1), x: deep(MAX_DEPTH - 1, 1) }).tooDeep, false, 'the record itself is the first level');
  assert.equal(flowIdentity({ ...rec(1), x: deep(MAX_DEPTH, 1) }).tooDeep, true);
});

test('the hand-read UTC times give the general parse’s answers for the API’s form and for thousands of near misses (seeded)', () => {
  const r = prng(11);
  const int = (n: number): number => Math.floor(r() * n);
  const CHARS = '0123456789-:.TZtz+ x';
  const pad = (v: number, w: number): string => String(v).padStart(w, '0');
  let fast = 0;
  for (let i = 0; i < 20_000; i++) {
    const frac = int(3) === 0 ? '' : `.${Array.from({ length: 1 + int(10) }, () => int(10)).join('')}`;
    let s = `${pad(int(3) === 0 ? int(10_000) : 1990 + int(60), 4)}-${pad(int(14), 2)}-${pad(int(33), 2)}T${pad(int(26), 2)}:${pad(int(61), 2)}:${pad(int(61), 2)}${frac}${['Z', 'z', '+02:00', '-08:30', ''][int(5)]}`;
    // A character changed now and then.
    if (int(4) === 0) {
      const at = int(s.length);
      s = s.slice(0, at) + (CHARS[int(CHARS.length)] as string) + s.slice(at + 1);
    }
    const want = parseTimeGeneral(s);
    assert.deepEqual(parseTime(s), want, s);
    if (want && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(s)) fast++;
  }
  assert.ok(fast > 2000, `the API's form was tried (${fast} times)`);
});

test('RFC 3339 times keep their nanoseconds and accept offsets; endpoints and protocols parse as the wire has them', () => {
  assert.deepEqual(parseTime('2026-08-24T09:20:00.118204551Z')?.hr, [Date.parse('2026-08-24T09:20:00Z') / 1000, 118204551]);
  assert.equal(parseTime('2023-12-19T16:39:57-08:00')?.ms, Date.parse('2023-12-20T00:39:57Z'));
  assert.equal(parseTime('0001-01-01T00:00:00Z')?.ms, Date.parse('0001-01-01T00:00:00Z'));
  for (const bad of ['2026-08-24', 'yesterday', 42, '2026-08-24T09:20:00.1234567890Z']) assert.equal(parseTime(bad), undefined, String(bad));
  assert.deepEqual(parseEndpoint('[fd7a:115c:a1e0::4d01:54d]:50122'), { address: 'fd7a:115c:a1e0::4d01:54d', port: 50122, family: 6 });
  assert.deepEqual(parseEndpoint('127.3.3.40:4'), { address: '127.3.3.40', port: 4, family: 4 });
  for (const bad of ['1.2.3.4', '300.1.1.1:1', '1.2.3.4:70000', '[zz]:1', 'host:80']) assert.equal(parseEndpoint(bad), undefined, bad);
  assert.deepEqual([6, 17, 1, 58, 99, 0, undefined, 47, 'tcp', 'UDP', '6', 'ipv6-icmp'].map(protocolOf), ['tcp', 'udp', 'icmp', 'ipv6-icmp', 'tsmp', 'unknown', 'unknown', '47', 'tcp', 'udp', 'tcp', 'ipv6-icmp']);
  assert.equal(protocolOf(-1), undefined);
  assert.equal(protocolOf({}), undefined);
});

test('state files: written atomically (no temporary left), read back exactly, anything else is corrupt', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tslogs-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'state.json');
  const id = recordIdentity({ x: 1 }).id;
  await saveState(file, { tailnet: 'example.com', types: { network: { from: 1, position: 2, ids: [[id, 3]] } } });
  assert.deepEqual(readdirSync(join(dir, 'sub')), ['state.json']);
  assert.deepEqual(await loadState(file, { maxIds: 10, maxBytes: 1 << 20, nowMs: 10 }), { state: { tailnet: 'example.com', types: { network: { from: 1, position: 2, ids: [[id, 3]] } } } });
  assert.deepEqual(await loadState(join(dir, 'none.json'), { maxIds: 10, maxBytes: 1 << 20, nowMs: 10 }), { missing: true });
  const cases: Array<[string, RegExp]> = [
    ['{"version":1,"tailnet":"x","types":{"network":{"from":1', /not JSON/],
    ['{"version":2,"tailnet":"x","types":{}}', /not a version 1/],
    ['{"version":1,"tailnet":"x","types":{"network":{"from":"a","position":2,"ids":[]}}}', /malformed/],
    [`{"version":1,"tailnet":"x","types":{"network":{"from":1,"position":2,"ids":[["short",3]]}}}`, /malformed identity/],
    [`{"version":1,"tailnet":"x","types":{"network":{"from":1,"position":2,"ids":${JSON.stringify(Array.from({ length: 11 }, () => [id, 1]))}}}}`, /more than dedup_capacity/],
    [`{"version":1,"tailnet":"x","types":{"network":{"from":1,"position":${10 + FUTURE_SLACK_MS + 1},"ids":[]}}}`, /in the future/],
    [`{"version":1,"tailnet":"x","types":{"network":{"from":${Number.MAX_SAFE_INTEGER},"position":2,"ids":[]}}}`, /in the future/],
  ];
  for (const [text, re] of cases) {
    writeFileSync(file, text);
    const r = await loadState(file, { maxIds: 10, maxBytes: 1 << 20, nowMs: 10 });
    assert.ok('corrupt' in r && re.test(r.corrupt), `${text.slice(0, 60)} → ${JSON.stringify(r)}`);
  }
  writeFileSync(file, 'x'.repeat(2000));
  const big = await loadState(file, { maxIds: 10, maxBytes: 1000, nowMs: 10 });
  assert.ok('corrupt' in big && /bytes/.test(big.corrupt), 'a file larger than any real state is not read');
  writeFileSync(file, `{"version":1,"tailnet":"x","types":{"network":{"from":1,"position":${10 + FUTURE_SLACK_MS},"ids":[]}}}`);
  assert.ok('state' in (await loadState(file, { maxIds: 10, maxBytes: 1 << 20, nowMs: 10 })), 'a clock stepped back by less than the slack keeps the position');
});
