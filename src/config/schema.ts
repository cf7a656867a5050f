import convict from 'convict';
import { isIP } from 'node:net';
import { parseDuration } from './duration.ts';
import type { ConfigProblem } from '../errors.ts';
import { parseCidr } from '../util/cidr.ts';

/** Secret config values are marked with this format; they are redacted in every printout. */
export const SECRET_FORMAT = 'secret';

/** The longest timer Node.js can set (2^31−1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const TOO_LONG = `must be at most 596h (a timer longer than ${MAX_TIMER_MS} ms, about 24.8 days, cannot be set)`;

let formatsAdded = false;
/** Registers tsmetrics' value formats with convict (idempotent; convict keeps them globally). */
export function addConfigFormats(): void {
  if (formatsAdded) return;
  formatsAdded = true;
  convict.addFormats({
    // `duration` and `positive_duration` set timers (intervals, timeouts): Node fires a timer
    // set beyond 2^31−1 ms after 1 ms instead, so a `timeout: 30d` would cut every request at
    // once and an `interval: 30d` would poll in a loop. Spans that are only compared with
    // times (windows, TTLs, grace periods) are `long_duration` / `long_positive_duration`, without that bound.
    duration: {
      validate(v: unknown) {
        const d = parseDuration(v);
        if (d === undefined) throw new Error('must be a duration such as 30s, 1m or 500ms');
        if (d > MAX_TIMER_MS) throw new Error(TOO_LONG);
      },
      coerce(v: unknown) {
        return parseDuration(v) ?? v;
      },
    },
    positive_duration: {
      validate(v: unknown) {
        const d = parseDuration(v);
        if (d === undefined || d <= 0) throw new Error('must be a positive duration such as 30s, 1m or 500ms');
        if (d > MAX_TIMER_MS) throw new Error(TOO_LONG);
      },
      coerce(v: unknown) {
        return parseDuration(v) ?? v;
      },
    },
    long_duration: {
      validate(v: unknown) {
        if (parseDuration(v) === undefined) throw new Error('must be a duration such as 30s, 1m or 500ms');
      },
      coerce(v: unknown) {
        return parseDuration(v) ?? v;
      },
    },
    long_positive_duration: {
      validate(v: unknown) {
        const d = parseDuration(v);
        if (d === undefined || d <= 0) throw new Error('must be a positive duration such as 30s, 1m or 500ms');
      },
      coerce(v: unknown) {
        return parseDuration(v) ?? v;
      },
    },
    [SECRET_FORMAT]: {
      validate(v: unknown) {
        if (typeof v !== 'string') throw new Error('must be a string');
      },
    },
    string_list: {
      validate(v: unknown) {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error('must be a list of strings');
      },
      coerce(v: unknown) {
        return typeof v === 'string' ? splitList(v) : v;
      },
    },
    cidr_list: {
      validate(v: unknown) {
        if (!Array.isArray(v)) throw new Error('must be a list of CIDR networks');
        for (const x of v) {
          if (typeof x !== 'string' || !parseCidr(x)) throw new Error(`"${String(x)}" is not a CIDR network (e.g. 100.64.0.0/10)`);
        }
      },
      coerce(v: unknown) {
        return typeof v === 'string' ? splitList(v) : v;
      },
    },
    host: {
      validate(v: unknown) {
        if (typeof v !== 'string' || v === '' || (/[\s/]/.test(v) && !isIP(v))) throw new Error('must be a host name or IP address');
      },
    },
    url_or_empty: {
      validate(v: unknown) {
        if (v === '') return;
        if (typeof v !== 'string' || !URL.canParse(v)) throw new Error('must be an absolute URL such as https://api.tailscale.com');
        const u = new URL(v);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('must be an http:// or https:// URL');
      },
    },
    string_map: {
      validate(v: unknown) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('must be a map of strings');
        for (const x of Object.values(v)) if (typeof x !== 'string') throw new Error('must be a map of strings');
      },
    },
    any_list: {
      validate(v: unknown) {
        if (!Array.isArray(v)) throw new Error('must be a list');
      },
    },
  });
}

