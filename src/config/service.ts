import type { ComponentId } from '../component/id.ts';
import { parseComponentId } from '../component/id.ts';
import type { ComponentRegistry } from '../component/registry.ts';
import { signalsOf, type AnyFactory, type ComponentKind, type ConnectorFactory, type ProcessorFactory, type Signal } from '../component/types.ts';
import type { ConfigProblem } from '../errors.ts';
import { ConfigError } from '../errors.ts';
import type { LogFormat, LogLevel } from '../log/logger.ts';
import { defineSchema, parseConfig, redactConfig, type ConfigSchema } from './schema.ts';
import { serviceSecretFiles } from './secrets-file.ts';

/** A component instance after validation. */
export interface ResolvedComponent {
  readonly id: ComponentId;
  readonly kind: ComponentKind;
  readonly factory: AnyFactory;
  readonly config: unknown;
}

export interface PipelineConfig {
  /** `metrics`, `metrics/<name>`, `logs` or `logs/<name>`. */
  readonly name: string;
  /** The signal the id names. */
  readonly signal: Signal;
  readonly receivers: readonly string[];
  readonly processors: readonly string[];
  readonly exporters: readonly string[];
}

/** Process-level settings (`service:` in YAML, `PORT`/`ENV`/`LOG_*` in env). */
export interface TsnetSettings {
  enabled: boolean;
  hostname: string;
  state_dir: string;
  tags: string[];
  auth_key: string;
  auth_key_file: string;
  tailscaled_path: string;
  tailscale_path: string;
  serve: boolean;
  startup_timeout: number;
}

export interface ServiceSettings {
  http: { address: string; port: number; metrics_token: string; metrics_token_file: string; max_connections: number; write_timeout: number; max_metrics_streams: number };
  tsnet: TsnetSettings;
  telemetry: { logs: { level: LogLevel; format: LogFormat } };
  shutdown_timeout: number;
}

/** Fully validated configuration: what the runtime builds from. */
export interface ServiceConfig {
  /** `env` or the YAML file path. */
  readonly source: string;
  readonly receivers: ReadonlyMap<string, ResolvedComponent>;
  readonly processors: ReadonlyMap<string, ResolvedComponent>;
  readonly exporters: ReadonlyMap<string, ResolvedComponent>;
  /** Components that are the exporter of one pipeline and the receiver of another. */
  readonly connectors: ReadonlyMap<string, ResolvedComponent>;
  readonly pipelines: readonly PipelineConfig[];
  readonly service: ServiceSettings;
  /** Secret values found anywhere in the config (to be scrubbed from output). */
  readonly secrets: readonly string[];
  /**
   * Where each effective service setting came from (`service.http.port` → `env PORT`), by the
   * rule flag > environment > file > default. Set by `loadConfig`.
   */
  readonly origins?: Readonly<Record<string, string>>;
  /** Things the user should know, such as variables that are set but unused by the file. */
  readonly notes?: readonly string[];
}

