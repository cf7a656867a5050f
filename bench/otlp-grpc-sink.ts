// An OTLP/gRPC endpoint in its own process, so the measured process only does the client's work.
// Answers every MetricsService/Export with an empty response; prints {"port": N}; runs until SIGTERM.
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';

const server = new Server({ 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
const pass = (b: Buffer): Buffer => b;
server.addService(
  { export: { path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', requestStream: false, responseStream: false, requestSerialize: pass, requestDeserialize: pass, responseSerialize: pass, responseDeserialize: pass } },
  { export: (_call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, Buffer.alloc(0)) },
);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(JSON.stringify({ port }) + '\n');
});
process.once('SIGTERM', () => server.forceShutdown());
