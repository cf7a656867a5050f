// The two servers the flow-log figure talks to, in their own process so that what they spend
// (writing an 18 MB answer, reading 80 MB of requests) never counts as the receiver's: a
// Tailscale-API-shaped server answering /logging/network with those of `--records` flow records
// that fall in the asked window, and an
// OTLP/HTTP endpoint that reads each request to its end and answers 200. Prints one JSON line
// {api, otlp}; answers the IPC message "stats" with {requests, requestBytes}.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../test/fixtures/api-logging-network.json', import.meta.url));
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));

/**
 * `n` flow records spread over the last `spanMs`, made from the fixture's shapes with distinct
 * nodes and times, in `logged` order: each one's time and JSON text.
 */
export function flowRecords(n: number, nowMs: number, spanMs: number): { times: number[]; texts: string[] } {
  const fixture = (JSON.parse(readFileSync(FIXTURE, 'utf8')) as { logs: Array<Record<string, unknown>> }).logs;
  const times: number[] = [];
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    const base = fixture[i % fixture.length] as Record<string, unknown>;
    const t = nowMs - spanMs + Math.floor((i / n) * (spanMs - 60_000));
    const iso = new Date(t).toISOString();
    times.push(t);
    texts.push(JSON.stringify({ ...base, nodeId: `n${String(i % 5000).padStart(6, '0')}CNTRL`, logged: iso, start: iso, end: new Date(t + 5000).toISOString() }));
  }
  return { times, texts };
}

/** The first index of sorted `times` at or after `t`. */
function lowerBound(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { times, texts } = flowRecords(Number(args.get('records') ?? 1000), Number(args.get('now') ?? Date.now()), 50 * 60_000);
  // As the API answers: the records whose logged time is in the asked window, both ends inclusive.
  const api = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.endsWith('/logging/network')) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
    const from = lowerBound(times, Date.parse(url.searchParams.get('start') ?? ''));
    const to = lowerBound(times, Date.parse(url.searchParams.get('end') ?? '') + 1);
    res.writeHead(200, { 'content-type': 'application/json' }).end(`{"logs":[${texts.slice(from, to).join(',')}]}`);
  });
  let requests = 0;
  let requestBytes = 0;
  const collector = createServer((req: IncomingMessage, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      requests++;
      requestBytes += n;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  const [apiUrl, otlpUrl] = await Promise.all([listen(api), listen(collector)]);
  process.on('message', (m) => {
    if (m === 'stats') process.send?.({ requests, requestBytes });
  });
  process.once('disconnect', () => process.exit(0));
  process.stdout.write(JSON.stringify({ api: apiUrl, otlp: otlpUrl }) + '\n');
}