export const serviceSchema: ConfigSchema<ServiceSettings> = defineSchema<ServiceSettings>({
  http: {
    address: { doc: 'Address the HTTP server binds.', format: 'host', default: '127.0.0.1' },
    port: { doc: 'HTTP server port (0 = any free port).', format: 'port', default: 9100 },
    metrics_token: { doc: 'Bearer token required on /metrics and /debug (empty = none).', format: 'secret', default: '' },
    metrics_token_file: { doc: 'File holding metrics_token (METRICS_TOKEN_FILE), read at start.', format: String, default: '' },
    max_connections: { doc: 'Concurrent connections the server accepts.', format: 'nat', default: 256 },
    write_timeout: {
      doc: 'Longest a response may take to reach the client; a client that reads slower, or not at all, is disconnected and everything held for it is released.',
      format: 'positive_duration',
      default: 30_000,
    },
    max_metrics_streams: {
      doc: 'Concurrent /metrics responses (render and stream); a request above this gets 503 with Retry-After at once. Keep it well below max_connections so probes always find a connection.',
      format: (v: unknown) => {
        if (!Number.isInteger(v) || (v as number) < 1) throw new Error('must be a whole number, at least 1');
      },
      default: 4,
    },
  },
  tsnet: {
    enabled: { doc: 'Run as a tailnet node through a supervised userspace tailscaled (USE_TSNET).', format: Boolean, default: false },
    hostname: { doc: 'Hostname of the node (TSNET_HOSTNAME).', format: String, default: 'tsmetrics' },
    state_dir: { doc: 'State directory of the node, created with mode 0700 (TSNET_STATE_DIR).', format: String, default: '/tmp/tsnet-tsmetrics' },
    tags: { doc: 'Tags the node advertises (TSNET_TAGS); the auth key must allow them.', format: 'string_list', default: [] },
    auth_key: { doc: 'Auth key (TS_AUTHKEY); passed to tailscale as a file, never on a command line.', format: 'secret', default: '' },
    auth_key_file: { doc: 'File holding auth_key (TS_AUTHKEY_FILE), read at start.', format: String, default: '' },
    tailscaled_path: { doc: 'tailscaled binary (TAILSCALED_PATH); empty = found on PATH.', format: String, default: '' },
    tailscale_path: { doc: 'tailscale CLI (TAILSCALE_PATH); empty = beside tailscaled or on PATH.', format: String, default: '' },
    serve: { doc: 'Offer the HTTP endpoints on the tailnet with tailscale serve (TSNET_SERVE).', format: Boolean, default: true },
    startup_timeout: { doc: 'How long to wait for the node to be Running before giving up.', format: 'positive_duration', default: 120_000 },
  },
  telemetry: {
    logs: {
      level: { doc: 'Log level.', format: ['debug', 'info', 'warn', 'error'], default: 'info' },
      format: { doc: 'Log format.', format: ['text', 'json'], default: 'text' },
    },
  },
  shutdown_timeout: { doc: 'How long shutdown may take before the process exits anyway.', format: 'positive_duration', default: 10_000 },
});

/** The raw, unvalidated shape shared by the YAML file and the env builder. */
export interface RawServiceConfig {
  receivers?: unknown;
  processors?: unknown;
  exporters?: unknown;
  connectors?: unknown;
  service?: unknown;
  [k: string]: unknown;
}

type SectionKey = 'receivers' | 'processors' | 'exporters' | 'connectors';
const KINDS: Array<{ key: SectionKey; kind: ComponentKind }> = [
  { key: 'receivers', kind: 'receiver' },
  { key: 'processors', kind: 'processor' },
  { key: 'exporters', kind: 'exporter' },
  { key: 'connectors', kind: 'connector' },
];
const PIPELINE_LISTS = ['receivers', 'processors', 'exporters'] as const;
const PIPELINE_ID = /^(metrics|logs)(\/[^\s/]+)?$/;

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Validates a raw configuration against the registry: every component id, every component's
 * settings, every pipeline reference. Collects all problems before failing.
 */
