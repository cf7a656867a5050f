import { createHash } from 'node:crypto';
import { OnceLogger } from '../../../src/log/logger.ts';
import { b01, count, isObj, listOf, parseJson, records, seconds, str, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const POSTURE_METRICS = {
  info: ['tailscale_posture_integration_info', 'A device posture integration (value is always 1).', 'id, provider'],
  synced: ['tailscale_posture_integration_synced', 'Whether the integration has synced at least once (1) or never (0).', 'status present'],
  lastSync: ['tailscale_posture_integration_last_sync_timestamp', 'Unix time of the last sync attempt (it advances on failures too).', 'status.lastSync'],
  error: ['tailscale_posture_integration_error', 'Whether the last sync failed (1) or not (0); the error text is logged, never a label.', 'status.error non-empty'],
  providerHosts: ['tailscale_posture_integration_provider_hosts', 'Devices the provider knows.', 'status.providerHostCount'],
  matched: ['tailscale_posture_integration_matched_hosts', 'Tailscale devices matched to a provider device.', 'status.matchedCount'],
  possibleMatched: ['tailscale_posture_integration_possible_matched_hosts', 'Tailscale devices that carry identifiers usable for matching.', 'status.possibleMatchedCount'],
  configUpdated: ['tailscale_posture_integration_config_updated_timestamp', 'Unix time the integration’s configuration last changed.', 'configUpdated'],
} as const satisfies Record<string, MetricDef>;

interface Integration {
  id: string;
  provider: string;
  configUpdated: number | undefined;
  status:
    | { lastSync: number | undefined; error: string; providerHosts: number | undefined; matched: number | undefined; possibleMatched: number | undefined }
    | undefined;
}

/** Error text goes to the log on one line, this long at most. */
const MAX_LOGGED_ERROR = 200;

function decodeIntegration(r: Record<string, unknown>): Integration | undefined {
  const id = str(r.id);
  if (!id) return undefined;
  const s = isObj(r.status) ? r.status : undefined;
  return {
    id,
    provider: str(r.provider) ?? '',
    configUpdated: seconds(r.configUpdated),
    // Never `clientSecret` (write-only anyway), nor the client and tenant ids.
    status: s ? { lastSync: seconds(s.lastSync), error: str(s.error) ?? '', providerHosts: count(s.providerHostCount), matched: count(s.matchedCount), possibleMatched: count(s.possibleMatchedCount) } : undefined,
  };
}

/**
 * `posture`: one `GET …/posture/integrations`. A failing sync is a 0/1 metric; its text (provider
 * output, possibly multi-line) is logged once per integration and error, cut and scrubbed.
 */
export function postureCollector(): Collector {
  let once: OnceLogger | undefined;
  return {
    async collect(ctx: CollectorContext) {
      const { text } = await ctx.get(`${ctx.client.tailnetPath}/posture/integrations`);
      const list = records(ctx, listOf(parseJson(text, 'posture integration list'), 'integrations', 'posture integration list', ctx.limits.maxItems), 'posture integrations', decodeIntegration, (i) => i.id);
      once ??= new OnceLogger(ctx.logger);
      const o = ctx.out;
      for (const i of list) {
        const id = { integration_id: i.id };
        o.gauge(POSTURE_METRICS.info, { ...id, provider: i.provider }, 1);
        o.gauge(POSTURE_METRICS.configUpdated, id, i.configUpdated);
        o.gauge(POSTURE_METRICS.synced, id, b01(i.status !== undefined));
        const s = i.status;
        if (!s) continue;
        o.gauge(POSTURE_METRICS.lastSync, id, s.lastSync);
        o.gauge(POSTURE_METRICS.error, id, b01(s.error !== ''));
        o.gauge(POSTURE_METRICS.providerHosts, id, s.providerHosts);
        o.gauge(POSTURE_METRICS.matched, id, s.matched);
        o.gauge(POSTURE_METRICS.possibleMatched, id, s.possibleMatched);
        const key = `posture:${i.id}`;
        if (s.error) {
          const digest = createHash('sha256').update(s.error).digest('hex').slice(0, 16);
          const shown = ctx.secrets.scrub(s.error.slice(0, 4096)).replace(/\s+/g, ' ').slice(0, MAX_LOGGED_ERROR);
          once.fail(key, digest, 'posture integration sync failing', { integration_id: i.id.slice(0, 64), provider: i.provider.slice(0, 64), error: shown });
        } else once.ok(key, 'posture integration syncing again', { integration_id: i.id.slice(0, 64) });
      }
      once.forgetExcept(new Set(list.map((i) => `posture:${i.id}`)));
    },
  };
}
