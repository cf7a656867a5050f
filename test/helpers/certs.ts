import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A self-signed certificate and its key, as files and as bytes. */
export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/**
 * Self-signed P-256 certificates made with `openssl` for this test only (valid one day, for
 * 127.0.0.1), in a directory removed when the test ends.
 */
export function selfSignedCerts(t: TestContext, names: readonly string[]): Record<string, TestCert> {
  const dir = mkdtempSync(join(tmpdir(), 'tsm-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out: Record<string, TestCert> = {};
  for (const name of names) {
    const certFile = join(dir, `${name}.crt`);
    const keyFile = join(dir, `${name}.key`);
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    out[name] = { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
  }
  return out;
}
