import { createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { DataPointType, type DataPoint, type Histogram, type ResourceMetrics, type ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { mapMetrics, withPoints } from '../../src/model/batch.ts';
import { attributeSignature } from '../../src/model/intern.ts';
import { batchHasStale, isStale } from '../../src/model/stale.ts';
import type { BatchInfo, Exporter, HttpRoute, Settings } from '../../src/component/types.ts';
import { errorMessage } from '../../src/errors.ts';
import type { PrometheusExporterConfig } from './config.ts';
import { exposition, expositionBytes } from './serializer.ts';
import { negotiate, TEXT_FORMAT, type ExpositionFormat, type Negotiated } from './negotiate.ts';

function withoutStalePoints(batch: ResourceMetrics): ResourceMetrics {
  if (!batchHasStale(batch)) return batch;
  return mapMetrics(batch, (m) => withPoints(m, (m.dataPoints as DataPoint<number>[]).filter((p) => !isStale(p))));
}
/** Bodies smaller than this are not worth compressing. */
const GZIP_MIN_BYTES = 1024;
/** Bodies larger than this are streamed rather than sent as one buffer. */
const STREAM_MIN_BYTES = 1024 * 1024;
const CHUNK_CHARS = 256 * 1024;

/** A page: its text parts (rendered as they are read), the same as UTF-8 buffers, and about how many lines it prints. */
interface Page {
  parts: Iterable<string>;
  bytes: () => Iterable<Buffer>;
  lines: number;
}

/** Pages of fewer lines than this are rendered whole and sent with a length; larger ones are streamed. */
const STREAM_MIN_LINES = 5_000;

/** About how many lines a snapshot prints: a histogram point is a line per bucket and two more. */
function pageLines(rm: ResourceMetrics): number {
  let n = 0;
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.dataPointType !== DataPointType.HISTOGRAM) n += m.dataPoints.length;
      else for (const p of m.dataPoints as DataPoint<Histogram>[]) n += (p.value.buckets?.counts?.length ?? 0) + 2;
    }
  }
  return n;
}

/**
 * The body as chunks of about CHUNK_CHARS, rendered and joined only when the client is ready
 * for the next one: with `stream.pipeline` at most a chunk or two wait for a slow reader, not
 * the page, and the client reads the first series while the last are still being rendered.
 */
