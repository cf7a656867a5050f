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

/**
 * A registry of the built-in components; pass extra factories to add your own. An extra factory
 * of the same kind and type as a built-in one replaces it (a `debug` exporter writing elsewhere,
 * a patched receiver); two extras of the same kind and type are still an error.
 */
export function defaultRegistry(extra: ConstructorParameters<typeof ComponentRegistry>[0] = []): ComponentRegistry {
  const replaced = new Set(extra.map((f) => `${f.kind}\u0000${f.type}`));
  return new ComponentRegistry([...builtinFactories.filter((f) => !replaced.has(`${f.kind}\u0000${f.type}`)), ...extra]);
}
