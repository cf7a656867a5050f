/**
 * Hot reload as an operator meets it: a YAML file on disk is edited, then SIGHUP or
 * `POST /-/reload`; everything is observed over real HTTP (and the simulator's device servers).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, startTsmetrics, type Running } from '../src/app.ts';
import { ReloadQueue } from '../src/pipeline/reload.ts';
import { defaultRegistry } from '../src/components.ts';
import { fixedLogsReceiverFactory, flowRecord } from '../connectors/common/test-logs.ts';
import { TailnetSimulator } from '../src/simulator/simulator.ts';
import { families, http, sampleValue, waitFor } from './helpers/index.ts';
import { stopChild, tempDir } from './helpers/system.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'src/cli/main.ts');
const OPENMETRICS = { accept: 'application/openmetrics-text; version=1.0.0' };

/** Device request times per device id, recorded by the simulator's own counter. */
class TimedCounts extends Map<string, number> {
  readonly times = new Map<string, number[]>();
  override set(key: string, value: number): this {
    if (this.times) {
      const list = this.times.get(key) ?? [];
      list.push(Date.now());
      this.times.set(key, list);
    }
    return super.set(key, value);
  }
}

interface Rig {
  sim: TailnetSimulator;
  dir: string;
  file: string;
  write(yaml: string): void;
}

async function rig(t: TestContext, devices = 10): Promise<Rig> {
  const sim = new TailnetSimulator({ devices, ephemeralLifetimeMs: 0 });
  await sim.start();
  t.after(() => sim.stop());
  const d = tempDir('tsm-reload-');
  t.after(() => d.remove());
  const file = join(d.path, 'pipeline.yaml');
  return { sim, dir: d.path, file, write: (yaml) => writeFileSync(file, yaml) };
}

interface PipelineOpts {
  deviceInterval?: string;
  deviceTimeout?: string;
  extraExporter?: boolean;
  token?: string;
  port?: number;
  extra?: string;
}

/** A pipeline file for the simulator: inventory once an hour, devices every `deviceInterval`. */
function pipeline(sim: TailnetSimulator, o: PipelineOpts = {}): string {
  return `receivers:
  tailscale_api: { api_url: "${sim.apiUrl}", api_key: "${sim.apiKeys[0]}", interval: 1h }
  device_metrics: { port: ${sim.devicePort}, allowed_cidrs: [127.0.0.0/8], interval: ${o.deviceInterval ?? '1h'}, timeout: ${o.deviceTimeout ?? '5s'}, backoff_max_cycles: 0 }
${o.extra ?? ''}exporters:
  prometheus: {}
${o.extraExporter ? '  prometheus/federate: { path: /federate }\n' : ''}service:
  http: { port: ${o.port ?? 0}${o.token ? `, metrics_token: "${o.token}"` : ''} }
  telemetry: { logs: { level: debug, format: json } }
  pipelines:
    metrics: { receivers: [tailscale_api, device_metrics], exporters: [prometheus${o.extraExporter ? ', prometheus/federate' : ''}] }
`;
}

async function start(t: TestContext, r: Rig): Promise<{ run: Running; lines: string[] }> {
  const lines: string[] = [];
  const run = await startTsmetrics({ env: { PATH: process.env.PATH ?? '' }, configFile: r.file, port: 0, write: (l) => lines.push(l) });
  t.after(() => run.stop(AbortSignal.timeout(5000)));
  return { run, lines };
}

function auth(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Waits until /metrics serves device series and returns the page. */
async function devicePage(url: string, token?: string): Promise<string> {
  const page = await waitFor<string | undefined>(async () => {
    const res = await http(`${url}/metrics`, { headers: auth(token) });
    return res.status === 200 && /^tailscaled_/m.test(res.body) ? res.body : undefined;
  }, 30_000);
  return page as string;
}

function gauge(page: string, name: string): number | undefined {
  return sampleValue(families(page), name, {});
}

async function postReload(url: string, token?: string, body?: string): Promise<{ status: number; json: Record<string, unknown>; headers: Record<string, unknown> }> {
  const res = await fetch(`${url}/-/reload`, { method: 'POST', headers: auth(token), ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text }, headers: Object.fromEntries(res.headers) };
}

/** `<family>_created` of one device's counter in an OpenMetrics page. */
function createdOf(page: string, device: string): string | undefined {
  const line = page.split('\n').find((l) => /^tailscaled_\w+_created\{/.test(l) && l.includes(`device_name="${device}"`));
  return line?.split(' ')[1];
}

function json(lines: string[]): Array<Record<string, unknown> & { msg: string; level: string }> {
  return lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown> & { msg: string; level: string }];
    } catch {
      return [];
    }
  });
}

