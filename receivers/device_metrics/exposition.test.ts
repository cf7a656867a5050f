import { test } from 'node:test';
import assert from 'node:assert/strict';
import parsePtf from 'parse-prometheus-text-format';
import { ExpositionParseError, parseExposition, type ExpositionFamily } from './exposition.ts';
import { fixture } from '../../test/helpers/index.ts';

/** Families by name, samples as [name, labels, value, timestamp?] for compact expectations. */
function simple(text: string): Record<string, { help?: string; type: string; samples: unknown[][] }> {
  const out: Record<string, { help?: string; type: string; samples: unknown[][] }> = {};
  for (const f of parseExposition(text)) {
    out[f.name] = {
      ...(f.help !== undefined ? { help: f.help } : {}),
      type: f.type,
      samples: f.samples.map((s) => (s.timestampMs === undefined ? [s.name, s.labels, s.value] : [s.name, s.labels, s.value, s.timestampMs])),
    };
  }
  return out;
}

// Cases ported from prometheus/common expfmt text_parse_test.go (valid inputs).
test('expfmt case 0: empty lines', () => {
  assert.deepEqual(simple('\n\n'), {});
});

test('expfmt case 1: minimal metrics, timestamps, empty braces, HELP for a family without samples', () => {
  assert.deepEqual(simple('\nminimal_metric 1.234\nanother_metric -3e3 103948\n# Even that:\nno_labels{} 3\n# HELP line for non-existing metric will be ignored.\n'), {
    minimal_metric: { type: 'untyped', samples: [['minimal_metric', {}, 1.234]] },
    another_metric: { type: 'untyped', samples: [['another_metric', {}, -3000, 103948]] },
    no_labels: { type: 'untyped', samples: [['no_labels', {}, 3]] },
  });
});

test('expfmt case 2: counters and gauges, docstrings, whitespace, escapes, NaN and ±Inf', () => {
  const text = [
    '',
    '# A normal comment.',
    '#',
    '# TYPE name counter',
    'name{labelname="val1",basename="basevalue"} NaN',
    'name {labelname="val2",basename="base\\"v\\\\al\\nue"} 0.23 1234567890',
    '# HELP name two-line\\n doc  str\\\\ing',
    '',
    ' # HELP  name2  \tdoc str"ing 2',
    '  #    TYPE    name2 gauge',
    'name2{labelname="val2"\t,basename   =   "basevalue2"\t\t} +Inf 54321',
    'name2{ labelname = "val1" , }-Inf',
    '',
  ].join('\n');
  const r = simple(text);
  assert.equal(r.name?.type, 'counter');
  assert.equal(r.name?.help, 'two-line\n doc  str\\ing');
  assert.ok(Number.isNaN(r.name?.samples[0]?.[2] as number));
  assert.deepEqual(r.name?.samples[1], ['name', { labelname: 'val2', basename: 'base"v\\al\nue' }, 0.23, 1234567890]);
  assert.deepEqual(r.name2, {
    help: 'doc str"ing 2',
    type: 'gauge',
    samples: [
      ['name2', { labelname: 'val2', basename: 'basevalue2' }, Infinity, 54321],
      ['name2', { labelname: 'val1' }, -Infinity],
    ],
  });
});

