import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { startTsmetrics } from '../src/app.ts';
import { parseExposition } from '../receivers/device_metrics/exposition.ts';
import { http, waitFor } from './helpers/index.ts';
import { requireTool } from './helpers/system.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const files = walk(DEPLOY);
const isTemplate = (p: string) => p.includes(`${join('helm', 'templates')}`);

test('every YAML and JSON asset under deploy/ parses', () => {
  let n = 0;
  for (const f of files) {
    if (isTemplate(f)) continue;
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.json')) {
      JSON.parse(text);
      n++;
    } else if (f.endsWith('.yaml') || f.endsWith('.yml')) {
      for (const doc of parseAllDocuments(text)) assert.deepEqual(doc.errors, [], `${relative(ROOT, f)}: ${doc.errors.map((e) => e.message).join('; ')}`);
      n++;
    }
  }
  assert.ok(n >= 20, `parsed ${n} files`);
});

/** Metric names of our namespaces used in a PromQL expression. */
function metricNames(expr: string): string[] {
  // Label values in quotes ("tailscale_api.*") are not metric names.
  return [...expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/\b((?:tailscale|tailscaled|tsmetrics)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1] as string);
}

function dashboardExprs(d: { panels: Array<{ targets?: Array<{ expr: string }>; panels?: unknown[] }>; templating: { list: Array<{ query?: unknown }> } }): string[] {
  const out: string[] = [];
  for (const p of d.panels) for (const t of p.targets ?? []) out.push(t.expr);
  for (const v of d.templating.list) if (typeof v.query === 'string') out.push(v.query);
  return out;
}

test('dashboards: UIDs, $datasource and device variables, cross-links, 30s refresh', () => {
  const overview = JSON.parse(readFileSync(join(DEPLOY, 'grafana/tsmetrics-overview.json'), 'utf8'));
  const details = JSON.parse(readFileSync(join(DEPLOY, 'grafana/tsmetrics-device-details.json'), 'utf8'));
  assert.equal(overview.uid, 'tsmetrics-overview');
  const connectivity = JSON.parse(readFileSync(join(DEPLOY, 'grafana/tsmetrics-connectivity.json'), 'utf8'));
  assert.equal(details.uid, 'tsmetrics-device-details');
  assert.equal(connectivity.uid, 'tsmetrics-connectivity');
  const governance = JSON.parse(readFileSync(join(DEPLOY, 'grafana/tsmetrics-governance.json'), 'utf8'));
  assert.equal(governance.uid, 'tsmetrics-governance');
  const flows = JSON.parse(readFileSync(join(DEPLOY, 'grafana/tsmetrics-flows.json'), 'utf8'));
  assert.equal(flows.uid, 'tsmetrics-flows');
  for (const [d, other] of [[overview, 'tsmetrics-device-details'], [details, 'tsmetrics-overview'], [connectivity, 'tsmetrics-overview'], [governance, 'tsmetrics-overview'], [flows, 'tsmetrics-overview']]) {
    assert.equal(d.refresh, '30s');
    const names = d.templating.list.map((v: { name: string }) => v.name);
    assert.ok(names.includes('datasource') && names.includes('device'));
    assert.equal(d.templating.list.find((v: { name: string }) => v.name === 'datasource').type, 'datasource');
    assert.ok(d.links.some((l: { url: string }) => l.url.includes(other)), `links to ${other}`);
    for (const p of d.panels) if (p.type !== 'row') assert.equal(p.datasource.uid, '${datasource}', `${p.title} uses $datasource`);
    for (const p of d.panels) for (const t of p.targets ?? []) assert.ok(/\$job/.test(t.expr), `${p.title} honours $job`);
    for (const p of d.panels) {
      const ids = (p.targets ?? []).map((t: { refId: string }) => t.refId);
      assert.equal(new Set(ids).size, ids.length, `${p.title} has unique refIds`);
    }
  }
});

