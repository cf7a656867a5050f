import { createGunzip } from 'node:zlib';
import type { Dispatcher } from 'undici';
import { BodyTooLargeError } from '../../src/util/body.ts';

/**
 * A dispatcher that asks for gzip and inflates what comes back, bounding the bytes received
 * (compressed) by `maxCompressed`; the API client bounds the inflated body by the same limit
 * while it reads it. Log bodies are large and compress about tenfold, so asking pays. Only
 * `request` is wrapped: it is all the API client calls.
 */
export function gzipDispatcher(inner: Dispatcher, maxCompressed: number): Dispatcher {
  const request = async (opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> => {
    const headers = { ...(opts.headers as Record<string, string> | undefined), 'accept-encoding': 'gzip' };
    const res = await inner.request({ ...opts, headers });
    const enc = String(res.headers['content-encoding'] ?? '').toLowerCase();
    if (enc !== 'gzip') return res;
    const raw = res.body;
    const gunzip = createGunzip();
    let received = 0;
    raw.on('data', (c: Buffer) => {
      received += c.length;
      if (received > maxCompressed) {
        raw.destroy();
        gunzip.destroy(new BodyTooLargeError(maxCompressed));
      }
    });
    raw.on('error', (err) => gunzip.destroy(err));
    gunzip.on('close', () => raw.destroy());
    raw.pipe(gunzip);
    return { ...res, body: gunzip as unknown as Dispatcher.ResponseData['body'] };
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'request') return request;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
