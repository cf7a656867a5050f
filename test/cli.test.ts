/**
 * The CLI as a newcomer meets it: help per command, usage errors, runtime failures in one line,
 * configuration precedence, and the README's example file pointed at `tsmetrics simulate`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTsmetrics } from '../src/app.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { families, http, sampleValue } from './helpers/index.ts';
import { freePort, tempDir } from './helpers/system.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'src/cli/main.ts');

/** Runs the CLI with a clean environment (plus `env`); never reaches beyond loopback. */
function tsm(args: string[], env: Record<string, string> = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('help: `tsmetrics help [command]` and `<command> --help` print that command’s own usage; --version prints the version', () => {
  const all = tsm(['help']);
  assert.equal(all.code, 0);
  for (const c of ['run', 'validate', 'simulate', 'healthcheck', 'components', 'env']) assert.match(all.out, new RegExp(`^  ${c} `, 'm'));
  const seen = new Set<string>();
  for (const c of ['run', 'validate', 'simulate', 'healthcheck']) {
    const a = tsm(['help', c]);
    const b = tsm([c, '--help']);
    assert.equal(a.code, 0);
    assert.equal(a.out, b.out, `help ${c} = ${c} --help`);
    assert.match(a.out, new RegExp(`^tsmetrics ${c} — `));
    seen.add(a.out);
  }
  assert.equal(seen.size, 4, 'each command has its own text');
  assert.match(tsm(['help', 'simulate']).out, /--devices N/);
  assert.doesNotMatch(tsm(['help', 'simulate']).out, /--config/);
  assert.equal(tsm(['--version']).out.trim(), tsm(['version']).out.trim());
  assert.match(tsm(['--version']).out, /^\d+\.\d+\.\d+\n$/);
});

test('usage errors exit 2 with one line and the usage hint; runtime failures exit 1 with one line naming what failed', async () => {
  for (const [args, want] of [
    [['frob'], /^tsmetrics: unknown command "frob"\nRun 'tsmetrics help' for usage\.\n$/],
    [['--bogus'], /^tsmetrics: unknown option '--bogus'\nRun 'tsmetrics help run' for usage\.\n$/],
    [['simulate', '--devices', '-5'], /^tsmetrics: --devices: must be a whole number, at least 1 \(got "-5"\)\nRun 'tsmetrics help simulate' for usage\.\n$/],
    [['simulate', '--devices', 'many'], /--devices: must be a whole number/],
    [['run', '--port', '70000'], /^tsmetrics: --port: must be a port number 0-65535 \(got "70000"\)\n/],
    [['help', 'nope'], /unknown command "nope"/],
    [['validate', 'extra'], /unexpected argument "extra"/],
  ] as Array<[string[], RegExp]>) {
    const r = tsm(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, want, args.join(' '));
    assert.equal(r.out, '');
  }
  const port = await freePort();
  const hc = tsm(['healthcheck'], { PORT: String(port) });
  assert.equal(hc.code, 1);
  assert.equal(hc.err, `tsmetrics: healthcheck: http://127.0.0.1:${port}/health: connection refused (is tsmetrics running on that port?)\n`);
  // A port taken on loopback (never an address that would need a resolver): the same one line
  // with credentials and in demo mode (no credentials, the first thing a new user runs).
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const takenPort = (taken.address() as AddressInfo).port;
    for (const extra of [{ TS_API_KEY: 'tskey-api-x', TAILSCALE_API_URL: 'http://127.0.0.1:9' }, {}] as Array<Record<string, string>>) {
      const bind = tsm([], { BIND_HOST: '127.0.0.1', PORT: String(takenPort), ...extra });
      assert.equal(bind.code, 1, JSON.stringify(extra));
      assert.equal(bind.err.trim().split('\n').pop(), `tsmetrics: cannot listen on 127.0.0.1:${takenPort}: the port is already in use (EADDRINUSE); set BIND_HOST/--bind or PORT/--port`);
    }
  } finally {
    taken.close();
  }
});

