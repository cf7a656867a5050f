/**
 * Hostile devices against the per-series state the receiver and the staleness processor keep
 * between cycles: duplicate lines, counters that drop, NaN, failed scrapes, label churn, the
 * process-wide series key cache, markers for ended series, and simulators that must stop with
 * kept-alive connections. Devices are simulator servers on loopback answering Prometheus text;
 * what is checked is what leaves the process (OTLP on the wire, `/metrics`).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { defaultRegistry } from '../src/components.ts';
import { resolveConfig } from '../src/config/service.ts';
import { PipelineService } from '../src/pipeline/service.ts';
import { LocalApiSimulator } from '../src/simulator/localapi.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import type { PrometheusExporterComponent } from '../exporters/prometheus/prometheus.ts';
import { buildService, families, fixture, fixtureDevices, manualClock, memoryLogger, renderPrometheus, sampleValue } from './helpers/index.ts';
import { OtlpReceiver, type WirePoint } from './helpers/otlp-receiver.ts';

type ApiDevice = Record<string, unknown>;

/** A tagged, online device record shaped like the fixture's gateway, at `address`. */
function device(id: string, address: string): ApiDevice {
  const base = { ...(fixtureDevices()[0] as ApiDevice) };
  return { ...base, id, nodeId: `n${id}`, name: `dev-${id}.tail4c8e1a.ts.net`, hostname: `dev-${id}`, addresses: [address], connectedToControl: true, lastSeen: new Date().toISOString() };
}

interface Setup {
  sim: TailnetSimulator;
  service: PipelineService;
  rx: OtlpReceiver;
  /** Advances the clock by `ms`, runs one cycle and waits until OTLP has been sent. */
  cycle: (ms?: number) => Promise<void>;
  /** Advances the clock by `ms` and runs one cycle, without waiting for OTLP. */
  collect: (ms?: number) => Promise<void>;
  flush: () => Promise<void>;
  page: () => Promise<string>;
}

async function setup(t: TestContext, devices: ApiDevice[], opts: { staleness?: Record<string, unknown>; otlp?: Record<string, unknown> } = {}): Promise<Setup> {
  const rx = new OtlpReceiver();
  await rx.start();
  const sim = new TailnetSimulator({ devices_json: devices as never });
  await sim.start();
  const clock = manualClock();
  const { logger } = memoryLogger();
  const service = buildService(
    {
      receivers: {
        tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' },
        device_metrics: { interval: '1h', port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], timeout: '2s' },
      },
      processors: opts.staleness ? { staleness: opts.staleness } : {},
      exporters: { prometheus: {}, otlp: { endpoint: rx.url, ...opts.otlp } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: opts.staleness ? ['staleness'] : [], exporters: ['prometheus', 'otlp'] } } },
    },
    { logger, clock },
  );
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(2000));
    await sim.stop();
    await rx.stop();
  });
  const otlp = service.exporters.get('otlp') as unknown as { flush(): Promise<void> };
  const prom = service.exporters.get('prometheus') as PrometheusExporterComponent;
  return {
    sim,
    service,
    rx,
    cycle: async (ms = 0) => {
      clock.advance(ms);
      await service.collectNow();
      await otlp.flush();
    },
    collect: async (ms = 0) => {
      clock.advance(ms);
      await service.collectNow();
    },
    flush: () => otlp.flush(),
    page: async () => (await prom.render()) ?? '',
  };
}

const A = 'hostile0001';
const B = 'hostile0002';
const ms = (ns: bigint): number => Number(ns / 1_000_000n);

/** The points of `name` for device `id` received over OTLP, in the order they were sent. */
function series(rx: OtlpReceiver, name: string, id: string, match: Record<string, string> = {}): Array<WirePoint & { request: number }> {
  return rx.points(name).filter((p) => p.attributes.device_id === id && Object.entries(match).every(([k, v]) => p.attributes[k] === v));
}

/** The first `n` points, asserting there are exactly `n`. */
function tuple(pts: WirePoint[], n: 2): [WirePoint, WirePoint];
function tuple(pts: WirePoint[], n: 4): [WirePoint, WirePoint, WirePoint, WirePoint];
function tuple(pts: WirePoint[], n: number): WirePoint[] {
  assert.equal(pts.length, n, `${n} points: ${JSON.stringify(pts.map((p) => p.value ?? p.count))}`);
  return pts;
}

/** One counter family whose single series is written once per value (several = duplicate lines). */
const counter = (...values: number[]): string => `# TYPE tailscaled_c_total counter\n${values.map((v) => `tailscaled_c_total ${v}`).join('\n')}\n`;

