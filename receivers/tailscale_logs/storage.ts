import { constants } from 'node:fs';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../src/errors.ts';

/** What a log type needs to resume without a gap and without repeating records. */
export interface TypeState {
  /** Where the next poll's first window starts, ms. */
  readonly from: number;
  /** End of the span read so far, ms (records at or before it that were not seen are late). */
  readonly position: number;
  /** Identities of the records emitted inside the re-read horizon, with their times. */
  readonly ids: ReadonlyArray<readonly [string, number]>;
}

export interface SavedState {
  readonly tailnet: string;
  readonly types: Partial<Record<string, TypeState>>;
}

const VERSION = 1;
const ID_RE = /^[A-Za-z0-9+/]{22}==$/;

/** The file a receiver keeps its state in: one per receiver id, inside `storage_dir`. */
export function stateFile(dir: string, receiverId: string): string {
  return join(dir, `tailscale_logs-${receiverId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
}

export type LoadResult = { state: SavedState } | { missing: true } | { corrupt: string };

/**
 * How far past now a saved time may be and still be trusted: a clock stepped back a little (NTP)
 * only delays reading by this much, while a time further ahead would hold a type silent until
 * the clock got there.
 */
export const FUTURE_SLACK_MS = 5 * 60_000;

/** The limits a state file is checked against (what a tampered file can make the process do). */
export interface LoadLimits {
  /** Most identities per type (`dedup_capacity`). */
  readonly maxIds: number;
  /** Most bytes read; a larger file is corrupt. */
  readonly maxBytes: number;
  /** Now, ms: `from` or `position` later than now + FUTURE_SLACK_MS is corrupt. */
  readonly nowMs: number;
}

// Non-blocking, so opening a FIFO returns at once instead of waiting for a writer (absent on Windows).
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
const CHUNK = 64 * 1024;

/** Reads at most `limit + 1` bytes, so a file that grows or lies about its size stays bounded. */
async function readBounded(fh: FileHandle, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total <= limit) {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, limit + 1 - total));
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    chunks.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    total += bytesRead;
  }
  return Buffer.concat(chunks, total);
}

/**
 * Reads a state file. A file that is not exactly what `saveState` writes is reported as corrupt
 * (never half-trusted). Only a regular file is read, and only up to `maxBytes`: the path may be a
 * FIFO, a device or a symlink to anything.
 */
export async function loadState(file: string, limits: LoadLimits): Promise<LoadResult> {
  const { maxIds, maxBytes, nowMs } = limits;
  let text: string;
  try {
    const fh = await open(file, OPEN_FLAGS);
    try {
      // fstat of the opened descriptor: what is read is what was checked, whatever the path is swapped for.
      const st = await fh.stat();
      if (!st.isFile()) return { corrupt: 'not a regular file' };
      if (st.size > maxBytes) return { corrupt: `file is ${st.size} bytes, more than the ${maxBytes} a state of dedup_capacity identities can need` };
      const buf = await readBounded(fh, maxBytes);
      if (buf.length > maxBytes) return { corrupt: `file is more than the ${maxBytes} bytes a state of dedup_capacity identities can need` };
      text = buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    return { corrupt: errorMessage(err) };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { corrupt: 'not JSON' };
  }
  const o = v as { version?: unknown; tailnet?: unknown; types?: unknown };
  if (!o || typeof o !== 'object' || o.version !== VERSION || typeof o.tailnet !== 'string' || !o.types || typeof o.types !== 'object') return { corrupt: `not a version ${VERSION} state file` };
  const types: Record<string, TypeState> = {};
  for (const [name, raw] of Object.entries(o.types as Record<string, unknown>)) {
    const t = raw as { from?: unknown; position?: unknown; ids?: unknown };
    if (!t || typeof t !== 'object' || !Number.isSafeInteger(t.from) || !Number.isSafeInteger(t.position) || !Array.isArray(t.ids)) return { corrupt: `entry ${JSON.stringify(name).slice(0, 40)} is malformed` };
    // Both were at most the time of saving; far ahead of now, the type would read nothing until then.
    const latest = Math.max(t.from as number, t.position as number);
    if (latest > nowMs + FUTURE_SLACK_MS) return { corrupt: `entry ${name} is positioned ${Math.round((latest - nowMs) / 1000)}s in the future` };
    if (t.ids.length > maxIds) return { corrupt: `entry ${name} holds ${t.ids.length} identities, more than dedup_capacity (${maxIds})` };
    for (const e of t.ids) {
      if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !ID_RE.test(e[0]) || !Number.isSafeInteger(e[1])) return { corrupt: `entry ${name} has a malformed identity` };
    }
    types[name] = { from: t.from as number, position: t.position as number, ids: t.ids as Array<[string, number]> };
  }
  return { state: { tailnet: o.tailnet, types } };
}

/**
 * Writes the state so that a crash at any moment leaves either the old file or the new one:
 * a temporary file in the same directory, fsynced, then renamed over the old one, then the
 * directory fsynced so the rename itself is durable.
 */
export async function saveState(file: string, state: SavedState): Promise<void> {
  const dir = join(file, '..');
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const text = JSON.stringify({ version: VERSION, tailnet: state.tailnet, types: state.types });
  // Created afresh and exclusively: whatever sits at that name (a FIFO would block the open, a
  // symlink would redirect the write) is removed first, never opened.
  await unlink(tmp).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // Not every platform can open a directory for fsync; the rename is then as durable as it gets.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // ignored on purpose
  }
}
