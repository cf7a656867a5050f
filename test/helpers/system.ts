import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Asserts that an external tool the tests need is on PATH and runs (`<name> --version`), and
 * throws otherwise. There is deliberately no skip: `.ci/run` installs `prometheus` and
 * `promtool` (Debian's `prometheus` package), and a skipped check would be counted as a pass.
 */
export function requireTool(name: string): void {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) {
    const why = r.error ? (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is not on PATH' : `cannot be run: ${r.error.message}` : `exited ${r.status}: ${r.stderr}`;
    throw new Error(`${name} ${why}. This test needs it; install it as .ci/run does (apt-get install prometheus).`);
  }
}

/** A TCP port the kernel reports free on `host` now (listen on port 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => (port > 0 ? resolve(port) : reject(new Error('the kernel gave no port'))));
    });
  });
}

/**
 * A fresh directory under the OS temp dir and a `remove()` that deletes it with everything in
 * it (idempotent). Call `remove` from a `t.after` hook registered after the hooks that stop
 * whatever writes into the directory: node:test runs `after` hooks in the order they were
 * registered, and they run whether the test passed or failed.
 */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }) };
}

/** Signals a child process and waits until it has exited (SIGKILL after `timeoutMs`). */
export async function stopChild(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  const late = await Promise.race([exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    child.kill('SIGKILL');
    await exited;
  }
}
