import type { ConnectorFactory } from '../../src/component/types.ts';
import { AuditMetricsConnector } from './audit.ts';
import { configSchema, type AuditMetricsConfig } from './config.ts';

export type { AuditMetricsConfig } from './config.ts';
export { AuditMetricsConnector, AUDIT_EVENT, AUDIT_METRICS } from './audit.ts';

/** `audit_metrics`: configuration audit log records (logs) → an event counter (metrics). */
export const auditMetricsConnectorFactory: ConnectorFactory<AuditMetricsConfig> = {
  kind: 'connector',
  type: 'audit_metrics',
  stability: 'alpha',
  description: 'Counts Tailscale configuration audit log records by target type, action, actor type and result.',
  configSchema,
  pairs: [{ from: 'logs', to: 'metrics' }],
  createConnector: (settings, config, next) => new AuditMetricsConnector(settings, config, next),
};
