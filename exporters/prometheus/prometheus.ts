import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { DataPoint, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { mapMetrics, withPoints } from '../../src/model/batch.ts';
import { isStale } from '../../src/model/stale.ts';
import type { BatchInfo, Exporter, HttpRoute, Settings } from '../../src/component/types.ts';
import { errorMessage } from '../../src/errors.ts';
import type { PrometheusExporterConfig } from './config.ts';
import { prerender, serializePrometheusText } from './serializer.ts';

const gzip = promisify(gzipCb);

function withoutStalePoints(batch: ResourceMetrics): ResourceMetrics {
  let any = false;
  for (const sm of batch.scopeMetrics) for (const m of sm.metrics) for (const p of m.dataPoints) if (isStale(p)) any = true;
  if (!any) return batch;
  return mapMetrics(batch, (m) => withPoints(m, (m.dataPoints as DataPoint<number>[]).filter((p) => !isStale(p))));
}
/** Bodies smaller than this are not worth compressing. */
const GZIP_MIN_BYTES = 1024;

/**
 * Keeps the latest snapshot of every source that feeds it and renders them, with the process's
 * self-telemetry, through `@opentelemetry/exporter-prometheus`'s serializer on our own server —
 * so "nothing to serve" is a real 503, not a 200 with a comment.
 */
export class PrometheusExporterComponent implements Exporter {
  private readonly _settings: Settings;
  private readonly _config: PrometheusExporterConfig;
  private readonly _latest = new Map<string, ResourceMetrics>();
  private readonly _serializer: PrometheusSerializer;
  private _stopped = false;

  constructor(settings: Settings, config: PrometheusExporterConfig) {
    this._settings = settings;
    this._config = config;
    this._serializer = new PrometheusSerializer(undefined, false, undefined, !config.target_info, !config.scope_info);
  }

  async start(): Promise<void> {}

  async consume(batch: ResourceMetrics, info: BatchInfo): Promise<void> {
    if (this._stopped) return;
    // Snapshot semantics: a source's new batch replaces its previous one whole. End-of-series
    // markers are for push consumers; on the pull side a series simply stops being served.
    const kept = withoutStalePoints(batch);
    this._latest.set(info.source, kept);
    // Render the sample lines now, so a scrape only assembles text (see serializer.ts).
    if (!this._config.target_info && !this._config.scope_info) prerender(kept);
  }

  /** The merged snapshot currently served (for tests and the library). */
  snapshot(): ResourceMetrics | undefined {
    if (this._latest.size === 0) return undefined;
    const scopeMetrics: ScopeMetrics[] = [];
    let resource: ResourceMetrics['resource'] | undefined;
    for (const b of this._latest.values()) {
      resource ??= b.resource;
      scopeMetrics.push(...b.scopeMetrics);
    }
    return { resource: resource as ResourceMetrics['resource'], scopeMetrics };
  }

  /** Renders the exposition text; undefined when there is nothing to serve yet. */
  async render(): Promise<string | undefined> {
    const snap = this.snapshot();
    if (!snap) return undefined;
    if (this._config.self_telemetry) {
      const self = await this._settings.telemetry.collect();
      snap.scopeMetrics.push(...self.resourceMetrics.scopeMetrics);
    }
    // The fast serializer matches the official one byte for byte for our default options; the
    // official one is still used when target_info or scope labels are switched on.
    return this._config.target_info || this._config.scope_info ? this._serializer.serialize(snap) : serializePrometheusText(snap);
  }

  private async _handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: string | undefined;
    try {
      body = await this.render();
    } catch (err) {
      this._settings.telemetry.error(this._settings.id.key, 'exception');
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`collecting metrics failed: ${errorMessage(err)}\n`);
      return;
    }
    if (body === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end('no data yet: no collection cycle has delivered metrics\n');
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', vary: 'Accept-Encoding' };
    let out: Buffer = Buffer.from(body, 'utf8');
    if (this._config.gzip && out.length >= GZIP_MIN_BYTES && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      out = await gzip(out, { level: 1 });
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(out.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : out);
  }

  routes(): HttpRoute[] {
    return [{ path: this._config.path, protected: true, handle: (req, res) => this._handle(req, res) }];
  }

  async shutdown(_deadline: AbortSignal): Promise<void> {
    this._stopped = true;
  }
}