test('a bad edit keeps the old configuration serving: non-2xx with the problems (secrets redacted), one log line each, reload_successful 0; a good edit then applies', { timeout: 60_000 }, async (t) => {
  const r = await rig(t);
  r.write(pipeline(r.sim));
  const { run, lines } = await start(t, r);
  const before = await devicePage(run.url);
  assert.equal(gauge(before, 'tsmetrics_config_last_reload_successful'), 1, 'the load at start counts as a successful one');
  const startedAt = gauge(before, 'tsmetrics_config_last_reload_success_timestamp_seconds') as number;
  assert.ok(startedAt > 0, 'the success timestamp is set at start');
  const secret = r.sim.apiKeys[0] as string;

  // Two problems: an interval that is no duration, and a component id that is the API key.
  r.write(pipeline(r.sim).replace('interval: 1h }', 'interval: soon }').replace('exporters:\n', `  "${secret}": {}\nexporters:\n`));
  const bad = await postReload(run.url);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.ok, false);
  const problems = bad.json.problems as string[];
  assert.equal(problems.length, 2, JSON.stringify(problems));
  assert.ok(problems.some((p) => p.includes('receivers.tailscale_api.interval')), problems.join('\n'));
  assert.ok(!JSON.stringify(bad.json).includes(secret), 'the secret is redacted from the answer');
  assert.ok(JSON.stringify(bad.json).includes('[REDACTED]'));
  const logged = json(lines).filter((l) => l.msg.startsWith('reload: '));
  assert.equal(logged.length, 2, 'one log line per problem');
  for (const p of problems) assert.ok(logged.some((l) => l.msg === `reload: ${p}`), `logged: ${p}`);
  assert.ok(!lines.some((l) => l.includes(secret)), 'nor is it logged');

  const after = await http(`${run.url}/metrics`);
  assert.equal(after.status, 200, 'the old configuration still serves');
  assert.match(after.body, /^tailscaled_/m);
  assert.equal(gauge(after.body, 'tsmetrics_config_last_reload_successful'), 0);
  assert.equal(gauge(after.body, 'tsmetrics_config_last_reload_success_timestamp_seconds'), startedAt, 'the last success is still the start');
  assert.equal(sampleValue(families(after.body), 'tsmetrics_config_reloads_total', { result: 'failure' }), 1);
  assert.equal((run.config.receivers.get('tailscale_api')?.config as { interval: number }).interval, 3_600_000, 'the running configuration is the old one');

  r.write(pipeline(r.sim, { extraExporter: true }));
  const good = await postReload(run.url);
  assert.equal(good.status, 200, JSON.stringify(good.json));
  assert.deepEqual(good.json.added, ['prometheus/federate']);
  const page = (await http(`${run.url}/metrics`)).body;
  assert.equal(gauge(page, 'tsmetrics_config_last_reload_successful'), 1);
  assert.ok((gauge(page, 'tsmetrics_config_last_reload_success_timestamp_seconds') as number) >= startedAt);
  assert.equal((await http(`${run.url}/federate`)).status, 200, 'the added exporter is mounted');
});

