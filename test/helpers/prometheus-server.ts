import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { http, waitFor } from './index.ts';
import { freePort, requireTool, stopChild, tempDir } from './system.ts';

export interface PrometheusServer {
  /** Base of the HTTP API, `http://127.0.0.1:<port>/api/v1`. */
  api: string;
  /** Everything Prometheus wrote to stderr so far. */
  log: () => string;
  /** An instant query's result vector. */
  query: (q: string) => Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
}

/**
 * Starts Prometheus on a port the kernel reported free; if another process takes the port in
 * the moment between, Prometheus exits with "address already in use" and is started again on a
 * new one (at most three times).
 */
export async function startPrometheus(t: TestContext, dir: string, cfg: string): Promise<PrometheusServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const prom = spawn('prometheus', [`--config.file=${cfg}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let spawnError: Error | undefined;
    prom.on('error', (err) => (spawnError = err));
    prom.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const base = `http://127.0.0.1:${port}`;
    const state = await waitFor(
      async () => {
        if (spawnError) throw new Error(`prometheus could not be started: ${spawnError.message}`);
        if (prom.exitCode !== null || prom.signalCode !== null) return 'exited';
        return (await http(`${base}/-/ready`).catch(() => undefined))?.status === 200 ? 'ready' : undefined;
      },
      30_000,
      100,
    ).catch(async (err: unknown) => {
      await stopChild(prom, 2000);
      throw new Error(`Prometheus did not become ready: ${String(err)}\n${log.slice(-2000)}`);
    });
    if (state === 'ready') {
      // Stopped (and waited for) before the caller's later hook removes its data directory.
      t.after(() => stopChild(prom));
      const api = `${base}/api/v1`;
      const query = async (q: string) => (JSON.parse((await http(`${api}/query?query=${encodeURIComponent(q)}`)).body) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
      return { api, log: () => log, query };
    }
    if (!/address already in use/.test(log) || attempt === 3) throw new Error(`Prometheus exited ${prom.exitCode}:\n${log.slice(-2000)}`);
  }
}

/**
 * A Prometheus scraping `target` (host:port) every `interval`, with its own temporary data
 * directory (removed after Prometheus has exited). `scrapeExtra` is added to the scrape job.
 */
export async function prometheusScraping(t: TestContext, target: string, opts: { interval?: string; scrapeExtra?: string } = {}): Promise<PrometheusServer> {
  requireTool('prometheus');
  const dir = tempDir('tsmetrics-prom-');
  const cfg = join(dir.path, 'prometheus.yml');
  const interval = opts.interval ?? '2s';
  writeFileSync(cfg, `global:\n  scrape_interval: ${interval}\n  evaluation_interval: ${interval}\nscrape_configs:\n  - job_name: tsmetrics\n${opts.scrapeExtra ?? ''}    static_configs:\n      - targets: ['${target}']\n`);
  try {
    return await startPrometheus(t, dir.path, cfg);
  } finally {
    // Registered after Prometheus' own stop hook, so it runs once Prometheus has exited.
    t.after(() => dir.remove());
  }
}

/** Waits until Prometheus has scraped job `tsmetrics` at least `n` times. */
export async function waitForScrapes(prom: PrometheusServer, n = 2): Promise<void> {
  await waitFor(async () => (await prom.query('count_over_time(up{job="tsmetrics"}[1m])')).some((r) => Number(r.value[1]) >= n), 60_000, 500).catch((err: unknown) => {
    throw new Error(`Prometheus did not scrape ${n} times: ${String(err)}\n${prom.log().slice(-2000)}`);
  });
}