test('expfmt case 3: the evil summary, interleaved with other families and funny comments', () => {
  const text = `
# TYPE my_summary summary
my_summary{n1="val1",quantile="0.5"} 110
decoy -1 -2
my_summary{n1="val1",quantile="0.9"} 140 1
my_summary_count{n1="val1"} 42
# Latest timestamp wins in case of a summary.
my_summary_sum{n1="val1"} 4711 2
fake_sum{n1="val1"} 2001
# TYPE another_summary summary
another_summary_count{n2="val2",n1="val1"} 20
my_summary_count{n2="val2",n1="val1"} 5 5
another_summary{n1="val1",n2="val2",quantile=".3"} -1.2
my_summary_sum{n1="val2"} 08 15
my_summary{n1="val3", quantile="0.2"} 4711
  my_summary{n1="val1",n2="val2",quantile="-12.34",} NaN
# some
# funny comments
# HELP
# HELP
# HELP my_summary
# HELP my_summary
`;
  const r = simple(text);
  assert.deepEqual(Object.keys(r).sort(), ['another_summary', 'decoy', 'fake_sum', 'my_summary']);
  assert.deepEqual(r.decoy, { type: 'untyped', samples: [['decoy', {}, -1, -2]] });
  assert.deepEqual(r.fake_sum, { type: 'untyped', samples: [['fake_sum', { n1: 'val1' }, 2001]] });
  assert.equal(r.my_summary?.type, 'summary');
  assert.deepEqual(
    r.my_summary?.samples.filter((s) => s[0] !== 'my_summary' || (s[1] as Record<string, string>).quantile !== '-12.34'),
    [
      ['my_summary', { n1: 'val1', quantile: '0.5' }, 110],
      ['my_summary', { n1: 'val1', quantile: '0.9' }, 140, 1],
      ['my_summary_count', { n1: 'val1' }, 42],
      ['my_summary_sum', { n1: 'val1' }, 4711, 2],
      ['my_summary_count', { n2: 'val2', n1: 'val1' }, 5, 5],
      ['my_summary_sum', { n1: 'val2' }, 8, 15],
      ['my_summary', { n1: 'val3', quantile: '0.2' }, 4711],
    ],
  );
  assert.deepEqual(r.another_summary?.samples, [
    ['another_summary_count', { n2: 'val2', n1: 'val1' }, 20],
    ['another_summary', { n1: 'val1', n2: 'val2', quantile: '.3' }, -1.2],
  ]);
});

test('expfmt case 4: a histogram', () => {
  const text = `
# HELP request_duration_microseconds The response latency.
# TYPE request_duration_microseconds histogram
request_duration_microseconds_bucket{le="100"} 123
request_duration_microseconds_bucket{le="120"} 412
request_duration_microseconds_bucket{le="144"} 592
request_duration_microseconds_bucket{le="172.8"} 1524
request_duration_microseconds_bucket{le="+Inf"} 2693
request_duration_microseconds_sum 1.7560473e+06
request_duration_microseconds_count 2693
`;
  const r = simple(text);
  assert.equal(r.request_duration_microseconds?.type, 'histogram');
  assert.equal(r.request_duration_microseconds?.help, 'The response latency.');
  assert.equal(r.request_duration_microseconds?.samples.length, 7);
  assert.deepEqual(r.request_duration_microseconds?.samples[5], ['request_duration_microseconds_sum', {}, 1756047.3]);
});

test('expfmt cases 5–11: quoted metric names and label names (UTF-8 names)', () => {
  assert.deepEqual(simple('# HELP "my.noncompliant.metric" help text\n# TYPE "my.noncompliant.metric" counter\n{"my.noncompliant.metric","label.name"="value"} 1\n'), {
    'my.noncompliant.metric': { help: 'help text', type: 'counter', samples: [['my.noncompliant.metric', { 'label.name': 'value' }, 1]] },
  });
  assert.deepEqual(simple('{labelname="value", "my.noncompliant.metric"} 1\n')['my.noncompliant.metric']?.samples, [['my.noncompliant.metric', { labelname: 'value' }, 1]]);
  assert.deepEqual(Object.keys(simple('{"name.1"} 1\n{"name.2"} 1\n{"name.3"} 1\n')), ['name.1', 'name.2', 'name.3']);
  const r = simple('# HELP "gauge.name" gauge\\ndoc\\nstr\\"ing\n# TYPE "gauge.name" gauge\n{"gauge.name","name.1"="val with\\nnew line","name*2"="val with \\\\backslash and \\"quotes\\""} +Inf\n{"gauge.name","name.1"="Björn","name*2"="佖佥"} 3.14e+42\n');
  assert.equal(r['gauge.name']?.help, 'gauge\ndoc\nstr\\"ing');
  assert.deepEqual(r['gauge.name']?.samples, [
    ['gauge.name', { 'name.1': 'val with\nnew line', 'name*2': 'val with \\backslash and "quotes"' }, Infinity],
    ['gauge.name', { 'name.1': 'Björn', 'name*2': '佖佥' }, 3.14e42],
  ]);
});

