import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One data point as decoded from the wire, protobuf or JSON alike. */
export interface WirePoint {
  attributes: Record<string, unknown>;
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  value?: number;
  flags: number;
  count?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
}

export interface WireMetric {
  name: string;
  description: string;
  kind: 'gauge' | 'sum' | 'histogram';
  isMonotonic: boolean;
  temporality: number;
  points: WirePoint[];
}

export interface WireRequest {
  contentType: string;
  encoding: string;
  headers: IncomingMessage['headers'];
  resource: Record<string, unknown>;
  scopes: string[];
  metrics: WireMetric[];
}

// --- a minimal protobuf reader (independent of the code under test) ---
interface Field {
  n: number;
  wire: number;
  v: bigint | Buffer;
}
function readVarint(b: Buffer, pos: { i: number }): bigint {
  let r = 0n;
  let shift = 0n;
  for (;;) {
    const byte = b[pos.i++] as number;
    r |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return r;
    shift += 7n;
  }
}
function fields(b: Buffer): Field[] {
  const out: Field[] = [];
  const pos = { i: 0 };
  while (pos.i < b.length) {
    const key = Number(readVarint(b, pos));
    const n = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ n, wire, v: readVarint(b, pos) });
    else if (wire === 1) {
      out.push({ n, wire, v: b.subarray(pos.i, pos.i + 8) });
      pos.i += 8;
    } else if (wire === 2) {
      const len = Number(readVarint(b, pos));
      out.push({ n, wire, v: b.subarray(pos.i, pos.i + len) });
      pos.i += len;
    } else if (wire === 5) {
      out.push({ n, wire, v: b.subarray(pos.i, pos.i + 4) });
      pos.i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}
const sub = (fs: Field[], n: number) => fs.filter((f) => f.n === n).map((f) => f.v as Buffer);
const str = (fs: Field[], n: number) => (sub(fs, n)[0] ?? Buffer.alloc(0)).toString('utf8');
const fixed64 = (fs: Field[], n: number) => {
  const f = fs.find((x) => x.n === n);
  return f ? (f.v as Buffer).readBigUInt64LE(0) : 0n;
};
const dbl = (fs: Field[], n: number) => {
  const f = fs.find((x) => x.n === n);
  return f ? (f.v as Buffer).readDoubleLE(0) : undefined;
};
const varint = (fs: Field[], n: number) => Number((fs.find((x) => x.n === n)?.v as bigint | undefined) ?? 0n);

