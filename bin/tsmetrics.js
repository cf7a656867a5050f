#!/usr/bin/env node
// Installed entry point. Plain JavaScript that any Node.js can parse, so a too-old Node gets
// one line (same rule as src/runtime/node-check.ts) instead of a stack trace from a dependency.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`tsmetrics: needs Node.js >= 22.19.0, but this is ${process.version}; install Node.js 22 or 24 (https://nodejs.org/ or your package manager), or run it through npm in a clone of the repository (npm start, npx tsmetrics), which brings its own Node 24\n`);
  process.exit(1);
}
const { existsSync } = await import('node:fs');
// The package ships compiled code in dist/; a git checkout that was never built runs the
// TypeScript sources directly (Node >= 22.18 strips types).
const built = existsSync(new URL('../dist/src/cli/main.js', import.meta.url));
const { main } = await import(built ? '../dist/src/cli/main.js' : '../src/cli/main.ts');
// Exit as soon as the CLI has its answer: a connection or timer a step left behind (an OTLP
// endpoint that never answered) must not hold the process past its shutdown line. Standard
// output and error are synchronous on files and pipes, so nothing written is lost.
main(process.argv.slice(2)).then(
  (code) => process.exit(typeof code === 'number' ? code : 0),
  (err) => {
    console.error(`tsmetrics: fatal: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
