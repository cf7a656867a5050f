import type { ConnectorFactory } from '../../src/component/types.ts';
import { configSchema, type FlowMetricsConfig } from './config.ts';
import { FlowMetricsConnector } from './flows.ts';

export type { FlowMetricsConfig } from './config.ts';
export { FlowMetricsConnector, FLOW_EVENT, FLOW_METRICS } from './flows.ts';

/** `flow_metrics`: network flow log records (logs) → byte and packet counters (metrics). */
export const flowMetricsConnectorFactory: ConnectorFactory<FlowMetricsConfig> = {
  kind: 'connector',
  type: 'flow_metrics',
  stability: 'alpha',
  description: 'Sums Tailscale network flow log records into byte and packet counters by source, destination, traffic type and protocol.',
  configSchema,
  pairs: [{ from: 'logs', to: 'metrics' }],
  createConnector: (settings, config, next) => new FlowMetricsConnector(settings, config, next),
};
