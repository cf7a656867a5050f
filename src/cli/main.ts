import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ConfigError, errorMessage } from '../errors.ts';
import { loadConfig, startTsmetrics, type Running } from '../app.ts';
import { defaultRegistry } from '../components.ts';
import { redactedConfig } from '../config/service.ts';
import { envSchema } from '../config/env.ts';
import { TailnetSimulator } from '../simulator/simulator.ts';
import { VERSION } from '../version.ts';
import { guardOutput } from '../log/logger.ts';

const HELP = `tsmetrics ${VERSION} — Tailscale observability pipeline (Prometheus + OTLP)

Usage:
  tsmetrics [run] [--config FILE]         run the pipeline (demo mode without credentials)
  tsmetrics validate [--config FILE]      check configuration and exit (0 ok, 2 invalid)
  tsmetrics simulate [--devices N] [--latency MS]
                                          run the tailnet simulator and print its env vars
  tsmetrics healthcheck [--url URL]       exit 0 when /health answers (container HEALTHCHECK)
  tsmetrics components                    list the built-in components
  tsmetrics env                           list the environment variables
  tsmetrics --version | --help
`;

/** Exit codes: 0 ok, 1 fatal error, 2 invalid configuration. */
export const EXIT_CONFIG = 2;

function printConfigError(err: ConfigError): void {
  for (const p of err.problems) console.error(`tsmetrics: config error: ${p.source}: ${p.path}: ${p.message}`);
}

/**
 * Waits for SIGTERM or SIGINT, then stops within `service.shutdown_timeout`. Exit code 0 when no
 * shutdown step failed (work the deadline cut off is logged, not an error), 1 otherwise. A second
 * signal exits at once, for an operator who will not wait.
 */
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
  });
}

/** The CLI. Returns the process exit code; the only place that decides it. */
export async function main(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  // A reader that goes away (`tsmetrics components | head -2`) must cost output, not the process.
  guardOutput(process.stdout);
  guardOutput(process.stderr);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      devices: { type: 'string' },
      latency: { type: 'string' },
      url: { type: 'string' },
      once: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const cmd = positionals[0] ?? 'run';
  try {
    switch (cmd) {
      case 'run': {
        const running = await startTsmetrics({ env, ...(values.config ? { configFile: values.config } : {}) });
        process.on('uncaughtException', (err) => {
          // Components contain their own errors; anything reaching here is a bug worth a loud line.
          running.logger.error('uncaught exception (contained)', { error: errorMessage(err) });
        });
        process.on('unhandledRejection', (err) => {
          running.logger.error('unhandled rejection (contained)', { error: errorMessage(err) });
        });
        if (values.once) {
          await running.service.collectNow();
          return (await running.stop()).failed.length ? 1 : 0;
        }
        return await waitForSignal(running);
      }
      case 'validate': {
        const cfg = loadConfig(env, values.config ? { configFile: values.config } : {});
        process.stdout.write(`configuration is valid (${cfg.source})\n${JSON.stringify(redactedConfig(cfg), null, 2)}\n`);
        return 0;
      }
      case 'simulate': {
        const devices = Number(values.devices ?? '12');
        if (!Number.isInteger(devices) || devices < 1) throw new ConfigError([{ source: 'args', path: '--devices', message: 'must be a positive whole number' }]);
        const sim = new TailnetSimulator({ devices, deviceLatencyMs: Number(values.latency ?? '0') });
        await sim.start();
        process.stdout.write(`# tailnet simulator: ${devices} devices, API at ${sim.apiUrl}\n`);
        for (const [k, v] of Object.entries(sim.env())) process.stdout.write(`export ${k}=${v}\n`);
        process.stdout.write(`# OAuth client: OAUTH_CLIENT_ID=${sim.oauthClients[0]?.id} OAUTH_CLIENT_SECRET=${sim.oauthClients[0]?.secret}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
        });
        await sim.stop();
        return 0;
      }
      case 'healthcheck': {
        const port = env.PORT ?? '9100';
        const url = values.url ?? `http://127.0.0.1:${port}/health`;
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) {
          console.error(`tsmetrics: healthcheck: ${url} answered ${res.status}`);
          return 1;
        }
        return 0;
      }
      case 'components': {
        for (const f of defaultRegistry().all()) process.stdout.write(`${f.kind.padEnd(9)} ${f.type.padEnd(15)} ${f.stability.padEnd(7)} ${f.description}\n`);
        return 0;
      }
      case 'env': {
        for (const [k, v] of Object.entries(envSchema)) process.stdout.write(`${k.padEnd(38)} ${(v as { doc?: string }).doc ?? ''}\n`);
        return 0;
      }
      default:
        console.error(`tsmetrics: unknown command "${cmd}"\n\n${HELP}`);
        return EXIT_CONFIG;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(err);
      return EXIT_CONFIG;
    }
    console.error(`tsmetrics: fatal: ${errorMessage(err)}`);
    return 1;
  }
}

// Run when executed directly (`node src/cli/main.ts`), not when imported.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`tsmetrics: fatal: ${errorMessage(err)}`);
      process.exit(1);
    },
  );
}
