import { readdirSync, readlinkSync } from 'node:fs';
import { defaultRegistry } from '../src/components.ts';
import { loadConfig } from '../src/app.ts';
import { PipelineService } from '../src/pipeline/service.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import type { PrometheusExporterComponent } from '../exporters/prometheus/prometheus.ts';
import { countPoints } from '../src/model/batch.ts';

export interface SoakSample {
  cycle: number;
  heapBytes: number;
  liveSeries: number;
  sockets: number;
}

export interface SoakResult {
  samples: SoakSample[];
  first: SoakSample;
  last: SoakSample;
  heapGrowth: number;
  seriesGrowth: number;
  socketGrowth: number;
}

function openSockets(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/**
 * Runs the default pipeline against the simulator for `cycles` cycles with 20 % of the devices
 * replaced every cycle and faults switched on and off; samples heap (after GC), live series and
 * open sockets at `from` and at the end.
 */
export async function runSoak(opts: { cycles: number; from: number; devices: number; log?: (s: string) => void }): Promise<SoakResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const sim = new TailnetSimulator({ devices: opts.devices, exporterShare: 1, ephemeralLifetimeMs: 0, seed: 5 });
  await sim.start();
  const registry = defaultRegistry();
  const config = loadConfig({ ...sim.env(), SCRAPE_INTERVAL: '30s', CLIENT_METRICS_TIMEOUT: '500ms', LOG_LEVEL: 'error', MAX_CONCURRENT_SCRAPES: '50' }, { registry });
  const service = new PipelineService(registry, config);
  const exp = service.exporters.get('prometheus') as PrometheusExporterComponent;
  const samples: SoakSample[] = [];
  try {
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      sim.churn(0.2);
      // Faults come and go: every 10 cycles a different set of devices misbehaves for 5 cycles.
      const on = cycle % 10 < 5;
      sim.devices.forEach((d, i) => {
        if (i % 9 !== cycle % 9) return sim.setDeviceFault(d.api.id, undefined);
        const kinds = [{ kind: 'status', status: 500 }, { kind: 'garbage' }, { kind: 'reset' }, { kind: 'invalid_utf8' }] as const;
        sim.setDeviceFault(d.api.id, on ? kinds[cycle % kinds.length] : undefined);
      });
      // The API fails for 5 of every 50 cycles (a decode error: no retry delays in the soak).
      sim.setApiFault(cycle % 50 >= 20 && cycle % 50 < 25 ? { kind: 'body', body: '{"devices": [' } : undefined);
      await service.collectNow();
      await exp.render(); // a Prometheus scrape
      if (cycle === opts.from || cycle === opts.cycles || cycle % 100 === 0) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
        gc();
        const snap = exp.snapshot();
        const s: SoakSample = { cycle, heapBytes: process.memoryUsage().heapUsed, liveSeries: snap ? countPoints(snap) : 0, sockets: openSockets() };
        samples.push(s);
        opts.log?.(`cycle ${cycle}: heap ${(s.heapBytes / 1e6).toFixed(1)} MB, live series ${s.liveSeries}, sockets ${s.sockets}`);
      }
    }
  } finally {
    await service.shutdown(AbortSignal.timeout(5000));
    await sim.stop();
  }
  const first = samples.find((s) => s.cycle === opts.from) as SoakSample;
  const last = samples[samples.length - 1] as SoakSample;
  return {
    samples,
    first,
    last,
    heapGrowth: last.heapBytes / first.heapBytes - 1,
    seriesGrowth: last.liveSeries / first.liveSeries - 1,
    socketGrowth: last.sockets / first.sockets - 1,
  };
}
