import { ApiCallError } from '../client.ts';
import { ApiDecodeError } from '../decode.ts';
import { b01, bool, isObj, parseJson, strings, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const DNS_METRICS = {
  magicDns: ['tailscale_dns_magic_dns', 'Whether MagicDNS is on (1) or off (0).', 'preferences.magicDNS'],
  overrideLocal: ['tailscale_dns_override_local_dns', 'Whether the global nameservers replace the devices’ own resolvers (1) or are only a fallback (0).', 'preferences.overrideLocalDNS'],
  nameserverInfo: ['tailscale_dns_nameserver_info', 'A global nameserver (value is always 1); use_with_exit_node is empty when the API does not say.', 'nameservers[].address, useWithExitNode'],
  nameservers: ['tailscale_dns_nameservers', 'Number of global nameservers.', 'length of nameservers[]'],
  splitDomainInfo: ['tailscale_dns_split_domain_info', 'A split-DNS domain (value is always 1).', 'keys of splitDNS'],
  splitDomainResolvers: ['tailscale_dns_split_domain_resolvers', 'Resolvers of a split-DNS domain (0 when the domain has none).', 'length of splitDNS[domain]'],
  splitDomains: ['tailscale_dns_split_domains', 'Number of split-DNS domains.', 'number of keys of splitDNS'],
  searchPathInfo: ['tailscale_dns_search_path_info', 'A DNS search path (value is always 1).', 'searchPaths[]'],
  searchPaths: ['tailscale_dns_search_paths', 'Number of DNS search paths.', 'length of searchPaths[]'],
} as const satisfies Record<string, MetricDef>;

interface Resolver {
  address: string;
  useWithExitNode: boolean | undefined;
}

interface DnsConfig {
  nameservers: { list: Resolver[]; total: number };
  splitDns: { domains: Array<{ domain: string; resolvers: number }>; total: number };
  searchPaths: { list: string[]; total: number };
  magicDns: boolean | undefined;
  overrideLocal: boolean | undefined;
}

/** A resolver is `{address, useWithExitNode}` in the new endpoint and a bare address in the old ones. */
function resolver(v: unknown): Resolver | undefined {
  if (typeof v === 'string') return { address: v, useWithExitNode: undefined };
  if (isObj(v) && typeof v.address === 'string') return { address: v.address, useWithExitNode: bool(v.useWithExitNode) };
  return undefined;
}

function resolvers(ctx: CollectorContext, v: unknown, what: string): { list: Resolver[]; total: number } {
  const all = Array.isArray(v) ? v : [];
  const list: Resolver[] = [];
  for (const x of all) {
    const r = resolver(x);
    if (r && list.length < ctx.limits.maxValues) list.push(r);
  }
  if (all.length > ctx.limits.maxValues) ctx.drop('limit', what, all.length - ctx.limits.maxValues);
  return { list, total: all.length };
}

function splitDomains(ctx: CollectorContext, v: unknown): DnsConfig['splitDns'] {
  if (!isObj(v)) return { domains: [], total: 0 };
  const keys = Object.keys(v);
  const domains: Array<{ domain: string; resolvers: number }> = [];
  for (const domain of keys.slice(0, ctx.limits.maxValues)) {
    // `null` means the domain is configured without resolvers.
    const rs = v[domain];
    domains.push({ domain, resolvers: Array.isArray(rs) ? rs.length : 0 });
  }
  if (keys.length > ctx.limits.maxValues) ctx.drop('limit', 'split-DNS domains', keys.length - ctx.limits.maxValues);
  return { domains, total: keys.length };
}

function searchPaths(ctx: CollectorContext, v: unknown): DnsConfig['searchPaths'] {
  const list = strings(ctx, v, 'DNS search paths') ?? [];
  return { list, total: Array.isArray(v) ? v.filter((x) => typeof x === 'string').length : 0 };
}

async function legacy(ctx: CollectorContext): Promise<DnsConfig> {
  // Older control servers only have the four single-purpose endpoints.
  const base = `${ctx.client.tailnetPath}/dns`;
  const [ns, sp, prefs, split] = await Promise.all(['nameservers', 'searchpaths', 'preferences', 'split-dns'].map(async (p) => parseJson((await ctx.get(`${base}/${p}`)).text, `DNS ${p}`)));
  if (!isObj(ns) || !isObj(sp) || !isObj(prefs)) throw new ApiDecodeError('DNS answer is not an object');
  return { nameservers: resolvers(ctx, ns.dns, 'DNS nameservers'), splitDns: splitDomains(ctx, split), searchPaths: searchPaths(ctx, sp.searchPaths), magicDns: bool(prefs.magicDNS), overrideLocal: undefined };
}

/**
 * `dns`: one `GET …/dns/configuration`. A control server without it (404) is read through the
 * four older endpoints from then on (remembered until restart, so it costs one 404 per process).
 */
export function dnsCollector(): Collector {
  let useLegacy = false;
  return {
    async collect(ctx: CollectorContext) {
      let c: DnsConfig;
      if (useLegacy) c = await legacy(ctx);
      else {
        let text: string;
        try {
          text = (await ctx.get(`${ctx.client.tailnetPath}/dns/configuration`)).text;
        } catch (err) {
          if (!(err instanceof ApiCallError) || err.status !== 404) throw err;
          c = await legacy(ctx).catch(() => {
            throw err;
          });
          useLegacy = true;
          emit(ctx, c);
          return;
        }
        const d = parseJson(text, 'DNS configuration');
        if (!isObj(d)) throw new ApiDecodeError('DNS configuration is not an object');
        const prefs = isObj(d.preferences) ? d.preferences : {};
        c = { nameservers: resolvers(ctx, d.nameservers, 'DNS nameservers'), splitDns: splitDomains(ctx, d.splitDNS), searchPaths: searchPaths(ctx, d.searchPaths), magicDns: bool(prefs.magicDNS), overrideLocal: bool(prefs.overrideLocalDNS) };
      }
      emit(ctx, c);
    },
  };
}

function emit(ctx: CollectorContext, c: DnsConfig): void {
  const o = ctx.out;
  if (c.magicDns !== undefined) o.gauge(DNS_METRICS.magicDns, {}, b01(c.magicDns));
  if (c.overrideLocal !== undefined) o.gauge(DNS_METRICS.overrideLocal, {}, b01(c.overrideLocal));
  for (const r of c.nameservers.list) o.gauge(DNS_METRICS.nameserverInfo, { address: r.address, use_with_exit_node: r.useWithExitNode === undefined ? '' : String(r.useWithExitNode) }, 1);
  o.gauge(DNS_METRICS.nameservers, {}, c.nameservers.total);
  for (const d of c.splitDns.domains) {
    o.gauge(DNS_METRICS.splitDomainInfo, { domain: d.domain }, 1);
    o.gauge(DNS_METRICS.splitDomainResolvers, { domain: d.domain }, d.resolvers);
  }
  o.gauge(DNS_METRICS.splitDomains, {}, c.splitDns.total);
  for (const p of c.searchPaths.list) o.gauge(DNS_METRICS.searchPathInfo, { search_path: p }, 1);
  o.gauge(DNS_METRICS.searchPaths, {}, c.searchPaths.total);
}
