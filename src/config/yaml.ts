import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.ts';
import type { RawServiceConfig } from './service.ts';

const SUBST_RE = /\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${env:VAR}` / `${VAR}` (with an optional `:-default`) in every string value; `$$`
 * stands for a literal `$`, as in the Collector. Unset variables become empty strings.
 */
export function substituteEnv(value: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  if (typeof value === 'string') {
    return value.replace(SUBST_RE, (m, name: string | undefined, dflt: string | undefined) => {
      if (m === '$$') return '$';
      const v = env[name as string];
      return v === undefined || v === '' ? (dflt ?? '') : v;
    });
  }
  if (Array.isArray(value)) return value.map((v) => substituteEnv(v, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env)]));
  }
  return value;
}

/** Reads and parses a pipeline file; YAML syntax errors name the file, line and column. */
export function loadYamlConfig(path: string, env: Readonly<Record<string, string | undefined>>): RawServiceConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ source: path, path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((e) => ({ source: path, path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(yaml)', message: e.message.split('\n')[0] ?? e.message })),
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ source: path, path: '(root)', message: 'must be a map with receivers, processors, exporters and service' }]);
  }
  return substituteEnv(data, env) as RawServiceConfig;
}
