import type { Attributes, Counter } from '@opentelemetry/api';
import type { BatchInfo, Connector, ConnectorOutputs, Settings } from '../../src/component/types.ts';
import { OnceLogger } from '../../src/log/logger.ts';
import { BatchBuilder } from '../../src/model/batch.ts';
import type { LogsBatch } from '../../src/model/logs.ts';
import { VERSION } from '../../src/version.ts';
import { BoundedValues, labelValue } from '../common/labels.ts';
import type { AuditMetricsConfig } from './config.ts';

/** The log record this connector counts (what `tailscale_logs` emits per audit event). */
export const AUDIT_EVENT = 'tailscale.configuration.audit';

export const AUDIT_METRICS = {
  events: ['tailscale_configuration_events', 'Configuration audit events of the tailnet, by target type, action, actor type and whether the change succeeded.'],
} as const;

/** Longest value of an unknown event type, action or actor type (documented ones are shorter). */
const MAX_VALUE_LENGTH = 64;

// The values the Tailscale API documents; they always pass the per-label cap.
const TARGET_TYPES = ['tailnet', 'user', 'group', 'node', 'api_key', 'invite', 'share', 'billing', 'admin_console', 'web_interface', 'webhook_endpoint', 'failed_request', 'oauth_access_token'];
const ACTIONS = ['login', 'logout', 'create', 'update', 'delete', 'cancel', 'revoke', 'approve', 'suspend', 'restore', 'enable', 'disable', 'accept', 'expired', 'push_user', 'push_group', 'verify', 'join_waitlist', 'invite', 'join', 'leave', 'resend', 'migrate_auth_provider'];
const ACTOR_TYPES = ['user', 'node', 'automated_worker', 'oauth_client', 'scim', 'mullvad', 'logstream', 'secret_scanner'];

interface Series {
  readonly attributes: Attributes;
  readonly startMs: number;
  count: number;
}

/**
 * `audit_metrics`: counts configuration audit log records and emits, after every logs batch, the
 * full cumulative snapshot. Every label is bounded: documented values plus `max_values` others.
 */
export class AuditMetricsConnector implements Connector {
  private readonly _settings: Settings;
  private readonly _config: AuditMetricsConfig;
  private readonly _next: ConnectorOutputs;
  private readonly _series = new Map<string, Series>();
  private readonly _labels: Record<'event_type' | 'action' | 'actor_type' | 'tailnet', BoundedValues>;
  private readonly _overflow: Counter;
  private readonly _once: OnceLogger;
  private readonly _resource: Attributes = { 'service.name': 'tsmetrics', 'service.version': VERSION };
  private _stopped = false;

  constructor(settings: Settings, config: AuditMetricsConfig, next: ConnectorOutputs) {
    this._settings = settings;
    this._config = config;
    this._next = next;
    this._once = new OnceLogger(settings.logger);
    this._labels = {
      event_type: new BoundedValues(['unknown', ...TARGET_TYPES], config.max_values),
      action: new BoundedValues(['unknown', ...ACTIONS], config.max_values),
      actor_type: new BoundedValues(['unknown', ...ACTOR_TYPES], config.max_values),
      tailnet: new BoundedValues([''], config.max_values),
    };
    this._overflow = settings.meter.createCounter('tsmetrics_audit_metrics_overflow_records', {
      description: 'Audit log records counted with every label but tailnet set to "other" because max_series was reached.',
    });
  }

  async start(): Promise<void> {}

  async shutdown(): Promise<void> {
    this._stopped = true;
  }

  async consumeLogs(batch: LogsBatch, info: BatchInfo): Promise<void> {
    if (this._stopped) return;
    const now = this._settings.clock.now();
    let overflowed = 0;
    for (const rec of batch) {
      if (rec.eventName !== AUDIT_EVENT) continue;
      const a = rec.attributes;
      const value = (k: string, l: 'event_type' | 'action' | 'actor_type'): string => this._labels[l].map(labelValue(a[k], MAX_VALUE_LENGTH)?.toLowerCase() ?? 'unknown');
      const failed = labelValue(a['tailscale.audit.error']) !== undefined;
      let attrs: Attributes = {
        event_type: value('tailscale.audit.target.type', 'event_type'),
        action: value('tailscale.audit.action', 'action'),
        actor_type: value('tailscale.audit.actor.type', 'actor_type'),
        result: failed ? 'failed' : 'success',
        tailnet: this._labels.tailnet.map(labelValue(rec.resource.attributes['tailscale.tailnet']) ?? ''),
      };
      let key = JSON.stringify(Object.values(attrs));
      if (!this._series.has(key) && this._series.size >= this._config.max_series) {
        attrs = { ...attrs, event_type: 'other', action: 'other', actor_type: 'other' };
        key = JSON.stringify(Object.values(attrs));
        overflowed++;
      }
      let s = this._series.get(key);
      if (!s) {
        s = { attributes: attrs, startMs: now, count: 0 };
        this._series.set(key, s);
      }
      s.count++;
    }
    if (overflowed) {
      this._overflow.add(overflowed, { component_id: this._settings.id.key });
      this._once.fail('overflow', 'limit', 'audit_metrics reached max_series; new label combinations are counted as "other"', { max_series: this._config.max_series });
    }
    // One snapshot per collection: its parts are counted as they come, the last one sends it.
    if (info.more) return;
    const out = this._next.metrics;
    if (!out) return;
    const bb = new BatchBuilder(this._resource, { name: 'tsmetrics/audit_metrics', version: VERSION });
    const events = bb.counter(...AUDIT_METRICS.events);
    for (const s of this._series.values()) events.add(s.attributes, s.count, now, s.startMs);
    await out.consume(bb.build(), { source: this._settings.id.key, time: now, interval: info.interval });
  }
}
