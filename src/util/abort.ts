/**
 * Deadline helpers. One rule holds everywhere: a deadline that has already fired counts as fired.
 * `addEventListener('abort')` on a signal that aborted earlier never calls back, so code that
 * waits for a deadline that way hangs when an earlier step used up the time.
 */

/** Resolves when `signal` aborts, at once when it already has. Never rejects. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** How `work` ended relative to a deadline. */
export type DeadlineOutcome<T> = { readonly state: 'done'; readonly value: T } | { readonly state: 'cut' };

/**
 * Waits for `work` until `deadline`: `done` with its value when it settles first, `cut` when the
 * deadline fires first (or had fired already). Rejects when `work` rejects before the deadline;
 * a rejection after the cut is swallowed, since nobody is waiting for it any more.
 */
export function beforeDeadline<T>(work: Promise<T>, deadline: AbortSignal): Promise<DeadlineOutcome<T>> {
  if (deadline.aborted) {
    work.catch(() => undefined);
    return Promise.resolve({ state: 'cut' });
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      resolve({ state: 'cut' });
    };
    deadline.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        deadline.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        resolve({ state: 'done', value });
      },
      (err: unknown) => {
        deadline.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        reject(err);
      },
    );
  });
}

/**
 * Waits for `work` until `deadline`, then `graceMs` more, and says whether it settled. The grace
 * is for work that honours the same deadline: it finishes a few microtasks after the deadline
 * fires, and deserves to be told apart from work that is stuck. Rejects when `work` rejects in
 * that time.
 */
export async function settlesBy(work: Promise<unknown>, deadline: AbortSignal, graceMs: number): Promise<boolean> {
  if ((await beforeDeadline(work, deadline)).state === 'done') return true;
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
  const settled = work.then(() => true);
  settled.catch(() => undefined); // a rejection after the grace has nobody left to tell
  try {
    return await Promise.race([settled, grace]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A signal that follows `signal`, for code we do not own that only listens for the `abort` event:
 * when `signal` has already fired, the returned one fires on the next turn of the event loop, after
 * that code had the chance to add its listener.
 */
export function listenable(signal: AbortSignal): AbortSignal {
  if (!signal.aborted) return signal;
  const ac = new AbortController();
  setImmediate(() => ac.abort(signal.reason));
  return ac.signal;
}

/**
 * A component that can say what its last shutdown left undone (batches not sent, work abandoned),
 * so the runtime can name it in one line. Optional: components without it report nothing.
 */
export interface ShutdownReporter {
  /** What the deadline cut off, e.g. `3 batches not sent`; undefined when nothing was. */
  shutdownCutOff(): string | undefined;
}

/** The cut-off report of `component`, when it implements {@link ShutdownReporter}. */
export function shutdownCutOffOf(component: unknown): string | undefined {
  const c = component as Partial<ShutdownReporter> | null;
  return typeof c?.shutdownCutOff === 'function' ? c.shutdownCutOff() : undefined;
}

/** Waits `ms`, or rejects with the signal's reason as soon as `signal` aborts (at once if it has). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
