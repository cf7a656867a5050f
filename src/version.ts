import { readFileSync } from 'node:fs';

function readVersion(): string {
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
