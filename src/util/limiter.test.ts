import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Limiter } from './limiter.ts';

test('limiter: never more than max at once, in FIFO order, every result delivered', async () => {
  const l = new Limiter(3);
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      l.schedule(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await sleep(1 + (i % 3));
        running--;
        return i * 2;
      }),
    ),
  );
  assert.equal(peak, 3);
  assert.deepEqual(started, [...started].sort((a, b) => a - b));
  assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i * 2));
  assert.equal(l.active, 0);
  assert.equal(l.waiting, 0);
});

test('limiter: a task that rejects or throws synchronously frees its slot', async () => {
  const l = new Limiter(1);
  await assert.rejects(l.schedule(() => Promise.reject(new Error('no'))), /no/);
  await assert.rejects(
    l.schedule(() => {
      throw new Error('sync');
    }),
    /sync/,
  );
  assert.equal(await l.schedule(async () => 'after'), 'after');
  assert.equal(l.active, 0);
});

test('limiter: the next task starts before the finished task’s caller continues', async () => {
  // A scrape's caller parses the body it got; the next device's request must already be on
  // its way by then, or callers finishing together hold their successors back in waves.
  const l = new Limiter(1);
  const events: string[] = [];
  const first = l.schedule(async () => 'a').then(() => events.push('caller of a continues'));
  const second = l.schedule(async () => {
    events.push('b starts');
    return 'b';
  });
  await Promise.all([first, second]);
  assert.deepEqual(events, ['b starts', 'caller of a continues']);
});

test('limiter: stop() rejects what waits and refuses new work; running tasks finish', async () => {
  const l = new Limiter(1);
  let release: () => void = () => {};
  const running = l.schedule(() => new Promise<string>((r) => (release = () => r('done'))));
  const waiting = l.schedule(async () => 'never');
  l.stop();
  await assert.rejects(waiting, /limiter stopped/);
  await assert.rejects(l.schedule(async () => 'x'), /limiter stopped/);
  release();
  assert.equal(await running, 'done');
});

test('limiter: thousands of tasks that throw synchronously settle one by one (no deep recursion); a plain return value is a result', async () => {
  const l = new Limiter(2);
  const n = 20_000;
  const all = Array.from({ length: n }, (_, i) =>
    l.schedule(() => {
      throw new Error(`t${i}`);
    }).then(
      () => 'resolved',
      (e: Error) => e.message,
    ),
  );
  const out = await Promise.all(all);
  assert.equal(out.length, n);
  assert.equal(out[n - 1], `t${n - 1}`);
  assert.equal(await l.schedule((() => 42) as unknown as () => Promise<number>), 42);
  assert.equal(l.active, 0);
});
