import type { ExpositionFamily } from '../device_metrics/exposition.ts';
import { globMatcher } from '../../src/util/glob.ts';

/**
 * tailscaled's internal clientmetrics (`GET /localapi/v0/metrics`) are unprefixed and unstable
 * (`magicsock_recv_data_derp`, `controlclient_map_requests`, …). They are published under this
 * prefix, inside the device namespace (`tailscaled_*`) where everything a tailscaled says about
 * itself lives, so they can never shadow a series tsmetrics computes.
 */
export const CLIENT_METRIC_PREFIX = 'tailscaled_clientmetric_';

/** Most samples read from one clientmetrics body (tailscaled 1.10x publishes about 300). */
export const MAX_CLIENT_METRIC_SAMPLES = 5_000;

/**
 * Keeps the families whose tailscaled name matches one of `allow` (globs, case-insensitive) and
 * renames them under `CLIENT_METRIC_PREFIX`. Only `counter` and `gauge` exist in this format;
 * anything else a daemon sends is left out (returned in `refused`).
 */
export function selectClientMetrics(families: readonly ExpositionFamily[], allow: readonly string[]): { families: ExpositionFamily[]; refused: number } {
  const match = globMatcher(allow);
  const out: ExpositionFamily[] = [];
  let refused = 0;
  for (const f of families) {
    if (!match(f.name)) continue;
    if (f.type !== 'counter' && f.type !== 'gauge') {
      refused += f.samples.length;
      continue;
    }
    out.push({ ...f, name: CLIENT_METRIC_PREFIX + f.name, help: f.help ?? `tailscaled clientmetric ${f.name} (unstable name, from /localapi/v0/metrics).`, samples: f.samples.map((s) => ({ ...s, name: CLIENT_METRIC_PREFIX + s.name })) });
  }
  return { families: out, refused };
}