// --- 1. StartTimeTracker ---------------------------------------------------------------------

test('a counter that drops resets its start time to the scrape; one that grows keeps it (OTLP wire)', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.1')]);
  for (const [i, v] of [100, 150, 5, 7].entries()) {
    sim.setDeviceFault(A, { kind: 'body', body: counter(v) });
    await cycle(i === 0 ? 0 : 10_000);
  }
  const pts = series(rx, 'tailscaled_c_total', A);
  assert.deepEqual(pts.map((p) => p.value), [100, 150, 5, 7]);
  const [p0, p1, p2, p3] = tuple(pts, 4);
  assert.equal(p1.startTimeUnixNano, p0.startTimeUnixNano, 'growth keeps the start');
  assert.equal(ms(p2.startTimeUnixNano), ms(p2.timeUnixNano), 'the drop moves the start to the scrape');
  assert.equal(p3.startTimeUnixNano, p2.startTimeUnixNano, 'and growth after it keeps the new start');
});

test('duplicate counter lines, the last lower than the previous scrape: the exported drop carries a new start time', async (t) => {
  // Exported values go 10 → 5 (the last line wins): a drop, so the start must move with it. A
  // cumulative monotonic sum that goes down under an unchanged start is invalid OTLP.
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.2')]);
  sim.setDeviceFault(A, { kind: 'body', body: counter(10) });
  await cycle();
  sim.setDeviceFault(A, { kind: 'body', body: counter(20, 5) });
  await cycle(10_000);
  const [p0, p1] = tuple(series(rx, 'tailscaled_c_total', A), 2);
  assert.equal(p1.value, 5, 'the last duplicate line wins');
  assert.ok(p1.startTimeUnixNano > p0.startTimeUnixNano, 'a value below the previous scrape moves the start time');
});

// Exported values that never go down keep one start time, whatever the discarded duplicate
// lines of a scrape said: a first duplicate below the previous value is not what is exported
// (10 → 20 → 21), and a discarded higher line is not what the next scrape is compared to
// (10 → 15 → 16).
for (const c of [
  { name: 'duplicate counter lines that end above the previous scrape keep the start time (no false reset)', addr: '127.0.3.3', middle: [5, 20], values: [10, 20, 21] },
  { name: 'duplicate counter lines whose discarded earlier line is higher do not reset the next scrape', addr: '127.0.3.4', middle: [20, 15], values: [10, 15, 16] },
]) {
  test(c.name, async (t) => {
    const { sim, rx, cycle } = await setup(t, [device(A, c.addr)]);
    const [first, , last] = c.values as [number, number, number];
    sim.setDeviceFault(A, { kind: 'body', body: counter(first) });
    await cycle();
    sim.setDeviceFault(A, { kind: 'body', body: counter(...c.middle) });
    await cycle(10_000);
    sim.setDeviceFault(A, { kind: 'body', body: counter(last) });
    await cycle(10_000);
    const pts = series(rx, 'tailscaled_c_total', A);
    assert.deepEqual(pts.map((p) => p.value), c.values);
    assert.equal(new Set(pts.map((p) => p.startTimeUnixNano)).size, 1, 'one start time for a counter that never went down');
  });
}

test('duplicate gauge and summary lines export one series each, the last line winning', async (t) => {
  const { sim, rx, cycle, page } = await setup(t, [device(A, '127.0.3.5')]);
  const body = ['# TYPE tailscaled_g gauge', 'tailscaled_g{k="v"} 1', 'tailscaled_g{k="v"} 2', '# TYPE tailscaled_s summary', 'tailscaled_s{quantile="0.5"} 3', 'tailscaled_s{quantile="0.5"} 4', 'tailscaled_s_sum 9', 'tailscaled_s_count 2', 'tailscaled_s_count 3', ''].join('\n');
  sim.setDeviceFault(A, { kind: 'body', body });
  await cycle();
  await cycle(10_000);
  assert.deepEqual(series(rx, 'tailscaled_g', A).map((p) => p.value), [2, 2]);
  assert.deepEqual(series(rx, 'tailscaled_s', A).map((p) => p.value), [4, 4]);
  assert.deepEqual(series(rx, 'tailscaled_s_count', A).map((p) => p.value), [3, 3]);
  const f = families(await page());
  assert.equal(f.get('tailscaled_g')?.samples.filter((s) => s.labels.device_id === A).length, 1);
  assert.equal(sampleValue(f, 'tailscaled_s', { device_id: A, quantile: '0.5' }), 4);
});

