import { createServer, type Server } from 'node:net';

/** A TCP listener that only counts connections (proves that something was or was not dialed). */
export async function recordingListener(host: string, port = 0): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server: Server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    connections: () => n,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
