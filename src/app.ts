import type { AddressInfo } from 'node:net';
import type { ComponentRegistry } from './component/registry.ts';
import { defaultRegistry } from './components.ts';
import { envToRawConfig, hasNoCredentials, readEnv, variableForPath } from './config/env.ts';
import { redactedConfig, resolveConfig, type RawServiceConfig, type ServiceConfig } from './config/service.ts';
import { loadYamlConfig, type UnsetReference } from './config/yaml.ts';
import { createLogger, Redactor, type Logger } from './log/logger.ts';
import { PAST_DEADLINE_GRACE_MS, PipelineService, type ShutdownReport } from './pipeline/service.ts';
import { HttpServer, type ReloadOutcome } from './server/http.ts';
import { TailnetSimulator } from './simulator/simulator.ts';
import { startHeadscaleSimulator, type HeadscaleSimulator } from './simulator/headscale.ts';
import { VERSION } from './version.ts';
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, errorMessage, formatProblem, type ConfigProblem } from './errors.ts';
import { ReloadQueue, restartOnly } from './pipeline/reload.ts';
import type { LogFields } from './log/logger.ts';
import { applyServicePrecedence, unusedVariables, type ServiceFlags } from './config/precedence.ts';
import { defaultTailscalePath, freePort, TailscaledSupervisor, which } from './tsnet/supervisor.ts';
import type { ResolvedComponent } from './config/service.ts';
import { SelfEndpoints } from './component/types.ts';
import { listenable, settlesBy } from './util/abort.ts';