/** One histogram family; `extra` lines go between its `le="1"` and `+Inf` buckets. */
const histogram = (count: number, extra = ''): string => `# TYPE tailscaled_h histogram\ntailscaled_h_bucket{le="1"} ${Math.floor(count / 2)}\n${extra}tailscaled_h_bucket{le="+Inf"} ${count}\ntailscaled_h_sum ${count * 2}\ntailscaled_h_count ${count}\n`;

test('a histogram whose count drops gets a new start time; one that grows keeps it', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.6')]);
  for (const [i, c] of [40, 60, 4, 6].entries()) {
    sim.setDeviceFault(A, { kind: 'body', body: histogram(c) });
    await cycle(i === 0 ? 0 : 10_000);
  }
  const pts = series(rx, 'tailscaled_h', A);
  assert.deepEqual(pts.map((p) => p.count), [40, 60, 4, 6]);
  const [p0, p1, p2, p3] = tuple(pts, 4);
  assert.equal(p1.startTimeUnixNano, p0.startTimeUnixNano);
  assert.equal(ms(p2.startTimeUnixNano), ms(p2.timeUnixNano), 'the count dropped: new start');
  assert.equal(p3.startTimeUnixNano, p2.startTimeUnixNano);
});

test('duplicate histogram bucket lines still export a valid histogram (one count per bound, bounds increasing)', async (t) => {
  const { sim, rx, cycle, page } = await setup(t, [device(A, '127.0.3.7')]);
  sim.setDeviceFault(A, { kind: 'body', body: histogram(10, 'tailscaled_h_bucket{le="1"} 5\ntailscaled_h_bucket{le="+Inf"} 10\n') });
  await cycle();
  const [p] = series(rx, 'tailscaled_h', A);
  assert.ok(p);
  const bounds = p.explicitBounds ?? [];
  assert.equal((p.bucketCounts ?? []).length, bounds.length + 1, `OTLP: bucket_counts has one more entry than explicit_bounds (${JSON.stringify(bounds)} / ${JSON.stringify(p.bucketCounts)})`);
  for (let i = 1; i < bounds.length; i++) assert.ok((bounds[i] as number) > (bounds[i - 1] as number), `bounds strictly increase: ${JSON.stringify(bounds)}`);
  const buckets = families(await page()).get('tailscaled_h')?.samples.filter((s) => s.name === 'tailscaled_h_bucket' && s.labels.device_id === A) ?? [];
  assert.deepEqual(buckets.map((s) => s.labels.le), ['1', '+Inf'], '/metrics prints each bucket once');
});

test('a failed scrape in between keeps the counter start (no false reset); a drop after it still resets', async (t) => {
  const { sim, rx, cycle, page } = await setup(t, [device(A, '127.0.3.8')]);
  sim.setDeviceFault(A, { kind: 'body', body: counter(100) });
  await cycle();
  sim.setDeviceFault(A, { kind: 'status', status: 503 });
  await cycle(10_000);
  assert.equal(sampleValue(families(await page()), 'tsmetrics_device_scrape_up', { device_id: A }), 0);
  // The receiver skips the device for a cycle after a failure (backoff).
  sim.setDeviceFault(A, { kind: 'body', body: counter(150) });
  for (let i = 0; i < 3 && !series(rx, 'tailscaled_c_total', A).some((p) => p.value === 150); i++) await cycle(10_000);
  sim.setDeviceFault(A, { kind: 'body', body: counter(120) });
  await cycle(10_000);
  const pts = series(rx, 'tailscaled_c_total', A).filter((p) => p.flags === 0);
  const first = pts[0] as WirePoint;
  const grown = pts.find((p) => p.value === 150);
  const dropped = pts.find((p) => p.value === 120);
  assert.ok(grown && dropped, JSON.stringify(pts.map((p) => p.value)));
  assert.equal(grown.startTimeUnixNano, first.startTimeUnixNano, 'the failed scrape did not reset the counter');
  assert.equal(ms(dropped.startTimeUnixNano), ms(dropped.timeUnixNano), 'a drop against the last good value resets it');
});

test('a NaN counter sample is never exported, and a lower value after it still resets the start', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.9')]);
  sim.setDeviceFault(A, { kind: 'body', body: counter(100) });
  await cycle();
  sim.setDeviceFault(A, { kind: 'body', body: `${counter(Number.NaN)}# TYPE tailscaled_n_total counter\ntailscaled_n_total 1\n` });
  await cycle(10_000);
  sim.setDeviceFault(A, { kind: 'body', body: counter(50) });
  await cycle(10_000);
  const pts = series(rx, 'tailscaled_c_total', A);
  assert.ok(pts.every((p) => Number.isFinite(p.value)), 'NaN is never exported for a counter');
  const last = pts[pts.length - 1] as WirePoint;
  assert.equal(last.value, 50);
  assert.equal(ms(last.startTimeUnixNano), ms(last.timeUnixNano), 'a new start');
});