test('expfmt cases 12–17: float histograms and gauge histograms', () => {
  const r = simple('# TYPE h gauge_histogram\nh_bucket{le="1"} 1.5\nh_bucket{le="+Inf"} 2.5\nh_sum 3\nh_count 2.5\n');
  assert.equal(r.h?.type, 'histogram');
  assert.deepEqual(r.h?.samples[1], ['h_bucket', { le: '+Inf' }, 2.5]);
  assert.equal(simple('# TYPE g gaugehistogram\ng_bucket{le="+Inf"} 1\n').g?.type, 'histogram');
});

// Error cases ported from expfmt testTextParseError (line numbers and reasons).
const ERRORS: Array<[string, number, RegExp]> = [
  ['metric{label="\\t"} 3.14', 1, /invalid escape sequence/],
  ['\nmetric{label="new\nline"} 3.14\n', 2, /contains unescaped new-line/],
  ['metric{@="bla"} 3.14', 1, /invalid label name for metric/],
  ['metric{__name__="bla"} 3.14', 1, /label name "__name__" is reserved/],
  ['metric{label+="bla"} 3.14', 1, /expected '=' after label name/],
  ['metric{label=bla} 3.14', 1, /expected '"' at start of label value/],
  ['\n# TYPE metric summary\nmetric{quantile="bla"} 3.14\n', 3, /expected float as value for 'quantile' label/],
  ['metric{label="bla"+} 3.14', 1, /unexpected end of label value/],
  ['metric{label="bla"} 3.14 2.72\n', 1, /expected integer as timestamp/],
  ['metric{label="bla"} 3.14 2 3\n', 1, /spurious string after timestamp/],
  ['metric{label="bla"} blubb\n', 1, /expected float as value/],
  ['\n# HELP metric one\n# HELP metric two\n', 3, /second HELP line for metric name/],
  ['\n# TYPE metric counter\n# TYPE metric untyped\n', 3, /second TYPE line for metric name "metric", or TYPE reported after samples/],
  ['\nmetric 4.12\n# TYPE metric counter\n', 3, /second TYPE line for metric name "metric", or TYPE reported after samples/],
  ['\n# TYPE metric bla\n', 2, /unknown metric type/],
  ['\n# TYPE met-ric\n', 2, /invalid metric name in comment/],
  ['@invalidmetric{label="bla"} 3.14 2', 1, /invalid metric name/],
  ['{label="bla"} 3.14 2', 1, /invalid metric name/],
  ['\n# TYPE metric histogram\nmetric_bucket{le="bla"} 3.14\n', 3, /expected float as value for 'le' label/],
  ['foo 1_2\n', 1, /expected float as value/],
  ['foo 0x1p-3\n', 1, /expected float as value/],
  ['foo 0x1P-3\n', 1, /expected float as value/],
  ['foo 0B1\n', 1, /expected float as value/],
  ['foo 0O1\n', 1, /expected float as value/],
  ['foo 0X1\n', 1, /expected float as value/],
  ['foo 0b1\n', 1, /expected float as value/],
  ['foo 0o1\n', 1, /expected float as value/],
  ['\n# TYPE metric histogram\nmetric_bucket{le="0x1p-3"} 3.14\n', 3, /expected float as value for 'le' label/],
  ['\n# TYPE metric summary\nmetric{quantile="0x1p-3"} 3.14\n', 3, /expected float as value for 'quantile' label/],
  ['metric{label="bla",label="bla"} 3.14', 1, /duplicate label names for metric/],
  ['{"one.name","another.name"} 3.14', 1, /multiple metric names/],
  ['{"a\\xc5z",label="bla"} 3.14', 1, /invalid escape sequence/],
  ['{"metric.name".label="bla"} 3.14', 1, /unexpected end of metric name/],
  ['\n# TYPE "metric.name\\t" counter\n{"metric.name\\t",label="bla"} 3.14\n', 2, /invalid escape sequence/],
  ['\n# TYPE "metric\nname" counter\n', 2, /metric name "metric" contains unescaped new-line/],
  ['\n# TYPE h histogram\nh_bucket{le="+Inf"} 2693\nh_count -2693\n', 4, /negative count for histogram "h"/],
  ['\n# TYPE h histogram\nh_bucket{le="120"} -412\n', 3, /negative bucket population for histogram "h"/],
  ['{} 3.14', 1, /invalid metric name/],
];

