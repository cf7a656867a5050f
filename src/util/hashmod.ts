import { createHash } from 'node:crypto';

/**
 * Prometheus' `hashmod`: MD5 of the value, the digest's last 8 bytes read as a big-endian
 * unsigned 64-bit integer, modulo `modulus`. Used by the relabel action and for sharding, so a
 * device lands on the same shard as a Prometheus hashmod rule would put it.
 */
export function hashmod(value: string, modulus: number): number {
  const d = createHash('md5').update(value).digest();
  return Number(d.readBigUInt64BE(8) % BigInt(modulus));
}