test('label churn: each label set has its own start; a label set that comes back starts over', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.10')]);
  const body = (path: string, v: number): string => `# TYPE tailscaled_p_total counter\ntailscaled_p_total{path="${path}"} ${v}\ntailscaled_p_total{path="stable"} ${v}\n`;
  sim.setDeviceFault(A, { kind: 'body', body: body('one', 10) });
  await cycle();
  sim.setDeviceFault(A, { kind: 'body', body: body('two', 20) });
  await cycle(10_000);
  sim.setDeviceFault(A, { kind: 'body', body: body('one', 30) });
  await cycle(10_000);
  const stable = series(rx, 'tailscaled_p_total', A, { path: 'stable' });
  assert.equal(stable.length, 3);
  assert.equal(new Set(stable.map((p) => p.startTimeUnixNano)).size, 1, 'the stable series never reset');
  const one = series(rx, 'tailscaled_p_total', A, { path: 'one' });
  assert.equal(one.length, 2);
  assert.equal(ms((one[1] as WirePoint).startTimeUnixNano), ms((one[1] as WirePoint).timeUnixNano), 'the series was gone a cycle: its state went with it');
  const two = series(rx, 'tailscaled_p_total', A, { path: 'two' });
  assert.equal(ms((two[0] as WirePoint).startTimeUnixNano), ms((two[0] as WirePoint).timeUnixNano));
});

test('two lines that print as the same series (label or metric names that sanitize alike) export one series, not two', async (t) => {
  // {a_b="1"} and {"a-b"="1"} both print as a_b="1"; "tailscaled_x-y" and tailscaled_x_y both print
  // as tailscaled_x_y. Two samples with one name and label set make the exposition invalid and
  // give OTLP two points for one series at one instant.
  const { sim, rx, cycle, page } = await setup(t, [device(A, '127.0.3.11')]);
  const body = ['# TYPE tailscaled_g gauge', 'tailscaled_g{a_b="1"} 1', 'tailscaled_g{"a-b"="1"} 2', '# TYPE tailscaled_x_y gauge', 'tailscaled_x_y 3', '# TYPE "tailscaled_x-y" gauge', '{"tailscaled_x-y"} 4', ''].join('\n');
  sim.setDeviceFault(A, { kind: 'body', body });
  await cycle();
  const text = await page();
  const lines = text.split('\n').filter((l) => l.startsWith('tailscaled_g{') || l.startsWith('tailscaled_x_y{'));
  assert.equal(new Set(lines.map((l) => l.slice(0, l.lastIndexOf(' ')))).size, lines.length, `no series printed twice:\n${lines.join('\n')}`);
  assert.equal(series(rx, 'tailscaled_g', A).length, 1, 'one OTLP point for tailscaled_g{a_b="1"}');
  assert.equal(series(rx, 'tailscaled_x_y', A).length, 1, 'one OTLP point for tailscaled_x_y');
});

// --- 1b. predicted series -----------------------------------------------------------------------
// The tracker predicts each sample to be the series at the same position last scrape and skips
// the key lookup when name and labels prove it. A device that reorders, drops, renames or
// re-labels its series must not get its values attached to the wrong series.

