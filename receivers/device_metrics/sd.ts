import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { HttpRoute } from '../../src/component/types.ts';
import { OnceLogger, type Logger } from '../../src/log/logger.ts';
import { boundLabel } from '../../src/model/labels.ts';
import type { Device } from '../../src/pipeline/inventory.ts';

/** One device the receiver would scrape now, with the `host:port` it dials. */
export interface DiscoveredTarget {
  readonly device: Device;
  /** Name of the tailnet whose inventory listed the device. */
  readonly tailnet: string;
  /** `127.0.0.2:5252`, `[fd7a:…]:5252` or `name.ts.net:5252` — exactly what is scraped. */
  readonly address: string;
}

/** Bounds of the document; a violation costs the label value or the response, nothing else. */
export interface DiscoveryLimits {
  /** Longest single label value, code points (the receiver's `label_max_length`). */
  readonly labelMaxLength: number;
  /** Longest comma-joined list (tags, addresses), characters; whole items beyond it are left out. */
  readonly listMaxLength: number;
  /** Largest document, bytes. */
  readonly maxBytes: number;
}

/** Prefix of every label this document carries, as Prometheus' SD mechanisms name theirs. */
export const META_PREFIX = '__meta_tailscale_device_';

/**
 * Joins list items with commas. Items that could not be told apart again (empty, containing a
 * comma, longer than a label value) are left out, and so is every item after the list reaches
 * `max` characters, so a list is never cut inside an item.
 */
function joinList(items: readonly unknown[], limits: DiscoveryLimits): string {
  let out = '';
  for (const it of items) {
    if (typeof it !== 'string' || it === '' || it.includes(',') || it.length > limits.labelMaxLength || !it.isWellFormed()) continue;
    if (out.length + it.length + 1 > limits.listMaxLength) break;
    out += out ? `,${it}` : it;
  }
  return out;
}

/** The labels of one target group (empty values are left out: Prometheus treats them as absent). */
export function targetLabels(t: DiscoveredTarget, metricsPath: string, limits: DiscoveryLimits): Record<string, string> {
  const d = t.device;
  const text = (v: unknown): string => (typeof v === 'string' ? boundLabel(v, limits.labelMaxLength) : '');
  const tags = joinList(Array.isArray(d.tags) ? d.tags : [], limits);
  // Plain IPs only: the list is meant for relabel regexes, and a zone id or port in an API
  // record is noise there.
  const addresses = joinList(Array.isArray(d.addresses) ? d.addresses.filter((a) => typeof a === 'string' && a.length <= 45 && isIP(a) !== 0 && !a.includes('%')) : [], limits);
  const labels: Record<string, string> = {
    [`${META_PREFIX}id`]: text(d.id),
    [`${META_PREFIX}name`]: text(d.name),
    [`${META_PREFIX}hostname`]: text(d.hostname),
    [`${META_PREFIX}os`]: text(d.os),
    [`${META_PREFIX}user`]: text(d.user),
    // Surrounded by commas, as Prometheus' other SD mechanisms do, so `.*,tag:prod,.*` needs
    // no special case for the first or last tag.
    [`${META_PREFIX}tags`]: tags ? `,${tags},` : '',
    [`${META_PREFIX}online`]: String(d.online === true),
    [`${META_PREFIX}authorized`]: String(d.authorized === true),
    // "-" is the API's alias for the credential's own tailnet, not a name.
    [`${META_PREFIX}tailnet`]: t.tailnet === '-' ? '' : text(t.tailnet),
    [`${META_PREFIX}addresses`]: addresses,
  };
  if (metricsPath !== '/metrics') labels.__metrics_path__ = metricsPath;
  for (const k of Object.keys(labels)) if (labels[k] === '') delete labels[k];
  return labels;
}

/**
 * Renders the Prometheus HTTP SD document: one target group per target. Returns undefined when
 * it would exceed `limits.maxBytes` (it stops building as soon as it does).
 */
export function renderDiscovery(targets: readonly DiscoveredTarget[], metricsPath: string, limits: DiscoveryLimits): string | undefined {
  let out = '[';
  let bytes = 3; // "[", "]" and the newline
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i] as DiscoveredTarget;
    const chunk = (i > 0 ? ',' : '') + JSON.stringify({ targets: [t.address], labels: targetLabels(t, metricsPath, limits) });
    bytes += Buffer.byteLength(chunk);
    if (bytes > limits.maxBytes) return undefined;
    out += chunk;
  }
  return `${out}]\n`;
}

export interface DiscoveryRouteOptions {
  readonly path: string;
  /** The targets the receiver would scrape now (its own selection). */
  readonly select: () => readonly DiscoveredTarget[];
  /**
   * What the selection depends on that changes (the inventory snapshots): while every element
   * is the same object as at the last render, the rendered document is reused.
   */
  readonly version: () => readonly unknown[];
  readonly metricsPath: string;
  readonly limits: DiscoveryLimits;
  readonly logger: Logger;
  /** Called once per refused response (self-telemetry error count). */
  readonly onTooLarge: () => void;
  /** Clock for the cache's age, ms. */
  readonly now: () => number;
}

/** A rendered document is reused for at most this long even when the inventory is unchanged. */
const CACHE_MS = 5_000;

/**
 * `GET <path>`: the receiver's targets in Prometheus' `http_sd_configs` format. Before the
 * first inventory the answer is `[]` (no targets, which Prometheus accepts). A document larger
 * than the bound is answered 503, so Prometheus keeps the targets it had.
 */
export function discoveryRoute(o: DiscoveryRouteOptions): HttpRoute {
  const once = new OnceLogger(o.logger);
  let cached: { key: readonly unknown[]; atMs: number; body: string } | undefined;
  const sameKey = (a: readonly unknown[], b: readonly unknown[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
  return {
    path: o.path,
    protected: true,
    handle(_req: IncomingMessage, res: ServerResponse) {
      const key = o.version();
      const now = o.now();
      let body = cached && sameKey(cached.key, key) && now - cached.atMs < CACHE_MS ? cached.body : undefined;
      if (body === undefined) {
        body = renderDiscovery(o.select(), o.metricsPath, o.limits);
        if (body === undefined) {
          cached = undefined;
          o.onTooLarge();
          once.fail('sd', 'too_large', 'service discovery document exceeds max_response_bytes; answered 503', { path: o.path, max_response_bytes: o.limits.maxBytes });
          res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
          res.end(`the target list is larger than service_discovery.max_response_bytes (${o.limits.maxBytes})\n`);
          return;
        }
        once.ok('sd', 'service discovery document fits again', { path: o.path });
        cached = { key, atMs: now, body };
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
  };
}
