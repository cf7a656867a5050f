import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { defaultRegistry } from '../../src/components.ts';
import { resolveConfig, type RawServiceConfig } from '../../src/config/service.ts';
import { createLogger, type Logger } from '../../src/log/logger.ts';
import { PipelineService } from '../../src/pipeline/service.ts';
import { parseExposition, type ExpositionFamily } from '../../receivers/device_metrics/exposition.ts';
import type { ComponentRegistry } from '../../src/component/registry.ts';
import type { Clock } from '../../src/component/types.ts';
import type { PrometheusExporterComponent } from '../../exporters/prometheus/prometheus.ts';

export const FIXTURES = new URL('../fixtures/', import.meta.url);

export function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

export function fixtureDevices(): Array<Record<string, unknown> & { id: string; name: string }> {
  return (JSON.parse(fixture('api-devices-fields-all.json')) as { devices: Array<Record<string, unknown> & { id: string; name: string }> }).devices;
}

/** A logger that keeps its lines for assertions. */
export function memoryLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ level, format: 'json', write: (l) => lines.push(l) }), lines };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain HTTP request (no client-side magic), decompressing gzip when the server sent it. */
export function http(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let buf = Buffer.concat(chunks);
        if (res.headers['content-encoding'] === 'gzip') buf = gunzipSync(buf);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs}ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Families of an exposition text by name. */
export function families(text: string): Map<string, ExpositionFamily> {
  return new Map(parseExposition(text).map((f) => [f.name, f]));
}

/** The value of the one sample of `name` whose labels include `match`. */
export function sampleValue(fams: Map<string, ExpositionFamily>, name: string, match: Record<string, string>): number | undefined {
  const f = fams.get(name);
  const s = f?.samples.find((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

/** What a scrape of the service's `prometheus` exporter would return now ('' when it has nothing). */
export async function renderPrometheus(service: PipelineService, id = 'prometheus'): Promise<string> {
  return (await (service.exporters.get(id) as PrometheusExporterComponent).render()) ?? '';
}

/** Builds a pipeline service from a raw (YAML-shaped) config. */
export function buildService(raw: RawServiceConfig, opts: { logger?: Logger; registry?: ComponentRegistry; clock?: Clock } = {}): PipelineService {
  const registry = opts.registry ?? defaultRegistry();
  const config = resolveConfig(raw, registry, 'test');
  return new PipelineService(registry, config, { logger: opts.logger ?? memoryLogger().logger, ...(opts.clock ? { clock: opts.clock } : {}) });
}

/** A clock the test moves by hand (components and the simulator read time only through it). */
export function manualClock(startMs = Date.now()): Clock & { advance(ms: number): void } {
  let t = startMs;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

/** The 15 client-metric families of the fixture with their types. */
export function fixtureFamilyTypes(): Map<string, string> {
  return new Map(parseExposition(fixture('client-metrics.txt')).map((f) => [f.name, f.type]));
}