test('a device that reorders, drops and re-labels its series between scrapes: every value stays with its own series', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.50')]);
  const scrapes = [
    ['tailscaled_x_total{a="1",b="2"} 10', 'tailscaled_x_total{a="1"} 20', 'tailscaled_x_total{b="1"} 30', 'tailscaled_x_total{a="2"} 40'],
    // Reordered; {a="1",b="2"} loses a label; {b="1"} becomes {a="1"}'s value under another name.
    ['tailscaled_x_total{a="2"} 41', 'tailscaled_x_total{a="1"} 21', 'tailscaled_x_total{b="1"} 31', 'tailscaled_x_total{b="2",a="1"} 11'],
    // A subset of a series' labels, the same value under another label name, and a drop.
    // ({b="2"} comes where {b="2",a="1"} was: it holds a subset of that series' labels.)
    ['tailscaled_x_total{a="1"} 22', 'tailscaled_x_total{c="1"} 50', 'tailscaled_x_total{b="1"} 32', 'tailscaled_x_total{b="2"} 60', 'tailscaled_x_total{a="1",b="2"} 5'],
  ];
  for (const [i, lines] of scrapes.entries()) {
    sim.setDeviceFault(A, { kind: 'body', body: `# TYPE tailscaled_x_total counter\n${lines.join('\n')}\n` });
    await cycle(i === 0 ? 0 : 10_000);
  }
  const values = (match: Record<string, string>, n: number) =>
    series(rx, 'tailscaled_x_total', A, match)
      .filter((p) => Object.keys(p.attributes).filter((k) => !['device_id', 'device_name', 'tailnet'].includes(k)).length === n)
      .map((p) => p.value);
  assert.deepEqual(values({ a: '1', b: '2' }, 2), [10, 11, 5]);
  assert.deepEqual(values({ a: '1' }, 1), [20, 21, 22]);
  assert.deepEqual(values({ b: '1' }, 1), [30, 31, 32]);
  assert.deepEqual(values({ a: '2' }, 1), [40, 41]);
  assert.deepEqual(values({ c: '1' }, 1), [50]);
  assert.deepEqual(values({ b: '2' }, 1), [60]);
  // 11 → 5 is a drop of that series alone: its start moves, {a="1"}'s does not.
  const ab = series(rx, 'tailscaled_x_total', A, { a: '1', b: '2' });
  assert.ok((ab[2] as WirePoint).startTimeUnixNano > (ab[1] as WirePoint).startTimeUnixNano);
  const a1 = series(rx, 'tailscaled_x_total', A, { a: '1' }).filter((p) => p.attributes.b === undefined);
  assert.equal((a1[2] as WirePoint).startTimeUnixNano, (a1[0] as WirePoint).startTimeUnixNano);
});

test('another metric with the same labels at a series\' position is a new series (its own start time)', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.52')]);
  sim.setDeviceFault(A, { kind: 'body', body: '# TYPE tailscaled_a_total counter\ntailscaled_a_total{p="1"} 10\n' });
  await cycle();
  sim.setDeviceFault(A, { kind: 'body', body: '# TYPE tailscaled_b_total counter\ntailscaled_b_total{p="1"} 20\n' });
  await cycle(10_000);
  const [b] = series(rx, 'tailscaled_b_total', A);
  assert.ok(b);
  assert.equal(b.value, 20);
  assert.equal(ms(b.startTimeUnixNano), ms(b.timeUnixNano), 'a series first seen now starts now, not when the other metric did');
});

test('a label named like one of ours holding our own value is not taken for the series at its position', async (t) => {
  // The device's own id as a `device_id` label matches the attributes' device_id; the series it
  // lands on is exported_device_id's, never the one written at that position last time.
  const { sim, rx, page, cycle } = await setup(t, [device(A, '127.0.3.51')]);
  sim.setDeviceFault(A, { kind: 'body', body: '# TYPE tailscaled_y gauge\ntailscaled_y{path="derp"} 1\n' });
  await cycle();
  sim.setDeviceFault(A, { kind: 'body', body: `# TYPE tailscaled_y gauge\ntailscaled_y{device_id="${A}"} 2\n` });
  await cycle(10_000);
  const pts = series(rx, 'tailscaled_y', A);
  assert.deepEqual(pts.map((p) => [p.value, p.attributes.path ?? null, p.attributes.exported_device_id ?? null]), [
    [1, 'derp', null],
    [2, null, A],
  ]);
  const lines = (await page()).split('\n').filter((l) => l.startsWith('tailscaled_y{'));
  assert.equal(lines.length, 1);
  assert.match(lines[0] as string, /exported_device_id="hostile0001"/);
  assert.doesNotMatch(lines[0] as string, /path=/);
});

// --- 2. sharedKey ------------------------------------------------------------------------------