function* bodyChunks(parts: Iterable<string>): Generator<string> {
  let chunk = '';
  for (const p of parts) {
    chunk += p;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/**
 * Keeps the latest snapshot of every source that feeds it and renders them, with the process's
 * self-telemetry, through `@opentelemetry/exporter-prometheus`'s serializer on our own server —
 * so "nothing to serve" is a real 503, not a 200 with a comment.
 */
export class PrometheusExporterComponent implements Exporter {
  private readonly _settings: Settings;
  private readonly _config: PrometheusExporterConfig;
  /** Latest batch per (pipeline, source): pipelines that share a source never overwrite each other. */
  private readonly _latest = new Map<string, { source: string; batch: ResourceMetrics }>();
  /** Per source fed by several pipelines: the union of their batches, built once per change. */
  private readonly _merged = new Map<string, { inputs: ResourceMetrics[]; out: ResourceMetrics }>();
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
    const key = `${info.pipeline ?? ''}\u0000${info.source}`;
    this._latest.set(key, { source: info.source, batch: kept });
    // Nothing is rendered ahead: a page held between scrapes cost as much memory as everything
    // else together (155 MB of a 325 MB heap at 10,000 devices). Each scrape renders it from
    // the series' label texts, which are made once per series (see serializer.ts).
  }

  /** The merged snapshot currently served (for tests and the library). */
  snapshot(): ResourceMetrics | undefined {
    if (this._latest.size === 0) return undefined;
    const bySource = new Map<string, ResourceMetrics[]>();
    for (const { source, batch } of this._latest.values()) {
      const list = bySource.get(source);
      if (list) list.push(batch);
      else bySource.set(source, [batch]);
    }
    const scopeMetrics: ScopeMetrics[] = [];
    let resource: ResourceMetrics['resource'] | undefined;
    for (const [source, list] of bySource) {
      const b = list.length === 1 ? (list[0] as ResourceMetrics) : this._union(source, list);
      resource ??= b.resource;
      scopeMetrics.push(...b.scopeMetrics);
    }
    for (const source of this._merged.keys()) if ((bySource.get(source)?.length ?? 0) < 2) this._merged.delete(source);
    return { resource: resource as ResourceMetrics['resource'], scopeMetrics };
  }

  /**
   * One source seen through several pipelines (different filters, say): each pipeline's series
   * are served, and a series two pipelines both pass is served once (as the Collector's
   * Prometheus exporter keeps one value per series), so the page never repeats a series.
   */
  private _union(source: string, inputs: ResourceMetrics[]): ResourceMetrics {
    const cached = this._merged.get(source);
    if (cached && cached.inputs.length === inputs.length && cached.inputs.every((b, i) => b === inputs[i])) return cached.out;
    const seen = new Set<string>();
    const scopeMetrics: ScopeMetrics[] = [];
    for (const b of inputs) {
      for (const sm of b.scopeMetrics) {
        const metrics = [];
        for (const m of sm.metrics) {
          const prefix = `${m.descriptor.name}\u0000${m.dataPointType}\u0000`;
          const pts = (m.dataPoints as DataPoint<unknown>[]).filter((p) => {
            const k = prefix + attributeSignature(p.attributes);
            if (seen.has(k)) return false;
            seen.add(k);
            return true;
          });
          if (pts.length) metrics.push(pts.length === m.dataPoints.length ? m : withPoints(m, pts as DataPoint<number>[]));
        }
        if (metrics.length) scopeMetrics.push({ scope: sm.scope, metrics });
      }
    }
    const out = { resource: (inputs[0] as ResourceMetrics).resource, scopeMetrics };
    this._merged.set(source, { inputs: [...inputs], out });
    return out;
  }

  /**
   * Renders the exposition text (0.0.4 text unless another format is given); undefined when
   * there is nothing to serve yet.
   */
  async render(format: ExpositionFormat = TEXT_FORMAT): Promise<string | undefined> {
    return (await this.renderParts(format))?.join('');
  }

  /** The exposition as parts (about 2,000 lines each); joined, they are the page. */
  async renderParts(format: ExpositionFormat = TEXT_FORMAT): Promise<string[] | undefined> {
    const page = await this._page(format);
    return page && Array.from(page.parts);
  }

  /**
   * The page to serve, its parts rendered as they are read, and about how many lines it
   * prints; undefined when there is nothing to serve yet.
   */
  private async _page(format: ExpositionFormat): Promise<Page | undefined> {
    let snap = this.snapshot();
    // Before any source delivered data there is still something true to say once a cycle has
    // run: a source that failed from the start (bad credential, wrong tailnet) must show as
    // tsmetrics_source_up 0, or its alert could never fire. Only a process that has not finished
    // a single cycle answers 503.
    const cycled = [...this._settings.telemetry.status().values()].some((st) => st.cycles > 0);
    if (!snap && !(this._config.self_telemetry && cycled)) return undefined;
    if (this._config.self_telemetry) {
      const self = await this._settings.telemetry.collect();
      snap ??= { resource: self.resourceMetrics.resource, scopeMetrics: [] };
      snap.scopeMetrics.push(...self.resourceMetrics.scopeMetrics);
    }
    if (!snap) return undefined;
    const lines = pageLines(snap);
    // The fast serializer matches the official one byte for byte for our default options; the
    // official one is still used when target_info or scope labels are switched on.
    if (this._config.target_info || this._config.scope_info) {
      const text = this._serializer.serialize(snap);
      return { parts: [text], bytes: () => [Buffer.from(text, 'utf8')], lines };
    }
    const page = snap;
    return { parts: exposition(page, format), bytes: () => expositionBytes(page, format), lines };
  }

  /**
   * The format a request gets. With `target_info` or `scope_info` on, the page comes from the
   * official serializer, which writes only the 0.0.4 text, so that is what is served then.
   */
  negotiate(req: IncomingMessage): Negotiated {
    if (this._config.target_info || this._config.scope_info) return negotiate(undefined);
    return negotiate(req.headers.accept);
  }

  private async _handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { format, contentType } = this.negotiate(req);
    let page: Page | undefined;
    let parts: string[] | undefined;
    try {
      page = await this._page(format);
      // A small page is rendered whole here, so a failure is still a 500 and its length is known.
      if (page && page.lines < STREAM_MIN_LINES) parts = Array.from(page.parts);
    } catch (err) {
      this._settings.telemetry.error(this._settings.id.key, 'exception');
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`collecting metrics failed: ${this._settings.secrets.scrub(errorMessage(err))}\n`);
      return;
    }
    // The client went away (or ran out its write deadline) while the page was assembled.
    if (res.destroyed) return;
    if (page === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end('no data yet: no collection cycle has delivered metrics\n');
      return;
    }
    let size = 0;
    for (const p of parts ?? []) size += p.length;
    // The body depends on Accept (format, name escaping) as well as on Accept-Encoding.
    const headers: Record<string, string> = { 'content-type': contentType, vary: 'Accept, Accept-Encoding' };
    const large = parts === undefined || size >= STREAM_MIN_BYTES;
    const gz = this._config.gzip && (parts === undefined || size >= GZIP_MIN_BYTES) && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    // HEAD gets the headers GET would (a large page is not rendered for it).
    if (!gz && !large && parts) {
      const body = Buffer.from(parts.join(''), 'utf8');
      res.writeHead(200, { ...headers, 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (gz) headers['content-encoding'] = 'gzip';
    if (req.method === 'HEAD') {
      res.writeHead(200, headers);
      res.end();
      return;
    }
    // Large bodies go through stream.pipeline, so the response's backpressure reaches the
    // chunk generator, which renders as it is read (and gzip): a stalled reader holds a chunk or
    // two, and when it is destroyed every stage is torn down and rendering stops.
    res.writeHead(200, headers);
    let failed: unknown;
    const chunks = (parts ? bodyChunks(parts) : page.bytes())[Symbol.iterator]();
    // Only an error of the render itself counts: a client that leaves destroys the stream,
    // which throws its error into this generator at the `yield`, and that is not a failure.
    const guarded = (function* (): Generator<string | Buffer> {
      try {
        for (;;) {
          let r: IteratorResult<string | Buffer>;
          try {
            r = chunks.next();
          } catch (err) {
            failed = err;
            throw err;
          }
          if (r.done) return;
          yield r.value;
        }
      } finally {
        // Runs the render's own cleanup when the client left before the end.
        chunks.return?.(undefined);
      }
    })();
    const body = Readable.from(guarded, { objectMode: false });
    try {
      await (gz ? pipeline(body, createGzip({ level: 1 }), res) : pipeline(body, res));
    } catch {
      // A pipeline ends early when the client left or its write deadline cut it off; it has
      // already destroyed the response, so there is nobody left to tell. A page that failed to
      // render after its headers were sent ends the same way: the client sees a cut body.
      if (failed !== undefined) this._settings.telemetry.error(this._settings.id.key, 'exception');
    }
  }

  routes(): HttpRoute[] {
    return [{ path: this._config.path, protected: true, handle: (req, res) => this._handle(req, res) }];
  }

  async shutdown(_deadline: AbortSignal): Promise<void> {
    this._stopped = true;
  }
}