export function splitList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * One setting of a schema. The shape is convict's schema object, declared here so the public
 * types do not depend on convict's (a library consumer does not have `@types/convict`).
 */
export interface SettingSchema<T> {
  /** One line for generated docs and `tsmetrics env`. */
  doc: string;
  /**
   * `String`, `Boolean`, `Number`, a list of allowed values, or a format name: `nat`, `port`,
   * `duration`, `positive_duration` (both at most MAX_TIMER_MS), `long_duration`,
   * `long_positive_duration`, `secret`, `string_list`, `cidr_list`, `host`,
   * `url_or_empty`, `string_map`, `any_list`.
   */
  format: unknown;
  default: T;
  /** The value is a secret: redacted in every printout. */
  sensitive?: boolean;
  /** Environment variable (the environment schema only). */
  env?: string;
  nullable?: boolean;
}

/** A schema: a setting per key, or a nested schema for a nested object. */
export type SchemaDefinition<C> = { [K in keyof C]: SettingSchema<C[K]> | SchemaDefinition<C[K]> };

/** A component's configuration: defaults, validation and docs in one place. */
export interface ConfigSchema<C> {
  /** Every leaf has `doc`, `format` and `default` (validated by convict). */
  readonly definition: SchemaDefinition<C>;
  /** Checks that span several keys; returns problems with paths relative to the component. */
  validate?(config: C): Array<{ path: string; message: string }>;
}

/** Declares a schema (identity helper that fixes the config type). */
export function defineSchema<C>(definition: SchemaDefinition<C>, validate?: (config: C) => Array<{ path: string; message: string }>): ConfigSchema<C> {
  return validate ? { definition, validate } : { definition };
}

/** Parses convict's multi-line validation message into problems. */
function convictProblems(err: unknown, source: string, prefix: string): ConfigProblem[] {
  const text = err instanceof Error ? err.message : String(err);
  const out: ConfigProblem[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const unknown = /^configuration param '([^']+)' not declared in the schema$/.exec(trimmed);
    if (unknown) {
      out.push({ source, path: join(prefix, unknown[1] as string), message: 'unknown key' });
      continue;
    }
    const idx = trimmed.indexOf(': ');
    if (idx > 0) {
      // convict appends `: value was "..."`; drop it because the value may be a secret.
      const msg = trimmed.slice(idx + 2).replace(/: value was .*$/s, '');
      out.push({ source, path: join(prefix, trimmed.slice(0, idx)), message: msg });
    } else {
      out.push({ source, path: prefix || '(root)', message: trimmed });
    }
  }
  return out;
}

function join(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

/** Result of validating one component's raw config. */
export type ParseResult<C> = { ok: true; config: C; secrets: string[] } | { ok: false; problems: ConfigProblem[] };

/**
 * Validates `raw` (from YAML or built from env) against `schema`: unknown keys are rejected,
 * defaults filled in, values coerced. The result is deep-frozen.
 */
export function parseConfig<C>(schema: ConfigSchema<C>, raw: unknown, source: string, prefix: string): ParseResult<C> {
  addConfigFormats();
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    return { ok: false, problems: [{ source, path: prefix || '(root)', message: 'must be a map of settings' }] };
  }
  // convict reads dotted keys as paths, so free-form maps (OTLP headers, resource attributes
  // such as `deployment.environment`) are taken out and checked here instead.
  const maps: Record<string, Record<string, string>> = {};
  const mapProblems: ConfigProblem[] = [];
  let rest = raw as Record<string, unknown> | undefined | null;
  for (const [key, def] of Object.entries(schema.definition as Record<string, unknown>)) {
    if (!def || typeof def !== 'object' || (def as { format?: unknown }).format !== 'string_map') continue;
    const v = rest?.[key];
    if (v === undefined) continue;
    rest = { ...rest };
    delete rest[key];
    if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean')) {
      mapProblems.push({ source, path: join(prefix, key), message: 'must be a map of strings' });
    } else maps[key] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
  }
  let conf: convict.Config<C>;
  try {
    conf = convict(schema.definition as convict.Schema<C>, { env: {}, args: [] });
    if (rest) conf.load(rest as Partial<C>);
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    return { ok: false, problems: [...mapProblems, ...convictProblems(err, source, prefix)] };
  }
  if (mapProblems.length) return { ok: false, problems: mapProblems };
  const config = { ...(conf.getProperties() as object), ...maps } as C;
  const problems = (schema.validate?.(config) ?? []).map((p) => ({ source, path: join(prefix, p.path), message: p.message }));
  if (problems.length) return { ok: false, problems };
  return { ok: true, config: deepFreeze(config), secrets: collectSecrets(schema.definition, config) };
}

