/**
 * tsmetrics public API: the pipeline builder, the registry, the built-in factories and the
 * config types. Named exports only.
 */
// First: on a too-old Node.js this prints one line and exits before any dependency loads.
import './runtime/node-check.ts';
export { PipelineService, type ServiceOptions, type ShutdownReport } from './pipeline/service.ts';
export { untilAborted, beforeDeadline, type ShutdownReporter } from './util/abort.ts';
export type { ServiceFlags, Origin } from './config/precedence.ts';
export { createScrapingReceiver, type ScrapeResult, type ScraperOptions } from './pipeline/scraper.ts';
export { InventoryHub, type Device, type DeviceSelector, type InventorySnapshot } from './pipeline/inventory.ts';
export { ComponentRegistry } from './component/registry.ts';
export { componentId, parseComponentId, type ComponentId } from './component/id.ts';
export type {
  BatchInfo,
  Clock,
  Component,
  ComponentKind,
  Exporter,
  ExporterFactory,
  HttpRoute,
  MetricsConsumer,
  Processor,
  ProcessorFactory,
  Receiver,
  ReceiverFactory,
  Settings,
  Stability,
} from './component/types.ts';
export { builtinFactories, defaultRegistry } from './components.ts';
export { loadConfig, startTsmetrics, isDemo, type Running, type RunOptions } from './app.ts';
export { resolveConfig, redactedConfig, type ServiceConfig, type RawServiceConfig, type PipelineConfig, type ServiceSettings } from './config/service.ts';
export { defineSchema, parseConfig, type ConfigSchema } from './config/schema.ts';
export { parseDuration, formatDuration } from './config/duration.ts';
export { ConfigError, TsmetricsError, ErrorCode, type ConfigProblem } from './errors.ts';
export { createLogger, nopLogger, Redactor, type Logger, type LogLevel, type LogFormat } from './log/logger.ts';
export { SelfTelemetry, type ErrorKind } from './telemetry/self.ts';
export { BatchBuilder, MetricBuilder, msToHrTime, hrTimeToMs, countPoints, mapMetrics, snapshotPoints } from './model/batch.ts';
export { markStale, isStale, markBatchHasStale, batchHasStale } from './model/stale.ts';
export { HttpServer } from './server/http.ts';
export { SelfEndpoints } from './component/types.ts';
export { TailnetSimulator, type SimulatorOptions, type Fault } from './simulator/simulator.ts';
export { HeadscaleSimulator, type HeadscaleSimulatorOptions, type HeadscaleVersion } from './simulator/headscale.ts';
export { main } from './cli/main.ts';
export { VERSION } from './version.ts';

export { tailscaleApiReceiverFactory, API_METRICS, type TailscaleApiConfig } from '../receivers/tailscale_api/index.ts';
export {
  deviceMetricsReceiverFactory,
  parseExposition,
  ExpositionParseError,
  type DeviceMetricsConfig,
  type ExpositionFamily,
  type ExpositionSample,
  type FamilyType,
} from '../receivers/device_metrics/index.ts';
export { localTailscaledReceiverFactory, type LocalTailscaledConfig } from '../receivers/local_tailscaled/index.ts';
export { headscaleReceiverFactory, HEADSCALE_METRICS, type HeadscaleConfig } from '../receivers/headscale/index.ts';
export { TailscaledSupervisor, type TsnetOptions } from './tsnet/supervisor.ts';
export { deviceFilterProcessorFactory, deviceSelector, type DeviceFilterConfig } from '../processors/device_filter/index.ts';
export {
  relabelProcessorFactory,
  relabel,
  validateRelabelConfig,
  RelabelConfigError,
  relabelBatch,
  type RelabelConfig,
  type RelabelAction,
  type RelabelProcessorConfig,
} from '../processors/relabel/index.ts';
export { stalenessProcessorFactory, createStalenessProcessor, type StalenessConfig } from '../processors/staleness/index.ts';
export { prometheusExporterFactory, PrometheusExporterComponent, type PrometheusExporterConfig } from '../exporters/prometheus/index.ts';
export { otlpExporterFactory, OtlpExporterComponent, type OtlpExporterConfig } from '../exporters/otlp/index.ts';
