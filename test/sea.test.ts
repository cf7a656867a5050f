/**
 * The single-file executable (`npm run build:sea`) runs where no Node.js is installed: built
 * here, copied to an empty folder, started with a PATH that has no `node`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './helpers/system.ts';
import { http, waitFor } from './helpers/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

test('the single-file executable prints its version and serves the demo with no node on PATH', { timeout: 300_000 }, async (t) => {
  const built = execFileSync(process.execPath, [join(root, 'deploy/sea/build.ts')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop() as string;
  assert.match(built, /tsmetrics-linux-x64$|tsmetrics-[a-z0-9]+-[a-z0-9]+$/);
  const dir = mkdtempSync(join(tmpdir(), 'tsmetrics-sea-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'tsmetrics');
  copyFileSync(built, exe);
  const env = { PATH: join(dir, 'no-such-dir'), HOME: dir };
  assert.throws(() => execFileSync('node', ['--version'], { env }), 'no node on this PATH');
  const version = execFileSync(exe, ['--version'], { env, encoding: 'utf8', cwd: dir }).trim();
  assert.equal(version, (JSON.parse(execFileSync('git', ['show', 'HEAD:package.json'], { cwd: root, encoding: 'utf8' })) as { version: string }).version);

  const port = await freePort();
  const child = spawn(exe, [], { env: { ...env, PORT: String(port) }, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const body = await waitFor(async () => {
    const r = await http(`http://127.0.0.1:${port}/metrics`);
    // The API cycle ends before the device scrape: wait for both.
    return r.status === 200 && r.body.includes('tailscale_device_info') && /^tsmetrics_device_scrape_up\{/m.test(r.body) ? r.body : undefined;
  }, 60_000, 200).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${log.slice(-2000)}`);
  });
  assert.ok(body);
  assert.match(body, /^tsmetrics_device_scrape_up\{/m, 'device scrapes ran inside the executable');
  assert.match(log, /DEMO MODE/);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