test('two devices with identical series keys keep separate series and start times; a device flooding the key cache changes neither', async (t) => {
  const FLOOD = 'hostile0003';
  const { sim, rx, cycle, page } = await setup(t, [device(A, '127.0.3.20'), device(B, '127.0.3.21'), device(FLOOD, '127.0.3.22')]);
  let n = 0;
  /** 5,000 new series keys every cycle: the shared key cache (100,000 entries) turns over. */
  const flood = (): string => {
    const lines = ['# TYPE tailscaled_flood gauge'];
    for (let i = 0; i < 5000; i++) lines.push(`tailscaled_flood{k="${n++}_${'z'.repeat(40)}"} 1`);
    return `${lines.join('\n')}\n`;
  };
  sim.setDeviceFault(A, { kind: 'body', body: counter(100) });
  sim.setDeviceFault(B, { kind: 'body', body: counter(7) });
  sim.setDeviceFault(FLOOD, { kind: 'body', body: flood() });
  await cycle();
  for (let i = 0; i < 4; i++) {
    sim.setDeviceFault(FLOOD, { kind: 'body', body: flood() });
    // B drops once: only B resets.
    sim.setDeviceFault(B, { kind: 'body', body: counter(i === 1 ? 3 : 7 + i) });
    sim.setDeviceFault(A, { kind: 'body', body: counter(100 + i) });
    await cycle(10_000);
  }
  const a = series(rx, 'tailscaled_c_total', A);
  const b = series(rx, 'tailscaled_c_total', B);
  assert.deepEqual(a.map((p) => p.value), [100, 100, 101, 102, 103]);
  assert.deepEqual(b.map((p) => p.value), [7, 7, 3, 9, 10]);
  assert.equal(new Set(a.map((p) => p.startTimeUnixNano)).size, 1, "B's reset is not A's");
  assert.equal(new Set(b.map((p) => p.startTimeUnixNano)).size, 2);
  const f = families(await page());
  assert.equal(sampleValue(f, 'tailscaled_c_total', { device_id: A }), 103);
  assert.equal(sampleValue(f, 'tailscaled_c_total', { device_id: B }), 10);
  assert.equal(f.get('tailscaled_flood')?.samples.length, 5000, 'only the flooding device’s current series are served');
});

test('a device cannot merge two histogram series by writing the key separators into a label value', async (t) => {
  // {a="x<NUL>b<SOH>y"} and {a="x",b="y"} are two series; the parts of a histogram must not
  // meet in one group because their label text concatenates to the same string.
  const { sim, rx, cycle, page } = await setup(t, [device(A, '127.0.3.23')]);
  const evil = 'a="x\u0000b\u0001y"';
  const body = `# TYPE tailscaled_h histogram\ntailscaled_h_bucket{${evil},le="+Inf"} 5\ntailscaled_h_count{${evil}} 5\ntailscaled_h_bucket{a="x",b="y",le="+Inf"} 7\ntailscaled_h_count{a="x",b="y"} 7\n`;
  sim.setDeviceFault(A, { kind: 'body', body });
  await cycle();
  const pts = series(rx, 'tailscaled_h', A);
  assert.deepEqual(pts.map((p) => [p.attributes.a, p.attributes.b, p.count]).sort(), [['x', 'y', 7], ['x\u0000b\u0001y', undefined, 5]].sort(), 'two histograms, each with its own count');
  const counts = families(await page()).get('tailscaled_h')?.samples.filter((s) => s.name === 'tailscaled_h_count' && s.labels.device_id === A) ?? [];
  assert.equal(counts.length, 2);
});

test('local_tailscaled: a peer that moves text between host name and OS is exported with its new labels', async (t) => {
  // The peer info series is interned by a key built from its label values joined with NUL/SOH;
  // two different label sets must never be handed each other's attributes object.
  const status = JSON.parse(fixture('localapi-status.json')) as { Peer: Record<string, Record<string, unknown>> };
  const [key, peer] = Object.entries(status.Peer)[0] as [string, Record<string, unknown>];
  let cycle = 0;
  const statusBody = (): string => {
    const p = cycle === 0 ? { HostName: 'a\u0000os\u0001b', OS: 'c' } : { HostName: 'a', OS: 'b\u0000os\u0001c' };
    return JSON.stringify({ ...status, Peer: { ...status.Peer, [key]: { ...peer, ...p } } });
  };
  const la = new LocalApiSimulator({ statusBody });
  await la.start();
  t.after(() => la.stop());
  const registry = defaultRegistry();
  const config = resolveConfig({ receivers: { local_tailscaled: { interval: '1h', usermetrics: false, socket_path: la.socketPath } }, exporters: { prometheus: {} }, service: { pipelines: { metrics: { receivers: ['local_tailscaled'], exporters: ['prometheus'] } } } }, registry, 'hostile');
  const service = new PipelineService(registry, config, { logger: memoryLogger().logger });
  t.after(() => service.shutdown(AbortSignal.timeout(5000)));
  await service.collectNow();
  cycle = 1;
  await service.collectNow();
  const info = families(await renderPrometheus(service)).get('tailscale_peer_info')?.samples.filter((s) => s.labels.node_id === peer.ID) ?? [];
  assert.deepEqual(info.map((s) => [s.labels.host_name, s.labels.os]), [['a', 'b\u0000os\u0001c']]);
});