/** An AnyValue: string, bool, int (a number when safe, else a bigint), double, array, map, bytes. */
function anyValue(b: Buffer): unknown {
  const fs = fields(b);
  const f = fs[0];
  if (!f) return undefined;
  if (f.n === 1) return (f.v as Buffer).toString('utf8');
  if (f.n === 2) return f.v === 1n;
  if (f.n === 3) {
    const v = BigInt.asIntN(64, f.v as bigint);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (f.n === 4) return (f.v as Buffer).readDoubleLE(0);
  // ArrayValue { values = 1 }, KeyValueList { values = 1 }
  if (f.n === 5) return sub(fields(f.v as Buffer), 1).map(anyValue);
  if (f.n === 6) return kvs(sub(fields(f.v as Buffer), 1));
  if (f.n === 7) return new Uint8Array(f.v as Buffer);
  return undefined;
}
function kvs(list: Buffer[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list) {
    const fs = fields(kv);
    out[str(fs, 1)] = anyValue(sub(fs, 2)[0] ?? Buffer.alloc(0));
  }
  return out;
}
function numberPoint(b: Buffer): WirePoint {
  const fs = fields(b);
  const p: WirePoint = { attributes: kvs(sub(fs, 7)), startTimeUnixNano: fixed64(fs, 2), timeUnixNano: fixed64(fs, 3), flags: varint(fs, 8) };
  const v = dbl(fs, 4);
  const asInt = fs.find((x) => x.n === 6);
  if (v !== undefined) p.value = v;
  else if (asInt) p.value = Number((asInt.v as Buffer).readBigInt64LE(0));
  return p;
}
function histogramPoint(b: Buffer): WirePoint {
  const fs = fields(b);
  return {
    attributes: kvs(sub(fs, 9)),
    startTimeUnixNano: fixed64(fs, 2),
    timeUnixNano: fixed64(fs, 3),
    flags: varint(fs, 10),
    count: Number(fixed64(fs, 4)),
    bucketCounts: fs.filter((f) => f.n === 6).map((f) => Number((f.v as Buffer).readBigUInt64LE(0))),
    explicitBounds: fs.filter((f) => f.n === 7).map((f) => (f.v as Buffer).readDoubleLE(0)),
  };
}
export function decodeProtobuf(body: Buffer): Omit<WireRequest, 'contentType' | 'encoding' | 'headers'> {
  const rm = fields(sub(fields(body), 1)[0] ?? Buffer.alloc(0));
  const resource = kvs(sub(fields(sub(rm, 1)[0] ?? Buffer.alloc(0)), 1));
  const metrics: WireMetric[] = [];
  const scopes: string[] = [];
  for (const smb of sub(rm, 2)) {
    const sm = fields(smb);
    scopes.push(str(fields(sub(sm, 1)[0] ?? Buffer.alloc(0)), 1));
    for (const mb of sub(sm, 2)) {
      const m = fields(mb);
      const base = { name: str(m, 1), description: str(m, 2) };
      const g = sub(m, 5)[0];
      const s = sub(m, 7)[0];
      const h = sub(m, 9)[0];
      if (g) metrics.push({ ...base, kind: 'gauge', isMonotonic: false, temporality: 0, points: sub(fields(g), 1).map(numberPoint) });
      else if (s) {
        const sf = fields(s);
        metrics.push({ ...base, kind: 'sum', isMonotonic: varint(sf, 3) === 1, temporality: varint(sf, 2), points: sub(sf, 1).map(numberPoint) });
      } else if (h) {
        const hf = fields(h);
        metrics.push({ ...base, kind: 'histogram', isMonotonic: false, temporality: varint(hf, 2), points: sub(hf, 1).map(histogramPoint) });
      }
    }
  }
  return { resource, scopes, metrics };
}

/** One log record as decoded from the wire, protobuf or JSON alike. */
export interface WireLogRecord {
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: unknown;
  attributes: Record<string, unknown>;
  droppedAttributesCount: number;
  eventName: string;
  flags: number;
  traceId: string;
  spanId: string;
}

export interface WireScopeLogs {
  scope: { name: string; version: string; attributes: Record<string, unknown> };
  schemaUrl: string;
  records: WireLogRecord[];
}

export interface WireResourceLogs {
  resource: Record<string, unknown>;
  schemaUrl: string;
  scopeLogs: WireScopeLogs[];
}

export interface WireLogsRequest {
  contentType: string;
  encoding: string;
  headers: IncomingMessage['headers'];
  /** Size of the body as received (before gunzip). */
  bytes: number;
  resourceLogs: WireResourceLogs[];
}

const fixed32 = (fs: Field[], n: number) => {
  const f = fs.find((x) => x.n === n);
  return f ? (f.v as Buffer).readUInt32LE(0) : 0;
};
const hex = (fs: Field[], n: number) => (sub(fs, n)[0] ?? Buffer.alloc(0)).toString('hex');

/** ExportLogsServiceRequest (opentelemetry-proto logs.proto field numbers). */
export function decodeLogsProtobuf(body: Buffer): WireResourceLogs[] {
  return sub(fields(body), 1).map((rlb) => {
    const rl = fields(rlb);
    const scopeLogs = sub(rl, 2).map((slb): WireScopeLogs => {
      const sl = fields(slb);
      const sc = fields(sub(sl, 1)[0] ?? Buffer.alloc(0));
      return {
        scope: { name: str(sc, 1), version: str(sc, 2), attributes: kvs(sub(sc, 3)) },
        schemaUrl: str(sl, 3),
        records: sub(sl, 2).map((lb): WireLogRecord => {
          const l = fields(lb);
          const body = sub(l, 5)[0];
          return {
            timeUnixNano: fixed64(l, 1),
            observedTimeUnixNano: fixed64(l, 11),
            severityNumber: varint(l, 2),
            severityText: str(l, 3),
            body: body ? anyValue(body) : undefined,
            attributes: kvs(sub(l, 6)),
            droppedAttributesCount: varint(l, 7),
            eventName: str(l, 12),
            flags: fixed32(l, 8),
            traceId: hex(l, 9),
            spanId: hex(l, 10),
          };
        }),
      };
    });
    return { resource: kvs(sub(fields(sub(rl, 1)[0] ?? Buffer.alloc(0)), 1)), schemaUrl: str(rl, 3), scopeLogs };
  });
}

interface JsonAny {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number | string;
  boolValue?: boolean;
  arrayValue?: { values?: JsonAny[] };
  kvlistValue?: { values?: Array<{ key: string; value: JsonAny }> };
  bytesValue?: string;
}
function jsonKvs(list: Array<{ key: string; value: JsonAny }> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = jsonAny(value);
  return out;
}
/** An OTLP/JSON AnyValue, decoded as {@link anyValue} decodes protobuf. */
function jsonAny(value: JsonAny | undefined): unknown {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) {
    const v = BigInt(value.intValue);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (value.doubleValue !== undefined) return typeof value.doubleValue === 'string' ? Number(value.doubleValue) : value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(jsonAny);
  if (value.kvlistValue) return jsonKvs(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return new Uint8Array(Buffer.from(value.bytesValue, 'base64'));
  return undefined;
}
/** OTLP/JSON ExportLogsServiceRequest (field names in lowerCamelCase, 64-bit integers as strings or numbers). */
function decodeLogsJson(body: Buffer): WireResourceLogs[] {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const j = JSON.parse(body.toString('utf8')) as any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return (j.resourceLogs ?? []).map((rl: any): WireResourceLogs => ({
    resource: jsonKvs(rl.resource?.attributes),
    schemaUrl: rl.schemaUrl ?? '',
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    scopeLogs: (rl.scopeLogs ?? []).map((sl: any): WireScopeLogs => ({
      scope: { name: sl.scope?.name ?? '', version: sl.scope?.version ?? '', attributes: jsonKvs(sl.scope?.attributes) },
      schemaUrl: sl.schemaUrl ?? '',
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      records: (sl.logRecords ?? []).map((l: any): WireLogRecord => ({
        timeUnixNano: BigInt(l.timeUnixNano ?? 0),
        observedTimeUnixNano: BigInt(l.observedTimeUnixNano ?? 0),
        severityNumber: l.severityNumber ?? 0,
        severityText: l.severityText ?? '',
        body: jsonAny(l.body),
        attributes: jsonKvs(l.attributes),
        droppedAttributesCount: l.droppedAttributesCount ?? 0,
        eventName: l.eventName ?? '',
        flags: l.flags ?? 0,
        traceId: l.traceId ?? '',
        spanId: l.spanId ?? '',
      })),
    })),
  }));
}
function jsonNumber(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (v === null) throw new Error('a JSON data point value is null (the Collector rejects this)');
  if (typeof v === 'string') return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : Number(v);
  return v as number;
}
function decodeJson(body: Buffer): Omit<WireRequest, 'contentType' | 'encoding' | 'headers'> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const j = JSON.parse(body.toString('utf8')) as any;
  const rm = j.resourceMetrics[0];
  const metrics: WireMetric[] = [];
  const scopes: string[] = [];
  for (const sm of rm.scopeMetrics) {
    scopes.push(sm.scope.name);
    for (const m of sm.metrics) {
      const kind = m.gauge ? 'gauge' : m.sum ? 'sum' : 'histogram';
      const data = m.gauge ?? m.sum ?? m.histogram;
      metrics.push({
        name: m.name,
        description: m.description,
        kind,
        isMonotonic: m.sum?.isMonotonic === true,
        temporality: data.aggregationTemporality ?? 0,
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        points: data.dataPoints.map((p: any) => {
          const wp: WirePoint = { attributes: jsonKvs(p.attributes), startTimeUnixNano: BigInt(p.startTimeUnixNano), timeUnixNano: BigInt(p.timeUnixNano), flags: p.flags ?? 0 };
          const v = jsonNumber(p.asDouble ?? p.asInt);
          if (v !== undefined) wp.value = v;
          if (kind === 'histogram') {
            wp.count = Number(p.count);
            wp.bucketCounts = (p.bucketCounts ?? []).map(Number);
            wp.explicitBounds = p.explicitBounds ?? [];
          }
          return wp;
        }),
      });
    }
  }
  return { resource: jsonKvs(rm.resource.attributes), scopes, metrics };
}

/** A loopback OTLP/HTTP receiver that decodes protobuf and JSON bodies (`/v1/logs`: log requests, any other path: metrics). */
export class OtlpReceiver {
  readonly requests: WireRequest[] = [];
  /** Requests to `/v1/logs`, record by record. */
  readonly logRequests: WireLogsRequest[] = [];
  /** Status codes to answer with, one per request, before answering 200. */
  readonly script: Array<{ status: number; retryAfter?: string }> = [];
  /** While set, every request waits for it before it is read and answered (a slow Collector). */
  hold: Promise<void> | undefined;
  private _server: Server | undefined;
  url = '';
  logsUrl = '';

  async start(): Promise<void> {
    this._server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void (this.hold ?? Promise.resolve()).then(() => {
        const step = this.script.shift();
        if (step && step.status !== 200) {
          res.writeHead(step.status, step.retryAfter ? { 'retry-after': step.retryAfter } : {});
          res.end();
          return;
        }
        let body = Buffer.concat(chunks);
        const bytes = body.length;
        const encoding = String(req.headers['content-encoding'] ?? '');
        if (encoding === 'gzip') body = gunzipSync(body);
        const contentType = String(req.headers['content-type'] ?? '');
        if (new URL(req.url ?? '/', 'http://x').pathname === '/v1/logs') {
          const resourceLogs = contentType.includes('json') ? decodeLogsJson(body) : decodeLogsProtobuf(body);
          this.logRequests.push({ contentType, encoding, headers: req.headers, bytes, resourceLogs });
          res.writeHead(200, { 'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf' });
          res.end(contentType.includes('json') ? '{}' : undefined);
          return;
        }
        const decoded = contentType.includes('json') ? decodeJson(body) : decodeProtobuf(body);
        this.requests.push({ contentType, encoding, headers: req.headers, ...decoded });
        res.writeHead(200, { 'content-type': contentType.includes('json') ? 'application/json' : 'application/x-protobuf' });
        res.end(contentType.includes('json') ? '{}' : undefined);
      }));
    });
    await new Promise<void>((r) => this._server?.listen(0, '127.0.0.1', () => r()));
    const a = this._server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${a.port}/v1/metrics`;
    this.logsUrl = `http://127.0.0.1:${a.port}/v1/logs`;
  }

  async stop(): Promise<void> {
    this._server?.closeAllConnections();
    await new Promise<void>((r) => (this._server ? this._server.close(() => r()) : r()));
  }

  /** Every point of metric `name` across all requests, with the request index. */
  points(name: string): Array<WirePoint & { request: number; metric: WireMetric }> {
    return this.requests.flatMap((r, request) => r.metrics.filter((m) => m.name === name).flatMap((metric) => metric.points.map((p) => ({ ...p, request, metric }))));
  }

  /** Every log record received, in order, with its resource, scope and request index. */
  records(): Array<WireLogRecord & { request: number; resource: Record<string, unknown>; scope: WireScopeLogs['scope'] }> {
    return logRecordsOf(this.logRequests);
  }
}

/** The records of decoded log requests, flattened in order. */
export function logRecordsOf(requests: ReadonlyArray<{ resourceLogs: WireResourceLogs[] }>): Array<WireLogRecord & { request: number; resource: Record<string, unknown>; scope: WireScopeLogs['scope'] }> {
  return requests.flatMap((r, request) => r.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.records.map((rec) => ({ ...rec, request, resource: rl.resource, scope: sl.scope })))));
}
