import { readFileSync } from 'node:fs';

/** Compiled in by the single-file build (deploy/sea/build.ts), where there is no package.json. */
declare const __TSMETRICS_VERSION__: string | undefined;

function readVersion(): string {
  if (typeof __TSMETRICS_VERSION__ === 'string') return __TSMETRICS_VERSION__;
  // Works from src/ (run from source) and from dist/src/ (installed build).
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tsmetrics' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

/** The package version (service.version, `/health`, User-Agent). */
export const VERSION = readVersion();
export const USER_AGENT = `tsmetrics/${VERSION}`;