test('every metric name used by the dashboards and alert rules is produced by the demo’s /metrics', async (t) => {
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'error' }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  await waitFor(async () => (await http(`${running.url}/ready`)).status === 200);
  // The demo's logs pipeline turns the simulator's flow and audit logs into metrics once its first poll is delivered.
  await waitFor(async () => /tailscale_network_flow_bytes_total\{/.test((await http(`${running.url}/metrics`)).body) && /tailscale_configuration_events_total\{/.test((await http(`${running.url}/metrics`)).body));
  const body = (await http(`${running.url}/metrics`)).body;
  const produced = new Set(parseExposition(body).flatMap((f) => f.samples.map((s) => s.name)));
  // Counters that only exist once something went wrong (a record dropped, the series cap hit);
  // connectors/flow_metrics/deploy-assets.test.ts makes them happen and checks their names.
  const onFault = new Set(['tsmetrics_logs_records_dropped_total', 'tsmetrics_flow_metrics_overflow_records_total', 'tsmetrics_flow_metrics_rejected_records_total', 'tsmetrics_component_dropped_log_records_total']);
  const used = new Map<string, string>();
  for (const f of ['tsmetrics-overview.json', 'tsmetrics-device-details.json', 'tsmetrics-connectivity.json', 'tsmetrics-governance.json', 'tsmetrics-flows.json']) {
    for (const e of dashboardExprs(JSON.parse(readFileSync(join(DEPLOY, 'grafana', f), 'utf8')))) for (const n of metricNames(e)) if (!onFault.has(n)) used.set(n, f);
  }
  const rules = parseYaml(readFileSync(join(DEPLOY, 'prometheus/alerts.yaml'), 'utf8')) as { groups: Array<{ name: string; rules: Array<{ expr: string }> }> };
  for (const g of rules.groups) for (const r of g.rules) for (const n of metricNames(r.expr)) if (!onFault.has(n)) used.set(n, 'alerts.yaml');
  assert.ok(used.size > 30, `found ${used.size} metric names`);
  const missing = [...used].filter(([n]) => !produced.has(n));
  assert.deepEqual(missing, [], 'metrics used but not produced');
});

test('promtool check rules and promtool test rules (every alert has a unit test)', () => {
  // No skip when promtool is missing: .ci/run installs it, and a skip would read as a pass.
  requireTool('promtool');
  execFileSync('promtool', ['check', 'rules', join(DEPLOY, 'prometheus/alerts.yaml')], { encoding: 'utf8' });
  const out = execFileSync('promtool', ['test', 'rules', join(DEPLOY, 'prometheus/alerts.test.yaml')], { encoding: 'utf8', cwd: join(DEPLOY, 'prometheus') });
  assert.match(out, /SUCCESS/);
  const rules = parseYaml(readFileSync(join(DEPLOY, 'prometheus/alerts.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> };
  const tests = readFileSync(join(DEPLOY, 'prometheus/alerts.test.yaml'), 'utf8');
  for (const g of rules.groups) for (const r of g.rules) assert.match(tests, new RegExp(`alertname: ${r.alert}\\b`), `${r.alert} has a test`);
  execFileSync('promtool', ['check', 'config', join(DEPLOY, 'prometheus/prometheus.yml')], { encoding: 'utf8' });
});

function leaves(obj: unknown, prefix = ''): string[] {
  if (obj && typeof obj === 'object' && !Array.isArray(obj) && Object.keys(obj).length > 0) {
    return Object.entries(obj).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}

test('Helm: every .Values reference exists in values.yaml and every value is used', () => {
  const values = parseYaml(readFileSync(join(DEPLOY, 'helm/values.yaml'), 'utf8')) as Record<string, unknown>;
  const defined = leaves(values);
  const templates = files.filter(isTemplate).map((f) => readFileSync(f, 'utf8')).join('\n');
  const refs = [...new Set([...templates.matchAll(/\.Values\.([a-zA-Z0-9_.]+)/g)].map((m) => m[1] as string))];
  for (const r of refs) assert.ok(defined.some((d) => d === r || d.startsWith(`${r}.`)), `.Values.${r} is not in values.yaml`);
  for (const d of defined) assert.ok(refs.some((r) => d === r || d.startsWith(`${r}.`)), `values.yaml key ${d} is never used`);
  for (const k of ['tailscale.oauthClientId', 'tailscale.oauthClientSecret', 'tailscale.tailnetName', 'tailscale.tsnet.enabled', 'resources.requests.cpu', 'persistence.enabled', 'externalSecret.enabled', 'serviceMonitor.enabled']) {
    assert.ok(defined.includes(k), `the Go exporter's key ${k} exists`);
  }
});

test('Kubernetes assets: probes on the served port and paths; non-root, read-only root, no capabilities', async (t) => {
  const docs = [join(DEPLOY, 'kubernetes.yaml'), join(DEPLOY, 'kubernetes-sharded.yaml'), join(DEPLOY, 'kubernetes-sidecar.yaml'), join(DEPLOY, 'kubernetes-daemonset.yaml'), join(DEPLOY, 'kustomize/base/deployment.yaml')].flatMap((f) => parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS()));
  const workloads = docs.filter((d) => ['Deployment', 'StatefulSet'].includes(d?.kind) && d.metadata.name.startsWith('tsmetrics'));
  assert.equal(workloads.length, 4);
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'error' }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  await waitFor(async () => (await http(`${running.url}/ready`)).status === 200);
  for (const w of workloads) {
    const c = w.spec.template.spec.containers[0];
    assert.deepEqual(c.ports, [{ name: 'http', containerPort: 9100 }]);
    for (const probe of [c.livenessProbe, c.readinessProbe]) {
      assert.equal(probe.httpGet.port, 'http');
      assert.equal((await http(`${running.url}${probe.httpGet.path}`)).status, 200, `${probe.httpGet.path} is served`);
    }
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(w.spec.template.spec.securityContext.runAsNonRoot, true);
  }
  // Kustomize overlays reference files that exist.
  for (const k of ['base', 'overlays/development', 'overlays/production']) {
    const kz = parseYaml(readFileSync(join(DEPLOY, 'kustomize', k, 'kustomization.yaml'), 'utf8')) as { resources?: string[]; patches?: Array<{ path: string }> };
    for (const r of kz.resources ?? []) assert.ok(existsSync(join(DEPLOY, 'kustomize', k, r)), `${k}: ${r}`);
    for (const p of kz.patches ?? []) assert.ok(existsSync(join(DEPLOY, 'kustomize', k, p.path)), `${k}: ${p.path}`);
  }
  const prod = ['servicemonitor.yaml', 'poddisruptionbudget.yaml', 'pvc.yaml'].map((f) => parseYaml(readFileSync(join(DEPLOY, 'kustomize/overlays/production', f), 'utf8')).kind);
  assert.deepEqual(prod, ['ServiceMonitor', 'PodDisruptionBudget', 'PersistentVolumeClaim']);
});

test('container and systemd: non-root, EXPOSE 9100, HEALTHCHECK via the tsmetrics subcommand; hardened unit', async (t) => {
  const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(df, /^USER 65532:65532$/m);
  assert.match(df, /^EXPOSE 9100$/m);
  assert.match(df, /HEALTHCHECK[\s\S]*"healthcheck"\]/);
  assert.ok(!/curl|wget/.test(df));
  assert.match(df, /AS tsnet/);
  assert.ok(existsSync(join(ROOT, '.dockerignore')));
  const unit = readFileSync(join(DEPLOY, 'systemd/tsmetrics.service'), 'utf8');
  for (const k of ['DynamicUser=yes', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'EnvironmentFile=/etc/tsmetrics/tsmetrics.env', 'CapabilityBoundingSet=']) assert.ok(unit.includes(k), k);
  // The HEALTHCHECK command really works: 0 against a live server, 1 against a dead port.
  const running = await startTsmetrics({ env: { LOG_LEVEL: 'error' }, port: 0, write: () => undefined });
  t.after(() => running.stop());
  // Asynchronously: the server under test runs in this process and must keep answering.
  const cli = (url: string) =>
    new Promise<number>((resolve) => {
      const child = execFile(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'healthcheck', '--url', url], { timeout: 20_000 });
      child.on('exit', (code) => resolve(code ?? -1));
    });
  assert.equal(await cli(`${running.url}/health`), 0);
  assert.equal(await cli('http://127.0.0.1:1/health'), 1);
});