export function resolveConfig(raw: RawServiceConfig, registry: ComponentRegistry, source: string): ServiceConfig {
  const problems: ConfigProblem[] = [];
  const secrets: string[] = [];
  const allowedTop = new Set(['receivers', 'processors', 'exporters', 'connectors', 'service', 'extensions']);
  for (const k of Object.keys(raw)) if (!allowedTop.has(k)) problems.push({ source, path: k, message: 'unknown key' });
  if (raw.extensions !== undefined && !(isMap(raw.extensions) && Object.keys(raw.extensions).length === 0)) problems.push({ source, path: 'extensions', message: 'not supported by tsmetrics' });

  const resolved: Record<SectionKey, Map<string, ResolvedComponent>> = { receivers: new Map(), processors: new Map(), exporters: new Map(), connectors: new Map() };
  for (const { key, kind } of KINDS) {
    const section = raw[key];
    if (section === undefined || section === null) continue;
    if (!isMap(section)) {
      problems.push({ source, path: key, message: 'must be a map of component ids to settings' });
      continue;
    }
    for (const [idText, compRaw] of Object.entries(section)) {
      const id = parseComponentId(idText);
      if (typeof id === 'string') {
        problems.push({ source, path: `${key}.${idText}`, message: id });
        continue;
      }
      const factory = registry.get(kind, id.type);
      if (!factory) {
        const known = registry.types(kind).join(', ');
        problems.push({ source, path: `${key}.${idText}`, message: `unknown ${kind} type "${id.type}" (known: ${known})` });
        continue;
      }
      const r = parseConfig(factory.configSchema as ConfigSchema<unknown>, compRaw ?? {}, source, `${key}.${idText}`);
      if (!r.ok) {
        problems.push(...r.problems);
        continue;
      }
      secrets.push(...r.secrets);
      resolved[key].set(idText, { id, kind, factory, config: r.config });
    }
  }

  const svcRaw = raw.service ?? {};
  let service: ServiceSettings | undefined;
  const pipelines: PipelineConfig[] = [];
  if (!isMap(svcRaw)) problems.push({ source, path: 'service', message: 'must be a map' });
  else {
    const { pipelines: pipesRaw, ...rest } = svcRaw;
    const r = parseConfig(serviceSchema, rest, source, 'service');
    if (r.ok) {
      const files = serviceSecretFiles(r.config, source);
      service = files.service;
      secrets.push(...r.secrets, ...files.secrets);
      problems.push(...files.problems);
    } else problems.push(...r.problems);

    if (!isMap(pipesRaw) || Object.keys(pipesRaw).length === 0) {
      problems.push({ source, path: 'service.pipelines', message: 'at least one pipeline is required' });
    } else {
      for (const [name, p] of Object.entries(pipesRaw)) {
        const path = `service.pipelines.${name}`;
        const m = PIPELINE_ID.exec(name);
        if (!m) {
          const why = /^traces(\/|$)/.test(name) ? ' (tsmetrics carries metrics and logs, not traces)' : '';
          problems.push({ source, path, message: `pipeline ids are "metrics", "metrics/<name>", "logs" or "logs/<name>"${why}` });
        }
        const signal = (m?.[1] ?? 'metrics') as Signal;
        if (!isMap(p)) {
          problems.push({ source, path, message: 'must be a map with receivers, processors and exporters' });
          continue;
        }
        for (const k of Object.keys(p)) if (!(PIPELINE_LISTS as readonly string[]).includes(k)) problems.push({ source, path: `${path}.${k}`, message: 'unknown key' });
        const lists: Record<string, string[]> = {};
        for (const key of PIPELINE_LISTS) {
          const v = p[key] ?? [];
          if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
            problems.push({ source, path: `${path}.${key}`, message: 'must be a list of component ids' });
            lists[key] = [];
            continue;
          }
          lists[key] = v as string[];
          const seen = new Set<string>();
          for (const ref of v as string[]) {
            if (seen.has(ref)) problems.push({ source, path: `${path}.${key}`, message: `"${ref}" is listed twice` });
            seen.add(ref);
            // A connector stands where a receiver or an exporter would.
            const asConnector = key !== 'processors' && isMap(raw.connectors) && Object.hasOwn(raw.connectors, ref);
            const declared = (isMap(raw[key]) && Object.hasOwn(raw[key] as object, ref)) || asConnector;
            if (!declared) {
              problems.push({ source, path: `${path}.${key}`, message: `references "${ref}", which is not defined under ${key}${key === 'processors' ? '' : ' or connectors'}` });
              continue;
            }
            if (asConnector) continue;
            const c = resolved[key].get(ref);
            if (c && !signalsOf(c.factory as { signals?: readonly Signal[] }).includes(signal)) {
              problems.push({ source, path: `${path}.${key}`, message: `"${ref}" does not support ${signal} (${c.id.type} handles ${signalsOf(c.factory as { signals?: readonly Signal[] }).join(' and ')}), so it cannot be in the ${signal} pipeline "${name}"` });
            }
          }
        }
        if ((lists.receivers ?? []).length === 0) problems.push({ source, path: `${path}.receivers`, message: 'a pipeline needs at least one receiver' });
        if ((lists.exporters ?? []).length === 0) problems.push({ source, path: `${path}.exporters`, message: 'a pipeline needs at least one exporter' });
        // The staleness processor finds a failing device by `device_id` and
        // `tsmetrics_device_scrape_up`; a processor before it that rewrites names or labels
        // could make its grace period silently wrong, so that order is refused.
        const procs = lists.processors ?? [];
        const stale = procs.findIndex((ref) => resolved.processors.get(ref)?.id.type === 'staleness');
        for (const ref of procs.slice(0, Math.max(0, stale))) {
          const c = resolved.processors.get(ref);
          const f = c?.factory as ProcessorFactory<unknown> | undefined;
          if (c && f?.rewritesData?.(c.config)) problems.push({ source, path: `${path}.processors`, message: `"${ref}" rewrites names and labels, so it must come after "${procs[stale]}" (staleness reads device_id and tsmetrics_device_scrape_up as the receivers wrote them)` });
        }
        pipelines.push({ name, signal, receivers: lists.receivers ?? [], processors: lists.processors ?? [], exporters: lists.exporters ?? [] });
      }
      problems.push(...connectorProblems(resolved.connectors, pipelines, source));
    }
  }

  if (problems.length || !service) throw new ConfigError(problems);
  return {
    source,
    receivers: resolved.receivers,
    processors: resolved.processors,
    exporters: resolved.exporters,
    connectors: resolved.connectors,
    pipelines,
    service,
    secrets,
  };
}

