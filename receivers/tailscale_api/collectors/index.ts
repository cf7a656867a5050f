import type { Collector, MetricDef } from './common.ts';
import { DNS_METRICS, dnsCollector } from './dns.ts';
import { INVITE_METRICS, invitesCollector } from './invites.ts';
import { KEY_METRICS, keysCollector } from './keys.ts';
import { LOG_STREAM_METRICS, logStreamingCollector } from './log-streaming.ts';
import { POLICY_METRICS, policyCollector } from './policy.ts';
import { POSTURE_METRICS, postureCollector } from './posture.ts';
import { SERVICE_HOST_METRICS, SERVICE_METRICS, serviceHostsCollector, servicesCollector } from './services.ts';
import { SETTINGS_METRICS, settingsCollector } from './settings.ts';
import type { CollectorName } from './spec.ts';
import { USER_METRICS, usersCollector } from './users.ts';
import { WEBHOOK_METRICS, webhooksCollector } from './webhooks.ts';

export { COLLECTOR_NAMES, COLLECTORS, resolveCollectors, type CollectorName, type CollectorSettings } from './spec.ts';

/** Creates a collector's state; `startMs` is when the receiver was created (counter start). */
export function createCollector(name: Exclude<CollectorName, 'devices'>, startMs: number): Collector {
  switch (name) {
    case 'users':
      return usersCollector();
    case 'keys':
      return keysCollector();
    case 'dns':
      return dnsCollector();
    case 'settings':
      return settingsCollector();
    case 'posture':
      return postureCollector();
    case 'services':
      return servicesCollector();
    case 'service_hosts':
      return serviceHostsCollector();
    case 'policy':
      return policyCollector(startMs);
    case 'log_streaming':
      return logStreamingCollector();
    case 'webhooks':
      return webhooksCollector();
    case 'invites':
      return invitesCollector();
  }
}

/** Every metric of every collector but devices (whose table is API_METRICS), by collector. */
export const COLLECTOR_METRICS: Readonly<Record<Exclude<CollectorName, 'devices'>, Readonly<Record<string, MetricDef>>>> = {
  users: USER_METRICS,
  keys: KEY_METRICS,
  dns: DNS_METRICS,
  settings: SETTINGS_METRICS,
  posture: POSTURE_METRICS,
  services: SERVICE_METRICS,
  service_hosts: SERVICE_HOST_METRICS,
  policy: POLICY_METRICS,
  log_streaming: LOG_STREAM_METRICS,
  webhooks: WEBHOOK_METRICS,
  invites: INVITE_METRICS,
};
