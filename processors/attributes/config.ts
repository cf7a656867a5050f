import { RE2JS } from 're2js';
import { defineSchema } from '../../src/config/schema.ts';

/** One action on the attributes whose key matches: `key` (exact, or `*` globs) or `pattern` (RE2). */
export interface AttributeAction {
  readonly key?: string;
  readonly pattern?: string;
  readonly action: 'delete' | 'hash';
}

/** Drops a whole record (logs) or data point (metrics) whose attribute `key` matches. */
export interface DropRule {
  readonly key: string;
  /** The value, exactly; with neither `value` nor `pattern` the attribute being present is enough. */
  readonly value?: string;
  /** RE2, fully anchored, on the value. */
  readonly pattern?: string;
}

export interface AttributesConfig {
  actions: AttributeAction[];
  keep_only: string[];
  drop_when: DropRule[];
  hash_key: string;
  hash_length: number;
}

const ACTIONS = new Set(['delete', 'hash']);

/** RE2 with Prometheus' anchoring; the error names what does not compile. */
export function compilePattern(text: string): RE2JS {
  return RE2JS.compile(`^(?s:${text})$`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function patternProblem(text: unknown, path: string): Array<{ path: string; message: string }> {
  if (typeof text !== 'string') return [{ path, message: 'must be a string (an RE2 regular expression)' }];
  try {
    compilePattern(text);
    return [];
  } catch (err) {
    return [{ path, message: `is not a valid RE2 regular expression: ${(err as Error).message}` }];
  }
}

function validate(c: AttributesConfig): Array<{ path: string; message: string }> {
  const out: Array<{ path: string; message: string }> = [];
  c.actions.forEach((a: unknown, i) => {
    const path = `actions[${i}]`;
    if (!isMap(a)) return out.push({ path, message: 'must be a map with key or pattern, and action' });
    for (const k of Object.keys(a)) if (!['key', 'pattern', 'action'].includes(k)) out.push({ path: `${path}.${k}`, message: 'unknown key' });
    if ((a.key === undefined) === (a.pattern === undefined)) out.push({ path, message: 'needs exactly one of key (an attribute name or * glob) and pattern (RE2)' });
    if (a.key !== undefined && (typeof a.key !== 'string' || a.key === '')) out.push({ path: `${path}.key`, message: 'must be a non-empty string' });
    if (a.pattern !== undefined) out.push(...patternProblem(a.pattern, `${path}.pattern`));
    if (typeof a.action !== 'string' || !ACTIONS.has(a.action)) out.push({ path: `${path}.action`, message: 'must be one of: delete, hash' });
    return undefined;
  });
  c.drop_when.forEach((r: unknown, i) => {
    const path = `drop_when[${i}]`;
    if (!isMap(r)) return out.push({ path, message: 'must be a map with key, and value or pattern' });
    for (const k of Object.keys(r)) if (!['key', 'value', 'pattern'].includes(k)) out.push({ path: `${path}.${k}`, message: 'unknown key' });
    if (typeof r.key !== 'string' || r.key === '') out.push({ path: `${path}.key`, message: 'must be a non-empty attribute name' });
    if (r.value !== undefined && r.pattern !== undefined) out.push({ path, message: 'takes value or pattern, not both' });
    if (r.value !== undefined && typeof r.value !== 'string') out.push({ path: `${path}.value`, message: 'must be a string' });
    if (r.pattern !== undefined) out.push(...patternProblem(r.pattern, `${path}.pattern`));
    return undefined;
  });
  if (c.actions.some((a) => isMap(a) && a.action === 'hash') && c.hash_key === '') out.push({ path: 'hash_key', message: 'is required when an action is "hash" (a plain hash of a low-entropy value such as an IP address is easy to reverse)' });
  if (c.hash_length < 8 || c.hash_length > 64) out.push({ path: 'hash_length', message: 'must be between 8 and 64 hex characters' });
  return out;
}

export const configSchema = defineSchema<AttributesConfig>(
  {
    actions: { doc: 'Applied in order to every attribute: {key: name or * glob | pattern: RE2, action: delete | hash}.', format: 'any_list', default: [] },
    keep_only: { doc: 'When not empty, only attributes whose key is listed (exact or * glob) are kept; the rest are deleted.', format: 'string_list', default: [] },
    drop_when: { doc: 'Drops a record (logs) or data point (metrics) whose attribute matches: {key, value (exact) | pattern (RE2); neither = present}.', format: 'any_list', default: [] },
    hash_key: { doc: 'Secret key of the HMAC-SHA256 behind the hash action.', format: 'secret', default: '' },
    hash_length: { doc: 'Hex characters of the HMAC kept as the hashed value (8–64).', format: 'nat', default: 16 },
  },
  validate,
);