/**
 * The rules a connector must follow, as in the Collector: it is the exporter of at least one
 * pipeline and the receiver of at least one, each pair of signals it joins is one its factory
 * supports, and no chain of connectors leads a pipeline back into itself.
 */
function connectorProblems(connectors: ReadonlyMap<string, ResolvedComponent>, pipelines: readonly PipelineConfig[], source: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [id, c] of connectors) {
    const f = c.factory as ConnectorFactory<unknown>;
    const asExporter = pipelines.filter((p) => p.exporters.includes(id));
    const asReceiver = pipelines.filter((p) => p.receivers.includes(id));
    if (asExporter.length === 0 && asReceiver.length === 0) continue;
    if (asExporter.length === 0) problems.push({ source, path: `connectors.${id}`, message: `is a receiver of ${asReceiver.map((p) => `"${p.name}"`).join(', ')} but no pipeline lists it as an exporter, so it would never receive anything` });
    if (asReceiver.length === 0) problems.push({ source, path: `connectors.${id}`, message: `is an exporter of ${asExporter.map((p) => `"${p.name}"`).join(', ')} but no pipeline lists it as a receiver, so what it makes would go nowhere` });
    const pairs = f.pairs.map((x) => `${x.from} → ${x.to}`).join(', ');
    for (const p of asExporter) {
      if (!f.pairs.some((x) => x.from === p.signal)) problems.push({ source, path: `service.pipelines.${p.name}.exporters`, message: `"${id}" does not take ${p.signal} (${c.id.type} connects ${pairs}), so it cannot export from the ${p.signal} pipeline "${p.name}"` });
    }
    for (const p of asReceiver) {
      if (!f.pairs.some((x) => x.to === p.signal)) problems.push({ source, path: `service.pipelines.${p.name}.receivers`, message: `"${id}" does not emit ${p.signal} (${c.id.type} connects ${pairs}), so it cannot be a receiver of the ${p.signal} pipeline "${p.name}"` });
      for (const q of asExporter) {
        if (!f.pairs.some((x) => x.from === q.signal && x.to === p.signal) && f.pairs.some((x) => x.from === q.signal) && f.pairs.some((x) => x.to === p.signal)) {
          problems.push({ source, path: `connectors.${id}`, message: `cannot join the ${q.signal} pipeline "${q.name}" to the ${p.signal} pipeline "${p.name}" (${c.id.type} connects ${pairs})` });
        }
      }
    }
  }
  // A pipeline feeds another through each connector it exports to; a cycle would loop data.
  const next = new Map<string, string[]>(pipelines.map((p) => [p.name, pipelines.filter((q) => q.receivers.some((r) => connectors.has(r) && p.exporters.includes(r))).map((q) => q.name)]));
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, trail: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      problems.push({ source, path: 'service.pipelines', message: `connectors form a cycle: ${[...trail.slice(trail.indexOf(name)), name].join(' → ')}` });
      return;
    }
    state.set(name, 'visiting');
    for (const n of next.get(name) ?? []) visit(n, [...trail, name]);
    state.set(name, 'done');
  };
  for (const p of pipelines) visit(p.name, []);
  return problems;
}

/** The config as printed by `/debug` and `tsmetrics validate`: secrets replaced by [REDACTED]. */
export function redactedConfig(cfg: ServiceConfig): unknown {
  const comp = (m: ReadonlyMap<string, ResolvedComponent>): Record<string, unknown> =>
    Object.fromEntries([...m].map(([k, c]) => [k, redactConfig(c.factory.configSchema as ConfigSchema<unknown>, c.config)]));
  return {
    source: cfg.source,
    receivers: comp(cfg.receivers),
    processors: comp(cfg.processors),
    exporters: comp(cfg.exporters),
    ...(cfg.connectors.size ? { connectors: comp(cfg.connectors) } : {}),
    service: { ...(redactConfig(serviceSchema, cfg.service) as object), pipelines: Object.fromEntries(cfg.pipelines.map((p) => [p.name, { receivers: p.receivers, processors: p.processors, exporters: p.exporters }])) },
  };
}
