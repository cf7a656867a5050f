import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchBuilder } from '../../src/model/batch.ts';
import { parseConfig } from '../../src/config/schema.ts';
import { serializePrometheusText } from '../../exporters/prometheus/serializer.ts';
import { configSchema } from './config.ts';
import { createRelabelProcessor } from './processor.ts';
import { expandTemplate, relabel, validateRelabelConfig, RelabelConfigError, type NameValidationScheme, type RelabelConfig } from './engine.ts';

// Cases ported from prometheus/prometheus model/relabel/relabel_test.go (TestRelabel).
const CASES: Array<{ input: Record<string, string>; rules: RelabelConfig[]; output?: Record<string, string>; drop?: boolean }> = [
  { input: { a: 'foo', b: 'bar', c: 'baz' }, rules: [{ source_labels: ['a'], regex: 'f(.*)', target_label: 'd', separator: ';', replacement: 'ch${1}-ch${1}', action: 'replace' }], output: { a: 'foo', b: 'bar', c: 'baz', d: 'choo-choo' } },
  {
    input: { a: 'foo', b: 'bar', c: 'baz' },
    rules: [
      { source_labels: ['a', 'b'], regex: 'f(.*);(.*)r', target_label: 'a', separator: ';', replacement: 'b${1}${2}m', action: 'replace' },
      { source_labels: ['c', 'a'], regex: '(b).*b(.*)ba(.*)', target_label: 'd', separator: ';', replacement: '$1$2$2$3', action: 'replace' },
    ],
    output: { a: 'boobam', b: 'bar', c: 'baz', d: 'boooom' },
  },
  { input: { a: 'foo' }, rules: [{ source_labels: ['a'], regex: '.*o.*', action: 'drop' }, { source_labels: ['a'], regex: 'f(.*)', target_label: 'd', replacement: 'ch$1-ch$1' }], drop: true },
  { input: { a: 'foo', b: 'bar' }, rules: [{ source_labels: ['a'], regex: '.*o.*', action: 'drop' }], drop: true },
  { input: { a: 'abc' }, rules: [{ source_labels: ['a'], regex: '.*(b).*', target_label: 'd', replacement: '$1' }], output: { a: 'abc', d: 'b' } },
  { input: { a: 'foo' }, rules: [{ source_labels: ['a'], regex: 'no-match', action: 'drop' }], output: { a: 'foo' } },
  { input: { a: 'foo' }, rules: [{ source_labels: ['a'], regex: 'f|o', action: 'drop' }], output: { a: 'foo' } },
  { input: { a: 'foo' }, rules: [{ source_labels: ['a'], regex: 'no-match', action: 'keep' }], drop: true },
  { input: { a: 'foo' }, rules: [{ source_labels: ['a'], regex: 'f.*', action: 'keep' }], output: { a: 'foo' } },
  { input: { a: 'boo' }, rules: [{ source_labels: ['a'], regex: 'f', target_label: 'b', replacement: 'bar' }], output: { a: 'boo' } },
  { input: { a: 'foo', b: 'bar', c: 'baz' }, rules: [{ source_labels: ['c'], target_label: 'd', action: 'hashmod', modulus: 1000 }], output: { a: 'foo', b: 'bar', c: 'baz', d: '976' } },
  { input: { a: 'foo\nbar' }, rules: [{ source_labels: ['a'], target_label: 'b', action: 'hashmod', modulus: 1000 }], output: { a: 'foo\nbar', b: '734' } },
  { input: { a: 'foo', b1: 'bar', b2: 'baz' }, rules: [{ regex: '(b.*)', replacement: 'bar_${1}', action: 'labelmap' }], output: { a: 'foo', b1: 'bar', b2: 'baz', bar_b1: 'bar', bar_b2: 'baz' } },
  {
    input: { a: 'foo', __meta_my_bar: 'aaa', __meta_my_baz: 'bbb', __meta_other: 'ccc' },
    rules: [{ regex: '__meta_(my.*)', replacement: '${1}', action: 'labelmap' }],
    output: { a: 'foo', __meta_my_bar: 'aaa', __meta_my_baz: 'bbb', __meta_other: 'ccc', my_bar: 'aaa', my_baz: 'bbb' },
  },
  { input: { a: 'some-name-value' }, rules: [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${2}', target_label: '${1}' }], output: { a: 'some-name-value', name: 'value' } },
  { input: { a: 'some-name-value' }, rules: [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${3}', target_label: '${1}' }], output: { a: 'some-name-value' } },
  {
    input: { a: 'some-name-0' },
    rules: [
      { source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '${3}' },
      { source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '${3}' },
      { source_labels: ['a'], regex: 'some-([^-]+)(-[^,]+)', action: 'replace', replacement: '${1}', target_label: '${3}' },
    ],
    output: { a: 'some-name-0' },
  },
  {
    input: { __meta_sd_tags: 'path:/secret,job:some-job,label:foo=bar' },
    rules: [
      { source_labels: ['__meta_sd_tags'], regex: '(?:.+,|^)path:(/[^,]+).*', action: 'replace', replacement: '${1}', target_label: '__metrics_path__' },
      { source_labels: ['__meta_sd_tags'], regex: '(?:.+,|^)job:([^,]+).*', action: 'replace', replacement: '${1}', target_label: 'job' },
      { source_labels: ['__meta_sd_tags'], regex: '(?:.+,|^)label:([^=]+)=([^,]+).*', action: 'replace', replacement: '${2}', target_label: '${1}' },
    ],
    output: { __meta_sd_tags: 'path:/secret,job:some-job,label:foo=bar', __metrics_path__: '/secret', job: 'some-job', foo: 'bar' },
  },
  {
    input: { __meta_kubernetes_pod_container_port_name: 'foo', __meta_kubernetes_pod_annotation_XXX_metrics_port: '9091' },
    rules: [
      { regex: '^__meta_kubernetes_pod_container_port_name$', action: 'labeldrop' },
      { source_labels: ['__meta_kubernetes_pod_annotation_XXX_metrics_port'], regex: '(.+)', action: 'replace', replacement: 'metrics', target_label: '__meta_kubernetes_pod_container_port_name' },
      { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: '^metrics$', action: 'keep' },
    ],
    output: { __meta_kubernetes_pod_annotation_XXX_metrics_port: '9091', __meta_kubernetes_pod_container_port_name: 'metrics' },
  },
  { input: { a: 'foo', b1: 'bar', b2: 'baz' }, rules: [{ regex: '(b.*)', action: 'labelkeep' }], output: { b1: 'bar', b2: 'baz' } },
  { input: { a: 'foo', b1: 'bar', b2: 'baz' }, rules: [{ regex: '(b.*)', action: 'labeldrop' }], output: { a: 'foo' } },
  {
    input: { foo: 'bAr123Foo' },
    rules: [
      { source_labels: ['foo'], action: 'uppercase', target_label: 'foo_uppercase' },
      { source_labels: ['foo'], action: 'lowercase', target_label: 'foo_lowercase' },
    ],
    output: { foo: 'bAr123Foo', foo_lowercase: 'bar123foo', foo_uppercase: 'BAR123FOO' },
  },
  { input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' }, rules: [{ source_labels: ['__tmp_port'], action: 'keepequal', target_label: '__port1' }], output: { __tmp_port: '1234', __port1: '1234', __port2: '5678' } },
  { input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' }, rules: [{ source_labels: ['__tmp_port'], action: 'dropequal', target_label: '__port1' }], drop: true },
  { input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' }, rules: [{ source_labels: ['__tmp_port'], action: 'dropequal', target_label: '__port2' }], output: { __tmp_port: '1234', __port1: '1234', __port2: '5678' } },
  { input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' }, rules: [{ source_labels: ['__tmp_port'], action: 'keepequal', target_label: '__port2' }], drop: true },
  // Multi-line values match with `.` spanning the newline.
  { input: { a: 'line1\nline2', b: 'bar' }, rules: [{ source_labels: ['a'], regex: 'line1.*line2', target_label: 'd', replacement: 'match${1}' }], output: { a: 'line1\nline2', b: 'bar', d: 'match' } },
  // UTF-8 label names (Prometheus 3): read from a source label, written to a target label,
  // with and without a template, and each `$` style next to UTF-8 text.
  { input: { 'utf-8.label': 'line1\nline2', b: 'bar' }, rules: [{ source_labels: ['utf-8.label'], regex: 'line1.*line2', target_label: 'd', replacement: 'match${1}' }], output: { 'utf-8.label': 'line1\nline2', b: 'bar', d: 'match' } },
  { input: { a: 'line1\nline2', b: 'bar' }, rules: [{ source_labels: ['a'], regex: 'line1.*line2', target_label: 'utf-8.label', replacement: 'match${1}' }], output: { a: 'line1\nline2', b: 'bar', 'utf-8.label': 'match' } },
  { input: { a: 'line1\nline2' }, rules: [{ source_labels: ['a'], regex: 'line1.*line2', target_label: 'utf-8.label${1}', replacement: 'match${1}' }], output: { a: 'line1\nline2', 'utf-8.label': 'match' } },
  {
    input: { a: 'line1\nline2' },
    rules: [
      { source_labels: ['a'], regex: '(line1).*(?<second>line2)', target_label: 'label1_${1}', replacement: 'val_${second}' },
      { source_labels: ['a'], regex: '(line1).*(?P<second>line2)', target_label: 'label2_$1', replacement: 'val_$second' },
    ],
    output: { a: 'line1\nline2', label1_line1: 'val_line2', label2_line1: 'val_line2' },
  },
  { input: { a: 'x', 'dots.in.name': 'y', 'ünïcode': 'z' }, rules: [{ regex: 'dots\\..*', action: 'labeldrop' }], output: { a: 'x', 'ünïcode': 'z' } },
  { input: { a: 'x', 'dots.in.name': 'y', 'ünïcode': 'z' }, rules: [{ regex: 'ü.*', action: 'labelkeep' }], output: { 'ünïcode': 'z' } },
  { input: { 'service.name': 'api' }, rules: [{ regex: 'service\\.(.*)', replacement: 'svc.$1', action: 'labelmap' }], output: { 'service.name': 'api', 'svc.name': 'api' } },
  { input: { 'host.name': 'GW-1' }, rules: [{ source_labels: ['host.name'], target_label: 'host.lower', action: 'lowercase' }], output: { 'host.name': 'GW-1', 'host.lower': 'gw-1' } },
  // Type and unit labels written from the name (Prometheus' __type__/__unit__ cases).
  { input: { __name__: 'http_requests_total' }, rules: [{ source_labels: ['__name__'], regex: '.*_total$', target_label: '__type__', replacement: 'counter' }], output: { __name__: 'http_requests_total', __type__: 'counter' } },
  { input: { __name__: 'disk_usage_bytes' }, rules: [{ source_labels: ['__name__'], regex: '.*_bytes$', target_label: '__unit__', replacement: 'bytes' }], output: { __name__: 'disk_usage_bytes', __unit__: 'bytes' } },
];

CASES.forEach((c, i) => {
  test(`Prometheus TestRelabel case ${i}`, () => {
    const out = relabel(c.input, c.rules);
    if (c.drop) assert.equal(out, null);
    else assert.deepEqual(out, c.output);
  });
});

// Prometheus TestRelabelValidate; a scheme after the reason means the rule is checked under it.
const INVALID: Array<[RelabelConfig, RegExp, NameValidationScheme?]> = [
  [{ action: '' }, /relabel action cannot be empty/],
  [{ action: 'replace' }, /requires 'target_label' value/],
  [{ action: 'lowercase' }, /requires 'target_label' value/],
  [{ action: 'lowercase', replacement: '$1', target_label: '${3}' }, /"\$\{3\}" is invalid 'target_label' for lowercase action/, 'legacy'],
  [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '0${3}' }, /"0\$\{3\}" is invalid 'target_label'/, 'legacy'],
  [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '-${3}' }, /"-\$\{3\}" is invalid 'target_label' for replace action/, 'legacy'],
  [{ source_labels: ['utf-8.label'], target_label: 'b' }, /"utf-8\.label" is not a valid label name in source_labels/, 'legacy'],
  [{ source_labels: ['a'], target_label: 'utf-8.label' }, /"utf-8\.label" is invalid 'target_label' for replace action/, 'legacy'],
  [{ source_labels: ['a'], target_label: 'bar.foo${1}bar' }, /is invalid 'target_label' for replace action/, 'legacy'],
  [{ source_labels: ['a'], target_label: 'x', action: 'hashmod', modulus: 2 }, /./, 'bogus' as NameValidationScheme],
  [{ action: 'hashmod', target_label: 'x' }, /hashmod requires non-zero modulus/],
  [{ action: 'lowercase', target_label: 'x', replacement: 'y' }, /'replacement' can not be set for lowercase action/],
  [{ action: 'keepequal', target_label: 'x', regex: 'y' }, /keepequal action requires only 'source_labels' and `target_label`/],
  [{ action: 'labeldrop', regex: 'x', source_labels: ['a'] }, /labeldrop action requires only 'regex'/],
  [{ action: 'labelmap', regex: 'x', replacement: '-bad' }, /is invalid 'replacement' for labelmap action/, 'legacy'],
  [{ action: 'bogus' }, /unknown relabel action "bogus"/],
  [{ source_labels: ['a'], regex: '(a)\\1', target_label: 'b' }, /invalid regex/],
  [{ source_labels: ['a'], regex: '(?=x)', target_label: 'b' }, /invalid regex/],
  // No scheme accepts an empty name or text that is not well-formed UTF-8 (a lone surrogate).
  [{ source_labels: [''], target_label: 'b' }, /"" is not a valid label name/],
  [{ source_labels: ['a'], target_label: 'x\ud800' }, /is invalid 'target_label'/],
  [{ action: 'hashmod', source_labels: ['a'], modulus: 2, target_label: '\udfff' }, /is invalid 'target_label' for hashmod/],
  // What Prometheus refuses although it looks like a default (checked with promtool): a regex
  // written out on keepequal/dropequal (it compares by identity), an explicit empty
  // source_labels on labeldrop, and null, which is the field's zero value, not its default.
  [{ action: 'keepequal', source_labels: ['a'], target_label: 'b', regex: '(.*)' }, /keepequal action requires only 'source_labels'/],
  [{ action: 'dropequal', source_labels: ['a'], target_label: 'b', regex: null as unknown as string }, /dropequal action requires only 'source_labels'/],
  [{ action: 'labeldrop', regex: 'x', source_labels: [] }, /labeldrop action requires only 'regex'/],
  [{ action: 'labelkeep', regex: 'x', separator: null as unknown as string }, /labelkeep action requires only 'regex'/],
  [{ action: 'labeldrop', regex: 'x', replacement: null as unknown as string }, /labeldrop action requires only 'regex'/],
  [{ action: null as unknown as string, source_labels: ['a'], target_label: 'b' }, /relabel action cannot be empty/],
];

INVALID.forEach(([rule, reason, scheme], i) => {
  test(`invalid rule ${i} is rejected${scheme ? ` under ${scheme}` : ''}: ${reason.source}`, () => {
    assert.throws(() => validateRelabelConfig(rule, scheme), (err: unknown) => err instanceof RelabelConfigError && reason.test(err.message));
  });
});

// Valid under the default (utf8) scheme; the ones Prometheus also accepts under legacy say so.
const VALID: Array<[RelabelConfig, NameValidationScheme[]]> = [
  [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '${3}' }, ['utf8', 'legacy']],
  [{ action: 'lowercase', replacement: '$1', target_label: '${3}' }, ['utf8']],
  [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '0${3}' }, ['utf8']],
  [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '-${3}' }, ['utf8']],
  [{ regex: '__meta_kubernetes_pod_label_(strimzi_io_.+)', action: 'labelmap', replacement: '$1' }, ['utf8', 'legacy']],
  [{ regex: '__meta_(.+)', action: 'labelmap', replacement: '${1}' }, ['utf8', 'legacy']],
  [{ source_labels: ['utf-8.label', 'ünïcode'], target_label: 'dotted.target' }, ['utf8']],
  [{ source_labels: ['a'], target_label: 'x.y', action: 'hashmod', modulus: 4 }, ['utf8']],
  [{ source_labels: ['a'], target_label: 'b.c', action: 'keepequal' }, ['utf8']],
  // Explicit default values are accepted wherever Prometheus accepts them (promtool agrees).
  [{ action: 'labeldrop', regex: 'x', separator: ';' }, ['utf8', 'legacy']],
  [{ action: 'labelkeep', regex: 'x', separator: ';', replacement: '$1', modulus: 0, target_label: '' }, ['utf8', 'legacy']],
  [{ action: 'labeldrop', regex: 'x', source_labels: null as unknown as string[] }, ['utf8', 'legacy']],
  [{ action: 'keepequal', source_labels: ['a'], target_label: 'b', separator: ';', replacement: '$1', modulus: 0 }, ['utf8', 'legacy']],
  [{ action: 'dropequal', source_labels: ['a'], target_label: 'b', modulus: 0 }, ['utf8', 'legacy']],
  [{ action: 'lowercase', source_labels: ['a'], target_label: 'b', replacement: '$1', separator: ';' }, ['utf8', 'legacy']],
  [{ action: 'hashmod', source_labels: ['a'], target_label: 'b', modulus: 3, regex: '(.*)', separator: ';', replacement: '$1' }, ['utf8', 'legacy']],
  [{ action: 'drop', source_labels: ['a'], regex: 'x', target_label: '' }, ['utf8', 'legacy']],
];

VALID.forEach(([rule, schemes], i) => {
  test(`valid rule ${i} passes under ${schemes.join(' and ')}${schemes.includes('legacy') ? '' : ', and is refused under legacy'}`, () => {
    validateRelabelConfig(rule);
    for (const s of schemes) validateRelabelConfig(rule, s);
    if (!schemes.includes('legacy')) assert.throws(() => validateRelabelConfig(rule, 'legacy'), RelabelConfigError);
  });
});

// Prometheus TestTargetLabelLegacyValidity: which templated target labels legacy accepts.
const LEGACY_TARGETS: Array<[string, boolean]> = [
  ['-label', false], ['label', true], ['label${1}', true], ['${1}label', true], ['${1}', true], ['${', false], ['$', false], ['${}', false],
  ['foo${', false], ['$1', true], ['asd$2asd', true], ['-foo${1}bar-', false], ['bar.foo${1}bar', false], ['_${1}_', true], ['foo${bar}foo', true],
];

test('legacy: templated target labels are checked with Prometheus’ legacy template rule', () => {
  for (const [target, valid] of LEGACY_TARGETS) {
    const rule: RelabelConfig = { source_labels: ['a'], target_label: target };
    if (valid) validateRelabelConfig(rule, 'legacy');
    else assert.throws(() => validateRelabelConfig(rule, 'legacy'), RelabelConfigError, target);
  }
});

test('at run time a rule only writes names its scheme allows: a template that expands to a UTF-8 name is skipped under legacy', () => {
  const rules: RelabelConfig[] = [{ source_labels: ['a'], regex: '(.+)', target_label: '${1}', replacement: 'v' }];
  assert.deepEqual(relabel({ a: 'x.y' }, rules), { a: 'x.y', 'x.y': 'v' });
  assert.deepEqual(relabel({ a: 'x.y' }, rules, 'legacy'), { a: 'x.y' });
  const map: RelabelConfig[] = [{ regex: 'k(.*)', replacement: '$1', action: 'labelmap' }];
  assert.deepEqual(relabel({ 'k.dot': '1', k_ok: '2' }, map), { 'k.dot': '1', k_ok: '2', '.dot': '1', _ok: '2' });
  assert.deepEqual(relabel({ 'k.dot': '1', k_ok: '2' }, map, 'legacy'), { 'k.dot': '1', k_ok: '2', _ok: '2' });
  // A null regex is the empty regex (Prometheus' zero value): it matches only the empty string.
  assert.equal(relabel({ a: 'x' }, [{ source_labels: ['a'], regex: null as unknown as string, action: 'keep' }]), null);
  assert.ok(relabel({ b: 'x' }, [{ source_labels: ['a'], regex: null as unknown as string, action: 'keep' }]));
});

test('RE2 semantics: fully anchored, (?i) works, . matches newline (Prometheus 3)', () => {
  assert.equal(relabel({ a: 'xfoox' }, [{ source_labels: ['a'], regex: 'foo', action: 'keep' }]), null, 'anchored');
  assert.ok(relabel({ a: 'FOO' }, [{ source_labels: ['a'], regex: '(?i)foo', action: 'keep' }]));
  assert.ok(relabel({ a: 'foo\nbar' }, [{ source_labels: ['a'], regex: 'foo.bar', action: 'keep' }]));
  assert.deepEqual(relabel({ a: 'x-y' }, [{ source_labels: ['a'], regex: '(?P<first>[^-]+)-(?P<second>.*)', target_label: 'b', replacement: '$second.$first' }]), { a: 'x-y', b: 'y.x' });
});

test('Go regexp.Expand rules: $1x means group "1x", $$ is a dollar, malformed $ is literal', () => {
  const groups = ['ab', 'a', 'b'];
  assert.equal(expandTemplate('$1x', groups, {}), '');
  assert.equal(expandTemplate('${1}x', groups, {}), 'ax');
  assert.equal(expandTemplate('$$1', groups, {}), '$1');
  assert.equal(expandTemplate('cost: $', groups, {}), 'cost: $');
  assert.equal(expandTemplate('${1', groups, {}), '${1');
  assert.equal(expandTemplate('$9', groups, {}), '');
  assert.equal(expandTemplate('$n', ['ab', 'a'], { n: 1 }), 'a');
});

test('an empty result deletes the target label; __name__ can be rewritten', () => {
  assert.deepEqual(relabel({ __name__: 'm', a: 'x' }, [{ source_labels: ['b'], target_label: 'a', replacement: '$1' }]), { __name__: 'm' });
  assert.deepEqual(relabel({ __name__: 'old_name', a: 'x' }, [{ source_labels: ['__name__'], regex: 'old_(.*)', target_label: '__name__', replacement: 'new_$1' }]), { __name__: 'new_name', a: 'x' });
});

test('matching is linear: a pattern that makes backtracking engines explode completes on a long value', () => {
  // With JavaScript's RegExp this input would not finish in any test timeout; RE2 finishes it.
  const value = 'a'.repeat(50_000) + '!';
  const out = relabel({ a: value }, [{ source_labels: ['a'], regex: '(a+)+$', action: 'drop' }]);
  assert.ok(out, 'no match, so the series is kept');
});

test('config: name_validation_scheme defaults to utf8, legacy refuses UTF-8 names naming the rule, a bad scheme names the key', () => {
  const utf8Rule = { rules: [{ source_labels: ['service.name'], target_label: 'svc.name' }] };
  const ok = parseConfig(configSchema, utf8Rule, 'f.yaml', 'processors.relabel');
  assert.ok(ok.ok);
  assert.equal(ok.config.name_validation_scheme, 'utf8');
  const legacy = parseConfig(configSchema, { ...utf8Rule, name_validation_scheme: 'legacy' }, 'f.yaml', 'processors.relabel');
  assert.ok(!legacy.ok);
  assert.equal(legacy.problems[0]?.path, 'processors.relabel.rules');
  assert.match(legacy.problems[0]?.message ?? '', /rule 1: "service\.name" is not a valid label name in source_labels/);
  const bad = parseConfig(configSchema, { rules: [], name_validation_scheme: 'UTF-8' }, 'f.yaml', 'processors.relabel');
  assert.ok(!bad.ok);
  assert.equal(bad.problems[0]?.path, 'processors.relabel.name_validation_scheme');
  assert.match(bad.problems[0]?.message ?? '', /utf8.*legacy/);
});

test('a UTF-8 target label travels as the attribute name and is printed as a valid classic name on /metrics', async () => {
  const parsed = parseConfig(configSchema, { rules: [{ source_labels: ['device_name'], regex: '([^.]+)\\..*', target_label: 'host.name', replacement: '$1' }] }, 'f.yaml', 'processors.relabel');
  assert.ok(parsed.ok);
  const b = new BatchBuilder({}, { name: 'test' });
  b.gauge('tailscaled_up', 'up').add({ device_name: 'gw-1.tail.ts.net' }, 1, 1000);
  const out = await createRelabelProcessor(parsed.config).process(b.build(), { source: 'x', time: 1000, interval: 1000 });
  assert.ok(out);
  assert.deepEqual(out.scopeMetrics[0]?.metrics[0]?.dataPoints[0]?.attributes, { device_name: 'gw-1.tail.ts.net', 'host.name': 'gw-1' });
  assert.match(serializePrometheusText(out), /^tailscaled_up\{device_name="gw-1\.tail\.ts\.net",host_name="gw-1"\} 1/m);
});
