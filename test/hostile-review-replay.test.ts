/**
 * Hostile review of replay (receivers/device_metrics/replay.ts) and of points written in place
 * (StartTimeTracker.point): a replaying pipeline and a `replay: false` one scrape the same
 * simulated devices on loopback and must serve the same /metrics and send the same OTLP points.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { replayStats } from '../receivers/device_metrics/replay.ts';
import { manualClock } from './helpers/index.ts';
import { deviceLines as comparable, replayDevice as device, replaySide, sentDevicePoints as sent } from './helpers/replay-sides.ts';

/** Both sides scrape one device at a time, so the shared type registry sees devices in the same order. */
const side: typeof replaySide = (t, sim, replay, clock, extra = {}, processors) => replaySide(t, sim, replay, clock, { max_concurrent: 1, ...extra }, processors);

/** Runs `steps` (per step, a body per device; undefined = a timeout) on both sides and compares. */
async function differential(t: TestContext, ids: string[], steps: Array<Array<string | undefined>>, extra: Record<string, unknown> = {}, between?: (i: number, sim: TailnetSimulator) => void): Promise<{ replays: number; page: string[] }> {
  const sim = new TailnetSimulator({ devices_json: ids.map((id, k) => device(id, `127.0.9.${k + 1}`)) as never });
  await sim.start();
  t.after(() => sim.stop());
  const clock = manualClock();
  const fast = await side(t, sim, true, clock, extra);
  const slow = await side(t, sim, false, clock, extra);
  const before = replayStats.replays;
  let page: string[] = [];
  for (const [i, bodies] of steps.entries()) {
    between?.(i, sim);
    for (const [k, id] of ids.entries()) {
      const b = bodies[k];
      sim.setDeviceFault(id, b === undefined ? { kind: 'status', status: 500 } : { kind: 'body', body: b });
    }
    clock.advance(10_000);
    await fast.cycle();
    await slow.cycle();
    const f = comparable(await fast.page());
    const s = comparable(await slow.page());
    assert.deepEqual(f, s, `/metrics after step ${i}`);
    page = f;
    assert.deepEqual(sent(fast.rx), sent(slow.rx), `OTLP after step ${i}`);
  }
  return { replays: replayStats.replays - before, page };
}


const C = (name: string, v: number | string, type = 'counter'): string => `# TYPE ${name} ${type}\n${name} ${v}\n`;

test('two devices: a type taken by the other device, failures and recoveries, resets after a failure — replay serves and sends what parsing does', async (t) => {
  const steps: Array<Array<string | undefined>> = [
    [C('tailscaled_x', 1) + C('tailscaled_y', 1, 'gauge'), C('tailscaled_x', 1) + C('tailscaled_y', 1, 'gauge')],
    [C('tailscaled_x', 2) + C('tailscaled_y', 2, 'gauge'), C('tailscaled_x', 2, 'gauge') + C('tailscaled_y', 2, 'gauge')],
    [C('tailscaled_x', 3) + C('tailscaled_y', 3, 'gauge'), C('tailscaled_x', 3, 'gauge') + C('tailscaled_y', 3, 'counter')],
    [C('tailscaled_x', 4) + C('tailscaled_y', 4, 'gauge'), C('tailscaled_x', 4, 'gauge') + C('tailscaled_y', 4, 'counter')],
    [C('tailscaled_x', 5) + C('tailscaled_y', 5, 'gauge'), undefined],
    [C('tailscaled_x', 1) + C('tailscaled_y', 6, 'gauge'), undefined],
    [C('tailscaled_x', 2) + C('tailscaled_y', 7, 'gauge'), C('tailscaled_x', 4) + C('tailscaled_y', 4, 'gauge')],
    [undefined, C('tailscaled_x', 5) + C('tailscaled_y', 5, 'gauge')],
    [C('tailscaled_x', 3) + C('tailscaled_y', 8, 'gauge'), C('tailscaled_x', 6) + C('tailscaled_y', 6, 'gauge')],
    [C('tailscaled_x', 4) + C('tailscaled_y', 9, 'gauge'), C('tailscaled_x', 7) + C('tailscaled_y', 7, 'gauge')],
  ];
  const { replays: r } = await differential(t, ['rv0001', 'rv0002'], steps, {});
  assert.ok(r >= 8, `${r} replays`);
});

test('a device renamed between scrapes with the same body: replay serves and sends what parsing does', async (t) => {
  const body = (v: number): string => C('tailscaled_x', v) + C('tailscaled_y', v, 'gauge');
  const steps = [1, 2, 3, 4, 5, 6].map((v) => [body(v)]);
  const { replays: r, page } = await differential(t, ['rv0003'], steps, {}, (i, sim) => {
    if (i === 3) sim.setDevicesJson([device('rv0003', '127.0.9.1', 'renamed-rv0003.tail4c8e1a.ts.net')] as never);
  });
  assert.ok(r >= 3, `${r} replays`);
  assert.ok(page.some((l) => l.startsWith('tailscaled_x_total{') && l.includes('renamed-rv0003')), 'the rename reached the page');
});
