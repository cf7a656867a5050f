import { createServer as createNetServer, connect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { decodeLogsProtobuf, decodeProtobuf, logRecordsOf, type WireMetric, type WirePoint, type WireRequest, type WireResourceLogs } from './otlp-receiver.ts';

/** The OTLP metrics service method, spelled out here (independent of the code under test). */
const EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
/** The OTLP logs service method. */
const LOGS_EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

/** A logs Export call as the server saw it. */
export interface GrpcWireLogsRequest {
  resourceLogs: WireResourceLogs[];
  metadata: Record<string, string>;
  bytes: number;
}

/** One answer the receiver gives instead of OK. */
export interface GrpcStep {
  /** gRPC status code (0 = answer OK, 14 = UNAVAILABLE, 8 = RESOURCE_EXHAUSTED, 3 = INVALID_ARGUMENT, …). */
  code: number;
  /** Sends a google.rpc.RetryInfo with this delay in the status details. */
  retryDelayMs?: number;
  /** Never answers (the call hangs until its deadline or its connection dies). */
  hang?: boolean;
}

export interface GrpcWireRequest extends Omit<WireRequest, 'contentType' | 'encoding' | 'headers'> {
  /** Request metadata, as the server saw it. */
  metadata: Record<string, string>;
  /** Size of the request message (after gRPC decompression). */
  bytes: number;
  /** The raw request message. */
  body: Buffer;
}

// --- a minimal protobuf writer for google.rpc.Status with a RetryInfo ---
function varint(n: number): Buffer {
  const out: number[] = [];
  let x = n;
  while (x > 0x7f) {
    out.push((x & 0x7f) | 0x80);
    x = Math.floor(x / 128);
  }
  out.push(x);
  return Buffer.from(out);
}
const field = (n: number, body: Buffer): Buffer => Buffer.concat([varint((n << 3) | 2), varint(body.length), body]);
const intField = (n: number, v: number): Buffer => Buffer.concat([varint(n << 3), varint(v)]);

/** google.rpc.Status { code, details: [Any(RetryInfo { retry_delay })] }, as a server sends it. */
export function statusWithRetryInfo(code: number, delayMs: number): Buffer {
  const duration = Buffer.concat([intField(1, Math.floor(delayMs / 1000)), intField(2, (delayMs % 1000) * 1_000_000)]);
  const retryInfo = field(1, duration);
  const any = Buffer.concat([field(1, Buffer.from('type.googleapis.com/google.rpc.RetryInfo')), field(2, retryInfo)]);
  return Buffer.concat([intField(1, code), field(3, any)]);
}

/**
 * A loopback OTLP/gRPC receiver: a real grpc-js server serving
 * `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`, decoding every request with
 * the same independent protobuf reader as the HTTP receiver. Clients reach it through a TCP
 * relay, so a test can count (and see the end of) the connections they hold.
 */
export class OtlpGrpcReceiver {
  readonly requests: GrpcWireRequest[] = [];
  /** Calls of the logs service, record by record. */
  readonly logRequests: GrpcWireLogsRequest[] = [];
  /** Answers to give, one per call, before answering OK. */
  readonly script: GrpcStep[] = [];
  /** Calls that arrived (answered or not). */
  calls = 0;
  /** Bytes clients sent over their connections (what compression saves). */
  bytesIn = 0;
  private readonly _server = new Server();
  private _relay: NetServer | undefined;
  private readonly _sockets = new Set<Socket>();
  private readonly _hung = new Set<sendUnaryData<Buffer>>();
  /** host:port clients dial (the relay). */
  address = '';
  url = '';

  async start(opts: { tls?: { key: Buffer; cert: Buffer; clientCa?: Buffer } } = {}): Promise<void> {
    const bytes = {
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    };
    this._server.addService({ export: { path: LOGS_EXPORT_PATH, ...bytes } }, { export: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => this._handle(call, cb, 'logs') });
    this._server.addService(
      {
        export: { path: EXPORT_PATH, ...bytes },
      },
      { export: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => this._handle(call, cb) },
    );
    const creds = opts.tls
      ? ServerCredentials.createSsl(opts.tls.clientCa ?? null, [{ private_key: opts.tls.key, cert_chain: opts.tls.cert }], !!opts.tls.clientCa)
      : ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) => this._server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
    // The relay: every client connection is one socket here, piped to the gRPC server.
    this._relay = createNetServer((client) => {
      this._sockets.add(client);
      const upstream = connect(port, '127.0.0.1');
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => {
        this._sockets.delete(client);
        upstream.destroy();
      });
      upstream.on('close', () => client.destroy());
      client.on('data', (c: Buffer) => (this.bytesIn += c.length));
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this._relay?.listen(0, '127.0.0.1', () => r()));
    this.address = `127.0.0.1:${(this._relay.address() as AddressInfo).port}`;
    this.url = `${opts.tls ? 'https' : 'http'}://${this.address}`;
  }

  private _handle(call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>, signal: 'metrics' | 'logs' = 'metrics'): void {
    this.calls++;
    const step = this.script.shift();
    if (step?.hang) {
      this._hung.add(cb);
      return;
    }
    if (step && step.code !== 0) {
      const md = new Metadata();
      if (step.retryDelayMs !== undefined) md.set('grpc-status-details-bin', statusWithRetryInfo(step.code, step.retryDelayMs));
      cb({ code: step.code, details: `scripted status ${step.code}`, metadata: md } as ServiceError);
      return;
    }
    const body = call.request;
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
    if (signal === 'logs') this.logRequests.push({ resourceLogs: decodeLogsProtobuf(body), metadata, bytes: body.length });
    else this.requests.push({ ...decodeProtobuf(body), metadata, bytes: body.length, body });
    cb(null, Buffer.alloc(0));
  }

  /** Client connections open right now. */
  open(): number {
    return this._sockets.size;
  }

  /** Stops accepting and drops every connection. */
  async stop(): Promise<void> {
    for (const s of this._sockets) s.destroy();
    this._hung.clear();
    this._server.forceShutdown();
    await new Promise<void>((r) => (this._relay ? this._relay.close(() => r()) : r()));
  }

  /** Every log record received, in order. */
  records(): ReturnType<typeof logRecordsOf> {
    return logRecordsOf(this.logRequests);
  }

  /** Every point of metric `name` across all requests, with the request index. */
  points(name: string): Array<WirePoint & { request: number; metric: WireMetric }> {
    return this.requests.flatMap((r, request) => r.metrics.filter((m) => m.name === name).flatMap((metric) => metric.points.map((p) => ({ ...p, request, metric }))));
  }
}
