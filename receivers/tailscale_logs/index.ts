import type { ReceiverFactory } from '../../src/component/types.ts';
import { ErrorCode, TsmetricsError } from '../../src/errors.ts';
import { configSchema, type TailscaleLogsConfig } from './config.ts';
import { createTailscaleLogsReceiver } from './receiver.ts';

export type { TailscaleLogsConfig } from './config.ts';
export { AUDIT_EVENT, FLOW_EVENT } from './mapping.ts';
export { SCOPE_NAME } from './receiver.ts';

/** `tailscale_logs`: network flow logs and configuration audit logs from the Tailscale API, as log records. */
export const tailscaleLogsReceiverFactory: ReceiverFactory<TailscaleLogsConfig> = {
  kind: 'receiver',
  type: 'tailscale_logs',
  stability: 'alpha',
  description: 'Network flow logs and configuration audit logs from the Tailscale API as OpenTelemetry log records (overlapping windows, de-duplicated, position kept across restarts).',
  signals: ['logs'],
  configSchema,
  createReceiver() {
    throw new TsmetricsError(ErrorCode.CONFIG_INVALID, 'tailscale_logs only produces logs: put it in a logs pipeline (service.pipelines.logs)');
  },
  createLogsReceiver: createTailscaleLogsReceiver,
};
