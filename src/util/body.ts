import type { Dispatcher } from 'undici';

/** A response body was larger than allowed. */
export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`response body exceeds the ${limit}-byte limit`);
    this.name = 'BodyTooLargeError';
  }
}

/** Reads an undici body up to `limit` bytes; a larger body is abandoned while it streams. */
export async function readBodyLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.on('error', () => undefined);
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
