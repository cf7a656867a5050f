import { ComponentRegistry } from './component/registry.ts';
import { tailscaleApiReceiverFactory } from '../receivers/tailscale_api/index.ts';
import { deviceMetricsReceiverFactory } from '../receivers/device_metrics/index.ts';
import { localTailscaledReceiverFactory } from '../receivers/local_tailscaled/index.ts';
import { headscaleReceiverFactory } from '../receivers/headscale/index.ts';
import { tailscaleLogsReceiverFactory } from '../receivers/tailscale_logs/index.ts';
import { attributesProcessorFactory } from '../processors/attributes/index.ts';
import { debugExporterFactory } from '../exporters/debug/index.ts';
import { flowMetricsConnectorFactory } from '../connectors/flow_metrics/index.ts';
import { auditMetricsConnectorFactory } from '../connectors/audit_metrics/index.ts';
import { deviceFilterProcessorFactory } from '../processors/device_filter/index.ts';
import { relabelProcessorFactory } from '../processors/relabel/index.ts';
import { stalenessProcessorFactory } from '../processors/staleness/index.ts';
import { prometheusExporterFactory } from '../exporters/prometheus/index.ts';
import { otlpExporterFactory } from '../exporters/otlp/index.ts';

/** Every built-in factory, listed explicitly (no registration by import side effect). */
export const builtinFactories = [
  tailscaleApiReceiverFactory,
  deviceMetricsReceiverFactory,
  localTailscaledReceiverFactory,
  headscaleReceiverFactory,
  tailscaleLogsReceiverFactory,
  deviceFilterProcessorFactory,
  attributesProcessorFactory,
  relabelProcessorFactory,
  stalenessProcessorFactory,
  prometheusExporterFactory,
  otlpExporterFactory,
  debugExporterFactory,
  flowMetricsConnectorFactory,
  auditMetricsConnectorFactory,
] as const;

/** A registry of the built-in components; pass extra factories to add your own. */
export function defaultRegistry(extra: ConstructorParameters<typeof ComponentRegistry>[0] = []): ComponentRegistry {
  return new ComponentRegistry([...builtinFactories, ...extra]);
}
