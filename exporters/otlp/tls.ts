/**
 * TLS material of the OTLP exporter (CA bundle, client certificate and key), read once when the
 * exporter is built. Files are checked while the configuration is validated, so a missing or
 * unreadable one stops the start naming the key and the file; their contents never appear in a
 * message.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ErrorCode, TsmetricsError } from '../../src/errors.ts';

/** Largest PEM file accepted: a system CA bundle is about 200 KiB. */
export const MAX_PEM_FILE_BYTES = 1024 * 1024;

/** What the transports need; undefined fields mean the platform default. */
export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** Reads one PEM file, at most {@link MAX_PEM_FILE_BYTES}; throws a TsmetricsError naming the file. */
export function readPemFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new TsmetricsError(ErrorCode.TLS_FILE, `cannot read ${path}: ${reason(err)}`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new TsmetricsError(ErrorCode.TLS_FILE, `cannot read ${path}: not a regular file`);
    // One byte more than allowed tells "too large" apart from "exactly the limit"; the size from
    // stat is not trusted (the file can grow while it is read).
    const buf = Buffer.alloc(MAX_PEM_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > MAX_PEM_FILE_BYTES) throw new TsmetricsError(ErrorCode.TLS_FILE, `cannot read ${path}: larger than ${MAX_PEM_FILE_BYTES} bytes`);
    }
    const pem = buf.subarray(0, n);
    if (!pem.includes('-----BEGIN ')) throw new TsmetricsError(ErrorCode.TLS_FILE, `cannot use ${path}: not a PEM file`);
    return Buffer.from(pem);
  } catch (err) {
    if (err instanceof TsmetricsError) throw err;
    throw new TsmetricsError(ErrorCode.TLS_FILE, `cannot read ${path}: ${reason(err)}`);
  } finally {
    closeSync(fd);
  }
}

/** Why `path` cannot be used as a PEM file, or undefined when it can (config validation). */
export function pemFileProblem(path: string): string | undefined {
  try {
    readPemFile(path);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Reads the configured files; nothing configured gives undefined (the platform's trust store). */
export function loadTls(files: { ca_file: string; cert_file: string; key_file: string }): TlsMaterial | undefined {
  if (!files.ca_file && !files.cert_file && !files.key_file) return undefined;
  return {
    ...(files.ca_file ? { ca: readPemFile(files.ca_file) } : {}),
    ...(files.cert_file ? { cert: readPemFile(files.cert_file) } : {}),
    ...(files.key_file ? { key: readPemFile(files.key_file) } : {}),
  };
}

function reason(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return err instanceof Error ? err.message : String(err);
}