test('configuration errors name what the user set: the variable, file:line:column, an unset ${env:X}', () => {
  const t = tempDir('tsmetrics-cli-');
  try {
    const otlp = tsm(['validate'], { TS_API_KEY: 'tskey-api-x', OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector' });
    assert.equal(otlp.code, 2);
    assert.match(otlp.err, /^tsmetrics: config error: env: OTEL_EXPORTER_OTLP_ENDPOINT[^:]*: must be an http:\/\/ or https:\/\/ URL\n$/);
    const bad = join(t.path, 'bad.yaml');
    writeFileSync(bad, 'receivers:\n  tailscale_api:\n    api_key: x\n  broken: [\n');
    const y = tsm(['validate', '--config', bad]);
    assert.equal(y.code, 2);
    assert.match(y.err, new RegExp(`^tsmetrics: config error: ${bad.replace(/[/.]/g, '\\$&')}:5:1: yaml syntax: `));
    const unset = join(t.path, 'unset.yaml');
    writeFileSync(unset, 'receivers:\n  tailscale_api:\n    api_key: ${env:MY_TS_KEY}\nexporters:\n  prometheus: {}\nservice:\n  pipelines:\n    metrics: { receivers: [tailscale_api], exporters: [prometheus] }\n');
    const u = tsm(['validate', '--config', unset]);
    assert.equal(u.code, 2);
    assert.match(u.err, /receivers\.tailscale_api\.api_key: .*\(the file writes \$\{env:MY_TS_KEY\}, and MY_TS_KEY is not set\)/);
    // No credentials at all: validate says what `tsmetrics` would do.
    const demo = tsm(['validate']);
    assert.equal(demo.code, 0);
    assert.match(demo.out, /would start in demo mode/);
  } finally {
    t.remove();
  }
});

test('precedence flag > environment > file > default, shown by validate; a set variable the file does not use is reported', () => {
  const t = tempDir('tsmetrics-cli-');
  try {
    const f = join(t.path, 'p.yaml');
    writeFileSync(f, 'receivers:\n  tailscale_api:\n    api_key: ${env:MY_KEY}\nexporters:\n  prometheus: {}\nservice:\n  http:\n    port: 9200\n    address: 127.0.0.2\n  telemetry:\n    logs: { level: warn }\n  pipelines:\n    metrics: { receivers: [tailscale_api], exporters: [prometheus] }\n');
    const r = tsm(['validate', '--config', f, '--log-level', 'debug'], { MY_KEY: 'tskey-api-abcdef', PORT: '9300', METRICS_TOKEN: 'tok-123456', SHARD_COUNT: '3' });
    assert.equal(r.code, 0, r.err);
    const row = (k: string): string => r.out.split('\n').find((l) => l.trim().startsWith(k)) ?? '';
    assert.match(row('service.http.port'), /9300\s+\(env PORT\)/);
    assert.match(row('service.http.address'), /127\.0\.0\.2\s+\(file\)/);
    assert.match(row('service.http.metrics_token'), /\[REDACTED\]\s+\(env METRICS_TOKEN\)/);
    assert.match(row('service.telemetry.logs.level'), /debug\s+\(flag --log-level\)/);
    assert.match(row('service.telemetry.logs.format'), /text\s+\(default\)/);
    assert.match(r.out, /note: SHARD_COUNT is set but .* does not use it/);
    assert.doesNotMatch(r.out, /tok-123456|tskey-api-abcdef/);
  } finally {
    t.remove();
  }
});

test('with a pipeline file, METRICS_TOKEN still protects /metrics and /debug; the example file plus simulate’s variables scrape the simulated devices', async (t) => {
  const sim = new TailnetSimulator({ devices: 6 });
  await sim.start();
  t.after(() => sim.stop());
  const running = await startTsmetrics({
    env: { ...sim.env(), METRICS_TOKEN: 'metrics-token-123', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://127.0.0.1:9/v1/metrics' },
    configFile: join(root, 'otel-config.example.yaml'),
    port: 0,
    write: () => undefined,
  });
  t.after(() => running.stop(AbortSignal.timeout(5000)));
  await running.service.collectNow();
  assert.equal((await http(`${running.url}/metrics`)).status, 401);
  assert.equal((await http(`${running.url}/debug`)).status, 401);
  const ok = await http(`${running.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-123' } });
  assert.equal(ok.status, 200);
  const f = families(ok.body);
  const up = f.get('tsmetrics_device_scrape_up')?.samples ?? [];
  assert.ok(up.length > 0 && up.some((s) => s.value === 1), `simulated devices scraped through the example file (${up.length} targeted)`);
  assert.ok(sampleValue(f, 'tailscale_device_count', {}) !== undefined || (f.get('tailscale_device_info')?.samples.length ?? 0) > 0);
});

test('the demo explains itself: its simulated faults are listed once at start, naming the flaky device', async (t) => {
  const lines: string[] = [];
  const running = await startTsmetrics({ env: {}, port: 0, write: (l) => lines.push(l) });
  t.after(() => running.stop(AbortSignal.timeout(5000)));
  const flaky = running.simulator?.devices[6]?.api.name as string;
  assert.ok(flaky);
  const intro = lines.filter((l) => l.includes('simulated faults'));
  assert.equal(intro.length, 1);
  assert.ok(intro[0]?.includes(flaky) && intro[0].includes('503'), intro[0]);
});
