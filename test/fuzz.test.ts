import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExpositionParseError, parseExposition } from '../receivers/device_metrics/exposition.ts';
import { relabel, RelabelConfigError, validateRelabelConfig, type RelabelConfig } from '../processors/relabel/engine.ts';
import { ApiDecodeError, decodeDeviceList } from '../receivers/tailscale_api/decode.ts';

const RUNS = 10_000;
// A hang guard, not a performance assertion: any single input taking this long means a hang.
const HANG_MS = 2000;

function bounded<T>(fn: () => T): T {
  const t0 = performance.now();
  const out = fn();
  assert.ok(performance.now() - t0 < HANG_MS, 'input took too long');
  return out;
}

// Exposition-shaped fragments, so the fuzzer reaches deep into the grammar, not just line 1.
const fragment = fc.constantFrom('# TYPE ', '# HELP ', 'm', 'metric_total', '_bucket', '_sum', '_count', '{', '}', '=', '"', '\\', '\\n', '\\"', ',', ' ', '\t', '\n', '\r\n', 'le', 'quantile', '0.5', '+Inf', '-Inf', 'NaN', '1e3', '-2', '0x1p3', '1_0', 'counter', 'gauge', 'histogram', 'summary', 'untyped', 'a', 'b', '__name__', 'é', '佖', ':', '.', '#');
const expositionLike = fc.array(fragment, { maxLength: 60 }).map((xs) => xs.join(''));

test(`fuzz: the exposition parser returns or throws ExpositionParseError (${RUNS} inputs)`, () => {
  fc.assert(
    fc.property(fc.oneof(expositionLike, fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 })), (text) => {
      try {
        const fams = bounded(() => parseExposition(text));
        for (const f of fams) for (const s of f.samples) assert.equal(typeof s.value, 'number');
      } catch (err) {
        if (!(err instanceof ExpositionParseError)) throw err;
        assert.ok(err.line >= 1);
      }
    }),
    { numRuns: RUNS },
  );
});

const labelName = fc.constantFrom('__name__', 'a', 'b', 'device_id', 'path', 'x_y', '1bad', '', 'le');
const action = fc.constantFrom('replace', 'keep', 'drop', 'keepequal', 'dropequal', 'hashmod', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase', 'REPLACE', 'bogus', '');
const regex = fc.oneof(fc.constantFrom('(.*)', 'a|b', '(?i)foo', '(a+)+$', '(a)\\1', '(?=x)', '[', '(?P<n>.)', '.*', '\\d+', ''), fc.string({ maxLength: 20 }));
const template = fc.oneof(fc.constantFrom('$1', '${1}', '$name', '${n}', '$$', 'x$', '${', '$1x', 'tgt', '${1}_${2}'), fc.string({ maxLength: 10 }));
const rule: fc.Arbitrary<RelabelConfig> = fc.record(
  {
    source_labels: fc.array(labelName, { maxLength: 3 }),
    separator: fc.constantFrom(';', ',', ''),
    regex,
    modulus: fc.nat(5),
    target_label: template,
    replacement: template,
    action,
  },
  { requiredKeys: [] },
);
// Label values are non-empty, as in Prometheus (a label with an empty value does not exist).
const labelSet = fc.dictionary(labelName, fc.string({ minLength: 1, maxLength: 20 }), { maxKeys: 5 });

test(`fuzz: relabel rules either validate or throw RelabelConfigError, and never throw on any label set (${RUNS} inputs)`, () => {
  fc.assert(
    fc.property(fc.array(rule, { minLength: 1, maxLength: 3 }), labelSet, (rules, labels) => {
      try {
        for (const r of rules) validateRelabelConfig(r);
      } catch (err) {
        if (!(err instanceof RelabelConfigError)) throw err;
        return;
      }
      const out = bounded(() => relabel(labels, rules));
      assert.ok(out === null || typeof out === 'object');
      if (out) for (const v of Object.values(out)) assert.ok(v !== '', 'an empty value deletes the label');
    }),
    { numRuns: RUNS },
  );
});

const jsonValue = fc.jsonValue({ maxDepth: 4 });
const deviceLike = fc.record(
  {
    id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
    name: fc.oneof(fc.string(), jsonValue),
    addresses: fc.oneof(fc.array(fc.string()), jsonValue),
    tags: fc.oneof(fc.array(fc.string()), jsonValue),
    connectedToControl: fc.oneof(fc.boolean(), jsonValue),
    lastSeen: fc.oneof(fc.string(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
    expires: fc.oneof(fc.constant('0001-01-01T00:00:00Z'), fc.string()),
    clientConnectivity: fc.oneof(jsonValue, fc.record({ latency: fc.dictionary(fc.string(), fc.oneof(jsonValue, fc.record({ latencyMs: fc.double(), preferred: fc.boolean() }))), clientSupports: fc.dictionary(fc.constantFrom('ipv6', 'udp', 'hairPinning'), fc.oneof(fc.boolean(), fc.constant(null))) })),
    postureIdentity: jsonValue,
  },
  { requiredKeys: [] },
);

test(`fuzz: the API JSON decoder returns devices or throws ApiDecodeError (${RUNS} inputs)`, () => {
  fc.assert(
    fc.property(fc.oneof(fc.record({ devices: fc.array(deviceLike, { maxLength: 5 }) }).map((v) => JSON.stringify(v)), jsonValue.map((v) => JSON.stringify(v)), fc.string({ maxLength: 100 })), (body) => {
      try {
        const { devices, skipped } = bounded(() => decodeDeviceList(body));
        assert.ok(skipped >= 0);
        for (const d of devices) assert.equal(typeof d.id, 'string');
      } catch (err) {
        if (!(err instanceof ApiDecodeError)) throw err;
      }
    }),
    { numRuns: RUNS },
  );
});
