/**
 * Release plumbing that cannot run here (hosted CI, image builds, publishing) is checked for
 * what can be checked: every command a workflow runs exists, the matrix is what the README
 * promises, dependency updates move the OpenTelemetry packages together, and the runtime
 * dependencies are exactly what the shipped code imports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string>; devDependencies: Record<string, string> };

interface Step {
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
}
interface Job {
  steps: Step[];
  strategy?: { matrix?: Record<string, unknown> };
}
const workflows = new Map(readdirSync(join(root, '.github/workflows')).map((f) => [f, parse(readFileSync(join(root, '.github/workflows', f), 'utf8')) as { on: unknown; jobs: Record<string, Job> }]));

test('every command the workflows run exists: npm scripts in package.json, the SEA output path, Dockerfile targets', () => {
  assert.deepEqual([...workflows.keys()].sort(), ['ci.yml', 'codeql.yml', 'image.yml', 'release.yml']);
  const npmBuiltins = new Set(['ci', 'test', 'publish', 'install']);
  let runs = 0;
  for (const [file, wf] of workflows) {
    for (const [name, job] of Object.entries(wf.jobs)) {
      for (const step of job.steps) {
        if (!step.run) continue;
        for (const m of step.run.matchAll(/\bnpm (run )?([a-z:-]+)/g)) {
          runs++;
          const [, isRun, script] = m as unknown as [string, string | undefined, string];
          if (isRun) assert.ok(pkg.scripts[script], `${file} ${name}: npm run ${script} is a script`);
          else assert.ok(npmBuiltins.has(script) || pkg.scripts[script], `${file} ${name}: npm ${script}`);
        }
        for (const m of step.run.matchAll(/\.\/dist-sea\/(\$\{\{[^}]*\}\}|\S+)/g)) assert.match(m[1] as string, /^(\$\{\{ matrix\.file \}\}|tsmetrics-linux-(x64|arm64))$/, `${file}: SEA file name`);
      }
    }
  }
  assert.ok(runs >= 8, `${runs} npm commands checked`);
  const build = readFileSync(join(root, 'deploy/sea/build.ts'), 'utf8');
  assert.match(build, /tsmetrics-\$\{process\.platform\}-\$\{process\.arch\}/, 'the SEA build names its output as the workflows expect');
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const targets = new Set([...dockerfile.matchAll(/^FROM \S+ AS (\S+)/gm)].map((m) => m[1]));
  const image = workflows.get('image.yml')?.jobs.build;
  assert.deepEqual((image?.strategy?.matrix?.target as string[]).filter((t) => !targets.has(t)), [], 'image targets exist in the Dockerfile');
  const push = image?.steps.find((s) => s.uses?.startsWith('docker/build-push-action'));
  assert.equal(push?.with?.platforms, 'linux/amd64,linux/arm64');
});

test('CI tests on Node 22 and 24 with Debian-style prometheus; release publishes the package and both executables', () => {
  const ci = workflows.get('ci.yml')?.jobs.test;
  assert.deepEqual(ci?.strategy?.matrix?.node, ['22', '24']);
  assert.ok(ci?.steps.some((s) => s.run?.includes('apt-get install') && s.run.includes('prometheus')));
  for (const cmd of ['npm ci', 'npm run lint', 'npm run typecheck', 'npm test']) assert.ok(ci?.steps.some((s) => s.run === cmd), `ci runs ${cmd}`);
  const release = workflows.get('release.yml');
  assert.deepEqual(release?.on, { push: { tags: ['v*'] } });
  const exes = (release?.jobs.executables?.strategy?.matrix?.include as Array<{ file: string }>).map((x) => x.file).sort();
  assert.deepEqual(exes, ['tsmetrics-linux-arm64', 'tsmetrics-linux-x64']);
  assert.ok(release?.jobs.publish?.steps.some((s) => s.run?.startsWith('npm publish')));
  assert.ok(workflows.get('codeql.yml')?.jobs.analyze?.steps.some((s) => s.uses?.startsWith('github/codeql-action/analyze')));
});

test('dependency updates group the OpenTelemetry packages so they move together', () => {
  const renovate = JSON.parse(readFileSync(join(root, '.github/renovate.json'), 'utf8')) as { packageRules: Array<{ matchPackageNames?: string[]; groupName?: string }> };
  const otel = renovate.packageRules.find((r) => r.matchPackageNames?.includes('@opentelemetry/**'));
  assert.ok(otel?.groupName, 'one group for @opentelemetry/**');
  const versions = new Set(Object.entries(pkg.dependencies).filter(([n]) => n.startsWith('@opentelemetry/') && n !== '@opentelemetry/api').map(([, v]) => v.split('.')[0]));
  assert.ok(versions.size <= 2, 'the SDK packages are pinned to one release line (stable 3.x and experimental 0.x)');
});

/** Bare package names imported by the shipped (non-test, non-bench) TypeScript sources. */
function shippedImports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'|\bimport\('([^']+)'\)/gm)) {
          const spec = (m[1] ?? m[2] ?? m[3]) as string;
          if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
          const list = out.get(spec) ?? [];
          list.push(relative(root, p));
          out.set(spec, list);
        }
      }
    }
  };
  for (const d of ['src', 'receivers', 'processors', 'exporters']) walk(join(root, d));
  return out;
}

test('runtime dependencies are exactly what the shipped code imports, through each package’s public exports', () => {
  const imports = shippedImports();
  const packages = new Set([...imports.keys()].map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string))));
  assert.deepEqual([...packages].sort(), Object.keys(pkg.dependencies).sort(), 'package.json dependencies = imported packages');
  for (const name of packages) assert.ok(!pkg.devDependencies[name], `${name} is not also a dev dependency`);
  // A subpath that a package does not export would be an internal API.
  for (const [spec, files] of imports) {
    assert.doesNotThrow(() => import.meta.resolve(spec), `${spec} (imported by ${files.join(', ')}) resolves through the package's exports`);
  }
});
