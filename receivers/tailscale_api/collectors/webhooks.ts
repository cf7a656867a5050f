import { listOf, parseJson, records, seconds, str, strings, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const WEBHOOK_METRICS = {
  count: ['tailscale_webhooks', 'Number of webhook endpoints.', 'length of webhooks[]'],
  info: ['tailscale_webhook_info', 'A webhook endpoint and its provider (value is always 1); its URL and secret are never read.', 'endpointId, providerType ("" = generic)'],
  subscriptions: ['tailscale_webhook_subscriptions', 'Events the endpoint subscribes to.', 'length of subscriptions[]'],
  subscription: ['tailscale_webhook_subscription', 'An event the endpoint subscribes to (value is always 1).', 'subscriptions[]'],
  created: ['tailscale_webhook_created_timestamp', 'Unix time the endpoint was created.', 'created'],
  lastModified: ['tailscale_webhook_last_modified_timestamp', 'Unix time the endpoint was last changed.', 'lastModified'],
} as const satisfies Record<string, MetricDef>;

interface Webhook {
  id: string;
  provider: string;
  subscriptions: string[];
  total: number;
  created: number | undefined;
  lastModified: number | undefined;
}

function decodeWebhook(ctx: CollectorContext, r: Record<string, unknown>): Webhook | undefined {
  const id = str(r.endpointId);
  if (!id) return undefined;
  // endpointUrl carries tokens (Slack, Discord hook URLs), and secret signs deliveries: neither
  // is read. creatorLoginName is a person's login and is not needed either.
  return {
    id,
    provider: str(r.providerType) || 'generic',
    subscriptions: strings(ctx, r.subscriptions, 'webhook subscriptions') ?? [],
    total: Array.isArray(r.subscriptions) ? r.subscriptions.filter((x) => typeof x === 'string').length : 0,
    created: seconds(r.created),
    lastModified: seconds(r.lastModified),
  };
}

/** `webhooks`: one `GET …/webhooks`. */
export function webhooksCollector(): Collector {
  return {
    async collect(ctx: CollectorContext) {
      const { text } = await ctx.get(`${ctx.client.tailnetPath}/webhooks`);
      const hooks = records(ctx, listOf(parseJson(text, 'webhook list'), 'webhooks', 'webhook list', ctx.limits.maxItems), 'webhooks', (r) => decodeWebhook(ctx, r), (w) => w.id);
      const o = ctx.out;
      o.gauge(WEBHOOK_METRICS.count, {}, hooks.length);
      for (const w of hooks) {
        const id = { endpoint_id: w.id };
        o.gauge(WEBHOOK_METRICS.info, { ...id, provider: w.provider }, 1);
        o.gauge(WEBHOOK_METRICS.subscriptions, id, w.total);
        for (const event of w.subscriptions) o.gauge(WEBHOOK_METRICS.subscription, { ...id, event }, 1);
        o.gauge(WEBHOOK_METRICS.created, id, w.created);
        o.gauge(WEBHOOK_METRICS.lastModified, id, w.lastModified);
      }
    },
  };
}
