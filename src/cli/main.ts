// First: on a too-old Node.js this prints one line and exits before any dependency loads.
import '../runtime/node-check.ts';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pathToFileURL } from 'node:url';
import { isSea } from 'node:sea';
import { ConfigError, errorMessage } from '../errors.ts';
import { isDemo, loadConfig, startTsmetrics, type Running } from '../app.ts';
import { defaultRegistry } from '../components.ts';
import { redactedConfig, type ServiceConfig } from '../config/service.ts';
import { envSchema } from '../config/env.ts';
import type { ServiceFlags } from '../config/precedence.ts';
import { TailnetSimulator } from '../simulator/simulator.ts';
import { startHeadscaleSimulator } from '../simulator/headscale.ts';
import { VERSION } from '../version.ts';
import { guardOutput } from '../log/logger.ts';

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

type Options = NonNullable<ParseArgsConfig['options']>;

const SERVICE_OPTIONS: Options = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string' },
  bind: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
};
const SERVICE_HELP = `  -c, --config FILE       pipeline file (OpenTelemetry Collector layout); default: the environment
      --port N            HTTP port (overrides PORT and the file)
      --bind ADDRESS      bind address (overrides BIND_HOST, ENV and the file)
      --log-level LEVEL   debug, info, warn or error (overrides LOG_LEVEL and the file)
      --log-format FMT    text or json (overrides LOG_FORMAT and the file)`;
const PRECEDENCE = '\nPrecedence for service settings: flag > environment variable > pipeline file > default.';

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  readonly help: string;
}

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run the pipeline (demo mode against a simulated tailnet when no credentials are set)',
    usage: 'tsmetrics [run] [options]',
    options: { ...SERVICE_OPTIONS, once: { type: 'boolean' } },
    help: `${SERVICE_HELP}\n      --once              run one collection cycle, then stop (exit 1 when a source failed it)\n${PRECEDENCE}`,
  },
  validate: {
    summary: 'check the configuration, print it (secrets redacted) with where each service setting came from',
    usage: 'tsmetrics validate [options]',
    options: SERVICE_OPTIONS,
    help: `${SERVICE_HELP}\n${PRECEDENCE}\nExit code 0 when valid, 2 when not (one line per problem).`,
  },
  simulate: {
    summary: 'run the built-in tailnet simulator on loopback and print the variables that point tsmetrics at it',
    usage: 'tsmetrics simulate [--devices N] [--latency MS] [--headscale]',
    options: { devices: { type: 'string' }, latency: { type: 'string' }, headscale: { type: 'boolean' } },
    help: '      --devices N         simulated devices (default 12)\n      --latency MS        delay before each simulated device answers (default 0)\n      --headscale         serve the tailnet from a simulated Headscale server (API v1, the v2 subset, /metrics) and print its HEADSCALE_* variables',
  },
  healthcheck: {
    summary: 'exit 0 when a running tsmetrics answers /health (container HEALTHCHECK)',
    usage: 'tsmetrics healthcheck [--url URL]',
    options: { url: { type: 'string' } },
    help: '      --url URL           default: http://127.0.0.1:$PORT/health (PORT default 9100)',
  },
  components: { summary: 'list the built-in components', usage: 'tsmetrics components', options: {}, help: '' },
  env: { summary: 'list the environment variables', usage: 'tsmetrics env', options: {}, help: '' },
  help: { summary: 'show help for a command', usage: 'tsmetrics help [COMMAND]', options: {}, help: '' },
  version: { summary: 'print the version', usage: 'tsmetrics version (or --version, -v)', options: {}, help: '' },
};

function globalHelp(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `tsmetrics ${VERSION} — Tailscale observability pipeline (Prometheus + OTLP)\n\nUsage:\n  tsmetrics [COMMAND] [options]\n\nCommands:\n${rows.join('\n')}\n\nOptions:\n  -h, --help              show help\n  -v, --version           print the version\n\nRun 'tsmetrics help COMMAND' or 'tsmetrics COMMAND --help' for a command's options.\n`;
}

function commandHelp(name: string): string {
  const c = COMMANDS[name] as Command;
  return `tsmetrics ${name} — ${c.summary}\n\nUsage:\n  ${c.usage}\n${c.help ? `\nOptions:\n${c.help}\n` : ''}`;
}

/** A usage error: one line on stderr and the hint, exit 2. */
class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