test('an edit that adds an exporter and a processor keeps the receivers: same counter start times, one scrape per interval, counters go on', { timeout: 90_000 }, async (t) => {
  const r = await rig(t);
  r.sim.stats.deviceRequests = new TimedCounts();
  // The simulator's first device carries the scrape tag; it fails every scrape from the start.
  const failing = r.sim.devices[0]?.api as { id: string; name: string };
  r.sim.setDeviceFault(failing.id, { kind: 'status', status: 503 });
  r.write(pipeline(r.sim, { deviceInterval: '1s' }));
  const { run } = await start(t, r);
  const first = await devicePage(run.url);
  const healthy = /^tsmetrics_device_scrape_up\{device_id="([^"]+)",device_name="([^"]+)"\} 1$/m.exec(first);
  assert.ok(healthy, 'a device is scraped');
  const [, healthyId, healthyName] = healthy as unknown as [string, string, string];
  // A few cycles, so the failing device's error counter is clearly above what a new receiver has.
  await waitFor(async () => (sampleValue(families((await http(`${run.url}/metrics`)).body), 'tsmetrics_device_scrape_errors_total', { device_name: failing.name }) ?? 0) >= 3, 30_000);
  const om = (await http(`${run.url}/metrics`, { headers: OPENMETRICS })).body;
  const created = createdOf(om, healthyName);
  assert.ok(created, `an OpenMetrics page carries _created for ${healthyName}`);
  const page = (await http(`${run.url}/metrics`)).body;
  const errorsBefore = sampleValue(families(page), 'tsmetrics_device_scrape_errors_total', { device_name: failing.name }) as number;
  const pointsBefore = sampleValue(families(page), 'tsmetrics_component_received_points_total', { component_id: 'device_metrics' }) as number;

  r.write(
    pipeline(r.sim, { deviceInterval: '1s', extraExporter: true }).replace('exporters: [prometheus', 'processors: [staleness], exporters: [prometheus').replace('exporters:\n', 'processors:\n  staleness: {}\nexporters:\n'),
  );
  const res = await postReload(run.url);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.deepEqual([...(res.json.added as string[])].sort(), ['metrics/staleness', 'prometheus/federate']);
  assert.deepEqual(res.json.replaced, []);
  assert.ok((res.json.kept as string[]).includes('device_metrics') && (res.json.kept as string[]).includes('tailscale_api'), JSON.stringify(res.json));

  // The next cycles go through the new pipeline (the new exporter has the devices) …
  const federated = await waitFor<string | undefined>(async () => {
    const f = await http(`${run.url}/federate`);
    return f.status === 200 && f.body.includes(`device_name="${healthyName}"`) ? f.body : undefined;
  }, 30_000);
  assert.match(federated ?? '', /^tailscaled_/m);
  // … from the same receiver: its counters keep their start times and its state goes on.
  const errorsAt = errorsBefore;
  await waitFor(async () => (sampleValue(families((await http(`${run.url}/metrics`)).body), 'tsmetrics_device_scrape_errors_total', { device_name: failing.name }) ?? 0) > errorsAt + 1, 30_000);
  assert.equal(createdOf((await http(`${run.url}/metrics`, { headers: OPENMETRICS })).body, healthyName), created, '_created is unchanged');
  const after = (await http(`${run.url}/metrics`)).body;
  assert.ok((sampleValue(families(after), 'tsmetrics_component_received_points_total', { component_id: 'device_metrics' }) as number) > pointsBefore, 'process counters go on');
  // One scrape per interval throughout: no two requests to a device closer than half of it.
  const times = (r.sim.stats.deviceRequests as TimedCounts).times.get(healthyId) ?? [];
  assert.ok(times.length >= 4);
  for (let i = 1; i < times.length; i++) assert.ok((times[i] as number) - (times[i - 1] as number) >= 500, `scrapes ${i - 1} and ${i} were ${(times[i] as number) - (times[i - 1] as number)} ms apart`);
});

test('a replaced receiver takes over the old one’s schedule: its first cycle runs when the next was due, never at once', { timeout: 90_000 }, async (t) => {
  const r = await rig(t);
  r.sim.stats.deviceRequests = new TimedCounts();
  r.write(pipeline(r.sim, { deviceInterval: '2s' }));
  const { run, lines } = await start(t, r);
  const id = r.sim.devices[0]?.api.id as string;
  const times = (): number[] => (r.sim.stats.deviceRequests as TimedCounts).times.get(id) ?? [];
  await devicePage(run.url);
  // Reload right after a scrape, when a receiver started at once would scrape again at once.
  const n = times().length;
  await waitFor(() => times().length > n, 30_000, 5);
  r.write(pipeline(r.sim, { deviceInterval: '2s', deviceTimeout: '4s' }));
  const res = await postReload(run.url);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.deepEqual(res.json.replaced, ['device_metrics']);
  const at = times().length;
  await waitFor(() => times().length >= at + 2, 30_000);
  const list = times();
  for (let i = 1; i < list.length; i++) assert.ok((list[i] as number) - (list[i - 1] as number) >= 1000, `scrapes ${i - 1} and ${i} were ${(list[i] as number) - (list[i - 1] as number)} ms apart (interval 2 s)`);
  assert.equal((await http(`${run.url}/ready`)).status, 200, 'still ready');
  assert.ok(json(lines).some((l) => l.msg === 'configuration reloaded' && l.replaced === 'device_metrics'));
});

