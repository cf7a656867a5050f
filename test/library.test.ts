import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
// The package as a consumer sees it: resolved through package.json "exports" (the built dist/).
import { PipelineService, TailnetSimulator, defaultRegistry, defineSchema, mapMetrics, resolveConfig, type ProcessorFactory } from 'tsmetrics';
import { OtlpReceiver } from './helpers/otlp-receiver.ts';
import { families, http, sampleValue } from './helpers/index.ts';

test('embedding: a custom processor and both exporters inside another Node service', async (t) => {
  const sim = new TailnetSimulator({ devices: 8 });
  await sim.start();
  const otlp = new OtlpReceiver();
  await otlp.start();

  // This is the README's embedding example.
  interface StampConfig {
    label: string;
    value: string;
  }
  const stamp: ProcessorFactory<StampConfig> = {
    kind: 'processor',
    type: 'stamp',
    stability: 'development',
    description: 'Adds one fixed label to every data point.',
    configSchema: defineSchema<StampConfig>({
      label: { doc: 'Label name.', format: String, default: 'env' },
      value: { doc: 'Label value.', format: String, default: 'prod' },
    }),
    createProcessor: (_settings, cfg) => ({
      async start() {},
      async shutdown() {},
      process: (batch) =>
        mapMetrics(batch, (m) => ({ ...m, dataPoints: m.dataPoints.map((p) => ({ ...p, attributes: { ...p.attributes, [cfg.label]: cfg.value } })) }) as typeof m),
    }),
  };
  const registry = defaultRegistry([stamp]);
  const config = resolveConfig(
    {
      receivers: {
        tailscale_api: { api_url: sim.apiUrl, api_key: sim.apiKeys[0], interval: '1h' },
        device_metrics: { port: sim.devicePort, allowed_cidrs: ['127.0.0.0/8'], interval: '1h' },
      },
      processors: { stamp: { value: 'staging' } },
      exporters: { prometheus: {}, otlp: { endpoint: otlp.url } },
      service: { pipelines: { metrics: { receivers: ['tailscale_api', 'device_metrics'], processors: ['stamp'], exporters: ['prometheus', 'otlp'] } } },
    },
    registry,
    'embedded',
  );
  const pipeline = new PipelineService(registry, config);
  // The host service owns its HTTP server and mounts tsmetrics' /metrics on it.
  const route = pipeline.routes().find((r) => r.path === '/metrics');
  assert.ok(route);
  const server = createServer((req, res) => {
    if (req.url === '/metrics') void route.handle(req, res);
    else res.writeHead(200).end('host service\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(async () => {
    await pipeline.shutdown(AbortSignal.timeout(3000));
    server.close();
    await otlp.stop();
    await sim.stop();
  });
  await pipeline.start();
  await pipeline.collectNow();

  const port = (server.address() as AddressInfo).port;
  const f = families((await http(`http://127.0.0.1:${port}/metrics`)).body);
  await pipeline.shutdown(AbortSignal.timeout(5000)); // flushes OTLP
  assert.equal(sampleValue(f, 'tailscale_device_online', { device_id: sim.devices[0]?.api.id as string, env: 'staging' }), 1);
  assert.ok(f.get('tailscaled_inbound_bytes_total')?.samples.every((s) => s.labels.env === 'staging'));
  const pushed = otlp.points('tailscaled_inbound_bytes_total');
  assert.ok(pushed.length > 0, 'OTLP received the client metrics');
  assert.ok(pushed.every((p) => p.attributes.env === 'staging'));
});