for (const [input, line, reason] of ERRORS) {
  test(`invalid input is rejected with its line: ${JSON.stringify(input).slice(0, 60)}`, () => {
    assert.throws(
      () => parseExposition(input),
      (err: unknown) => err instanceof ExpositionParseError && err.line === line && reason.test(err.message) && err.code === 'TSM_ERR_EXPOSITION_PARSE',
    );
  });
}

test('missing metric name after any prefix is reported on the sample line (expfmt TestTextParseMissingMetricName)', () => {
  for (const prefix of ['', '#TYPE A000000 summArY\n', '# TYPE metric histogram\n', '# HELP metric Help text.\n', 'metric 1\n', '{"metric"} 1\n']) {
    for (const sample of ['{}', '{} 2\n', '{label="value"} 2\n', '{label="value",} 2\n']) {
      assert.throws(
        () => parseExposition(prefix + sample),
        (err: unknown) => err instanceof ExpositionParseError && /invalid metric name/.test(err.message) && err.line === prefix.split('\n').length,
        JSON.stringify(prefix + sample),
      );
    }
  }
});

test('deliberate difference from expfmt: a missing final newline is accepted (as Prometheus scrapes accept it)', () => {
  assert.deepEqual(simple('\nbla 3.14\nblubber 42'), { bla: { type: 'untyped', samples: [['bla', {}, 3.14]] }, blubber: { type: 'untyped', samples: [['blubber', {}, 42]] } });
});

test('CRLF line endings and TYPE case are tolerated', () => {
  assert.deepEqual(simple('# TYPE a GAUGE\r\na 1\r\n'), { a: { type: 'gauge', samples: [['a', {}, 1]] } });
});

test('the tailscaled fixtures parse completely, TYPE before HELP, empty families dropped', () => {
  const full = parseExposition(fixture('client-metrics.txt'));
  assert.equal(full.length, 15);
  assert.equal(full.reduce((n, f) => n + f.samples.length, 0), 44);
  const inbound = full.find((f) => f.name === 'tailscaled_inbound_dropped_packets_total') as ExpositionFamily;
  assert.equal(inbound.type, 'counter');
  assert.equal(inbound.help, 'Counts the number of dropped packets received by the node from other peers');
  assert.deepEqual(inbound.samples.map((s) => s.labels.reason), ['acl', 'error']);
  const fresh = parseExposition(fixture('client-metrics-fresh-node.txt'));
  // 12 families in the file; the three without samples (inbound drops, serve in/out) are left out.
  assert.equal(fresh.length, 9);
  assert.equal(fresh.reduce((n, f) => n + f.samples.length, 0), 25);
});

