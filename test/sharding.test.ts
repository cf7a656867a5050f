import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/app.ts';
import { defaultRegistry } from '../src/components.ts';
import { PipelineService } from '../src/pipeline/service.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { families, memoryLogger, renderPrometheus } from './helpers/index.ts';

test('three shards over the simulator: every device is scraped by exactly one shard; API metrics come from shard 0', async (t) => {
  const sim = new TailnetSimulator({ devices: 60, exporterShare: 1, ephemeralLifetimeMs: 0 });
  await sim.start();
  t.after(() => sim.stop());
  const shards = [0, 1, 2].map((i) => {
    const env = { ...sim.env(), SHARD_COUNT: '3', SHARD_INDEX: String(i), SCRAPE_INTERVAL: '1h' };
    const registry = defaultRegistry();
    return new PipelineService(registry, loadConfig(env, { registry }), { logger: memoryLogger().logger });
  });
  t.after(() => Promise.all(shards.map((s) => s.shutdown(AbortSignal.timeout(2000)))));
  for (const s of shards) await s.collectNow();

  const scrapedBy = new Map<string, number[]>();
  const texts: string[] = [];
  for (const [i, s] of shards.entries()) {
    const text = await renderPrometheus(s);
    texts.push(text);
    for (const sample of families(text).get('tsmetrics_device_scrape_up')?.samples ?? []) {
      const id = sample.labels.device_id as string;
      scrapedBy.set(id, [...(scrapedBy.get(id) ?? []), i]);
    }
  }
  const targets = sim.apiDevices().filter((d) => d.connectedToControl && d.authorized && !d.isExternal && (d.tags as string[] | undefined)?.includes('tag:exporter'));
  assert.equal(scrapedBy.size, targets.length, 'every target is covered');
  for (const [id, by] of scrapedBy) assert.equal(by.length, 1, `device ${id} scraped by shards ${by.join(',')}`);
  // The simulator saw exactly one request per target device in total.
  for (const d of targets) assert.equal(sim.stats.deviceRequests.get(d.id), 1);
  // Load is spread over the shards.
  const perShard = [0, 1, 2].map((i) => [...scrapedBy.values()].filter((b) => b[0] === i).length);
  assert.ok(perShard.every((n) => n > 0), `per-shard targets: ${perShard.join(', ')}`);
  // API metadata is exported by shard 0 only (every replica still reads the inventory).
  assert.ok(families(texts[0] as string).has('tailscale_device_info'));
  assert.ok(!families(texts[1] as string).has('tailscale_device_info'));
  assert.ok(!families(texts[2] as string).has('tailscale_device_info'));
});

test('SHARD_INDEX outside SHARD_COUNT is a config error', () => {
  assert.throws(() => loadConfig({ TS_API_KEY: 'tskey-api-abcdef', SHARD_COUNT: '2', SHARD_INDEX: '2' }), /SHARD_INDEX: must be below SHARD_COUNT \(2\)/);
});
