/**
 * Builds the single-file executable `dist-sea/tsmetrics-<platform>-<arch>` with Node's Single
 * Executable Applications: the CLI and every dependency bundled into one CommonJS script
 * (esbuild), turned into a SEA blob by this Node, and injected into a copy of this Node binary
 * (postject). The result runs on a machine with no Node.js installed.
 *
 *   npm run build:sea
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../', import.meta.url));
const out = join(root, 'dist-sea');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const name = `tsmetrics-${process.platform}-${process.arch}`;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// A SEA runs one CommonJS script; import.meta is not available there, so the version is
// compiled in and the entry calls the CLI itself.
await build({
  entryPoints: [join(root, 'src/cli/standalone.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  // Prefer packages' ES module builds: some (jsonc-parser) ship a UMD "main" whose dynamic
  // requires a bundle cannot follow.
  mainFields: ['module', 'main'],
  outfile: join(out, 'tsmetrics.cjs'),
  // Some packages' ES builds call createRequire(import.meta.url); in a CommonJS bundle that is
  // undefined, so it is given the bundle's own file URL.
  define: { __TSMETRICS_VERSION__: JSON.stringify(version), 'import.meta.url': '__tsmetrics_bundle_url' },
  banner: { js: "const __tsmetrics_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  // import.meta is only read behind checks that tolerate its absence (version.ts, main.ts).
  logOverride: { 'empty-import-meta': 'silent' },
});

const seaConfig = join(out, 'sea-config.json');
writeFileSync(seaConfig, JSON.stringify({ main: join(out, 'tsmetrics.cjs'), output: join(out, 'sea-prep.blob'), disableExperimentalSEAWarning: true, useCodeCache: false }));
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });

const exe = join(out, name);
copyFileSync(process.execPath, exe);
chmodSync(exe, 0o755);
execFileSync(process.execPath, [join(root, 'node_modules/postject/dist/cli.js'), exe, 'NODE_SEA_BLOB', join(out, 'sea-prep.blob'), '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: ['ignore', 'ignore', 'inherit'] });
for (const f of ['sea-config.json', 'sea-prep.blob']) rmSync(join(out, f), { force: true });
process.stdout.write(`${exe}\n`);
