/**
 * Refuses to run on a Node.js older than the project's dependencies support, with one line
 * instead of a stack trace from deep inside undici. Imported first by every entry point (the
 * CLI and the library index): ES modules evaluate their imports in order, so this runs before
 * any dependency is loaded.
 */

/** The oldest Node.js every dependency supports (undici 8 needs 22.19). */
export const MIN_NODE = '22.19.0';

/** The one-line complaint for `version`, or undefined when it is new enough. */
export function nodeVersionProblem(version: string, min = MIN_NODE): string | undefined {
  const have = version.replace(/^v/, '').split('.').map((x) => Number.parseInt(x, 10) || 0);
  const need = min.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const h = have[i] ?? 0;
    const n = need[i] ?? 0;
    if (h > n) return undefined;
    if (h < n) {
      return `tsmetrics: needs Node.js >= ${min}, but this is ${version.startsWith('v') ? version : `v${version}`}; install Node.js 22 or 24 (https://nodejs.org/ or your package manager), or run it through npm in a clone of the repository (npm start, npx tsmetrics), which brings its own Node 24`;
    }
  }
  return undefined;
}

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
