/**
 * Secrets in every printout, from the hostile review: a credential echoed back alone (the part
 * after `Bearer `), credentials inside URLs, rotating tokens that must not pile up in the
 * redactor, and short "tokens" that must not rename health fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { startTsmetrics } from '../src/app.ts';
import { printableUrl, secretForms } from '../src/config/schema.ts';
import { Redactor } from '../src/log/logger.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { http, waitFor } from './helpers/index.ts';
import { tempDir } from './helpers/system.ts';

test('an OTLP endpoint that echoes the bearer credential alone, and credentials in the endpoint URL, never reach a printout', async (t) => {
  const token = 'otlp-SECRET-token-123';
  const urlPass = 'URLPASS-9f8e7d';
  const otlp = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(401, `invalid token ${token}`, { 'content-type': 'text/plain' });
      res.end(`invalid token ${token}`);
    });
  });
  await new Promise<void>((r) => otlp.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => otlp.close(() => r())));
  const sim = new TailnetSimulator({ devices: 3 });
  await sim.start();
  t.after(() => sim.stop());
  const dir = tempDir('tsmetrics-secrets-');
  t.after(() => dir.remove());
  const file = join(dir.path, 'p.yaml');
  const endpoint = `http://user:${urlPass}@127.0.0.1:${(otlp.address() as AddressInfo).port}/v1/metrics?token=querysecret-123`;
  writeFileSync(
    file,
    `receivers:\n  tailscale_api:\n    api_url: ${sim.apiUrl}\n    api_key: \${env:TS_API_KEY}\n    interval: 1h\nexporters:\n  prometheus: {}\n  otlp:\n    endpoint: "${endpoint}"\n    headers: { authorization: "Bearer ${token}" }\n    timeout: 2s\nservice:\n  pipelines:\n    metrics: { receivers: [tailscale_api], exporters: [prometheus, otlp] }\n`,
  );
  const lines: string[] = [];
  const running = await startTsmetrics({ env: { TS_API_KEY: sim.apiKeys[0] as string, LOG_LEVEL: 'debug' }, configFile: file, port: 0, write: (l) => lines.push(l) });
  t.after(() => running.stop(AbortSignal.timeout(3000)));
  await running.service.collectNow();
  await waitFor(() => lines.some((l) => l.includes('OTLP export failed')), 10_000);
  const debug = (await http(`${running.url}/debug`)).body;
  const everything = [...lines, debug, (await http(`${running.url}/health`)).body].join('\n');
  for (const s of [token, urlPass, 'querysecret-123']) assert.ok(!everything.includes(s), `${s} is never printed`);
  // The echo did reach the log — scrubbed.
  assert.ok(lines.some((l) => l.includes('OTLP export failed') && l.includes('[REDACTED]')), lines.filter((l) => l.includes('OTLP')).join('\n'));
  assert.match(debug, /REDACTED/);
});

test('the redactor: rotating secrets replace each other by slot, short values are ignored, derived forms are registered', () => {
  const r = new Redactor();
  r.add('first-access-token-aaaaaaaa', 'oauth');
  r.add('second-access-token-bbbbbbbb', 'oauth');
  assert.equal(r.size, 1, 'a renewed token replaces the old one');
  assert.equal(r.scrub('x second-access-token-bbbbbbbb y'), 'x [REDACTED] y');
  r.add('status');
  assert.equal(r.scrub('{"status":"healthy"}'), '{"status":"healthy"}', 'a word-sized value is not a secret');
  assert.deepEqual(secretForms('Bearer abc.def-123'), ['Bearer abc.def-123', 'abc.def-123']);
  const basic = `Basic ${Buffer.from('alice:s3cr3t-pass').toString('base64')}`;
  assert.deepEqual(secretForms(basic).slice(1), [Buffer.from('alice:s3cr3t-pass').toString('base64'), 'alice:s3cr3t-pass', 's3cr3t-pass']);
  assert.equal(printableUrl('https://u:p@collector:4318/v1/metrics?token=abc'), 'https://REDACTED:REDACTED@collector:4318/v1/metrics?token=REDACTED');
  assert.equal(printableUrl('http://collector:4318/v1/metrics'), 'http://collector:4318/v1/metrics');
});