function printConfigError(err: ConfigError): void {
  for (const p of err.problems) console.error(`tsmetrics: config error: ${p.source}: ${p.path}: ${p.message}`);
}

/** Rewrites `--opt -5` as `--opt=-5`, so a negative value reaches our own validation. */
function joinNegativeValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const next = args[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function parseCommand(argv: string[]): { name: string; values: Record<string, string | boolean | undefined>; rest: string[] } {
  const first = argv[0];
  const name = first && !first.startsWith('-') ? first : 'run';
  const args = first && !first.startsWith('-') ? argv.slice(1) : argv;
  const cmd = COMMANDS[name];
  if (!cmd) throw new UsageError(`unknown command "${name}"`);
  const options: Options = { ...cmd.options, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } };
  try {
    const { values, positionals } = parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals: true, strict: true });
    return { name, values: values as Record<string, string | boolean | undefined>, rest: positionals };
  } catch (err) {
    // node:util's messages are good but long; the first sentence names the option.
    const msg = errorMessage(err).split('. ')[0] ?? errorMessage(err);
    throw new UsageError(msg.replace(/^Unknown option/, 'unknown option'), name);
  }
}

function positiveInt(flag: string, text: string | undefined, dflt: number, min = 1): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag}: must be a whole number${min > 0 ? `, at least ${min}` : ''} (got "${text}")`);
  return n;
}

function serviceFlags(values: Record<string, string | boolean | undefined>): ServiceFlags {
  const f: ServiceFlags = {};
  if (typeof values.port === 'string') {
    const n = Number(values.port);
    if (!/^\d+$/.test(values.port) || n > 65535) throw new UsageError(`--port: must be a port number 0-65535 (got "${values.port}")`);
    f.port = n;
  }
  if (typeof values.bind === 'string') f.address = values.bind;
  if (typeof values['log-level'] === 'string') {
    if (!['debug', 'info', 'warn', 'error'].includes(values['log-level'])) throw new UsageError(`--log-level: must be debug, info, warn or error (got "${values['log-level']}")`);
    f.logLevel = values['log-level'];
  }
  if (typeof values['log-format'] === 'string') {
    if (!['text', 'json'].includes(values['log-format'])) throw new UsageError(`--log-format: must be text or json (got "${values['log-format']}")`);
    f.logFormat = values['log-format'];
  }
  return f;
}

/** What `validate` prints about the service settings: value and where it came from. */
function effectiveSettings(cfg: ServiceConfig): string {
  const http = cfg.service.http;
  const values: Record<string, unknown> = {
    'service.http.port': http.port,
    'service.http.address': http.address,
    'service.http.metrics_token': http.metrics_token ? '[REDACTED]' : '(none)',
    'service.telemetry.logs.level': cfg.service.telemetry.logs.level,
    'service.telemetry.logs.format': cfg.service.telemetry.logs.format,
  };
  const lines = Object.entries(values).map(([k, v]) => `  ${k.padEnd(32)} ${String(v).padEnd(16)} (${cfg.origins?.[k] ?? 'default'})`);
  return `effective service settings (flag > environment > file > default):\n${lines.join('\n')}\n`;
}

/** One line for a failed listen: address, port and why, in words. */
function bindFailure(err: unknown, address: string, port: number): string | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    EADDRINUSE: 'the port is already in use',
    EACCES: 'permission denied (ports below 1024 need privileges)',
    EADDRNOTAVAIL: 'the address is not on this machine',
    ENOTFOUND: 'the address does not resolve',
    EAI_AGAIN: 'the address could not be resolved',
  };
  if (!code || !(code in why)) return undefined;
  return `cannot listen on ${address}:${port}: ${why[code] as string} (${code}); set BIND_HOST/--bind or PORT/--port`;
}

/** A SIGHUP that came while starting: held (not fatal) and honoured once the process runs. */
let earlyHangup: { seen: boolean; listener: () => void } | undefined;

async function waitForSignal(running: Running): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (sig: string): void => {
      if (stopping) {
        running.logger.warn('second signal: exiting without waiting for shutdown', { signal: sig });
        resolve(1);
        return;
      }
      stopping = true;
      running.logger.info('shutting down', { signal: sig });
      const timeout = running.config.service.shutdown_timeout;
      // A backstop only: every step already gives up at the deadline.
      const hard = setTimeout(() => {
        running.logger.error('shutdown deadline passed; exiting');
        resolve(1);
      }, timeout + 1000);
      hard.unref();
      running.stop(AbortSignal.timeout(timeout)).then(
        (report) => resolve(report.failed.length ? 1 : 0),
        (err: unknown) => {
          running.logger.error('shutdown failed', { error: errorMessage(err) });
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    // SIGHUP re-reads the configuration, as Prometheus and the Collector's reloaders expect; the
    // reload logs its own outcome, and a failed one leaves the running configuration in place.
    const onHangup = (): void => {
      if (stopping) return;
      running.logger.info('reloading the configuration', { signal: 'SIGHUP' });
      void running.reload();
    };
    process.on('SIGHUP', onHangup);
    if (earlyHangup) {
      process.off('SIGHUP', earlyHangup.listener);
      if (earlyHangup.seen) onHangup();
      earlyHangup = undefined;
    }
  });
}


/** The CLI. Returns the process exit code; the only place that decides it. */
export async function main(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  // The process is `node` however it was started (npm start, npx, node …): named, `pidof
  // tsmetrics` and `pkill -HUP tsmetrics` (the README's reload) find it.
  process.title = 'tsmetrics';
  // A reader that goes away (`tsmetrics components | head -2`) must cost output, not the process.
  guardOutput(process.stdout);
  guardOutput(process.stderr);
  let command: string | undefined;
  try {
    const { name, values, rest } = parseCommand(argv);
    command = name;
    if (values.help && name !== 'help') {
      process.stdout.write(argv.length === 1 || !argv[0] || argv[0].startsWith('-') ? globalHelp() : commandHelp(name));
      return 0;
    }
    if (values.version || name === 'version') {
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
    if (name === 'help') {
      const topic = rest[0];
      if (topic && !COMMANDS[topic]) throw new UsageError(`unknown command "${topic}"`, '');
      process.stdout.write(topic ? commandHelp(topic) : globalHelp());
      return 0;
    }
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0] as string}"`, name);
    const configFile = typeof values.config === 'string' ? values.config : undefined;
    switch (name) {
      case 'run': {
        const flags = serviceFlags(values);
        if (!values.once && !earlyHangup) {
          const held = { seen: false, listener: () => void (held.seen = true) };
          earlyHangup = held;
          process.on('SIGHUP', held.listener);
        }
        let running: Running;
        try {
          running = await startTsmetrics({ env, flags, ...(configFile ? { configFile } : {}) });
        } catch (err) {
          if (err instanceof ConfigError) throw err;
          const cfg = (() => {
            try {
              // Demo mode runs with the simulator's credentials; any credential gives the same
              // listen address and port, which is all the message needs.
              const withCredentials = isDemo(env, configFile) ? { ...env, TS_API_KEY: 'tskey-api-demo' } : env;
              return loadConfig(withCredentials, { flags, ...(configFile ? { configFile } : {}) });
            } catch {
              return undefined;
            }
          })();
          const line = cfg ? bindFailure(err, cfg.service.http.address, cfg.service.http.port) : undefined;
          if (line) {
            console.error(`tsmetrics: ${line}`);
            return EXIT_FAILURE;
          }
          throw err;
        }
        process.on('uncaughtException', (err) => {
          // Components contain their own errors; anything reaching here is a bug worth a loud line.
          running.logger.error('uncaught exception (contained)', { error: errorMessage(err) });
        });
        process.on('unhandledRejection', (err) => {
          running.logger.error('unhandled rejection (contained)', { error: errorMessage(err) });
        });
        for (const note of running.config.notes ?? []) running.logger.warn(note);
        if (values.once) {
          // One cycle, for a cron job or a smoke test: exit 1 when a source failed it.
          await running.service.collectNow();
          const failedSources = [...running.service.telemetry.status()].filter(([, st]) => st.cycles > 0 && !st.up).map(([id]) => id);
          const report = await running.stop();
          if (failedSources.length) console.error(`tsmetrics: run --once: ${failedSources.join(', ')} failed its cycle (see the log above)`);
          return report.failed.length || failedSources.length ? EXIT_FAILURE : 0;
        }
        return await waitForSignal(running);
      }
      case 'validate': {
        const flags = serviceFlags(values);
        if (isDemo(env, configFile)) {
          process.stdout.write('no Tailscale credentials are set and no pipeline file is given: `tsmetrics` would start in demo mode against a simulated tailnet on loopback.\nTo check a real configuration, set TS_API_KEY (or OAUTH_CLIENT_ID and OAUTH_CLIENT_SECRET), or pass --config FILE.\n');
          return 0;
        }
        const cfg = loadConfig(env, { flags, ...(configFile ? { configFile } : {}) });
        process.stdout.write(`configuration is valid (${cfg.source})\n${effectiveSettings(cfg)}`);
        for (const note of cfg.notes ?? []) process.stdout.write(`note: ${note}\n`);
        process.stdout.write(`${JSON.stringify(redactedConfig(cfg), null, 2)}\n`);
        return 0;
      }
      case 'simulate': {
        const devices = positiveInt('--devices', values.devices as string | undefined, 12);
        const latency = positiveInt('--latency', values.latency as string | undefined, 0, 0);
        const sim = new TailnetSimulator({ devices, deviceLatencyMs: latency });
        await sim.start();
        const hs = values.headscale ? await startHeadscaleSimulator(sim) : undefined;
        process.stdout.write(`# tailnet simulator: ${devices} devices, API at ${hs ? `${hs.url} (Headscale)` : sim.apiUrl} (Ctrl-C stops it)\n`);
        for (const [k, v] of Object.entries(hs ? hs.env() : sim.env())) process.stdout.write(`export ${k}=${v}\n`);
        if (!hs) process.stdout.write(`# OAuth client: OAUTH_CLIENT_ID=${sim.oauthClients[0]?.id} OAUTH_CLIENT_SECRET=${sim.oauthClients[0]?.secret}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
        });
        await hs?.stop();
        await sim.stop();
        return 0;
      }
      case 'healthcheck': {
        const port = env.PORT || '9100';
        const url = typeof values.url === 'string' ? values.url : `http://127.0.0.1:${port}/health`;
        if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new UsageError(`--url: must be an http:// or https:// URL (got "${url}")`, 'healthcheck');
        let res: Response;
        try {
          res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        } catch (err) {
          const cause = (err as { cause?: { code?: string; message?: string } }).cause;
          const why = cause?.code === 'ECONNREFUSED' ? 'connection refused (is tsmetrics running on that port?)' : (err as Error).name === 'TimeoutError' ? 'no answer within 5 s' : (cause?.code ?? cause?.message ?? errorMessage(err));
          console.error(`tsmetrics: healthcheck: ${url}: ${why}`);
          return EXIT_FAILURE;
        }
        if (!res.ok) {
          console.error(`tsmetrics: healthcheck: ${url} answered ${res.status}`);
          return EXIT_FAILURE;
        }
        return 0;
      }
      case 'components': {
        for (const f of defaultRegistry().all()) process.stdout.write(`${f.kind.padEnd(9)} ${f.type.padEnd(16)} ${f.stability.padEnd(11)} ${f.description}\n`);
        return 0;
      }
      case 'env': {
        for (const [k, v] of Object.entries(envSchema)) process.stdout.write(`${k.padEnd(38)} ${(v as { doc?: string }).doc ?? ''}\n`);
        process.stdout.write('\nDurations (SCRAPE_INTERVAL, CLIENT_METRICS_TIMEOUT, TSNET_STARTUP_TIMEOUT) take units (30s, 1m, 500ms); a bare number is seconds. OTEL_* durations are milliseconds, as the OpenTelemetry specification defines them.\n');
        return 0;
      }
    }
    throw new UsageError(`unknown command "${name}"`);
  } catch (err) {
    if (err instanceof UsageError) {
      const cmd = err.command ?? command;
      console.error(`tsmetrics: ${err.message}\nRun 'tsmetrics help${cmd && cmd !== 'help' && COMMANDS[cmd] ? ` ${cmd}` : ''}' for usage.`);
      return EXIT_CONFIG;
    }
    if (err instanceof ConfigError) {
      printConfigError(err);
      return EXIT_CONFIG;
    }
    console.error(`tsmetrics: ${command ?? 'run'} failed: ${errorMessage(err)}`);
    return EXIT_FAILURE;
  }
}

// Run when executed directly (`node src/cli/main.ts`), not when imported — nor inside the
// single-file executable, whose own entry (standalone.ts) runs the CLI.
if (!isSea() && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`tsmetrics: fatal: ${errorMessage(err)}`);
      process.exit(1);
    },
  );
}