test('characters beyond Latin-1 are read exactly: no code unit passes for a quote, brace or newline', () => {
  // U+0122, U+017D, U+010A and U+0120 have the low bytes of '"', '}', '\n' and ' '; then an emoji
  // (a surrogate pair) and a lone surrogate.
  const value = '\u0122\u017d\u010a\u0120 😀 \ud800 grüße';
  assert.deepEqual(simple(`# HELP m h\u0122lp \u017d\nm{a="${value}",b="x"} 1\nm{"\u0122 q"="y"} 2\n`), {
    m: { help: 'h\u0122lp \u017d', type: 'untyped', samples: [['m', { a: value, b: 'x' }, 1], ['m', { '\u0122 q': 'y' }, 2]] },
  });
  assert.throws(() => parseExposition('m\u0120 1\n'), (err: unknown) => err instanceof ExpositionParseError && /invalid metric name/.test(err.message));
});

test('a body parsed after a longer one is read alone: its end is its end, not the earlier text', () => {
  assert.equal(parseExposition('m{a="b"} 1\n# TYPE n gauge\nn 2\n').length, 2);
  assert.throws(() => parseExposition('m{a="b"'), (err: unknown) => err instanceof ExpositionParseError && /unexpected end of label value of "a"/.test(err.message));
  assert.throws(() => parseExposition('m{a="b"} 1\nm'), (err: unknown) => err instanceof ExpositionParseError && err.line === 2 && /missing value/.test(err.message));
});

test('families whose names hash alike stay apart, and a family named again later is found again', () => {
  // "Aa" and "BB" (and "AaAa", "BBBB", ...) collide in the parser's name hash (h * 31 + c).
  const text = '# TYPE Aa gauge\nAa 1\n# TYPE BB counter\nBB 2\nAaBB 3\n# HELP Aa late help\nBBAa 4\nAa{x="y"} 5\n';
  assert.deepEqual(simple(text), {
    Aa: { help: 'late help', type: 'gauge', samples: [['Aa', {}, 1], ['Aa', { x: 'y' }, 5]] },
    BB: { type: 'counter', samples: [['BB', {}, 2]] },
    AaBB: { type: 'untyped', samples: [['AaBB', {}, 3]] },
    BBAa: { type: 'untyped', samples: [['BBAa', {}, 4]] },
  });
  assert.deepEqual(parseExposition(text).map((f) => f.name), ['Aa', 'BB', 'AaBB', 'BBAa']);
  assert.throws(() => parseExposition(`${text}# TYPE BB gauge\n`), (err: unknown) => err instanceof ExpositionParseError && err.line === 9 && /second TYPE line for metric name "BB"/.test(err.message));
  assert.throws(() => parseExposition(`${text}# TYPE "AaBB" gauge\n`), (err: unknown) => err instanceof ExpositionParseError && err.line === 9 && /"AaBB"/.test(err.message));
});

// Differential check against parse-prometheus-text-format on inputs it handles correctly.
test('agrees with parse-prometheus-text-format on the inputs it parses correctly', () => {
  const text = fixture('client-metrics.txt');
  const theirs = parsePtf(text) as Array<{ name: string; help: string; type: string; metrics: Array<{ value: string; labels?: Record<string, string> }> }>;
  const ours = parseExposition(text);
  assert.equal(theirs.length, ours.length);
  for (const t of theirs) {
    const o = ours.find((f) => f.name === t.name) as ExpositionFamily;
    assert.equal(o.type, t.type.toLowerCase());
    assert.equal(o.help, t.help);
    assert.deepEqual(o.samples.map((s) => [s.labels, s.value]), t.metrics.map((m) => [m.labels ?? {}, Number(m.value)]));
  }
});

test('parse-prometheus-text-format fails inputs we parse (why it is only the baseline)', () => {
  // Last line without a newline is dropped by it; a space after a comma throws.
  const lastLine = parsePtf('a 1\nb 2') as Array<{ name: string }>;
  assert.ok(!lastLine.some((f) => f.name === 'b'), 'it loses the last line');
  assert.equal(parseExposition('a 1\nb 2').length, 2);
  assert.throws(() => parsePtf('m{a="b", c="d"} 1\n'));
  assert.deepEqual(parseExposition('m{a="b", c="d"} 1\n')[0]?.samples[0]?.labels, { a: 'b', c: 'd' });
});
