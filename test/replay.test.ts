/**
 * Replay (receivers/device_metrics/replay.ts) against the long way: two pipelines scrape the
 * same simulated devices, one with `replay: false`, and must serve the same `/metrics` and send
 * the same OTLP points after every scrape, whatever the devices change between scrapes —
 * values, resets, NaN, lines, labels, HELP, TYPE, timestamps, line endings, blanks, number
 * spellings, bodies that do not parse. Devices are simulator servers on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { replayStats } from '../receivers/device_metrics/replay.ts';
import { manualClock } from './helpers/index.ts';
import { deviceLines, replayDevice as device, replaySide as side, sentDevicePoints as sent } from './helpers/replay-sides.ts';

const BASE = [
  '# HELP tailscaled_inbound_bytes_total Bytes received',
  '# TYPE tailscaled_inbound_bytes_total counter',
  'tailscaled_inbound_bytes_total{path="derp"} 100',
  'tailscaled_inbound_bytes_total{path="direct_ipv4"} 2000',
  '# TYPE tailscaled_health_messages gauge',
  'tailscaled_health_messages{type="warning"} 1',
  'tailscaled_advertised_routes 2',
  '',
].join('\n');

test('replayed scrapes serve and send exactly what parsing every body does, through every kind of change', async (t) => {
  const A = 'replay0001';
  const B = 'replay0002';
  const sim = new TailnetSimulator({ devices_json: [device(A, '127.0.5.1'), device(B, '127.0.5.2')] as never });
  await sim.start();
  t.after(() => sim.stop());
  const clock = manualClock();
  const fast = await side(t, sim, true, clock);
  const slow = await side(t, sim, false, clock);
  const replaysBefore = replayStats.replays;
  const bodies: Array<[string, string | Buffer]> = [
    ['first', BASE],
    ['same lines, new values', BASE.replace(' 100', ' 150').replace(' 2000', ' 2100').replace('warning"} 1', 'warning"} 0')],
    ['a counter drops (reset: new start time)', BASE.replace(' 100', ' 5')],
    ['it grows again', BASE.replace(' 100', ' 7')],
    ['spellings of numbers', BASE.replace(' 100', ' 1e3').replace('warning"} 1', 'warning"} -0').replace('routes 2', 'routes +Inf')],
    ['more spellings', BASE.replace(' 100', ' 1_0').replace('warning"} 1', 'warning"} 0x1p3').replace('routes 2', 'routes 1234567890123456789')],
    ['a gauge is NaN', BASE.replace('warning"} 1', 'warning"} NaN')],
    ['a counter is NaN (left out)', BASE.replace(' 2000', ' NaN')],
    ['back to numbers', BASE.replace(' 2000', ' 2200')],
    ['a value that is no number (parse error)', BASE.replace(' 2000', ' 20x0')],
    ['numbers again', BASE.replace(' 2000', ' 2300')],
    ['a timestamp appears', BASE.replace(' 2000', ' 2400 1700000000000')],
    ['CRLF line endings', BASE.replaceAll('\n', '\r\n').replace(' 2000', ' 2500')],
    ['CRLF, new values', BASE.replaceAll('\n', '\r\n').replace(' 2000', ' 2600')],
    ['blanks after values', BASE.replace(' 2000', ' 2700  ').replace('routes 2', 'routes 3\t')],
    ['blanks, new values', BASE.replace(' 2000', ' 2800  ').replace('routes 2', 'routes 4\t')],
    ['no final newline', BASE.trimEnd().replace(' 2000', ' 2900')],
    ['no final newline, new values', BASE.trimEnd().replace(' 2000', ' 3000')],
    ['a label value changes', BASE.replace('direct_ipv4', 'direct_ipv6').replace(' 2000', ' 10')],
    ['a line goes', BASE.replace('tailscaled_advertised_routes 2\n', '')],
    ['a line comes back', BASE],
    ['HELP changes', BASE.replace('Bytes received', 'Bytes in')],
    ['TYPE changes', BASE.replace('# TYPE tailscaled_health_messages gauge', '# TYPE tailscaled_health_messages counter')],
    ['a duplicate line', `${BASE}tailscaled_advertised_routes 9\n`],
    ['the duplicate again, other values', `${BASE.replace(' 2000', ' 3100')}tailscaled_advertised_routes 8\n`],
    ['a value right after the braces', BASE.replace('{path="derp"} 100', '{path="derp"}100')],
    ['the same, new value', BASE.replace('{path="derp"} 100', '{path="derp"}200')],
    ['a label value with blanks and a number in it', BASE.replace('path="derp"', 'path="a 1"')],
    ['the same, new value', BASE.replace('path="derp"', 'path="a 1"').replace(' 100', ' 300')],
    ['a value too long for the integer path', BASE.replace(' 100', ' 1234567890123456')],
    ['a comment line changes', `# hello\n${BASE}`],
    ['and changes again', `# hellp\n${BASE}`],
    ['HELP with a non-ASCII character', BASE.replace('Bytes received', 'Bytes reçus')],
    ['the same, new values', BASE.replace('Bytes received', 'Bytes reçus').replace(' 100', ' 160')],
    ['a byte-order mark first', `\uFEFF${BASE.replace(' 100', ' 170')}`],
    ['the mark again, new values', `\uFEFF${BASE.replace(' 100', ' 180')}`],
    ['ASCII again', BASE.replace(' 100', ' 190')],
    ['a value with a non-ASCII digit', BASE.replace(' 2000', ' 2\u0663')],
    ['a label value with a non-ASCII character', BASE.replace('direct_ipv4', 'direct_ipv4é')],
    ['ASCII again, new values', BASE.replace(' 100', ' 195')],
    ['a value that is not UTF-8 (parse error)', Buffer.from(BASE.replace(' 2000', ' 20\u00ff0'), 'latin1')],
    ['a label value that is not UTF-8 (parse error)', Buffer.from(BASE.replace('direct_ipv4', 'direct_\u00ffipv4'), 'latin1')],
    ['an empty body', ''],
    ['back to the first', BASE],
  ];
  for (const [i, [what, body]] of bodies.entries()) {
    // A Buffer is sent as the bytes it holds.
    sim.setDeviceFault(A, { kind: 'body', body: body as string });
    // B writes the same lines as A did last time: its template is A's skeleton.
    sim.setDeviceFault(B, { kind: 'body', body: (bodies[Math.max(0, i - 1)] as [string, string])[1] });
    clock.advance(10_000);
    await fast.cycle();
    await slow.cycle();
    const [f, sl] = [deviceLines(await fast.page()), deviceLines(await slow.page())];
    assert.deepEqual(f.filter((l) => !sl.includes(l)), sl.filter((l) => !f.includes(l)), `/metrics after "${what}"`);
    assert.equal(f.length, sl.length);
    assert.deepEqual(sent(fast.rx), sent(slow.rx), `OTLP after "${what}"`);
  }
  assert.ok(sent(fast.rx).length > 100, 'points were sent');
  // Not a comparison of two parses: most scrapes of the replaying side were replays.
  assert.ok(replayStats.replays - replaysBefore >= 12, `${replayStats.replays - replaysBefore} replays`);
});

test('replay is taken for bodies that repeat their lines, and not for anything else', async (t) => {
  const A = 'replay0003';
  const sim = new TailnetSimulator({ devices_json: [device(A, '127.0.5.3')] as never });
  await sim.start();
  t.after(() => sim.stop());
  const clock = manualClock();
  const fast = await side(t, sim, true, clock);
  const run = async (body: string): Promise<number> => {
    // (A Buffer is sent as its bytes.)
    sim.setDeviceFault(A, { kind: 'body', body });
    const before = replayStats.replays;
    clock.advance(10_000);
    await fast.cycle();
    return replayStats.replays - before;
  };
  assert.equal(await run(BASE), 0, 'the first body is parsed');
  assert.equal(await run(BASE.replace(' 100', ' 101')), 1, 'new values: replayed');
  assert.equal(await run(BASE.replace(' 100', ' 102')), 1, 'and again');
  assert.equal(await run(BASE.replace('derp', 'derq')), 0, 'a changed label: parsed');
  assert.equal(await run(BASE.replace('derp', 'derq').replace(' 100', ' 1')), 1, 'its lines repeat: replayed');
  assert.equal(await run(BASE.replace('derp', 'dérq')), 0, 'a non-ASCII label: parsed');
  assert.equal(await run(BASE.replace('derp', 'dérq').replace(' 100', ' 1')), 1, 'and replayed from its text');
  assert.equal(await run(Buffer.from(BASE.replace('derp', 'd\u00e9rq').replace(' 100', ' 2'), 'latin1') as never), 0, 'the same characters not in UTF-8: a parse error, never a replay');
  assert.equal(await run(`${BASE}# TYPE tailscaled_h histogram\ntailscaled_h_bucket{le="+Inf"} 1\ntailscaled_h_count 1\n`), 0, 'a histogram: parsed');
  assert.equal(await run(`${BASE}# TYPE tailscaled_h histogram\ntailscaled_h_bucket{le="+Inf"} 2\ntailscaled_h_count 2\n`), 0, 'histograms are never replayed');
  const fits = `${'# padding padding padding padding padding padding padding\n'.repeat(1000)}${BASE}`;
  assert.equal(await run(fits), 0);
  assert.equal(await run(fits.replace(' 100', ' 104')), 1, 'a body just inside the bound is replayed');
  // A body beyond the template bound is parsed every time: the receiver keeps no copy of it.
  const big = `${'# padding padding padding padding padding padding padding\n'.repeat(1200)}${BASE}`;
  assert.equal(await run(big), 0);
  assert.equal(await run(big.replace(' 100', ' 103')), 0, 'a body above 64 Ki characters is not kept as a template');
  const page = await fast.page();
  assert.match(page, /tailscaled_inbound_bytes_total\{[^}]*path="derp"[^}]*\} 103\n/, 'and is still served');
});