test('/metrics polled without pause through reloads (a replaced receiver, an added and a removed exporter) never answers empty or 503', { timeout: 90_000 }, async (t) => {
  const r = await rig(t);
  r.write(pipeline(r.sim, { deviceInterval: '1s' }));
  const { run } = await start(t, r);
  await devicePage(run.url);
  let polling = true;
  const bad: string[] = [];
  let polls = 0;
  const poller = (async () => {
    while (polling) {
      const res = await http(`${run.url}/metrics`);
      polls++;
      if (res.status !== 200 || !/^tailscaled_/m.test(res.body) || !/^tsmetrics_device_scrape_up/m.test(res.body)) bad.push(`${res.status}: ${res.body.slice(0, 200)}`);
    }
  })();
  const edits = [
    pipeline(r.sim, { deviceInterval: '1s', extraExporter: true }),
    pipeline(r.sim, { deviceInterval: '1s', deviceTimeout: '3s', extraExporter: true }),
    pipeline(r.sim, { deviceInterval: '2s' }),
    pipeline(r.sim, { deviceInterval: '1s' }).replace('exporters: [prometheus', 'processors: [staleness], exporters: [prometheus').replace('exporters:\n', 'processors:\n  staleness: {}\nexporters:\n'),
  ];
  for (const yaml of edits) {
    r.write(yaml);
    const before = polls;
    const res = await postReload(run.url);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    await waitFor(() => polls >= before + 5, 30_000, 5);
  }
  polling = false;
  await poller;
  assert.deepEqual(bad, [], `${bad.length} of ${polls} polls were not a full page`);
  assert.equal((await http(`${run.url}/federate`)).status, 404, 'the removed exporter’s route is gone');
});