/** Points every device_metrics receiver without its own proxy at the tsnet node's proxy. */
function withProxy(config: ServiceConfig, proxyUrl: string): ServiceConfig {
  const receivers = new Map<string, ResolvedComponent>();
  for (const [id, c] of config.receivers) {
    const cfg = c.config as { proxy_url?: string };
    receivers.set(id, c.id.type === 'device_metrics' && !cfg.proxy_url ? { ...c, config: Object.freeze({ ...cfg, proxy_url: proxyUrl }) } : c);
  }
  return { ...config, receivers };
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Demo mode reads the simulator's flow and audit logs, shows each batch on stdout through the
 * debug exporter and turns them into flow metrics on /metrics; a variable the user set wins.
 */
function demoLogDefaults(env: Env): Record<string, string> {
  const defaults: Record<string, string> = { TS_LOG_TYPES: 'network,configuration', TS_LOG_INTERVAL: '30s', DEBUG_EXPORTER: 'logs' };
  return Object.fromEntries(Object.entries(defaults).filter(([k]) => !env[k]));
}

/** Where the configuration comes from. */
export interface LoadedConfig {
  config: ServiceConfig;
  /** True when demo mode (no credentials) built the config against the simulator. */
  demo: boolean;
}

/** Whether the environment asks for demo mode: no credentials, no pipeline file, not production. */
export function isDemo(env: Env, configFile: string | undefined): boolean {
  const e = readEnv(env);
  return !configFile && !e.CONFIG_FILE && hasNoCredentials(e) && !['production', 'prod'].includes(e.ENV.toLowerCase());
}

/**
 * Loads and validates the configuration: the YAML file when given (`--config` or CONFIG_FILE),
 * otherwise the environment. Service settings follow one precedence rule either way: flag >
 * environment variable > file > default (see config/precedence.ts); `origins` says which one
 * won for each, and `notes` lists set variables a pipeline file does not use. Throws
 * `ConfigError` listing every problem, each named by the variable or file key the user set.
 */
export function loadConfig(env: Env, opts: { configFile?: string; registry?: ComponentRegistry; extraEnv?: Env; flags?: ServiceFlags } = {}): ServiceConfig {
  const registry = opts.registry ?? defaultRegistry();
  const merged = { ...env, ...opts.extraEnv };
  const e = readEnv(merged);
  const file = opts.configFile ?? (e.CONFIG_FILE || undefined);
  if (file) {
    const unset: UnsetReference[] = [];
    const raw = loadYamlConfig(file, merged, unset);
    const { service, origins } = applyServicePrecedence(raw.service, merged, e, opts.flags);
    let cfg: ServiceConfig;
    try {
      cfg = resolveConfig({ ...raw, service }, registry, file);
    } catch (err) {
      throw err instanceof ConfigError ? explainUnset(err, unset) : err;
    }
    const notes = unusedVariables(readFileSync(file, 'utf8'), env).map((v) => `${v} is set but ${file} does not use it; write \${env:${v}} where it applies`);
    return { ...cfg, origins, notes };
  }
  const raw = envToRawConfig(e);
  const { service, origins } = applyServicePrecedence({}, merged, e, opts.flags);
  try {
    const cfg = resolveConfig({ ...raw, service: mergeService(raw.service, service) }, registry, 'env');
    return { ...cfg, origins, notes: [] };
  } catch (err) {
    throw err instanceof ConfigError ? new ConfigError(err.problems.map((p) => envProblem(p))) : err;
  }
}

/** Deep-merges the precedence result over the env-built service map. */
function mergeService(base: unknown, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...((base ?? {}) as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' ? mergeService(b, v as Record<string, unknown>) : v;
  }
  return out;
}

/** A problem in the env-built pipeline, named by the variable the user set. */
function envProblem(p: ConfigProblem): ConfigProblem {
  const variable = variableForPath(p.path);
  return variable ? { source: 'env', path: variable, message: p.message } : p;
}

/** Adds "(from ${env:X}, which is not set)" to problems at keys whose value came from an unset variable. */
function explainUnset(err: ConfigError, unset: readonly UnsetReference[]): ConfigError {
  if (unset.length === 0) return err;
  return new ConfigError(
    err.problems.map((p) => {
      const u = unset.find((x) => p.path === x.path || p.path.startsWith(`${x.path}.`) || x.path.startsWith(`${p.path}.`));
      return u ? { ...p, message: `${p.message} (the file writes \${env:${u.name}}, and ${u.name} is not set)` } : p;
    }),
  );
}

export interface RunOptions {
  env: Env;
  configFile?: string;
  /** Service settings from the command line (highest precedence). */
  flags?: ServiceFlags;
  registry?: ComponentRegistry;
  logger?: Logger;
  /** Override the HTTP port (tests use 0). */
  port?: number;
  /** Log lines go here (default stderr). */
  write?: (line: string) => void;
}

/** A running tsmetrics: pipeline, HTTP server and (in demo mode) the simulator. */
export interface Running {
  readonly service: PipelineService;
  /** The supervised tailscaled in tsnet mode. */
  readonly supervisor: TailscaledSupervisor | undefined;
  readonly server: HttpServer;
  readonly address: AddressInfo;
  readonly url: string;
  readonly simulator: TailnetSimulator | undefined;
  /** The simulated Headscale server in front of `simulator` (demo mode with DEMO_HEADSCALE). */
  readonly headscale: HeadscaleSimulator | undefined;
  /** The configuration running now (a successful {@link reload} replaces it). */
  readonly config: ServiceConfig;
  readonly logger: Logger;
  /**
   * Re-reads the configuration (the pipeline file and the environment, as at start), validates
   * it whole, and applies it: only changed components are rebuilt, settings that need a restart
   * are reported and kept. On any problem the running configuration stays and `ok` is false,
   * with one line per problem (also logged). SIGHUP and `POST /-/reload` call this. Concurrent
   * calls share runs; it never rejects.
   */
  reload(): Promise<ReloadOutcome>;
  /**
   * Stops the pipeline, the tsnet node, the HTTP server and the simulator within `deadline`
   * (default `service.shutdown_timeout`), logging one line that names whatever the deadline cut
   * off. Idempotent. Resolves with what was cut off and which steps failed; it never rejects.
   */
  stop(deadline?: AbortSignal): Promise<ShutdownReport>;
}

/** Builds and starts everything the CLI runs (also used by end-to-end tests). */
export async function startTsmetrics(o: RunOptions): Promise<Running> {
  const e = readEnv(o.env);
  const redactor = new Redactor();
  for (const v of [e.OAUTH_CLIENT_SECRET, e.TS_API_KEY, e.OAUTH_TOKEN, e.TS_AUTHKEY, e.METRICS_TOKEN, e.OTEL_EXPORTER_OTLP_HEADERS, e.HEADSCALE_API_KEY]) redactor.add(v);
  let simulator: TailnetSimulator | undefined;
  let headscale: HeadscaleSimulator | undefined;
  let extraEnv: Record<string, string> = {};
  const demo = isDemo(o.env, o.configFile);
  if (demo) {
    // One flaky device (desktop-07) shows what scrape errors and backoff look like.
    simulator = new TailnetSimulator({ devices: e.DEMO_DEVICES, names: e.TEST_DEVICES.length ? e.TEST_DEVICES : undefined, ephemeralLifetimeMs: 120_000, flakyDeviceIndex: 6, localApi: !e.DEMO_HEADSCALE });
    await simulator.start();
    extraEnv = { ...demoLogDefaults(o.env), ...simulator.env() };
    redactor.add(extraEnv.TS_API_KEY);
    if (e.DEMO_HEADSCALE) {
      // The same devices, watched as a Headscale tailnet: its variables replace the Tailscale API's.
      headscale = await startHeadscaleSimulator(simulator);
      extraEnv = headscale.env();
      redactor.add(extraEnv.HEADSCALE_API_KEY);
    }
  }
  let config: ServiceConfig;
  try {
    config = loadConfig(o.env, { ...(o.configFile ? { configFile: o.configFile } : {}), ...(o.registry ? { registry: o.registry } : {}), ...(o.flags ? { flags: o.flags } : {}), extraEnv });
  } catch (err) {
    await headscale?.stop();
    await simulator?.stop();
    throw err;
  }
  for (const s of config.secrets) redactor.add(s);
  const logs = config.service.telemetry.logs;
  const makeLogger = (l: typeof logs): Logger => createLogger({ level: l.level, format: l.format, redactor, ...(o.write ? { write: o.write } : {}) });
  // Our own logger is one a reload can switch (level, format); a caller's is used as given.
  let baseLogger = o.logger ?? makeLogger(logs);
  const logger = o.logger ?? switchableLogger(() => baseLogger);
  let supervisor: TailscaledSupervisor | undefined;
  const ts = config.service.tsnet;
  if (ts.enabled) {
    const tailscaled = ts.tailscaled_path || which('tailscaled');
    if (!tailscaled || !existsSync(tailscaled)) {
      await headscale?.stop();
      await simulator?.stop();
      throw new ConfigError([{ source: config.source, path: 'TAILSCALED_PATH', message: `tailscaled not found${ts.tailscaled_path ? ` at ${ts.tailscaled_path}` : ' on PATH'}; install Tailscale or set TAILSCALED_PATH` }]);
    }
    supervisor = new TailscaledSupervisor(
      {
        tailscaledPath: tailscaled,
        tailscalePath: ts.tailscale_path || defaultTailscalePath(tailscaled),
        stateDir: ts.state_dir,
        hostname: ts.hostname,
        tags: ts.tags,
        authKey: ts.auth_key,
        serve: ts.serve,
        httpPort: 0,
        startupTimeoutMs: ts.startup_timeout,
      },
      logger,
    );
    // The proxy port is fixed before the pipeline is built, so device scrapes know where to go.
    supervisor.proxyPort = await freePort();
    config = withProxy(config, supervisor.proxyUrl);
  }
  const selfEndpoints = new SelfEndpoints();
  const service = new PipelineService(o.registry ?? defaultRegistry(), config, { logger, version: VERSION, secrets: redactor, selfEndpoints });
  const http = config.service.http;
  const server = new HttpServer({
    service,
    address: http.address,
    port: o.port ?? http.port,
    metricsToken: http.metrics_token,
    maxConnections: http.max_connections,
    version: VERSION,
    logger,
    debugConfig: () => redactedConfig(service.config),
    redact: (text) => redactor.scrub(text),
    reload: () => reload(),
    ...(supervisor ? { notReadyReason: () => supervisor?.notReadyReason() } : {}),
  });
  let address: AddressInfo;
  try {
    address = await server.listen();
  } catch (err) {
    await service.shutdown(AbortSignal.timeout(1000));
    await headscale?.stop();
    await simulator?.stop();
    throw err;
  }
  selfEndpoints.add(address.address, address.port);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
  if (supervisor) {
    // The first scrape waits for the node; meanwhile /ready says what it is waiting for.
    supervisor.setHttpPort(address.port);
    try {
      await supervisor.start();
    } catch (err) {
      logger.error('tsnet: the tailnet node did not start', { error: errorMessage(err) });
      await supervisor.stop(AbortSignal.timeout(5000));
      await service.shutdown(AbortSignal.timeout(1000));
      await server.close(AbortSignal.timeout(1000));
      await headscale?.stop();
      await simulator?.stop();
      throw err;
    }
  }
  await service.start();
  logger.info('tsmetrics started', { version: VERSION, config: config.source, metrics: `${url}/metrics`, health: `${url}/health` });
  if (demo) {
    logger.warn('DEMO MODE: no Tailscale credentials are set, so tsmetrics is watching a simulated tailnet on loopback', {
      devices: simulator?.devices.length,
      api: headscale ? `${headscale.url} (Headscale)` : simulator?.apiUrl,
      metrics: `${url}/metrics`,
      hint: 'set TS_API_KEY or OAUTH_CLIENT_ID/OAUTH_CLIENT_SECRET to watch a real tailnet',
    });
    const flaky = simulator?.devices[6]?.api.name;
    if (flaky) {
      logger.info('DEMO MODE: simulated faults, on purpose, so the error and backoff panels have data', {
        flaky_device: flaky,
        fault: 'answers HTTP 503 to every other scrape (its "device scrape failed" warnings are expected)',
        churn: 'ephemeral devices are replaced every 2 minutes',
      });
    }
  }
  const reloadOnce = async (): Promise<ReloadOutcome> => {
    const running = service.config;
    const fail = (status: number, problems: string[], why: string): ReloadOutcome => {
      service.telemetry.configLoaded(false, Date.now());
      logger.error(`configuration reload failed: ${why}; the running configuration is kept`, { problems: problems.length });
      for (const line of problems) logger.error(`reload: ${line}`);
      return { ok: false, status, problems };
    };
    let next: ServiceConfig;
    try {
      // The same sources as at start: the file and this process's environment (re-read now),
      // and in demo mode the simulator, which keeps running, with its variables.
      const extra: Env = headscale ? headscale.env() : simulator ? { ...demoLogDefaults(o.env), ...simulator.env() } : {};
      next = loadConfig(o.env, { ...(o.configFile ? { configFile: o.configFile } : {}), ...(o.registry ? { registry: o.registry } : {}), ...(o.flags ? { flags: o.flags } : {}), extraEnv: extra });
    } catch (err) {
      if (err instanceof ConfigError) return fail(400, err.problems.map(formatProblem), `${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in the configuration`);
      return fail(400, [errorMessage(err)], 'the configuration could not be read');
    }
    const re = readEnv({ ...o.env });
    for (const v of [re.OAUTH_CLIENT_SECRET, re.TS_API_KEY, re.OAUTH_TOKEN, re.TS_AUTHKEY, re.METRICS_TOKEN, re.OTEL_EXPORTER_OTLP_HEADERS, re.HEADSCALE_API_KEY]) redactor.add(v);
    for (const sec of next.secrets) redactor.add(sec);
    const { keys, service: settings } = restartOnly(running.service, next.service);
    next = { ...next, service: settings };
    if (supervisor) next = withProxy(next, supervisor.proxyUrl);
    let changes;
    try {
      changes = await service.reload(next);
    } catch (err) {
      return fail(stopped ? 503 : 500, [errorMessage(err)], 'the new components could not be built');
    }
    const h = next.service.http;
    server.applySettings({ metricsToken: h.metrics_token, maxConnections: h.max_connections, writeTimeoutMs: h.write_timeout, maxMetricsStreams: h.max_metrics_streams });
    const nextLogs = next.service.telemetry.logs;
    if (!o.logger && (nextLogs.level !== running.service.telemetry.logs.level || nextLogs.format !== running.service.telemetry.logs.format)) baseLogger = makeLogger(nextLogs);
    service.telemetry.configLoaded(true, Date.now());
    for (const key of keys) logger.warn(`reload: ${key} changed, which needs a restart; it keeps its running value until then`);
    const fields: LogFields = {};
    for (const k of ['added', 'replaced', 'removed'] as const) if (changes[k].length) fields[k] = changes[k].join(',');
    fields.kept = changes.kept.length;
    logger.info(changes.added.length + changes.replaced.length + changes.removed.length ? 'configuration reloaded' : 'configuration reloaded: no component changed', fields);
    for (const note of next.notes ?? []) logger.warn(note);
    return { ok: true, status: 200, problems: [], ...changes, needs_restart: keys };
  };
  const queue = new ReloadQueue(() =>
    reloadOnce().catch((err: unknown) => {
      logger.error('configuration reload failed unexpectedly', { error: errorMessage(err) });
      return { ok: false, status: 500, problems: [errorMessage(err)] };
    }),
  );
  const reload = (): Promise<ReloadOutcome> => {
    if (stopped) return Promise.resolve({ ok: false, status: 503, problems: ['tsmetrics is shutting down'] });
    return queue.request();
  };
  let stopped: Promise<ShutdownReport> | undefined;
  const stopAll = async (deadline: AbortSignal): Promise<ShutdownReport> => {
    const report = await service.shutdownWithReport(deadline);
    const cutOff = [...report.cutOff];
    const failed = [...report.failed];
    const step = async (id: string, work: () => Promise<void>): Promise<void> => {
      try {
        if (!(await settlesBy(work(), deadline, PAST_DEADLINE_GRACE_MS))) cutOff.push(`${id}: did not stop by the deadline`);
      } catch (err) {
        failed.push(`${id}: ${errorMessage(err)}`);
        logger.warn('shutdown step failed', { step: id, error: errorMessage(err) });
      }
    };
    // The supervisor and the server only listen for the deadline's abort event, which never comes
    // when the pipeline already used the time up; listenable() makes a fired deadline count.
    if (supervisor) await step('tsnet', () => supervisor.stop(listenable(deadline)));
    await step('http', () => server.close(listenable(deadline)));
    if (headscale) await step('headscale simulator', () => headscale.stop());
    if (simulator) await step('simulator', () => simulator.stop());
    if (cutOff.length) logger.warn(`shutdown cut off: ${cutOff.join('; ')}`);
    logger.info('tsmetrics stopped', failed.length ? { failed: failed.join('; ') } : {});
    return { cutOff, failed };
  };
  return {
    service,
    supervisor,
    server,
    address,
    url,
    simulator,
    headscale,
    get config() {
      return service.config;
    },
    logger,
    reload,
    stop(deadline = AbortSignal.timeout(service.config.service.shutdown_timeout)) {
      stopped ??= stopAll(deadline);
      return stopped;
    },
  };
}

/**
 * A logger whose lines go to whatever logger `current` returns at the moment, so a reload can
 * change the level and format of every component's logger without rebuilding the components.
 */
function switchableLogger(current: () => Logger, fields?: LogFields): Logger {
  let base: Logger | undefined;
  let made: Logger | undefined;
  const get = (): Logger => {
    const b = current();
    if (b !== base) {
      base = b;
      made = fields ? b.child(fields) : b;
    }
    return made as Logger;
  };
  return {
    debug: (m, f) => get().debug(m, f),
    info: (m, f) => get().info(m, f),
    warn: (m, f) => get().warn(m, f),
    error: (m, f) => get().error(m, f),
    child: (f) => switchableLogger(current, { ...fields, ...f }),
    isLevelEnabled: (l) => get().isLevelEnabled(l),
  };
}

export type { RawServiceConfig };
