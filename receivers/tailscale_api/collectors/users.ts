import { b01, bool, count, labelOf, listOf, parseJson, records, seconds, str, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const USER_METRICS = {
  info: ['tailscale_user_info', 'A user of the tailnet (value is always 1); login_name and display_name only with include_user_email.', 'id, role, status, type; loginName, displayName'],
  created: ['tailscale_user_created_timestamp', 'Unix time the user joined the tailnet.', 'created'],
  lastSeen: ['tailscale_user_last_seen_timestamp', 'Unix time the user was last seen (a node connecting or any login).', 'lastSeen'],
  devices: ['tailscale_user_devices', 'Devices the user owns.', 'deviceCount'],
  connected: ['tailscale_user_connected', 'Whether a node of the user is connected to control right now (1) or not (0).', 'currentlyConnected'],
  count: ['tailscale_users', 'Users by role and status.', 'users[] counted by role, status'],
  awaiting: ['tailscale_users_awaiting_approval', 'Users that cannot join until an admin approves them.', 'users[] with status needs-approval'],
} as const satisfies Record<string, MetricDef>;

interface User {
  id: string;
  loginName: string;
  displayName: string;
  role: string;
  status: string;
  type: string;
  created: number | undefined;
  lastSeen: number | undefined;
  deviceCount: number | undefined;
  connected: boolean | undefined;
}

function decodeUser(r: Record<string, unknown>): User | undefined {
  const id = str(r.id) ?? (typeof r.id === 'number' && Number.isSafeInteger(r.id) ? String(r.id) : undefined);
  if (!id) return undefined;
  return {
    id,
    loginName: str(r.loginName) ?? '',
    displayName: str(r.displayName) ?? '',
    role: str(r.role) ?? '',
    status: str(r.status) ?? '',
    type: str(r.type) ?? '',
    created: seconds(r.created),
    lastSeen: seconds(r.lastSeen),
    deviceCount: count(r.deviceCount),
    connected: bool(r.currentlyConnected),
  };
}

/** `users`: one `GET …/users?type=all` (members and users shared in from other tailnets). */
export function usersCollector(): Collector {
  return {
    async collect(ctx: CollectorContext) {
      const { text } = await ctx.get(`${ctx.client.tailnetPath}/users?type=all`);
      const users = records(ctx, listOf(parseJson(text, 'user list'), 'users', 'user list', ctx.limits.maxItems), 'users', decodeUser, (u) => u.id);
      const o = ctx.out;
      const combos = new Map<string, { role: string; status: string; n: number }>();
      let awaiting = 0;
      for (const u of users) {
        const id = { user_id: u.id };
        o.gauge(USER_METRICS.info, { ...id, role: u.role, status: u.status, type: u.type, ...(ctx.includeUserEmail ? { login_name: u.loginName, display_name: u.displayName } : {}) }, 1);
        o.gauge(USER_METRICS.created, id, u.created);
        o.gauge(USER_METRICS.lastSeen, id, u.lastSeen);
        o.gauge(USER_METRICS.devices, id, u.deviceCount);
        if (u.connected !== undefined) o.gauge(USER_METRICS.connected, id, b01(u.connected));
        const role = labelOf(ctx, u.role);
        const status = labelOf(ctx, u.status);
        const key = `${role}\u0000${status}`;
        const c = combos.get(key) ?? { role, status, n: 0 };
        c.n++;
        combos.set(key, c);
        if (u.status === 'needs-approval') awaiting++;
      }
      for (const c of combos.values()) o.gauge(USER_METRICS.count, { role: c.role, status: c.status }, c.n);
      o.gauge(USER_METRICS.awaiting, {}, awaiting);
    },
  };
}
