import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandTemplate, relabel, validateRelabelConfig, RelabelConfigError, type RelabelConfig } from './engine.ts';

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
];

CASES.forEach((c, i) => {
  test(`Prometheus TestRelabel case ${i}`, () => {
    const out = relabel(c.input, c.rules);
    if (c.drop) assert.equal(out, null);
    else assert.deepEqual(out, c.output);
  });
});

// Prometheus TestRelabelValidate.
const INVALID: Array<[RelabelConfig, RegExp]> = [
  [{ action: '' }, /relabel action cannot be empty/],
  [{ action: 'replace' }, /requires 'target_label' value/],
  [{ action: 'lowercase' }, /requires 'target_label' value/],
  [{ action: 'lowercase', replacement: '$1', target_label: '${3}' }, /"\$\{3\}" is invalid 'target_label'/],
  [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '0${3}' }, /"0\$\{3\}" is invalid 'target_label'/],
  [{ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '-${3}' }, /"-\$\{3\}" is invalid 'target_label' for replace action/],
  [{ action: 'hashmod', target_label: 'x' }, /hashmod requires non-zero modulus/],
  [{ action: 'lowercase', target_label: 'x', replacement: 'y' }, /'replacement' can not be set for lowercase action/],
  [{ action: 'keepequal', target_label: 'x', regex: 'y' }, /keepequal action requires only 'source_labels' and `target_label`/],
  [{ action: 'labeldrop', regex: 'x', source_labels: ['a'] }, /labeldrop action requires only 'regex'/],
  [{ action: 'labelmap', regex: 'x', replacement: '-bad' }, /is invalid 'replacement' for labelmap action/],
  [{ action: 'bogus' }, /unknown relabel action "bogus"/],
  [{ source_labels: ['a'], regex: '(a)\\1', target_label: 'b' }, /invalid regex/],
  [{ source_labels: ['a'], regex: '(?=x)', target_label: 'b' }, /invalid regex/],
];

INVALID.forEach(([rule, reason], i) => {
  test(`invalid rule ${i} is rejected: ${reason.source}`, () => {
    assert.throws(() => validateRelabelConfig(rule), (err: unknown) => err instanceof RelabelConfigError && reason.test(err.message));
  });
});

test('a valid templated target label passes validation (Prometheus TestRelabelValidate)', () => {
  validateRelabelConfig({ source_labels: ['a'], regex: 'some-([^-]+)-([^,]+)', action: 'replace', replacement: '${1}', target_label: '${3}' });
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
