import { mkdir, open, rename, unlink } from 'node:fs/promises';
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
 * Reads a state file. A file that is not exactly what `saveState` writes is reported as corrupt
 * (never half-trusted); `maxIds` bounds what a tampered file can make the process hold.
 */
export async function loadState(file: string, maxIds: number, maxBytes: number): Promise<LoadResult> {
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat();
      if (st.size > maxBytes) return { corrupt: `file is ${st.size} bytes, more than the ${maxBytes} a state of dedup_capacity identities can need` };
      text = await fh.readFile('utf8');
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
  const fh = await open(tmp, 'w', 0o600);
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
