import { createHmac } from 'node:crypto';
import { BoundedCache } from '../../src/model/names.ts';
import { ipInNetworks, parseCidr, parseIp, type Cidr } from '../../src/util/cidr.ts';
import type { PrivacyConfig, PrivacyMode } from './config.ts';

/** Tailscale's address ranges: CGNAT for IPv4, the ULA prefix for IPv6. */
const TAILNET_RANGES = ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'].map((c) => parseCidr(c) as Cidr);

/** The DERP "magic IP": in physical entries its port is a DERP region id, not a real endpoint. */
export const DERP_MAGIC_IP = '127.3.3.40';

/**
 * Parsed-address facts by address text. A flow log names the same few hundred addresses over and
 * over, and parsing one (an IPv6 regex, a BigInt) cost a tenth of the whole path; the cache holds
 * at most 50 000 entries of at most 64 characters (the older half forgotten first), so hostile
 * records cannot grow it.
 */
const facts = new BoundedCache<AddressFacts>({ maxChars: 16 * 1024 * 1024, maxEntries: 50_000, sizeOf: () => 32 });

/** What mapping needs to know of an address: its canonical key and whether it is a tailnet one. */
export interface AddressFacts {
  /** Canonical text, so `fd7a:…:0:1` and `fd7a:…::1` are the same key; undefined when not an IP. */
  readonly key: string | undefined;
  /** In 100.64.0.0/10 or fd7a:115c:a1e0::/48. */
  readonly tailnet: boolean;
}

function factsOf(address: string): AddressFacts {
  const ip = parseIp(address);
  return { key: ip ? `${ip.family}/${ip.value.toString(16)}` : undefined, tailnet: ip !== undefined && ipInNetworks(address, TAILNET_RANGES) };
}

export function addressFacts(address: string): AddressFacts {
  return address.length <= 64 ? facts.getOrSet(address, factsOf) : factsOf(address);
}

/** Canonical text of an address, so `fd7a:…:0:1` and `fd7a:…::1` are the same key. */
export function addressKey(address: string): string | undefined {
  return addressFacts(address).key;
}

/**
 * Applies the privacy settings. Hashes are keyed (HMAC-SHA256 with `hash_key`), hex, 16 digits:
 * stable for joins across records and restarts, not reversible by hashing guesses without the key.
 */
export class Privacy {
  readonly actors: PrivacyMode;
  readonly external: PrivacyMode;
  private readonly _key: string;

  constructor(c: PrivacyConfig) {
    this.actors = c.actors;
    this.external = c.external_addresses;
    this._key = c.hash_key;
  }

  hash(value: string): string {
    return createHmac('sha256', this._key).update(value).digest('hex').slice(0, 16);
  }

  /** An actor identity as it may be emitted: itself, its hash, or undefined (dropped). Empty stays empty. */
  actor(value: string | undefined): string | undefined {
    if (value === undefined || value === '' || this.actors === 'keep') return value;
    return this.actors === 'hash' ? this.hash(value) : undefined;
  }

  /** An external address as it may be emitted (see `actor`). */
  address(value: string): string | undefined {
    if (this.external === 'keep') return value;
    return this.external === 'hash' ? this.hash(value) : undefined;
  }
}
