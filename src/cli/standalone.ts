/**
 * Entry of the single-file executable (`npm run build:sea`): runs the CLI with the process's
 * arguments and exits with its code. The installed bin and `node src/cli/main.ts` do the same
 * through their own entry points.
 */
import { main } from './main.ts';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tsmetrics: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