test('POST /-/reload needs the token when one is set (a reloaded token applies), GET is refused with Allow: POST, a body is never read', { timeout: 60_000 }, async (t) => {
  const r = await rig(t);
  r.write(pipeline(r.sim, { token: 'first-token-123456' }));
  const { run, lines } = await start(t, r);
  await devicePage(run.url, 'first-token-123456');
  const get = await http(`${run.url}/-/reload`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.equal((await postReload(run.url)).status, 401);
  assert.equal((await postReload(run.url, 'wrong-token-123456')).status, 401);
  const same = await postReload(run.url, 'first-token-123456');
  assert.equal(same.status, 200);
  assert.ok(json(lines).some((l) => l.msg === 'configuration reloaded: no component changed'));

  r.write(pipeline(r.sim, { token: 'second-token-123456' }));
  assert.equal((await postReload(run.url, 'first-token-123456', 'x'.repeat(100_000))).status, 200);
  assert.equal((await http(`${run.url}/metrics`, { headers: auth('first-token-123456') })).status, 401, 'the old token no longer opens /metrics');
  assert.equal((await http(`${run.url}/metrics`, { headers: auth('second-token-123456') })).status, 200);
  assert.equal((await postReload(run.url, 'second-token-123456')).status, 200);
  assert.ok(!lines.some((l) => l.includes('second-token-123456')), 'the new token is never logged');
});

test('settings that need a restart (the port) are reported and kept; the rest of the edit applies', { timeout: 60_000 }, async (t) => {
  const r = await rig(t);
  r.write(pipeline(r.sim));
  const { run, lines } = await start(t, r);
  await devicePage(run.url);
  r.write(pipeline(r.sim, { port: 1, extraExporter: true }));
  const res = await postReload(run.url);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.deepEqual(res.json.needs_restart, ['service.http.port']);
  assert.ok(json(lines).some((l) => l.level === 'warn' && l.msg.includes('service.http.port') && l.msg.includes('needs a restart')));
  assert.equal((await http(`${run.url}/federate`)).status, 200, 'served on the port it started with');
});

test('SIGHUP reloads a running CLI process: a bad edit is logged and kept out, a good one applies', { timeout: 90_000 }, async (t) => {
  const r = await rig(t);
  r.write(pipeline(r.sim));
  const child = spawn(join(root, 'node_modules/.bin/node'), [CLI, 'run', '--config', r.file], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => stopChild(child));
  let log = '';
  child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
  const url = (await waitFor(() => /"msg":"tsmetrics started".*?"metrics":"(http:\/\/[^"]+)\/metrics"/.exec(log)?.[1], 30_000)) as string;
  await devicePage(url);

  r.write(pipeline(r.sim).replace('port: 0', 'port: 0, max_connections: lots'));
  child.kill('SIGHUP');
  await waitFor(() => log.includes('configuration reload failed'), 30_000);
  const problem = await waitFor(() => json(log.split('\n')).find((l) => l.msg.startsWith('reload: ') && l.msg.includes('service.http.max_connections')), 10_000);
  assert.ok(problem);
  const page = (await http(`${url}/metrics`)).body;
  assert.equal(gauge(page, 'tsmetrics_config_last_reload_successful'), 0);
  assert.match(page, /^tailscaled_/m, 'still serving the old configuration');

  r.write(pipeline(r.sim, { extraExporter: true }));
  child.kill('SIGHUP');
  await waitFor(async () => (await http(`${url}/federate`)).status === 200, 30_000);
  assert.equal(gauge((await http(`${url}/metrics`)).body, 'tsmetrics_config_last_reload_successful'), 1);
  assert.equal(child.exitCode, null, 'SIGHUP did not end the process');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('reload requests that arrive while one runs share the next run: a burst costs two loads', async () => {
  let runs = 0;
  let release = (): void => undefined;
  const q = new ReloadQueue(async () => {
    runs++;
    if (runs === 1) await new Promise<void>((resolve) => (release = resolve));
    return runs;
  });
  const first = q.request();
  const burst = Array.from({ length: 50 }, () => q.request());
  release();
  assert.equal(await first, 1);
  assert.deepEqual(new Set(await Promise.all(burst)), new Set([2]));
  assert.equal(runs, 2);
  assert.equal(await q.request(), 3, 'a request after the burst runs again');
});

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
}

test('Kubernetes: the pipeline ConfigMap is mounted as a directory, and the reloader sidecar POSTs /-/reload when the file changes', { timeout: 90_000 }, async (t) => {
  const docs = parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes-reload.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
  const cm = docs.find((d) => d.kind === 'ConfigMap');
  const dep = docs.find((d) => d.kind === 'Deployment');
  const spec = dep?.spec.template.spec as { containers: Container[]; volumes: Array<{ name: string; configMap?: { name: string } }> };
  const [main, sidecar] = spec.containers as [Container, Container];
  const configPath = (main.args as string[])[(main.args as string[]).indexOf('--config') + 1] as string;
  const vol = spec.volumes.find((v) => v.configMap?.name === cm?.metadata.name);
  assert.ok(vol, 'the ConfigMap is a volume');
  for (const c of [main, sidecar]) {
    const m: { name: string; mountPath: string; subPath?: string } | undefined = c.volumeMounts?.find((x) => x.name === vol.name);
    assert.ok(m, `${c.name} mounts it`);
    assert.equal(m.subPath, undefined, `${c.name}: no subPath (updates would never arrive)`);
    assert.equal(join(m.mountPath, 'pipeline.yaml'), configPath);
  }
  assert.equal(sidecar.env?.find((e) => e.name === 'WATCH_FILE')?.value, configPath);
  assert.equal(sidecar.env?.find((e) => e.name === 'RELOAD_URL')?.value, 'http://127.0.0.1:9100/-/reload');
  const script = cm?.data['config-reloader.sh'] as string;
  assert.equal(script, readFileSync(join(root, 'deploy/helm/files/config-reloader.sh'), 'utf8'), 'the manifest and the chart run the same script');
  // The pipeline in the ConfigMap is a valid configuration.
  const d = tempDir('tsm-k8s-');
  t.after(() => d.remove());
  const shipped = join(d.path, 'shipped.yaml');
  writeFileSync(shipped, cm?.data['pipeline.yaml'] as string);
  assert.ok(loadConfig({ OAUTH_CLIENT_ID: 'client-id', OAUTH_CLIENT_SECRET: 'client-secret-1234' }, { configFile: shipped }).receivers.has('device_metrics'));
  // Helm: the same setup behind config.reload.enabled.
  const values = parseYaml(readFileSync(join(root, 'deploy/helm/values.yaml'), 'utf8')) as { config: { reload: { enabled: boolean } } };
  assert.equal(values.config.reload.enabled, false);
  const workload = readFileSync(join(root, 'deploy/helm/templates/workload.yaml'), 'utf8');
  assert.match(workload, /\.Values\.config\.reload\.enabled/);
  assert.doesNotMatch(workload, /^\s*subPath:/m);

  // The script itself, run against a live tsmetrics behind a token: an edit of the file reloads it.
  const r = await rig(t);
  r.write(pipeline(r.sim, { token: 'reload-token-123456' }));
  const { run } = await start(t, r);
  await devicePage(run.url, 'reload-token-123456');
  const child = spawn('sh', ['-c', script], { env: { PATH: process.env.PATH ?? '', WATCH_FILE: r.file, RELOAD_URL: `${run.url}/-/reload`, RELOAD_INTERVAL: '1', METRICS_TOKEN: 'reload-token-123456' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => stopChild(child));
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => out.includes('watching'), 10_000);
  r.write(pipeline(r.sim, { token: 'reload-token-123456', extraExporter: true }));
  await waitFor(async () => (await http(`${run.url}/federate`, { headers: auth('reload-token-123456') })).status === 200, 30_000);
  assert.match(out, /changed; POST/);
  assert.doesNotMatch(out, /refused or failed/);
});

test('a logs pipeline with a connector: adding an exporter on the metrics side keeps the connector, whose counters go on summing', { timeout: 60_000 }, async (t) => {
  const d = tempDir('tsm-reload-logs-');
  t.after(() => d.remove());
  const file = join(d.path, 'pipeline.yaml');
  const gw = { id: 'nGw1CNTRL', name: 'gw-01.example.ts.net' };
  const db = { id: 'nDb1CNTRL', name: 'db-01.example.ts.net' };
  const batch = [flowRecord({ type: 'virtual', protocol: 'tcp', reporter: gw.id, src: { address: '100.64.0.1', port: 51000, device: gw }, dst: { address: '100.64.0.2', port: 5432, device: db }, counts: { tx_bytes: 1000, tx_packets: 10 } })];
  const yaml = (federate: boolean): string => `receivers:
  fixed_logs: {}
connectors:
  flow_metrics: {}
exporters:
  prometheus: {}
${federate ? '  prometheus/federate: { path: /federate }\n' : ''}service:
  http: { port: 0 }
  pipelines:
    logs: { receivers: [fixed_logs], exporters: [flow_metrics] }
    metrics: { receivers: [flow_metrics], exporters: [prometheus${federate ? ', prometheus/federate' : ''}] }
`;
  writeFileSync(file, yaml(false));
  const run = await startTsmetrics({ env: {}, configFile: file, registry: defaultRegistry([fixedLogsReceiverFactory(() => [batch])]), port: 0, write: () => undefined });
  t.after(() => run.stop(AbortSignal.timeout(3000)));
  const tx = { traffic_type: 'virtual', src_device: gw.name, dst_device: db.name, direction: 'tx' };
  await run.service.collectNow();
  assert.equal(sampleValue(families((await http(`${run.url}/metrics`)).body), 'tailscale_network_flow_bytes_total', tx), 1000);
  writeFileSync(file, yaml(true));
  const res = await run.reload();
  assert.equal(res.ok, true, res.problems.join('\n'));
  assert.deepEqual(res.added, ['prometheus/federate']);
  assert.ok((res.kept as string[]).includes('flow_metrics') && (res.kept as string[]).includes('fixed_logs'), JSON.stringify(res));
  await run.service.collectNow();
  assert.equal(sampleValue(families((await http(`${run.url}/metrics`)).body), 'tailscale_network_flow_bytes_total', tx), 2000, 'the kept connector sums on');
  assert.equal(sampleValue(families((await http(`${run.url}/federate`)).body), 'tailscale_network_flow_bytes_total', tx), 2000, 'and feeds the new exporter');
});

test('demo mode: a reload re-reads the environment and keeps the simulator; a changed variable rebuilds what it configures', { timeout: 60_000 }, async (t) => {
  const env: Record<string, string> = { LOG_LEVEL: 'error', SCRAPE_INTERVAL: '30s' };
  const run = await startTsmetrics({ env, port: 0, write: () => undefined });
  t.after(() => run.stop(AbortSignal.timeout(5000)));
  await waitFor(async () => (await http(`${run.url}/ready`)).status === 200, 30_000);
  const sim = run.simulator;
  const same = await postReload(run.url);
  assert.equal(same.status, 200, JSON.stringify(same.json));
  assert.deepEqual([same.json.added, same.json.replaced, same.json.removed], [[], [], []], 'nothing changed');
  env.SCRAPE_INTERVAL = '20s';
  const changed = await postReload(run.url);
  assert.equal(changed.status, 200, JSON.stringify(changed.json));
  assert.ok((changed.json.replaced as string[]).includes('device_metrics'), JSON.stringify(changed.json));
  assert.equal((run.config.receivers.get('device_metrics')?.config as { interval: number }).interval, 20_000);
  assert.equal(run.simulator, sim, 'the same simulator');
  const page = await http(`${run.url}/metrics`);
  assert.equal(page.status, 200);
  assert.match(page.body, /^tailscaled_/m, 'still watching the simulated tailnet');
});