test('tailscale_api: a device that moves text between its OS and client version is exported with its new labels', async (t) => {
  // Same keying as local_tailscaled's: label values joined with NUL/SOH, so two label sets of
  // one device can share a key and the second is served with the first one's attributes.
  const { sim, cycle, page } = await setup(t, [device(A, '127.0.3.24')]);
  sim.setDevicesJson([{ ...device(A, '127.0.3.24'), os: 'linux\u0000version\u00011.0', clientVersion: 'x' }] as never);
  await cycle();
  sim.setDevicesJson([{ ...device(A, '127.0.3.24'), os: 'linux', clientVersion: '1.0\u0000version\u0001x' }] as never);
  await cycle(10_000);
  const info = families(await page()).get('tailscale_device_info')?.samples.filter((s) => s.labels.device_id === A) ?? [];
  assert.deepEqual(info.map((s) => [s.labels.os, s.labels.version]), [['linux', '1.0\u0000version\u0001x']]);
});

// --- 3. staleness ------------------------------------------------------------------------------

test('staleness: one marker per ended series, none for live ones, series that come back are live again', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.30'), device(B, '127.0.3.31')], { staleness: { grace_intervals: 0 } });
  const body = (paths: string[]): string => `# TYPE tailscaled_v gauge\n${paths.map((p) => `tailscaled_v{path="${p}"} 1`).join('\n')}\n`;
  sim.setDeviceFault(A, { kind: 'body', body: body(['x', 'y']) });
  sim.setDeviceFault(B, { kind: 'body', body: body(['x']) });
  await cycle();
  sim.setDeviceFault(A, { kind: 'body', body: body(['x']) });
  await cycle(10_000);
  await cycle(10_000);
  sim.setDeviceFault(A, { kind: 'body', body: body(['x', 'y']) });
  await cycle(10_000);
  const markers = rx.points('tailscaled_v').filter((p) => p.flags === 1);
  // The cycle A{path=y} ended in: B's second live point carries its time.
  const endedAt = (series(rx, 'tailscaled_v', B, { path: 'x' })[1] as WirePoint).timeUnixNano;
  assert.deepEqual(markers.map((p) => [p.attributes.device_id, p.attributes.path, p.timeUnixNano]), [[A, 'y', endedAt]], 'one marker, for A{path=y}, in the cycle it ended');
  assert.equal(series(rx, 'tailscaled_v', A, { path: 'y' }).filter((p) => p.flags === 0).length, 2, 'it came back as a live series');
  assert.equal(series(rx, 'tailscaled_v', B, { path: 'x' }).filter((p) => p.flags === 0).length, 4);
});

test('staleness: a failing device is carried within grace (no marker) and ends with one marker per series after it', async (t) => {
  const { sim, rx, cycle } = await setup(t, [device(A, '127.0.3.32'), device(B, '127.0.3.33')], { staleness: { grace_intervals: 1 } });
  const body = '# TYPE tailscaled_v gauge\ntailscaled_v{path="x"} 1\ntailscaled_v{path="y"} 2\n';
  sim.setDeviceFault(A, { kind: 'body', body });
  sim.setDeviceFault(B, { kind: 'body', body });
  await cycle();
  sim.setDeviceFault(A, { kind: 'status', status: 503 });
  // Half an interval per cycle: the grace (one interval) covers two failed cycles.
  for (let i = 0; i < 4; i++) await cycle(1_800_000);
  const a = series(rx, 'tailscaled_v', A);
  const markers = a.filter((p) => p.flags === 1);
  assert.deepEqual(markers.map((p) => p.attributes.path).sort(), ['x', 'y'], 'exactly one marker per ended series');
  const endedAt = (markers[0] as WirePoint).timeUnixNano;
  assert.ok(markers.every((p) => p.timeUnixNano === endedAt), 'in one cycle');
  const live = a.filter((p) => p.flags === 0);
  assert.ok(live.every((p) => p.timeUnixNano < endedAt), 'no live point after its marker');
  assert.ok(live.length >= 4, 'carried at least one failed cycle within grace');
  assert.equal(rx.points('tailscaled_v').filter((p) => p.attributes.device_id === B && p.flags === 1).length, 0);
});

// --- 4. shared time arrays ---------------------------------------------------------------------

