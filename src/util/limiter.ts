/**
 * A concurrency limiter: at most `max` tasks run at once, the rest wait in FIFO order.
 *
 * It replaces `bottleneck` for device scrapes: bottleneck starts queued jobs one timer tick
 * apart, so 300 jobs of 25 ms at a limit of 100 take ~730 ms instead of ~75 ms — ten times the
 * physical bound, and 2,000 devices would need ~5 s per cycle. `npm run bench` keeps that
 * measurement (`limiter_vs_bottleneck`).
 */
export class Limiter {
  private _active = 0;
  private readonly _queue: Array<{ run: () => void; cancel: (err: Error) => void }> = [];
  private _stopped = false;
  private readonly _max: number;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('max must be a positive integer');
    this._max = max;
  }

  get active(): number {
    return this._active;
  }
  get waiting(): number {
    return this._queue.length;
  }

  /** Runs `fn` when a slot is free; rejects if the limiter is stopped before it starts. */
  schedule<T>(fn: () => Promise<T>): Promise<T> {
    if (this._stopped) return Promise.reject(new Error('limiter stopped'));
    return new Promise<T>((resolve, reject) => {
      const run = (): void => {
        this._active++;
        let p: Promise<T>;
        try {
          // A task that returns a plain value is taken as its result.
          p = Promise.resolve(fn());
        } catch (err) {
          this._active--;
          reject(err as Error);
          return;
        }
        // The slot is handed on before the caller hears of the outcome: the next task (a
        // device's request) is sent first, and whatever the caller does with the result
        // (parsing a body) overlaps that request's round trip instead of delaying it. Callers
        // that finish together otherwise keep their successors in lockstep waves.
        p.then(
          (v) => {
            this._release();
            resolve(v);
          },
          (err: unknown) => {
            this._release();
            reject(err as Error);
          },
        );
      };
      this._queue.push({ run, cancel: reject });
      this._pump();
    });
  }

  private _release(): void {
    this._active--;
    this._pump();
  }

  /**
   * Starts waiting tasks while slots are free. A loop, not a chain of calls: tasks that throw
   * synchronously free their slot at once, and thousands of them in a row must not grow the
   * stack.
   */
  private _pump(): void {
    while (this._active < this._max) {
      const next = this._queue.shift();
      if (!next) return;
      next.run();
    }
  }

  /** Rejects every waiting task; running ones finish on their own. */
  stop(): void {
    this._stopped = true;
    for (const q of this._queue.splice(0)) q.cancel(new Error('limiter stopped'));
  }
}
