// `e2e_10k_devices`: the product as it ships, measured from outside. The simulator serves N
// devices from its own process; tsmetrics runs as its own process (the CLI, env-built pipeline),
// and this harness reads the process's RSS and CPU time from /proc while it scrapes every
// interval. Cycles are counted through /health, which costs next to nothing to serve. With
// `scrape`, the harness also scrapes `/metrics` once per interval as Prometheus 2 asks for it
// (OpenMetrics, gzip), so the figure includes what serving the page costs.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { simulatorProcess } from './lib.ts';

const CLK_TCK = 100; // Linux USER_HZ, the unit of utime/stime in /proc/<pid>/stat.
/** What Prometheus 2 sends: OpenMetrics first, the 0.0.4 text as the fallback. */
const PROMETHEUS_2_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

function rssBytes(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

async function deviceCycles(url: string): Promise<number> {
  const res = await fetch(`${url}/health`);
  const doc = (await res.json()) as { sources?: Record<string, { cycles?: number }> };
  return doc.sources?.device_metrics?.cycles ?? 0;
}

export interface E2eFigure {
  devices: number;
  intervalMs: number;
  cycles: number;
  cpuMsPerCycle: number;
  rssBytes: number;
  peakRssBytes: number;
}

/** Runs tsmetrics against `devices` simulated devices for `cycles` measured cycles after two warm-up ones. */
export async function e2eDevices(devices: number, cycles: number, intervalMs: number, opts: { scrape?: boolean } = {}): Promise<E2eFigure> {
  // One device server per device, each keeping its scraper's connection open (as tailscaled's
  // does): a single process serving 10,000 of them needs over 20,000 open files, this machine's
  // limit (`ulimit -n`), and then stops accepting. Spread over processes of 5,000 devices each.
  const sim = await simulatorProcess({ devices, uniform: true, shards: Math.max(1, Math.ceil(devices / 5000)) });
  const port = await freePort();
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, [main, 'run'], {
    env: { PATH: process.env.PATH ?? '', ...sim.env, PORT: String(port), BIND_HOST: '127.0.0.1', SCRAPE_INTERVAL: `${intervalMs}ms`, LOG_LEVEL: 'error', MAX_CONCURRENT_SCRAPES: '100' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const pid = child.pid as number;
  let scraping = opts.scrape === true;
  let scraper: Promise<void> | undefined;
  try {
    const waitFor = async (n: number): Promise<void> => {
      const limit = Date.now() + intervalMs * (n + 4) + 60_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`tsmetrics exited with ${child.exitCode}`);
        const c = await deviceCycles(url).catch(() => 0);
        if (c >= n) return;
        if (Date.now() > limit) throw new Error(`only ${c} of ${n} device cycles completed`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await waitFor(2);
    scraper = (async () => {
      while (scraping) {
        const t0 = Date.now();
        const res = await fetch(`${url}/metrics`, { headers: { accept: PROMETHEUS_2_ACCEPT, 'accept-encoding': 'gzip' } });
        if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
        await res.arrayBuffer();
        await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - t0))));
      }
    })();
    // Handled here so a failed scrape cannot crash the harness before it is awaited below.
    scraper.catch(() => undefined);
    const c0 = cpuSeconds(pid);
    const n0 = await deviceCycles(url);
    await waitFor(n0 + cycles);
    const cpu = cpuSeconds(pid) - c0;
    const mem = rssBytes(pid);
    scraping = false;
    await scraper;
    return { devices, intervalMs, cycles, cpuMsPerCycle: (cpu * 1000) / cycles, rssBytes: mem.rss, peakRssBytes: mem.peak };
  } finally {
    // On the way out after a failure the scraper stops too; its own error is not the one to report.
    scraping = false;
    await scraper?.catch(() => undefined);
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    await sim.stop();
  }
}
