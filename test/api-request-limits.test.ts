// requestWithLimits bounds every API exchange (Tailscale and Headscale clients): by time, by the
// caller's signal, and it must leave nothing attached to the caller's long-lived signal.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getEventListeners } from 'node:events';
import { Agent } from 'undici';
import { ApiCallError, requestWithLimits } from '../receivers/tailscale_api/client.ts';

async function serve(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const scrub = (s: string): string => s;

test('API exchange: answered requests leave no abort listener on the caller’s signal', async (t) => {
  const origin = await serve(t, (_req, res) => res.end('{"ok":true}'));
  const agent = new Agent();
  t.after(() => agent.close());
  const receiver = new AbortController();
  for (let i = 0; i < 50; i++) {
    const { res, text } = await requestWithLimits(agent, { origin, path: '/x', method: 'GET' }, { signal: receiver.signal, timeoutMs: 60_000, maxBytes: 1024, scrub });
    assert.equal(res.statusCode, 200);
    assert.equal(text, '{"ok":true}');
  }
  assert.equal(getEventListeners(receiver.signal, 'abort').length, 0);
});

test('API exchange: a body that stops mid-way is cut at the timeout; the caller’s abort cuts a pending one', async (t) => {
  const origin = await serve(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"devices": [');
    // …and nothing more, on either path.
  });
  const agent = new Agent();
  t.after(() => agent.destroy());
  const receiver = new AbortController();
  const began = Date.now();
  await assert.rejects(requestWithLimits(agent, { origin, path: '/slow-body', method: 'GET' }, { signal: receiver.signal, timeoutMs: 300, maxBytes: 1024, scrub }), (err: unknown) => err instanceof ApiCallError && err.kind === 'network');
  const took = Date.now() - began;
  assert.ok(took >= 250 && took < 5_000, `cut after ${took} ms`);

  const pending = requestWithLimits(agent, { origin, path: '/abort', method: 'GET' }, { signal: receiver.signal, timeoutMs: 60_000, maxBytes: 1024, scrub });
  setTimeout(() => receiver.abort(new Error('receiver stopping')), 100);
  await assert.rejects(pending, (err: unknown) => err instanceof ApiCallError && err.kind === 'network');
  assert.equal(getEventListeners(receiver.signal, 'abort').length, 0);
});
