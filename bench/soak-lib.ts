import { readdirSync, readlinkSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
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
 * Heap in use after a full GC, without the code space: compiled code comes and goes as V8
 * optimises and deoptimises (a few MB either way on a 40 MB heap) and says nothing about data
 * the pipeline keeps.
 */
function dataHeapBytes(): number {
  let n = 0;
  for (const s of getHeapSpaceStatistics()) if (s.space_name !== 'code_space' && s.space_name !== 'code_large_object_space') n += s.space_used_size;
  return n;
}

/** Cycles sampled before each checkpoint; a checkpoint's heap is the least of them. */
const WINDOW = 10;

/**
 * Runs the default pipeline against the simulator for `cycles` cycles with 20 % of the devices
 * replaced every cycle and faults switched on and off; samples heap (after GC), live series and
 * open sockets at `from` and at the end. The heap at a checkpoint is the smallest of the
 * WINDOW cycles before it (each after a compacting GC): one plain-GC sample swung between 33
 * and 43 MB across identical runs, while a leak raises every sample of the later window.
 */
export async function runSoak(opts: { cycles: number; from: number; devices: number; log?: (s: string) => void }): Promise<SoakResult> {
  const gc = (globalThis as { gc?: (o?: { execution: 'sync'; flavor: 'last-resort' }) => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const sim = new TailnetSimulator({ devices: opts.devices, exporterShare: 1, ephemeralLifetimeMs: 0, seed: 5 });
  await sim.start();
  const registry = defaultRegistry();
  const config = loadConfig({ ...sim.env(), SCRAPE_INTERVAL: '30s', CLIENT_METRICS_TIMEOUT: '500ms', LOG_LEVEL: 'error', MAX_CONCURRENT_SCRAPES: '50' }, { registry });
  const service = new PipelineService(registry, config);
  const exp = service.exporters.get('prometheus') as PrometheusExporterComponent;
  const samples: SoakSample[] = [];
  let windowMin = Infinity;
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
      const checkpoint = cycle === opts.from || cycle === opts.cycles || cycle % 100 === 0;
      const inWindow = (cycle > opts.from - WINDOW && cycle <= opts.from) || cycle > opts.cycles - WINDOW;
      if (checkpoint || inWindow) {
        // The last-resort flavour compacts every page: a plain full GC leaves fragments counted as used.
        gc({ execution: 'sync', flavor: 'last-resort' });
        await new Promise((r) => setTimeout(r, 20));
        gc({ execution: 'sync', flavor: 'last-resort' });
        windowMin = Math.min(windowMin, dataHeapBytes());
      }
      if (checkpoint) {
        const snap = exp.snapshot();
        const s: SoakSample = { cycle, heapBytes: windowMin, liveSeries: snap ? countPoints(snap) : 0, sockets: openSockets() };
        samples.push(s);
        windowMin = Infinity;
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
