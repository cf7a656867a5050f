/**
 * Secrets read from files (`TS_API_KEY_FILE`, `api_key_file`, a projected service-account token
 * …), as Kubernetes and systemd credentials hand them over. A file is read when the
 * configuration is loaded, so a missing or unreadable one stops the start (exit 2) naming the
 * file; the components that renew credentials read theirs again on every renewal, so a rotated
 * file takes effect without a restart. Contents are never logged: only the path and the reason.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ErrorCode, TsmetricsError, type ConfigProblem } from '../errors.ts';

/** Largest secret file accepted (a projected service-account JWT is a few KiB). */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** A secret file could not be used; `file` names it, the message never holds its contents. */
export class SecretFileError extends TsmetricsError {
  readonly file: string;
  constructor(file: string, reason: string) {
    super(ErrorCode.SECRET_FILE, `cannot use secret file ${file}: ${reason}`);
    this.name = 'SecretFileError';
    this.file = file;
  }
}

/**
 * Reads a secret from `path`: at most {@link MAX_SECRET_FILE_BYTES}, UTF-8, surrounding
 * whitespace (the newline an editor or `echo` adds) removed. Throws {@link SecretFileError} when
 * the file is missing, unreadable, not a regular file, too large or empty.
 */
export function readSecretFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SecretFileError(path, reasonOf(err));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new SecretFileError(path, 'not a regular file');
    // One byte more than allowed tells "too large" apart from "exactly the limit"; the size from
    // stat is not trusted (a file can grow while it is read).
    const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > MAX_SECRET_FILE_BYTES) throw new SecretFileError(path, `larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    }
    const text = buf.subarray(0, n).toString('utf8').trim();
    if (!text) throw new SecretFileError(path, 'is empty');
    return text;
  } catch (err) {
    if (err instanceof SecretFileError) throw err;
    throw new SecretFileError(path, reasonOf(err));
  } finally {
    closeSync(fd);
  }
}

function reasonOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

/** The environment variables whose value may come from `<NAME>_FILE` instead. */
export const FILE_BACKED_VARIABLES = ['TS_API_KEY', 'OAUTH_TOKEN', 'OAUTH_CLIENT_SECRET', 'METRICS_TOKEN', 'TS_AUTHKEY', 'OTEL_EXPORTER_OTLP_HEADERS'] as const;

/**
 * Fills `<NAME>` from the file `<NAME>_FILE` names, for every {@link FILE_BACKED_VARIABLES}
 * entry, in place. Setting both is a problem (which one would win is not obvious), and so is a
 * file that cannot be read; every problem names the variable and the file.
 */
export function applySecretFiles(env: Record<string, string>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const name of FILE_BACKED_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) {
      problems.push({ source: 'env', path: `${name}_FILE`, message: `set either ${name} or ${name}_FILE, not both` });
      continue;
    }
    try {
      env[name] = readSecretFile(file);
    } catch (err) {
      problems.push({ source: 'env', path: `${name}_FILE`, message: err instanceof SecretFileError ? err.message : String(err) });
    }
  }
  return problems;
}

/** Checks that `file` can be read as a secret; returns the problem message, if any. */
export function secretFileProblem(file: string): string | undefined {
  try {
    readSecretFile(file);
    return undefined;
  } catch (err) {
    return err instanceof SecretFileError ? err.message : String(err);
  }
}

/** The service settings that may come from files (`service.http.metrics_token_file`, `service.tsnet.auth_key_file`). */
interface FileBackedService {
  readonly http: { readonly metrics_token: string; readonly metrics_token_file: string };
  readonly tsnet: { readonly auth_key: string; readonly auth_key_file: string };
}

/**
 * Reads `service.http.metrics_token_file` and `service.tsnet.auth_key_file` into the settings
 * they stand for (read once, at start). Returns the filled settings (frozen like the input), the
 * values read (for the redactor) and the problems, which name the key and the file.
 */
export function serviceSecretFiles<T extends FileBackedService>(svc: T, source: string): { service: T; secrets: string[]; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const secrets: string[] = [];
  const fill = (value: string, file: string, key: string, fileKey: string): string => {
    if (!file) return value;
    if (value) {
      problems.push({ source, path: fileKey, message: `set either ${key} or ${fileKey}, not both` });
      return value;
    }
    try {
      const v = readSecretFile(file);
      secrets.push(v);
      return v;
    } catch (err) {
      problems.push({ source, path: fileKey, message: err instanceof SecretFileError ? err.message : String(err) });
      return value;
    }
  };
  const token = fill(svc.http.metrics_token, svc.http.metrics_token_file, 'service.http.metrics_token', 'service.http.metrics_token_file');
  const authKey = fill(svc.tsnet.auth_key, svc.tsnet.auth_key_file, 'service.tsnet.auth_key', 'service.tsnet.auth_key_file');
  if (token === svc.http.metrics_token && authKey === svc.tsnet.auth_key) return { service: svc, secrets, problems };
  const service = { ...svc, http: Object.freeze({ ...svc.http, metrics_token: token }), tsnet: Object.freeze({ ...svc.tsnet, auth_key: authKey }) };
  return { service: Object.freeze(service), secrets, problems };
}