test('delta OTLP and cumulative /metrics from one pipeline: converting to deltas changes no time another point shares', async (t) => {
  // Points of a batch share [s, ns] arrays, and a counter's start array is kept across cycles:
  // an exporter that rewrote a time in place would move every sharing point's time.
  const { sim, rx, cycle, service } = await setup(t, [device(A, '127.0.3.35'), device(B, '127.0.3.36')], { otlp: { temporality_preference: 'delta' } });
  const body = (v: number): string => `# TYPE tailscaled_c_total counter\ntailscaled_c_total{k="1"} ${v}\ntailscaled_c_total{k="2"} ${2 * v}\n# TYPE tailscaled_g gauge\ntailscaled_g ${v}\n`;
  const prom = service.exporters.get('prometheus') as PrometheusExporterComponent;
  const cumulative = (): Array<[unknown, unknown, number[], number[]]> =>
    (prom.snapshot()?.scopeMetrics ?? [])
      .flatMap((sm) => sm.metrics)
      .filter((m) => m.descriptor.name.startsWith('tailscaled_'))
      .flatMap((m) => m.dataPoints.map((p) => [m.descriptor.name, p.attributes.device_id, [...p.startTime], [...p.endTime]] as [unknown, unknown, number[], number[]]));
  const seen: Array<Array<[unknown, unknown, number[], number[]]>> = [];
  for (let i = 1; i <= 3; i++) {
    sim.setDeviceFault(A, { kind: 'body', body: body(10 * i) });
    sim.setDeviceFault(B, { kind: 'body', body: body(100 * i) });
    await cycle(10_000);
    seen.push(cumulative());
  }
  const first = seen[0] as Array<[unknown, unknown, number[], number[]]>;
  const last = seen[2] as Array<[unknown, unknown, number[], number[]]>;
  const counterStart = (snap: typeof first, id: string): number[][] => snap.filter(([n, d]) => n === 'tailscaled_c_total' && d === id).map(([, , s]) => s);
  for (const id of [A, B]) assert.deepEqual(counterStart(last, id), counterStart(first, id), `${id}: cumulative start times are first-seen, whatever the delta exporter did`);
  // Every delta covers exactly the previous cycle: start = previous point's time.
  const deltas = rx.points('tailscaled_c_total').filter((p) => p.metric.temporality === 1);
  assert.equal(deltas.length, 8, 'two cycles after the baseline × two devices × two series');
  for (const p of deltas) assert.equal(p.timeUnixNano - p.startTimeUnixNano, 10_000_000_000n, 'one interval per delta');
  assert.deepEqual(deltas.map((p) => p.value).sort((a, b) => (a as number) - (b as number)), [10, 10, 20, 20, 100, 100, 200, 200]);
});

test('batches waiting in the OTLP queue are sent with the values of their own cycle (the receiver reuses its points)', async (t) => {
  // The receiver writes a series' point in place at the next scrape; a queued batch must not
  // take the later cycles' values (nor /metrics keep an old one).
  const { sim, rx, collect, flush, page } = await setup(t, [device(A, '127.0.3.37')], { otlp: { max_queue_batches: 10 } });
  const body = (v: number): string => `# TYPE tailscaled_c_total counter\ntailscaled_c_total ${v}\n# TYPE tailscaled_g gauge\ntailscaled_g ${v / 10}\n`;
  let release!: () => void;
  rx.hold = new Promise<void>((r) => (release = r));
  for (let i = 1; i <= 4; i++) {
    sim.setDeviceFault(A, { kind: 'body', body: body(10 * i) });
    await collect(i === 1 ? 0 : 10_000);
  }
  assert.equal(sampleValue(families(await page()), 'tailscaled_c_total', { device_id: A }), 40, '/metrics shows the last cycle');
  release();
  rx.hold = undefined;
  await flush();
  assert.deepEqual(series(rx, 'tailscaled_c_total', A).map((p) => p.value), [10, 20, 30, 40]);
  assert.deepEqual(series(rx, 'tailscaled_g', A).map((p) => p.value), [1, 2, 3, 4]);
  const times = series(rx, 'tailscaled_g', A).map((p) => ms(p.timeUnixNano));
  assert.deepEqual(times.map((x) => x - (times[0] as number)), [0, 10_000, 20_000, 30_000], 'each point keeps its own scrape time');
});

// --- 5. simulator stop -------------------------------------------------------------------------

test('simulator stop() closes a kept-alive device connection and returns', { timeout: 20_000 }, async () => {
  const sim = new TailnetSimulator({ devices_json: [device(A, '127.0.3.40')] as never });
  await sim.start();
  sim.setDeviceFault(A, { kind: 'body', body: counter(1) });
  const agent = new Agent({ keepAlive: true });
  // One request answered in full; its socket then sits idle in the agent's pool.
  const socket = await new Promise<Socket>((resolve, reject) => {
    const req = request({ host: '127.0.3.40', port: sim.devicePort, path: '/metrics', agent }, (res) => {
      assert.equal(res.statusCode, 200);
      res.resume();
      res.on('end', () => resolve(req.socket as Socket));
    });
    req.on('error', reject);
    req.end();
  });
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(socket.destroyed, false, 'the device kept the connection open');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await sim.stop();
  await closed;
  agent.destroy();
});
