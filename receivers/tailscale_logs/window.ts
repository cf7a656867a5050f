/**
 * Where each poll reads. The endpoints filter by time only (no cursor), and records can become
 * visible some minutes after their timestamp, so a poll re-reads from `from` — the oldest time
 * that may still gain records — up to now, and de-duplicates what it has seen before.
 */

/** One request's time span, inclusive at both ends (as the API treats it), ms since the epoch. */
export interface Window {
  readonly start: number;
  readonly end: number;
}

/**
 * Splits [from, now] into consecutive windows of at most `maxWindow` ms, sharing their boundary
 * instants (a record exactly on one is read twice and de-duplicated, never missed). At most
 * `maxWindows` are returned, oldest first: the rest is read on later polls.
 */
export function planWindows(from: number, now: number, maxWindow: number, maxWindows: number): Window[] {
  const out: Window[] = [];
  if (!(now >= from)) return out;
  let start = from;
  while (out.length < maxWindows) {
    const end = Math.min(now, start + maxWindow);
    out.push({ start, end });
    if (end >= now) break;
    start = end;
  }
  return out;
}

/**
 * The `from` of the next poll after this one read everything up to `reached` at time `now`:
 * records stamped more than `lag` before now are final, so the overlap is needed only within
 * `lag` of now. While catching up (reached far behind now) there is no overlap at all. `from`
 * never moves backwards.
 */
export function nextFrom(prevFrom: number, reached: number | undefined, now: number, lag: number): number {
  if (reached === undefined) return prevFrom;
  return Math.max(prevFrom, Math.min(reached, now - lag));
}
