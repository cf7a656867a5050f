import { isIP } from 'node:net';

/** A parsed network: address family, prefix bits and the network address as a bigint. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bits: number;
  readonly network: bigint;
  readonly text: string;
}

/** Parses an IPv4 or IPv6 address into a bigint; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4. */
export function parseIp(text: string): { family: 4 | 6; value: bigint } | undefined {
  let t = text.trim();
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const zone = t.indexOf('%');
  if (zone >= 0) t = t.slice(0, zone);
  const kind = isIP(t);
  if (kind === 4) {
    const parts = t.split('.').map(Number);
    let v = 0n;
    for (const p of parts) v = (v << 8n) | BigInt(p);
    return { family: 4, value: v };
  }
  if (kind === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t);
    if (mapped) return parseIp(mapped[1] as string);
    let head = t;
    let tail = '';
    const dbl = t.indexOf('::');
    if (dbl >= 0) {
      head = t.slice(0, dbl);
      tail = t.slice(dbl + 2);
    }
    const toGroups = (s: string): number[] => {
      if (s === '') return [];
      const out: number[] = [];
      for (const g of s.split(':')) {
        if (g.includes('.')) {
          const v4 = parseIp(g);
          if (!v4) return [];
          out.push(Number((v4.value >> 16n) & 0xffffn), Number(v4.value & 0xffffn));
        } else out.push(parseInt(g, 16));
      }
      return out;
    };
    const h = toGroups(head);
    const tl = toGroups(tail);
    const groups = dbl >= 0 ? [...h, ...new Array<number>(8 - h.length - tl.length).fill(0), ...tl] : h;
    let v = 0n;
    for (const g of groups) v = (v << 16n) | BigInt(g);
    const v4mapped = v >> 32n === 0xffffn;
    if (v4mapped) return { family: 4, value: v & 0xffffffffn };
    return { family: 6, value: v };
  }
  return undefined;
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  const width = ip.family === 4 ? 32 : 128;
  if (bits > width) return undefined;
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
  return { family: ip.family, bits, network: ip.value & mask, text };
}

/** True when `address` lies inside one of `nets`. Non-IP input is never inside. */
export function ipInNetworks(address: string, nets: readonly Cidr[]): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  for (const n of nets) {
    if (n.family !== ip.family) continue;
    const width = n.family === 4 ? 32 : 128;
    const mask = n.bits === 0 ? 0n : ((1n << BigInt(n.bits)) - 1n) << BigInt(width - n.bits);
    if ((ip.value & mask) === n.network) return true;
  }
  return false;
}
