import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from '../log/logger.ts';
import { errorMessage } from '../errors.ts';
import { untilAborted } from '../util/abort.ts';

/** Settings of tsnet mode (USE_TSNET=true, or `service.tsnet` in YAML). */
export interface TsnetOptions {
  /** tailscaled binary; default: found on PATH. */
  tailscaledPath: string;
  /** tailscale CLI binary; default: beside tailscaled, else on PATH. */
  tailscalePath: string;
  stateDir: string;
  hostname: string;
  /** Tags to advertise (`tag:` prefix added when missing). */
  tags: string[];
  /** Auth key; written to a 0600 file in the state dir and passed as `--auth-key=file:…`. */
  authKey: string;
  /** Offer the HTTP server on the tailnet with `tailscale serve` (TCP forward of this port). */
  serve: boolean;
  /** Local port of our HTTP server (for `tailscale serve`). */
  httpPort: number;
  /** How long to wait for the node to reach Running. */
  startupTimeoutMs: number;
  /** Extra environment for the children (tests). */
  env?: Record<string, string>;
}

export type TsnetState = 'stopped' | 'starting' | 'waiting' | 'running' | 'restarting' | 'failed';

/** Finds an executable on PATH. */
export function which(name: string, path = process.env.PATH ?? ''): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of path.split(delimiter)) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (for tailscaled's outbound proxy). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Runs Tailscale's own daemon in userspace-networking mode as the exporter's tailnet node:
 * a private LocalAPI socket, a loopback-only outbound HTTP proxy for device scrapes, state in
 * `stateDir`. Brings the node up with `tailscale up`, waits until it is Running, restarts
 * tailscaled with backoff if it dies, and stops it on shutdown.
 */
export class TailscaledSupervisor {
  readonly socketPath: string;
  proxyPort = 0;
  state: TsnetState = 'stopped';
  detail = '';
  restarts = 0;
  private readonly _o: TsnetOptions;
  private readonly _log: Logger;
  private _child: ChildProcess | undefined;
  private _stopping = false;
  private _backoffMs = 1000;
  private _restartTimer: NodeJS.Timeout | undefined;
  private _localApi: Agent | undefined;

  constructor(o: TsnetOptions, logger: Logger) {
    this._o = o;
    this._log = logger.child({ component: 'tsnet' });
    this.socketPath = join(o.stateDir, 'tailscaled.sock');
  }

  /** `tailscaled` arguments (documented in the README). */
  daemonArgs(): string[] {
    return [
      '--tun=userspace-networking',
      `--statedir=${this._o.stateDir}`,
      `--socket=${this.socketPath}`,
      `--outbound-http-proxy-listen=127.0.0.1:${this.proxyPort}`,
      '--port=0',
    ];
  }

  /** `tailscale up` arguments; the auth key is only ever a file reference. */
  upArgs(): string[] {
    const tags = this._o.tags.map((t) => (t.startsWith('tag:') ? t : `tag:${t}`));
    return [
      `--socket=${this.socketPath}`,
      'up',
      ...(this._o.authKey ? [`--auth-key=file:${this._keyFile()}`] : []),
      `--hostname=${this._o.hostname}`,
      ...(tags.length ? [`--advertise-tags=${tags.join(',')}`] : []),
      '--accept-dns=false',
      `--timeout=${Math.ceil(this._o.startupTimeoutMs / 1000)}s`,
    ];
  }

  /** `tailscale serve` arguments: a TCP forward of our HTTP port on the node. */
  serveArgs(): string[] {
    return [`--socket=${this.socketPath}`, 'serve', '--bg', `--tcp=${this._o.httpPort}`, `tcp://127.0.0.1:${this._o.httpPort}`];
  }

  private _keyFile(): string {
    return join(this._o.stateDir, 'authkey');
  }

  /** Sets the local HTTP port `tailscale serve` forwards to (known once the server listens). */
  setHttpPort(port: number): void {
    this._o.httpPort = port;
  }

  /** The proxy URL device scrapes go through. */
  get proxyUrl(): string {
    return `http://127.0.0.1:${this.proxyPort}`;
  }

  /** Starts tailscaled and brings the node up; resolves once it is Running (or rejects). */
  async start(): Promise<void> {
    this.state = 'starting';
    await mkdir(this._o.stateDir, { recursive: true, mode: 0o700 });
    await chmod(this._o.stateDir, 0o700);
    if (this._o.authKey) await writeFile(this._keyFile(), this._o.authKey + '\n', { mode: 0o600 });
    if (!this.proxyPort) this.proxyPort = await freePort();
    this._spawnDaemon();
    await this._bringUp();
  }

  private _spawnDaemon(): void {
    const args = this.daemonArgs();
    this._log.info('starting tailscaled', { path: this._o.tailscaledPath, args: args.join(' ') });
    const child = spawn(this._o.tailscaledPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this._o.env } });
    this._child = child;
    const forward = (b: Buffer): void => {
      for (const line of b.toString().split('\n')) if (line.trim()) this._log.debug('tailscaled', { line: line.slice(0, 500) });
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.once('error', (err) => this._log.error('tailscaled could not be started', { error: errorMessage(err) }));
    child.once('exit', (code, signal) => {
      if (this._child !== child) return;
      this._child = undefined;
      if (this._stopping) return;
      this.state = 'restarting';
      this.restarts++;
      this.detail = `tailscaled exited (${signal ?? code}); restarting in ${this._backoffMs} ms`;
      this._log.warn('tailscaled exited; restarting with backoff', { code, signal, backoff_ms: this._backoffMs });
      this._restartTimer = setTimeout(() => {
        this._spawnDaemon();
        this._bringUp().catch((err: unknown) => this._log.error('tailscaled did not come back up', { error: errorMessage(err) }));
      }, this._backoffMs);
      this._backoffMs = Math.min(60_000, this._backoffMs * 2);
    });
  }

  /** Waits for the LocalAPI, runs `tailscale up` when needed, then waits for Running. */
  private async _bringUp(): Promise<void> {
    const deadline = Date.now() + this._o.startupTimeoutMs;
    this.state = 'waiting';
    let upDone = false;
    for (;;) {
      if (this._stopping) throw new Error('stopped');
      let backend = '';
      try {
        backend = (await this.status()).BackendState ?? '';
      } catch (err) {
        this.detail = `waiting for tailscaled's LocalAPI (${errorMessage(err)})`;
      }
      if (backend === 'Running') break;
      if (backend) this.detail = `node state ${backend}`;
      if (backend && backend !== 'Starting' && !upDone) {
        upDone = true;
        this._log.info('bringing the tailnet node up', { hostname: this._o.hostname, tags: this._o.tags.join(','), state: backend });
        await this._cli(this.upArgs()).catch((err: unknown) => {
          this._log.warn('tailscale up failed', { error: errorMessage(err) });
          upDone = false;
        });
      }
      if (Date.now() > deadline) {
        this.state = 'failed';
        throw new Error(`the tailnet node did not reach Running within ${this._o.startupTimeoutMs} ms (${this.detail})`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (this._o.serve) {
      await this._cli(this.serveArgs()).catch((err: unknown) => this._log.warn('tailscale serve failed; the endpoints are not offered on the tailnet', { error: errorMessage(err) }));
    }
    this.state = 'running';
    this.detail = '';
    this._backoffMs = 1000;
    this._log.info('tailnet node running', { hostname: this._o.hostname, proxy: this.proxyUrl });
  }

  private _cli(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this._o.tailscalePath, args, { timeout: this._o.startupTimeoutMs, env: { ...process.env, ...this._o.env } }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${args.slice(1, 2).join(' ')}: ${stderr.trim().slice(0, 300) || err.message}`));
        else resolve(stdout);
      });
    });
  }

  /** LocalAPI dispatcher over the private socket (shared with the local_tailscaled receiver). */
  localApi(): Dispatcher {
    this._localApi ??= new Agent({ connect: { socketPath: this.socketPath } });
    return this._localApi;
  }

  /** `GET /localapi/v0/status`. */
  async status(): Promise<{ BackendState?: string; Self?: Record<string, unknown> }> {
    const res = await this.localApi().request({ origin: 'http://local-tailscaled.sock', path: '/localapi/v0/status', method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`LocalAPI status answered ${res.statusCode}`);
    return JSON.parse(text) as { BackendState?: string };
  }

  /** Why `/ready` should say 503, or undefined when the node is running. */
  notReadyReason(): string | undefined {
    return this.state === 'running' ? undefined : `tsnet: ${this.state}${this.detail ? ` (${this.detail})` : ''}`;
  }

  /** Stops tailscaled (SIGTERM, then SIGKILL at the deadline). */
  async stop(deadline: AbortSignal): Promise<void> {
    this._stopping = true;
    if (this._restartTimer) clearTimeout(this._restartTimer);
    const child = this._child;
    this._child = undefined;
    this.state = 'stopped';
    if (child && child.exitCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      // A deadline that already fired kills at once (untilAborted resolves immediately).
      void untilAborted(deadline).then(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      await exited;
    }
    await this._localApi?.close().catch(() => undefined);
  }
}

/** Default path of the tailscale CLI: beside tailscaled, else on PATH. */
export function defaultTailscalePath(tailscaled: string): string {
  const beside = join(dirname(tailscaled), 'tailscale');
  return existsSync(beside) ? beside : (which('tailscale') ?? 'tailscale');
}
