#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (npm run build produces dist/).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(`tsmetrics: fatal: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
