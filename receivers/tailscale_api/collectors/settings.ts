import { ApiDecodeError } from '../decode.ts';
import { b01, isObj, num, parseJson, type Collector, type CollectorContext, type MetricDef } from './common.ts';

export const SETTINGS_METRICS = {
  setting: ['tailscale_tailnet_setting', 'A boolean tailnet setting, on (1) or off (0); absent while the API says null (unknown) or the credential lacks the scope that field needs.', 'every boolean field (devicesApprovalOn, usersApprovalOn, …)'],
  keyDuration: ['tailscale_tailnet_device_key_duration_seconds', 'How long a node key lasts before it expires, seconds.', 'devicesKeyDurationDays × 86400'],
  info: ['tailscale_tailnet_setting_info', 'An enumerated tailnet setting and its value (value is always 1).', 'usersRoleAllowedToJoinExternalTailnets, routeSelection'],
} as const satisfies Record<string, MetricDef>;

/** Fields that read back as false unless the credential also has another scope. */
const NEEDS_SCOPE: Readonly<Record<string, string>> = {
  aclsExternallyManagedOn: 'policy_file:read',
  networkFlowLoggingOn: 'logs:network:read',
  httpsEnabled: 'networking_settings:read',
};

/** Enumerations reported as info; free text (`aclsExternalLink`, a URL that may hold credentials) is never read. */
const ENUMS = ['usersRoleAllowedToJoinExternalTailnets', 'routeSelection'] as const;
const ENUM_RE = /^[A-Za-z0-9._-]{1,64}$/;
const DAY_S = 86_400;

/**
 * `settings`: one `GET …/settings`. Every boolean field is reported (so new settings appear
 * without a release); a field whose true value needs a scope the OAuth token lacks is left out
 * rather than reported as a misleading 0.
 */
export function settingsCollector(): Collector {
  return {
    async collect(ctx: CollectorContext) {
      const d = parseJson((await ctx.get(`${ctx.client.tailnetPath}/settings`)).text, 'tailnet settings');
      if (!isObj(d)) throw new ApiDecodeError('tailnet settings are not an object');
      const o = ctx.out;
      let kept = 0;
      let extra = 0;
      const hidden: string[] = [];
      for (const [setting, v] of Object.entries(d)) {
        if (typeof v !== 'boolean') continue;
        const scope = NEEDS_SCOPE[setting];
        if (scope && ctx.client.hasScope(scope) === false) {
          hidden.push(`${setting} (needs ${scope})`);
          continue;
        }
        if (kept >= ctx.limits.maxValues) {
          extra++;
          continue;
        }
        kept++;
        o.gauge(SETTINGS_METRICS.setting, { setting }, b01(v));
      }
      if (extra) ctx.drop('limit', 'boolean tailnet settings', extra);
      if (hidden.length) ctx.logger.debug('tailnet settings left out: the token lacks the scope that makes them true values', { settings: hidden.join(', ') });
      const days = num(d.devicesKeyDurationDays);
      if (days !== undefined && days > 0) o.gauge(SETTINGS_METRICS.keyDuration, {}, days * DAY_S);
      for (const setting of ENUMS) {
        const v = d[setting];
        if (typeof v === 'string' && ENUM_RE.test(v)) o.gauge(SETTINGS_METRICS.info, { setting, value: v }, 1);
      }
    },
  };
}