/**
 * A secret and the parts of it that can be echoed back alone: the credential after an
 * `Authorization`-style scheme (`Bearer x`, `Basic x`), and a Basic credential's decoded
 * `user:password` and password. An endpoint that answers "invalid token x" must not print x.
 */
export function secretForms(value: string): string[] {
  const out = [value];
  const m = /^\s*([A-Za-z][\w.-]*)\s+(\S+)\s*$/.exec(value);
  if (m) {
    const cred = m[2] as string;
    out.push(cred);
    if ((m[1] as string).toLowerCase() === 'basic') {
      const decoded = Buffer.from(cred, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0 && decoded.isWellFormed()) out.push(decoded, decoded.slice(colon + 1));
    }
  }
  return out;
}

/** Walks the schema and returns the values of every `secret`-format key. */
function collectSecrets(def: unknown, value: unknown): string[] {
  const out: string[] = [];
  if (!def || typeof def !== 'object' || !value || typeof value !== 'object') return out;
  for (const [k, d] of Object.entries(def as Record<string, unknown>)) {
    const v = (value as Record<string, unknown>)[k];
    if (d && typeof d === 'object' && 'format' in d) {
      if ((d as { format: unknown }).format === SECRET_FORMAT && typeof v === 'string' && v) out.push(...secretForms(v));
      if ((d as { sensitive?: boolean }).sensitive && v && typeof v === 'object') {
        for (const x of Object.values(v)) if (typeof x === 'string' && x) out.push(...secretForms(x));
      }
      // Credentials written into a URL (userinfo, query values) are secrets too.
      if (typeof v === 'string' && /^https?:\/\//i.test(v) && URL.canParse(v)) {
        const u = new URL(v);
        if (u.password) out.push(decodeURIComponent(u.password));
        if (u.username && u.password) out.push(decodeURIComponent(u.username));
        for (const [, q] of u.searchParams) if (q.length >= 8) out.push(q);
      }
    } else {
      out.push(...collectSecrets(d, v));
    }
  }
  return out;
}

/** Replaces secret-format values with `[REDACTED]` for printing (`/debug`, `validate`). */
export function redactConfig<C>(schema: ConfigSchema<C>, config: C): unknown {
  const walk = (def: unknown, value: unknown): unknown => {
    if (!def || typeof def !== 'object' || !value || typeof value !== 'object' || Array.isArray(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const d = (def as Record<string, unknown>)[k];
      if (d && typeof d === 'object' && 'format' in d) {
        const isSecret = (d as { format: unknown }).format === SECRET_FORMAT || (d as { sensitive?: boolean }).sensitive;
        out[k] = isSecret && v !== '' && v != null ? '[REDACTED]' : typeof v === 'string' ? printableUrl(v) : v;
      } else {
        out[k] = walk(d, v);
      }
    }
    return out;
  };
  return walk(schema.definition, config);
}

/** A URL as it may be printed: userinfo and query values replaced by [REDACTED]. */
export function printableUrl(v: string): string {
  if (!/^https?:\/\//i.test(v) || !URL.canParse(v)) return v;
  const u = new URL(v);
  if (!u.username && !u.password && !u.search) return v;
  if (u.username) u.username = 'REDACTED';
  if (u.password) u.password = 'REDACTED';
  for (const k of [...u.searchParams.keys()]) u.searchParams.set(k, 'REDACTED');
  return u.toString();
}

export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
