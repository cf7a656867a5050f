import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { TailnetSimulator } from '../../src/simulator/simulator.ts';
import { ConfigError } from '../../src/errors.ts';
import type { OtlpExporterComponent } from './otlp.ts';
import { buildService, memoryLogger } from '../../test/helpers/index.ts';
import { selfSignedCerts } from '../../test/helpers/certs.ts';
import { decodeProtobuf, type WireRequest } from '../../test/helpers/otlp-receiver.ts';
import { OtlpGrpcReceiver } from '../../test/helpers/otlp-grpc-receiver.ts';

/** One cycle of an API-only pipeline through `otlp`; what the exporter delivered and logged. */
async function deliver(t: TestContext, otlp: Record<string, unknown>) {
  const sim = new TailnetSimulator({ devices: 4, deviceServers: false });
  await sim.start();
  const log = memoryLogger();
  const service = buildService(
    {
      receivers: { tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' } },
      exporters: { otlp: { timeout: '2s', ...otlp } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['otlp'] } } },
    },
    { logger: log.logger },
  );
  t.after(async () => {
    await service.shutdown(AbortSignal.timeout(2000));
    await sim.stop();
  });
  const exporter = service.exporters.get('otlp') as OtlpExporterComponent;
  await service.collectNow();
  await exporter.flush();
  return { stats: exporter.stats, lines: log.lines };
}

async function grpcReceiver(t: TestContext, tls?: { key: Buffer; cert: Buffer; clientCa?: Buffer }): Promise<OtlpGrpcReceiver> {
  const rx = new OtlpGrpcReceiver();
  await rx.start(tls ? { tls } : {});
  t.after(() => rx.stop());
  return rx;
}

test('OTLP/gRPC over TLS: a CA file makes a self-signed endpoint trusted; without it the batch is refused and counted', async (t) => {
  const { server } = selfSignedCerts(t, ['server']);
  assert.ok(server);
  const rx = await grpcReceiver(t, { key: server.key, cert: server.cert });
  assert.match(rx.url, /^https:/);
  const trusted = await deliver(t, { protocol: 'grpc', endpoint: rx.url, tls: { ca_file: server.certFile } });
  assert.deepEqual({ sent: trusted.stats.sentBatches, dropped: trusted.stats.droppedBatches }, { sent: 1, dropped: 0 });
  assert.ok(rx.points('tailscale_device_online').length > 0, 'the points arrived through TLS');
  const untrusted = await deliver(t, { protocol: 'grpc', endpoint: rx.url });
  assert.deepEqual({ sent: untrusted.stats.sentBatches, dropped: untrusted.stats.droppedBatches }, { sent: 0, dropped: 1 });
  assert.equal(rx.requests.length, 1, 'nothing reached the server without trust');
  assert.ok(untrusted.lines.some((l) => l.includes('OTLP export failed')));
});

test('OTLP/gRPC mutual TLS: the client certificate and key are presented; a server that requires one refuses a client without', async (t) => {
  const { server, client } = selfSignedCerts(t, ['server', 'client']);
  assert.ok(server && client);
  const rx = await grpcReceiver(t, { key: server.key, cert: server.cert, clientCa: client.cert });
  const withCert = await deliver(t, { protocol: 'grpc', endpoint: rx.url, tls: { ca_file: server.certFile, cert_file: client.certFile, key_file: client.keyFile } });
  assert.equal(withCert.stats.sentBatches, 1);
  const without = await deliver(t, { protocol: 'grpc', endpoint: rx.url, tls: { ca_file: server.certFile } });
  assert.deepEqual({ sent: without.stats.sentBatches, dropped: without.stats.droppedBatches }, { sent: 0, dropped: 1 });
  assert.equal(rx.requests.length, 1);
});

test('OTLP/gRPC scheme-less endpoint: TLS unless tls.insecure says plaintext (the specification’s OTEL_EXPORTER_OTLP_INSECURE rule)', async (t) => {
  const rx = await grpcReceiver(t);
  const plaintext = await deliver(t, { protocol: 'grpc', endpoint: rx.address, tls: { insecure: true } });
  assert.equal(plaintext.stats.sentBatches, 1);
  const tls = await deliver(t, { protocol: 'grpc', endpoint: rx.address });
  assert.deepEqual({ sent: tls.stats.sentBatches, dropped: tls.stats.droppedBatches }, { sent: 0, dropped: 1 }, 'a TLS handshake with a plaintext server fails');
  assert.equal(rx.requests.length, 1);
});

test('OTLP/HTTP over TLS uses the same files: a self-signed https endpoint with its CA and a required client certificate', async (t) => {
  const { server, client } = selfSignedCerts(t, ['server', 'client']);
  assert.ok(server && client);
  const requests: WireRequest[] = [];
  const https = createServer({ key: server.key, cert: server.cert, ca: client.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ contentType: String(req.headers['content-type']), encoding: '', headers: req.headers, ...decodeProtobuf(Buffer.concat(chunks)) });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => https.close(() => r())));
  https.on('connection', (s) => t.after(() => s.destroy()));
  const url = `https://127.0.0.1:${(https.address() as AddressInfo).port}/v1/metrics`;
  const ok = await deliver(t, { endpoint: url, tls: { ca_file: server.certFile, cert_file: client.certFile, key_file: client.keyFile } });
  assert.equal(ok.stats.sentBatches, 1);
  assert.equal(requests[0]?.resource['service.name'], 'tsmetrics');
  const noClientCert = await deliver(t, { endpoint: url, tls: { ca_file: server.certFile } });
  assert.equal(noClientCert.stats.droppedBatches, 1);
  assert.equal(requests.length, 1);
});

test('TLS files are checked with the configuration: a missing or non-PEM file, or a key without its certificate, stops the start naming the key', async (t) => {
  const { server } = selfSignedCerts(t, ['server']);
  assert.ok(server);
  const build = (tls: Record<string, unknown>) => () =>
    buildService({
      receivers: { tailscale_api: { api_key: 'tskey-api-x' } },
      exporters: { otlp: { protocol: 'grpc', endpoint: 'http://127.0.0.1:4317', tls } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api'], exporters: ['otlp'] } } },
    });
  const problems = (fn: () => unknown): string[] => {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
      throw err;
    }
    return [];
  };
  assert.deepEqual(problems(build({ ca_file: '/nonexistent/ca.pem' })), ['exporters.otlp.tls.ca_file: cannot read /nonexistent/ca.pem: no such file']);
  assert.deepEqual(problems(build({ ca_file: server.keyFile.replace(/\.key$/, '.crt'), cert_file: server.certFile })), ['exporters.otlp.tls.key_file: mutual TLS needs both cert_file and key_file']);
  const text = join(dirname(server.certFile), 'not.pem');
  writeFileSync(text, 'just text\n');
  assert.deepEqual(problems(build({ ca_file: text })), [`exporters.otlp.tls.ca_file: cannot use ${text}: not a PEM file`]);
});
