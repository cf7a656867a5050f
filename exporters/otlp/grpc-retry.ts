/**
 * Which failed OTLP/gRPC exports are tried again, and when (the OTLP specification's retry
 * rules). The official gRPC transport reports every failure as final, so the retry loop is
 * ours; its schedule is the one the official HTTP transport uses.
 */
import { status, type Metadata } from '@grpc/grpc-js';

/** Codes the specification calls retryable; RESOURCE_EXHAUSTED only when the server says when. */
const RETRYABLE = new Set<number>([status.CANCELLED, status.DEADLINE_EXCEEDED, status.ABORTED, status.OUT_OF_RANGE, status.UNAVAILABLE, status.DATA_LOSS]);

/** Retries after the first attempt, as the official HTTP transport. */
export const MAX_RETRIES = 5;
const INITIAL_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 5000;
const BACKOFF_MULTIPLIER = 1.5;
const JITTER = 0.2;
/** A `grpc-status-details-bin` trailer larger than this is not read (it is the server's input). */
export const MAX_STATUS_DETAILS_BYTES = 16 * 1024;
const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/** The backoff before retry number `n` (0-based): 1 s × 1.5ⁿ, ±20 %, at most 5 s. */
export function backoffMs(n: number, random: () => number = Math.random): number {
  const base = INITIAL_BACKOFF_MS * BACKOFF_MULTIPLIER ** n;
  return Math.max(0, Math.min(base * (1 + (random() * 2 - 1) * JITTER), MAX_BACKOFF_MS));
}

/**
 * How long to wait before trying `err` again, or undefined when it is final. A server's
 * RetryInfo replaces the backoff (it is how RESOURCE_EXHAUSTED says it will recover).
 */
export function retryDelayMs(err: unknown, n: number, random?: () => number): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'number') return undefined;
  const hinted = retryInfoDelayMs((err as { metadata?: Metadata }).metadata);
  if (code === status.RESOURCE_EXHAUSTED) return hinted;
  if (!RETRYABLE.has(code)) return undefined;
  return hinted ?? backoffMs(n, random);
}

/** The `google.rpc.RetryInfo.retry_delay` in a status-details trailer, in ms, if there is one. */
export function retryInfoDelayMs(metadata: Metadata | undefined): number | undefined {
  const raw = metadata?.get?.('grpc-status-details-bin')[0];
  if (!(raw instanceof Uint8Array) || raw.length > MAX_STATUS_DETAILS_BYTES) return undefined;
  try {
    // google.rpc.Status: details = 3 (repeated Any: type_url = 1, value = 2).
    for (const f of fields(raw)) {
      if (f.n !== 3 || !(f.v instanceof Uint8Array)) continue;
      const any = fields(f.v);
      const type = any.find((x) => x.n === 1)?.v;
      const value = any.find((x) => x.n === 2)?.v;
      if (!(type instanceof Uint8Array) || !(value instanceof Uint8Array) || Buffer.from(type).toString('utf8') !== RETRY_INFO_TYPE) continue;
      // RetryInfo: retry_delay = 1 (Duration: seconds = 1, nanos = 2).
      const delay = fields(value).find((x) => x.n === 1)?.v;
      if (!(delay instanceof Uint8Array)) return undefined;
      const d = fields(delay);
      const seconds = Number(BigInt.asIntN(64, (d.find((x) => x.n === 1)?.v as bigint | undefined) ?? 0n));
      const nanos = Number(BigInt.asIntN(32, (d.find((x) => x.n === 2)?.v as bigint | undefined) ?? 0n));
      const ms = seconds * 1000 + nanos / 1e6;
      return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
    }
  } catch {
    // A malformed trailer is no hint.
  }
  return undefined;
}

interface Field {
  n: number;
  v: bigint | Uint8Array;
}

/** The top-level fields of a protobuf message; throws on anything malformed. */
function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= b.length) throw new Error('truncated varint');
      const byte = b[i++] as number;
      r |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return r;
    }
    throw new Error('varint too long');
  };
  const take = (len: number): Uint8Array => {
    if (len < 0 || i + len > b.length) throw new Error('truncated field');
    const v = b.subarray(i, i + len);
    i += len;
    return v;
  };
  while (i < b.length) {
    const key = varint();
    const n = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) out.push({ n, v: varint() });
    else if (wire === 1) out.push({ n, v: take(8) });
    else if (wire === 2) out.push({ n, v: take(Number(varint())) });
    else if (wire === 5) out.push({ n, v: take(4) });
    else throw new Error(`wire type ${wire}`);
  }
  return out;
}
