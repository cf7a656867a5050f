/**
 * Protobuf wire pieces both OTLP encoders use (protobuf.ts for metrics, logs-protobuf.ts for
 * logs): varint sizes and writing, and timestamps as fixed64 nanoseconds without BigInt.
 */

export const TWO32 = 0x100000000;

/** Bytes of the varint of a non-negative integer. */
export const varintSize = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : v < 0x800000000 ? 5 : Math.ceil(Math.log2(v + 1) / 7));

/** Writes the varint of a non-negative integer at `pos`; returns the position after it. */
export function putVarint(buf: Uint8Array, pos: number, v: number): number {
  let x = v;
  if (x < 0x80000000) {
    while (x >= 0x80) {
      buf[pos++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
  } else {
    while (x >= 0x80) {
      buf[pos++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
  }
  buf[pos++] = x;
  return pos;
}

/**
 * s·1e9 + ns as the low and high 32 bits of a fixed64, by the arithmetic the installed official
 * writer uses: the seconds split into their low 16 bits (as a 32-bit integer) and the rest (as an
 * unsigned 32-bit integer), each times 1e9, so no partial product needs BigInt. For any time it
 * writes, and for those it cannot represent — before 1970, fractions, NaN (0) — these are its
 * bits. The last conversion is kept: the points or records of a batch mostly share their times.
 */
export class TimeBits {
  lo = 0;
  hi = 0;
  private _s = Number.NaN;
  private _ns = Number.NaN;
  set(s: number, ns: number): void {
    if (s === this._s && ns === this._ns) return;
    const fromLow = (s & 0xffff) * 1e9;
    const fromHigh = ((s / 0x10000) >>> 0) * 1e9;
    const low = (fromLow >>> 0) + (((fromHigh % 0x10000) * 0x10000) >>> 0) + ns;
    this.lo = low >>> 0;
    this.hi = (Math.floor(fromLow / TWO32) + ((fromHigh / 0x10000) >>> 0) + Math.floor(low / TWO32)) >>> 0;
    this._s = s;
    this._ns = ns;
  }
}
