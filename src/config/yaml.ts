import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.ts';
import type { RawServiceConfig } from './service.ts';

const SUBST_RE = /\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** A `${env:NAME}` without a default whose variable is not set, and the key it stands in. */
export interface UnsetReference {
  /** Dotted key path (`receivers.tailscale_api.api_key`). */
  readonly path: string;
  readonly name: string;
}

/**
 * Replaces `${env:VAR}` / `${VAR}` (with an optional `:-default`) in every string value; `$$`
 * stands for a literal `$`, as in the Collector. Unset variables become empty strings, and are
 * recorded in `unset` (when given) so an error at that key can say why it is empty.
 */
export function substituteEnv(value: unknown, env: Readonly<Record<string, string | undefined>>, unset?: UnsetReference[], path = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(SUBST_RE, (m, name: string | undefined, dflt: string | undefined) => {
      if (m === '$$') return '$';
      const v = env[name as string];
      if ((v === undefined || v === '') && dflt === undefined) unset?.push({ path, name: name as string });
      return v === undefined || v === '' ? (dflt ?? '') : v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, unset, `${path}.${i}`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, unset, path ? `${path}.${k}` : k)]));
  }
  return value;
}

/** Reads and parses a pipeline file; YAML syntax errors name the file, line and column. */
export function loadYamlConfig(path: string, env: Readonly<Record<string, string | undefined>>, unset?: UnsetReference[]): RawServiceConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ source: path, path: '(file)', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  // prettyErrors computes line and column (the message then carries a code frame after its
  // first line, which is dropped: one line per problem).
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        source: e.linePos ? `${path}:${e.linePos[0].line}:${e.linePos[0].col}` : path,
        path: 'yaml syntax',
        message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, ''),
      })),
    );
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ source: path, path: '(root)', message: 'must be a map with receivers, processors, exporters and service' }]);
  }
  return substituteEnv(data, env, unset) as RawServiceConfig;
}
