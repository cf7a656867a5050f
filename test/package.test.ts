/**
 * What a newcomer and a library consumer get: a fresh clone where only the README's install
 * command ran, and the published tarball installed into an empty folder (Node 22 and 24, a
 * consumer's strict `tsc` with `skipLibCheck: false`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const node24 = process.execPath;

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeout = 240_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} exited ${String(r.status)}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** The system's own Node.js, if it is too old for tsmetrics (the machines here have Node 20). */
function oldNode(): string | undefined {
  for (const p of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(p)) continue;
    const v = execFileSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
    const [maj, min] = v.split('.').map(Number) as [number, number];
    if (maj < 22 || (maj === 22 && min < 19)) return p;
  }
  return undefined;
}

test('a fresh clone after only `npm ci`: the CLI, the package and the library work; a too-old Node gets one line', { timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsmetrics-clone-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clone = join(dir, 'clone');
  execFileSync('git', ['clone', '--quiet', repo, clone]);
  // npm itself runs on whatever Node the machine has; the project brings Node 24 for its scripts.
  ok(run('npm', ['ci', '--no-audit', '--no-fund'], clone), 'npm ci');
  assert.ok(existsSync(join(clone, 'dist/src/cli/main.js')), 'npm ci built dist/ (prepare)');

  // The README's next commands, exactly as written there.
  const help = ok(run('npx', ['tsmetrics', '--help'], clone), 'npx tsmetrics --help');
  assert.match(help, /tsmetrics .*Usage:/s);
  const version = ok(run('npx', ['tsmetrics', '--version'], clone), 'npx tsmetrics --version').trim();
  assert.equal(version, JSON.parse(execFileSync('git', ['show', 'HEAD:package.json'], { cwd: clone, encoding: 'utf8' })).version);
  const components = ok(run('npx', ['tsmetrics', 'components'], clone), 'npx tsmetrics components');
  assert.match(components, /receiver\s+tailscale_api/);

  const old = oldNode();
  if (old) {
    for (const args of [['bin/tsmetrics.js', '--version'], ['-e', "import('tsmetrics').then(() => console.log('loaded'))"]]) {
      const r = run(old, args, clone);
      assert.equal(r.status, 1, `${args.join(' ')} on ${old} exits 1`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line, no stack trace: ${r.stderr}`);
      assert.match(lines[0] as string, /needs Node\.js >= 22\.19\.0, but this is v\d+\.\d+\.\d+/);
      assert.doesNotMatch(r.stdout, /loaded/);
    }
  } else {
    // No old Node on this machine: the same rule, checked on version strings.
    const { nodeVersionProblem } = await import('../src/runtime/node-check.ts');
    assert.match(nodeVersionProblem('20.20.2') ?? '', /needs Node\.js >= 22\.19\.0, but this is v20\.20\.2/);
    assert.equal(nodeVersionProblem('22.19.0'), undefined);
    assert.equal(nodeVersionProblem('24.1.0'), undefined);
  }

  // The tarball: exports, bin and types resolve; nothing but the shipped code.
  const packed = JSON.parse(ok(run('npm', ['pack', '--json', '--pack-destination', dir], clone), 'npm pack')) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed[0]?.files.map((f) => f.path) ?? [];
  assert.ok(files.includes('dist/src/index.js') && files.includes('dist/src/index.d.ts') && files.includes('bin/tsmetrics.js'));
  assert.deepEqual(files.filter((f) => /(^|\/)(test|bench|fixtures)\/|\.test\.|^src\/|^deploy\//.test(f)), [], 'no tests, fixtures, benchmarks or sources');
  const tarball = join(dir, packed[0]?.filename as string);

  // A consumer: an empty folder, the tarball, TypeScript and Node's types — nothing else.
  const consumer = join(dir, 'consumer');
  execFileSync('mkdir', ['-p', consumer]);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, include: ['main.ts'] }));
  // The README's library example, in spirit: build a pipeline, serve /metrics, shut down.
  writeFileSync(
    join(consumer, 'main.ts'),
    [
      "import { createServer } from 'node:http';",
      "import { PipelineService, TailnetSimulator, defaultRegistry, resolveConfig } from 'tsmetrics';",
      'const sim = new TailnetSimulator({ devices: 4 });',
      'await sim.start();',
      'const registry = defaultRegistry();',
      "const config = resolveConfig({ receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' }, device_metrics: { port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], interval: '1h' } }, exporters: { prometheus: {} }, service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], exporters: ['prometheus'] } } } }, registry, 'consumer');",
      'const pipeline = new PipelineService(registry, config);',
      "const metrics = pipeline.routes().find((r) => r.path === '/metrics');",
      "if (!metrics) throw new Error('no /metrics route');",
      'await pipeline.start();',
      'await pipeline.collectNow();',
      'const server = createServer((req, res) => void metrics.handle(req, res));',
      "await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));",
      'const a = server.address();',
      "const port = typeof a === 'object' && a ? a.port : 0;",
      'const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();',
      "console.log(body.split('\\n').filter((l) => l.startsWith('tailscale_device_info')).length);",
      'server.close();',
      'await pipeline.shutdown(AbortSignal.timeout(5000));',
      'await sim.stop();',
    ].join('\n'),
  );
  const pkgNode22 = 'node@22.23.3';
  ok(run('npm', ['install', '--no-audit', '--no-fund', tarball, 'typescript@6.0.3', '@types/node@24.19.2', pkgNode22], consumer), 'consumer npm install');
  ok(run(node24, [join(consumer, 'node_modules/typescript/bin/tsc'), '-p', consumer], consumer), 'consumer tsc (skipLibCheck: false)');
  const nodes = [node24, join(consumer, 'node_modules/node/bin/node')];
  for (const n of nodes) {
    const v = execFileSync(n, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
    const out = ok(run(n, ['--experimental-strip-types', '--no-warnings', 'main.ts'], consumer), `library example on Node ${v}`);
    assert.equal(Number(out.trim().split('\n').pop()), 4, `Node ${v}: four tailscale_device_info series served`);
  }
  assert.ok(nodes.length === 2 && readdirSync(join(consumer, 'node_modules')).includes('tsmetrics'));
});
