import { listOf, parseJson, records, seconds, str, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const INVITE_METRICS = {
  count: ['tailscale_user_invites', 'Open (not yet accepted) user invites.', 'length of the user-invites list'],
  info: ['tailscale_user_invite_info', 'An open user invite and the role it grants (value is always 1); email only with include_user_email; the invite link is never read.', 'id, role, email'],
  lastEmailSent: ['tailscale_user_invite_last_email_sent_timestamp', 'Unix time the invite was last emailed; absent for link-only invites.', 'lastEmailSentAt'],
  firstSeen: ['tailscale_user_invite_first_seen_timestamp', 'Unix time tsmetrics first saw the invite open (the API gives no creation time); its age is time() minus this. After a restart, the time of the first read.', 'first cycle listing the id'],
} as const satisfies Record<string, MetricDef>;

interface Invite {
  id: string;
  role: string;
  email: string;
  lastEmailSent: number | undefined;
}

function decodeInvite(r: Record<string, unknown>): Invite | undefined {
  // The id is a string; tailnetId and inviterId are int64 JSON numbers that JSON.parse may round
  // past 2^53, which is harmless only because they are never used. inviteUrl is a credential.
  const id = str(r.id);
  if (!id) return undefined;
  return { id, role: str(r.role) ?? '', email: str(r.email) ?? '', lastEmailSent: seconds(r.lastEmailSentAt) };
}

/**
 * `invites`: one `GET …/user-invites` (a bare array, or `null` when there are none). Device share
 * invites are not read: they are listed per device, which would be one call per device.
 */
export function invitesCollector(): Collector {
  let firstSeen = new Map<string, number>();
  return {
    async collect(ctx: CollectorContext) {
      const { text } = await ctx.get(`${ctx.client.tailnetPath}/user-invites`);
      const invites = records(ctx, listOf(parseJson(text, 'user invite list'), null, 'user invite list', ctx.limits.maxItems), 'user invites', decodeInvite, (i) => i.id);
      const o = ctx.out;
      const nowS = Math.floor(ctx.nowMs / 1000);
      const seen = new Map<string, number>();
      o.gauge(INVITE_METRICS.count, {}, invites.length);
      for (const i of invites) {
        const id = { invite_id: i.id };
        o.gauge(INVITE_METRICS.info, { ...id, role: i.role, ...(ctx.includeUserEmail ? { email: i.email } : {}) }, 1);
        o.gauge(INVITE_METRICS.lastEmailSent, id, i.lastEmailSent);
        const first = firstSeen.get(i.id) ?? nowS;
        seen.set(i.id, first);
        o.gauge(INVITE_METRICS.firstSeen, id, first);
      }
      // Only the open invites are remembered, so memory follows the list.
      firstSeen = seen;
    },
  };
}
