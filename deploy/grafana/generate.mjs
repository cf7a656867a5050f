// Generates the Grafana dashboards (run: node deploy/grafana/generate.mjs).
// Kept as code so panels stay consistent; the JSON files are the shipped artifacts.
import { writeFileSync } from 'node:fs';

const DS = { type: 'prometheus', uid: '${datasource}' };
let nextId = 1;
const grid = { x: 0, y: 0 };
function pos(w, h) {
  if (grid.x + w > 24) {
    grid.x = 0;
    grid.y += h;
  }
  const p = { x: grid.x, y: grid.y, w, h };
  grid.x += w;
  return p;
}
const target = (expr, legend = '', extra = {}) => ({ datasource: DS, expr, legendFormat: legend, ...extra });
// Each query of a panel needs its own refId (A, B, C …).
const refIds = (targets) => targets.map((t, i) => ({ ...t, refId: String.fromCharCode(65 + i) }));
function stat(title, expr, unit = 'short', w = 4, thresholds) {
  return { id: nextId++, type: 'stat', title, datasource: DS, gridPos: pos(w, 4), targets: refIds([target(expr)]), fieldConfig: { defaults: { unit, ...(thresholds ? { thresholds: { mode: 'absolute', steps: thresholds } } : {}) }, overrides: [] }, options: { reduceOptions: { calcs: ['lastNotNull'] }, colorMode: 'value', graphMode: 'none' } };
}
function ts(title, targets, unit = 'short', w = 12, h = 8) {
  return { id: nextId++, type: 'timeseries', title, datasource: DS, gridPos: pos(w, h), targets: refIds(targets), fieldConfig: { defaults: { unit }, overrides: [] }, options: { legend: { displayMode: 'table', placement: 'bottom' } } };
}
function table(title, targets, w = 24, h = 10, transformations = []) {
  return { id: nextId++, type: 'table', title, datasource: DS, gridPos: pos(w, h), targets: refIds(targets).map((t) => ({ ...t, format: 'table', instant: true })), transformations, fieldConfig: { defaults: {}, overrides: [] } };
}
function row(title) {
  grid.x = 0;
  grid.y += 8;
  return { id: nextId++, type: 'row', title, collapsed: false, gridPos: { x: 0, y: grid.y++, w: 24, h: 1 }, panels: [] };
}
function dashboard(uid, title, panels, { device = false, noDevice = false, links, deviceQuery = 'label_values(tailscale_device_info{job=~"$job"}, device_name)', deviceLabel = 'Device', extraVars = [] }) {
  const vars = [{ name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Data source', current: {}, hide: 0 }];
  vars.push({ name: 'job', type: 'query', datasource: DS, query: 'label_values(tsmetrics_source_up, job)', refresh: 2, includeAll: true, allValue: '.*', multi: false, current: {}, label: 'Job' });
  vars.push(...extraVars);
  if (!noDevice) vars.push({ name: 'device', type: 'query', datasource: DS, query: deviceQuery, refresh: 2, includeAll: !device, multi: !device, allValue: '.*', current: {}, label: deviceLabel });
  return {
    uid,
    title,
    tags: ['tailscale', 'tsmetrics'],
    timezone: 'browser',
    refresh: '30s',
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    templating: { list: vars },
    links,
    panels,
    annotations: { list: [] },
    editable: true,
  };
}

// ---- Overview ----
nextId = 1;
grid.x = 0;
grid.y = 0;
const sel = 'job=~"$job",device_name=~"$device"';
const overview = [
  stat('Devices', `sum(tailscale_device_count{job=~"$job"})`),
  stat('Online', `sum(tailscale_device_online{${sel}})`),
  stat('Online %', `100 * sum(tailscale_device_online{${sel}}) / count(tailscale_device_online{${sel}})`, 'percent'),
  stat('Awaiting approval', `count(tailscale_device_authorized{${sel}} == 0) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  stat('Updates available', `sum(tailscale_device_update_available{${sel}})`),
  stat('Client versions', `count(count by (version) (tailscale_device_info{${sel}}))`),
  stat('Exit nodes', `sum(tailscale_device_exit_node{${sel}})`),
  stat('Subnet routers', `sum(tailscale_device_subnet_router{${sel}})`),
  stat('Unapproved routes', `count(tailscale_device_routes_unapproved{${sel}}) or vector(0)`),
  stat('Keys expiring < 7d', `count((tailscale_device_machine_key_expiry{${sel}} > 0) and (tailscale_device_machine_key_expiry{${sel}} - time() < 7 * 86400)) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'red', value: 1 }]),
  stat('Scraped devices up', `sum(tsmetrics_device_scrape_up{${sel}}) / count(tsmetrics_device_scrape_up{${sel}}) * 100`, 'percent'),
  // The inventory sources only: the tailscale_api collectors beyond devices (`<id>:<name>`) are on the Governance dashboard.
  stat('API source up', `min(tsmetrics_source_up{job=~"$job",source=~"tailscale_api[^:]*|headscale.*"})`, 'short', 4, [{ color: 'red', value: null }, { color: 'green', value: 1 }]),
  row('Traffic'),
  ts('Traffic in / out (all devices)', [target(`sum(rate(tailscaled_inbound_bytes_total{${sel}}[5m]))`, 'in'), target(`-sum(rate(tailscaled_outbound_bytes_total{${sel}}[5m]))`, 'out')], 'Bps'),
  ts('Inbound traffic by path (direct vs DERP vs peer relay)', [target(`sum by (path) (rate(tailscaled_inbound_bytes_total{${sel}}[5m]))`, '{{path}}')], 'Bps'),
  ts('Direct share of inbound bytes', [target(`100 * sum(rate(tailscaled_inbound_bytes_total{${sel},path=~"direct_.*"}[5m])) / sum(rate(tailscaled_inbound_bytes_total{${sel}}[5m]))`, 'direct %')], 'percent'),
  ts('Dropped packets ratio', [
    target(`100 * sum(rate(tailscaled_inbound_dropped_packets_total{${sel}}[5m])) / sum(rate(tailscaled_inbound_packets_total{${sel}}[5m]))`, 'inbound %'),
    target(`100 * sum(rate(tailscaled_outbound_dropped_packets_total{${sel}}[5m])) / sum(rate(tailscaled_outbound_packets_total{${sel}}[5m]))`, 'outbound %'),
  ], 'percent'),
  ts('Top devices by traffic', [target(`topk(10, sum by (device_name) (rate(tailscaled_inbound_bytes_total{${sel}}[5m]) + on(device_id, device_name, path) rate(tailscaled_outbound_bytes_total{${sel}}[5m])))`, '{{device_name}}')], 'Bps'),
  ts('Health messages', [target(`sum by (device_name) (tailscaled_health_messages{${sel}})`, '{{device_name}}')]),
  row('Connectivity'),
  ts('Preferred DERP latency', [target(`tailscale_device_latency_ms{${sel},preferred="true"}`, '{{device_name}} ({{derp_region}})')], 'ms'),
  ts('Home DERP region by device', [target(`tailscaled_home_derp_region_id{${sel}}`, '{{device_name}}')]),
  table('Devices', [
    target(`tailscale_device_info{${sel}}`, ''),
    target(`tailscale_device_online{${sel}}`, ''),
    target(`tailscale_device_machine_key_expiry{${sel}} * 1000`, ''),
    target(`tailscale_device_update_available{${sel}}`, ''),
  ], 24, 10, [{ id: 'merge', options: {} }]),
  row('tsmetrics'),
  ts('Collection cycle duration', [target(`rate(tsmetrics_cycle_duration_seconds_sum{job=~"$job"}[5m]) / rate(tsmetrics_cycle_duration_seconds_count{job=~"$job"}[5m])`, '{{component_id}}')], 's', 8),
  ts('Errors by component and type', [target(`sum by (component_id, error_type) (rate(tsmetrics_component_errors_total{job=~"$job"}[5m]))`, '{{component_id}} {{error_type}}')], 'short', 8),
  ts('Device scrape failures', [target(`sum by (kind) (rate(tsmetrics_device_scrape_errors_total{${sel}}[5m]))`, '{{kind}}')], 'short', 8),
  ts('Last successful cycle age', [target(`time() - tsmetrics_last_successful_cycle_timestamp_seconds{job=~"$job"}`, '{{component_id}}')], 's', 12),
  ts('Points through the pipeline', [target(`sum by (component_id) (rate(tsmetrics_component_sent_points_total{job=~"$job"}[5m]))`, '{{component_id}}')], 'short', 12),
];
const overviewDash = dashboard('tsmetrics-overview', 'Tailscale / Overview', overview, {
  links: [{ type: 'dashboards', title: 'Device details', url: '/d/tsmetrics-device-details', asDropdown: false, includeVars: true, keepTime: true, tags: [] }],
});

// ---- Device details ----
nextId = 1;
grid.x = 0;
grid.y = 0;
const d = 'job=~"$job",device_name=~"$device"';
const details = [
  stat('Online', `max(tailscale_device_online{${d}})`, 'short', 3, [{ color: 'red', value: null }, { color: 'green', value: 1 }]),
  stat('Authorized', `max(tailscale_device_authorized{${d}})`, 'short', 3),
  stat('Availability 24h', `100 * avg_over_time(tailscale_device_online{${d}}[24h])`, 'percent', 3),
  stat('Key expires', `max(tailscale_device_machine_key_expiry{${d}}) * 1000`, 'dateTimeFromNow', 5),
  stat('Last seen', `max(tailscale_device_last_seen_timestamp{${d}}) * 1000`, 'dateTimeFromNow', 5),
  stat('Scrape up', `max(tsmetrics_device_scrape_up{${d}})`, 'short', 5),
  stat('Exit node', `max(tailscale_device_exit_node{${d}})`, 'short', 4),
  stat('Subnet router', `max(tailscale_device_subnet_router{${d}})`, 'short', 4),
  stat('Advertised routes', `max(tailscaled_advertised_routes{${d}})`, 'short', 4),
  stat('Approved routes', `max(tailscaled_approved_routes{${d}})`, 'short', 4),
  stat('Update available', `max(tailscale_device_update_available{${d}})`, 'short', 4),
  stat('SSH enabled', `max(tailscale_device_ssh_enabled{${d}})`, 'short', 4),
  row('Traffic'),
  ts('Bytes by path', [target(`sum by (path) (rate(tailscaled_inbound_bytes_total{${d}}[5m]))`, 'in {{path}}'), target(`-sum by (path) (rate(tailscaled_outbound_bytes_total{${d}}[5m]))`, 'out {{path}}')], 'Bps'),
  ts('Packets by path', [target(`sum by (path) (rate(tailscaled_inbound_packets_total{${d}}[5m]))`, 'in {{path}}'), target(`-sum by (path) (rate(tailscaled_outbound_packets_total{${d}}[5m]))`, 'out {{path}}')], 'pps'),
  ts('Direct share', [target(`100 * sum(rate(tailscaled_inbound_bytes_total{${d},path=~"direct_.*"}[5m])) / sum(rate(tailscaled_inbound_bytes_total{${d}}[5m]))`, 'direct %')], 'percent'),
  ts('Dropped packets by reason', [target(`sum by (reason) (rate(tailscaled_inbound_dropped_packets_total{${d}}[5m]))`, 'in {{reason}}'), target(`sum by (reason) (rate(tailscaled_outbound_dropped_packets_total{${d}}[5m]))`, 'out {{reason}}')], 'pps'),
  ts('Average packet size', [target(`sum(rate(tailscaled_inbound_bytes_total{${d}}[5m])) / sum(rate(tailscaled_inbound_packets_total{${d}}[5m]))`, 'in'), target(`sum(rate(tailscaled_outbound_bytes_total{${d}}[5m])) / sum(rate(tailscaled_outbound_packets_total{${d}}[5m]))`, 'out')], 'decbytes'),
  ts('Health messages', [target(`tailscaled_health_messages{${d}}`, '{{type}}')]),
  row('Connectivity and relays'),
  ts('DERP latency by region', [target(`tailscale_device_latency_ms{${d}}`, '{{derp_region}} preferred={{preferred}}')], 'ms'),
  ts('Peer relay forwarded bytes', [target(`sum by (transport_in, transport_out) (rate(tailscaled_peer_relay_forwarded_bytes_total{${d}}[5m]))`, '{{transport_in}}→{{transport_out}}')], 'Bps'),
  ts('Serve traffic by Tailscale Service', [target(`sum by (service) (rate(tailscaled_serve_inbound_bytes_total{${d}}[5m]))`, 'in {{service}}'), target(`-sum by (service) (rate(tailscaled_serve_outbound_bytes_total{${d}}[5m]))`, 'out {{service}}')], 'Bps'),
  table('Routes', [target(`tailscale_device_routes_advertised{${d}}`, ''), target(`tailscale_device_routes_enabled{${d}}`, ''), target(`tailscale_device_routes_unapproved{${d}}`, '')], 12, 8),
  table('Client features', [target(`tailscale_device_client_supports{${d}}`, ''), target(`tailscale_device_endpoints_total{${d}}`, '')], 12, 8),
  row('Scrape'),
  ts('Scrape duration', [target(`tsmetrics_device_scrape_duration_seconds{${d}}`, 'duration')], 's', 8),
  ts('Scrape errors by kind', [target(`sum by (kind) (rate(tsmetrics_device_scrape_errors_total{${d}}[5m]))`, '{{kind}}')], 'short', 8),
  ts('Samples per scrape', [target(`tsmetrics_device_scrape_samples{${d}}`, 'samples')], 'short', 8),
];
const detailsDash = dashboard('tsmetrics-device-details', 'Tailscale / Device Details', details, {
  device: true,
  links: [{ type: 'dashboards', title: 'Overview', url: '/d/tsmetrics-overview', asDropdown: false, includeVars: true, keepTime: true, tags: [] }],
});

// ---- Connectivity (local_tailscaled: each node's view of its peers) ----
nextId = 1;
grid.x = 0;
grid.y = 0;
// Node series carry observer_*; peer series add the peer's device_id/device_name.
const n = 'job=~"$job",observer_name=~"$observer"';
const pr = `${n},device_name=~"$device"`;
// A table whose columns get units; queries are merged on their common labels.
function peerTable(title, targets, columns, w = 24, h = 10) {
  const t = table(title, targets, w, h, [
    { id: 'merge', options: {} },
    { id: 'organize', options: { excludeByName: { Time: true }, renameByName: Object.fromEntries(columns.map(([ref, name]) => [`Value #${ref}`, name])) } },
  ]);
  t.fieldConfig.overrides = columns.filter(([, , unit]) => unit).map(([, name, unit]) => ({ matcher: { id: 'byName', options: name }, properties: [{ id: 'unit', value: unit }] }));
  return t;
}
const connectivity = [
  stat('Nodes not Running', `count(tailscale_node_backend_state{${n},state="Running"} == 0) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'red', value: 1 }]),
  stat('Peers', `sum(tailscale_node_peers{${n}})`),
  stat('Online peers', `sum(tailscale_node_peers{${n},online="true"})`),
  stat('Direct', `sum(tailscale_node_peers_by_path{${n},path="direct"})`),
  stat('Relayed (DERP)', `sum(tailscale_node_peers_by_path{${n},path="derp"})`, 'short', 4, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  stat('Peer relay', `sum(tailscale_node_peers_by_path{${n},path="peer_relay"})`),
  stat('Idle', `sum(tailscale_node_peers_by_path{${n},path="idle"})`),
  stat('Offline', `sum(tailscale_node_peers_by_path{${n},path="offline"})`),
  stat('Stale handshakes (active peers)', `count((time() - tailscale_peer_last_handshake_timestamp{${pr}} > 300) and on (observer_id, device_id) (tailscale_peer_active{${pr}} == 1)) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'red', value: 1 }]),
  stat('Peer keys expiring < 7d', `count(min by (device_id) (tailscale_peer_key_expiry_timestamp{${pr}}) < time() + 7 * 86400) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  stat('Health warnings', `sum(tailscale_node_health_warnings{${n}}) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  stat('LocalAPI source up', `min(tsmetrics_source_up{job=~"$job",source=~"local_tailscaled.*"})`, 'short', 4, [{ color: 'red', value: null }, { color: 'green', value: 1 }]),
  row('Paths over time'),
  ts('Peers by path', [target(`sum by (path) (tailscale_node_peers_by_path{${n}})`, '{{path}}')]),
  ts('Peers online / offline', [target(`sum by (online) (tailscale_node_peers{${n}})`, 'online={{online}}')]),
  ts('Relayed peers by DERP region', [target(`count by (derp_region) (tailscale_peer_path{${pr},path="derp"})`, '{{derp_region}}')]),
  ts('Direct share of peers with a path', [target(`100 * sum(tailscale_node_peers_by_path{${n},path="direct"}) / clamp_min(sum(tailscale_node_peers_by_path{${n},path=~"direct|derp|peer_relay"}), 1)`, 'direct %')], 'percent'),
  row('Peers'),
  peerTable(
    'Peer table',
    [
      target(`max by (observer_name, device_name, path, derp_region, family) (tailscale_peer_path{${pr}})`),
      target(`max by (observer_name, device_name) (time() - tailscale_peer_last_handshake_timestamp{${pr}})`),
      target(`sum by (observer_name, device_name) (rate(tailscale_peer_received_bytes_total{${pr}}[5m]))`),
      target(`sum by (observer_name, device_name) (rate(tailscale_peer_sent_bytes_total{${pr}}[5m]))`),
      target(`max by (observer_name, device_name) (tailscale_peer_online{${pr}})`),
    ],
    [['A', 'Path'], ['B', 'Last handshake age', 's'], ['C', 'Received', 'Bps'], ['D', 'Sent', 'Bps'], ['E', 'Online']],
  ),
  peerTable(
    'Peers relayed through DERP the longest (share of the last hour)',
    [target(`topk(20, sum by (observer_name, device_name, derp_region) (count_over_time(tailscale_peer_path{${pr},path="derp"}[1h])) / on (observer_name, device_name) group_left () sum by (observer_name, device_name) (count_over_time(tailscale_peer_path{${pr}}[1h])))`)],
    [['A', 'Share relayed', 'percentunit']],
    12,
    8,
  ),
  peerTable('Peer key expiry', [target(`min by (device_name) (tailscale_peer_key_expiry_timestamp{${pr}}) * 1000`)], [['A', 'Expires', 'dateTimeFromNow']], 12, 8),
  ts('Last handshake age', [target(`time() - tailscale_peer_last_handshake_timestamp{${pr}}`, '{{observer_name}} → {{device_name}}')], 's'),
  ts('Traffic by peer (top 10)', [target(`topk(10, sum by (observer_name, device_name) (rate(tailscale_peer_received_bytes_total{${pr}}[5m]) + on (observer_id, device_id) group_left () rate(tailscale_peer_sent_bytes_total{${pr}}[5m])))`, '{{observer_name}} → {{device_name}}')], 'Bps'),
  row('Nodes'),
  peerTable('Nodes', [target(`tailscale_node_info{${n}}`), target(`max by (observer_name, state) (tailscale_node_backend_state{${n}} == 1)`)], [['A', 'Info'], ['B', 'State']], 12, 8),
  peerTable('Health warnings', [target(`tailscale_node_health_warnings{${n}}`)], [['A', 'Count']], 12, 8),
  ts('Peers over max_peers / malformed', [target(`sum by (observer_name) (tsmetrics_localapi_peers_over_limit{${n}})`, 'over limit {{observer_name}}'), target(`sum by (observer_name) (tsmetrics_localapi_peers_malformed{${n}})`, 'malformed {{observer_name}}')], 'short', 24),
];
const connectivityDash = dashboard('tsmetrics-connectivity', 'Tailscale / Connectivity', connectivity, {
  deviceQuery: 'label_values(tailscale_peer_info{job=~"$job",observer_name=~"$observer"}, device_name)',
  deviceLabel: 'Peer',
  extraVars: [{ name: 'observer', type: 'query', datasource: DS, query: 'label_values(tailscale_node_info{job=~"$job"}, observer_name)', refresh: 2, includeAll: true, multi: true, allValue: '.*', current: {}, label: 'Seen from' }],
  links: [
    { type: 'dashboards', title: 'Overview', url: '/d/tsmetrics-overview', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
    { type: 'dashboards', title: 'Device details', url: '/d/tsmetrics-device-details', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
  ],
});

// ---- Headscale (receivers/headscale: a self-hosted control server's keys, users and health) ----
nextId = 1;
grid.x = 0;
grid.y = 0;
const h = 'job=~"$job",tailnet=~"$tailnet"';
// Keys that can still register a node: not expired, and reusable or not used yet.
const usableKeys = `(headscale_preauth_key_expiry_timestamp_seconds{${h}} > time()) unless (headscale_preauth_key_used{${h}} == 1)`;
const headscale = [
  stat('Control server reachable', `min(tsmetrics_source_up{job=~"$job",source=~"headscale.*"})`, 'short', 3, [{ color: 'red', value: null }, { color: 'green', value: 1 }]),
  stat('Database', `min(headscale_health_database_connectivity{${h}})`, 'short', 3, [{ color: 'red', value: null }, { color: 'green', value: 1 }]),
  stat('Nodes', `sum(headscale_user_nodes{${h}})`, 'short', 3),
  stat('Online nodes', `sum(headscale_user_nodes_online{${h}})`, 'short', 3),
  stat('Users', `sum(headscale_users{${h}})`, 'short', 3),
  stat('Usable pre-auth keys', `count(${usableKeys}) or vector(0)`, 'short', 3),
  stat('Pre-auth keys expiring < 7d', `count((${usableKeys}) < time() + 7 * 86400) or vector(0)`, 'short', 3, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  stat('API keys expiring < 7d', `count(headscale_api_key_expiry_timestamp_seconds{${h}} > time() < time() + 7 * 86400) or vector(0)`, 'short', 3, [{ color: 'green', value: null }, { color: 'red', value: 1 }]),
  row('Nodes and users'),
  ts('Online nodes by user', [target(`sum by (user_name) (headscale_user_nodes_online{${h}})`, '{{user_name}}')], 'short', 8),
  ts('Nodes by registration method', [target(`count by (method) (headscale_node_register_method{${h}})`, '{{method}}')], 'short', 8),
  ts('Collections read', [target(`min by (collection) (tsmetrics_headscale_collection_up{${h}})`, '{{collection}}')], 'short', 8),
  peerTable('Nodes per user', [target(`sum by (user_name) (headscale_user_nodes{${h}})`), target(`sum by (user_name) (headscale_user_nodes_online{${h}})`)], [['A', 'Nodes'], ['B', 'Online']], 12, 8),
  peerTable('Routes served now (HA primaries and exit routes)', [target(`max by (device_name, route) (headscale_node_routes_serving{${h}})`)], [['A', 'Serving']], 12, 8),
  row('Keys'),
  peerTable(
    'Pre-auth keys',
    [
      target(`max by (key_id, user_name) (headscale_preauth_key_info{${h}})`),
      target(`max by (key_id) (headscale_preauth_key_reusable{${h}})`),
      target(`max by (key_id) (headscale_preauth_key_ephemeral{${h}})`),
      target(`max by (key_id) (headscale_preauth_key_used{${h}})`),
      target(`max by (key_id) (headscale_preauth_key_expiry_timestamp_seconds{${h}}) * 1000`),
    ],
    [['A', 'Key'], ['B', 'Reusable'], ['C', 'Ephemeral'], ['D', 'Used'], ['E', 'Expires', 'dateTimeFromNow']],
    14,
    9,
  ),
  peerTable(
    'API keys',
    [target(`max by (key_id, prefix) (headscale_api_key_expiry_timestamp_seconds{${h}}) * 1000`), target(`max by (key_id, prefix) (headscale_api_key_created_timestamp_seconds{${h}}) * 1000`)],
    [['A', 'Expires', 'dateTimeFromNow'], ['B', 'Created', 'dateTimeFromNow']],
    10,
    9,
  ),
  row('Server (Headscale /metrics, with metrics_url)'),
  ts('Map responses by type', [target(`sum by (response_type) (rate(headscale_mapresponse_generated_total{${h}}[5m]))`, '{{response_type}}')], 'ops', 8),
  ts('Map sessions ended', [target(`sum by (reason) (rate(headscale_mapresponse_ended_total{${h}}[5m]))`, '{{reason}}')], 'ops', 8),
  ts('NodeStore batch duration p99', [target(`histogram_quantile(0.99, sum by (le) (rate(headscale_nodestore_batch_duration_seconds_bucket{${h}}[5m])))`, 'p99')], 's', 8),
  ts('NodeStore nodes and write queue', [target(`sum(headscale_nodestore_nodes{${h}})`, 'nodes'), target(`sum(headscale_nodestore_queue_depth{${h}})`, 'queue depth')], 'short', 8),
  ts('Resident memory', [target(`process_resident_memory_bytes{${h}}`, 'rss')], 'bytes', 8),
  ts('CPU and goroutines', [target(`rate(process_cpu_seconds_total{${h}}[5m])`, 'cpu'), target(`go_goroutines{${h}}`, 'goroutines')], 'short', 8),
];
const headscaleDash = dashboard('tsmetrics-headscale', 'Tailscale / Headscale', headscale, {
  noDevice: true,
  extraVars: [{ name: 'tailnet', type: 'query', datasource: DS, query: 'label_values(headscale_users{job=~"$job"}, tailnet)', refresh: 2, includeAll: true, multi: true, allValue: '.*', current: {}, label: 'Tailnet' }],
  links: [
    { type: 'dashboards', title: 'Overview', url: '/d/tsmetrics-overview', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
    { type: 'dashboards', title: 'Device details', url: '/d/tsmetrics-device-details', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
  ],
});

// ---- Governance (tailscale_api collectors: keys, users, policy, posture, log streams, Services) ----
nextId = 1;
grid.x = 0;
grid.y = 0;
const gv = 'job=~"$job"';
const DAY = 86400;
const governance = [
  stat('Own credential expires in', `min(tailscale_credential_expiry_timestamp{${gv}}) - time()`, 's', 4, [{ color: 'red', value: null }, { color: 'orange', value: 7 * DAY }, { color: 'green', value: 14 * DAY }]),
  stat('Keys expiring < 14d', `count((tailscale_key_expiry_timestamp{${gv}} - time() < 14 * ${DAY}) and (tailscale_key_invalid{${gv}} == 0)) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  stat('Invalid keys still listed', `sum(tailscale_key_invalid{${gv}}) or vector(0)`),
  stat('Users awaiting approval', `sum(tailscale_users_awaiting_approval{${gv}})`, 'short', 4, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  stat('Posture integrations failing', `sum(tailscale_posture_integration_error{${gv}}) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'red', value: 1 }]),
  stat('Log streams failing', `sum(tailscale_log_stream_last_attempt_failed{${gv}}) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'red', value: 1 }]),
  row('Keys and the exporter’s credential'),
  peerTable(
    'Keys by expiry',
    [
      target(`max by (key_id, key_type, description) (tailscale_key_info{${gv}})`),
      target(`max by (key_id) (tailscale_key_expiry_timestamp{${gv}}) * 1000`),
      target(`max by (key_id) (tailscale_key_invalid{${gv}})`),
      target(`max by (key_id) (tailscale_key_revoked{${gv}})`),
    ],
    [['A', 'Key'], ['B', 'Expires', 'dateTimeFromNow'], ['C', 'Invalid'], ['D', 'Revoked']],
    14,
    10,
  ),
  ts('Days until expiry: the exporter’s credential and valid keys', [target(`(tailscale_credential_expiry_timestamp{${gv}} - time()) / ${DAY}`, 'tsmetrics ({{credential_type}} {{key_id}})'), target(`min by (key_type) ((tailscale_key_expiry_timestamp{${gv}} - time()) / ${DAY} and (tailscale_key_invalid{${gv}} == 0))`, 'soonest {{key_type}}')], 'd', 10, 10),
  ts('Keys by type', [target(`sum by (key_type) (tailscale_keys{${gv}})`, '{{key_type}}')], 'short', 12, 7),
  ts('Keys by capability (auth keys)', [target(`sum by (capability) (tailscale_key_capability{${gv}})`, '{{capability}}')], 'short', 12, 7),
  row('Users and invites'),
  ts('Users by status', [target(`sum by (status) (tailscale_users{${gv}})`, '{{status}}')], 'short', 8),
  ts('Users by role', [target(`sum by (role) (tailscale_users{${gv}})`, '{{role}}')], 'short', 8),
  ts('Users connected now, open invites', [target(`sum(tailscale_user_connected{${gv}})`, 'connected'), target(`sum(tailscale_user_invites{${gv}})`, 'open invites')], 'short', 8),
  peerTable('Users awaiting approval', [target(`max by (user_id, login_name, display_name) (tailscale_user_info{${gv},status="needs-approval"})`), target(`max by (user_id) (tailscale_user_created_timestamp{${gv}} and on (user_id) tailscale_user_info{${gv},status="needs-approval"}) * 1000`)], [['A', 'User'], ['B', 'Joined', 'dateTimeFromNow']], 12, 8),
  peerTable('Open user invites', [target(`max by (invite_id, role, email) (tailscale_user_invite_info{${gv}})`), target(`max by (invite_id) (time() - tailscale_user_invite_first_seen_timestamp{${gv}})`), target(`max by (invite_id) (tailscale_user_invite_last_email_sent_timestamp{${gv}}) * 1000`)], [['A', 'Invite'], ['B', 'Open for (seen by tsmetrics)', 's'], ['C', 'Last emailed', 'dateTimeFromNow']], 12, 8),
  row('Policy file'),
  stat('Valid (API verdict)', `min(tailscale_policy_valid{${gv}})`, 'short', 4, [{ color: 'red', value: null }, { color: 'green', value: 1 }]),
  stat('Last change seen', `max(tailscale_policy_last_change_timestamp{${gv}}) * 1000`, 'dateTimeFromNow', 4),
  stat('Changes in 24h', `sum(increase(tailscale_policy_changes_total{${gv}}[24h]))`, 'short', 4),
  stat('Warnings', `sum(tailscale_policy_warnings{${gv}})`, 'short', 4),
  stat('Size', `max(tailscale_policy_size_bytes{${gv}})`, 'bytes', 4),
  stat('Grants', `sum(tailscale_policy_entries{${gv},section="grants"})`, 'short', 4),
  ts('Policy versions over time (one series per hash)', [target(`count by (hash) (tailscale_policy_info{${gv}})`, '{{hash}}')], 'short', 12),
  ts('Policy entries by section', [target(`sum by (section) (tailscale_policy_entries{${gv}})`, '{{section}}')], 'short', 12),
  row('Posture integrations'),
  peerTable(
    'Integrations',
    [
      target(`max by (integration_id, provider) (tailscale_posture_integration_info{${gv}})`),
      target(`max by (integration_id) (tailscale_posture_integration_error{${gv}})`),
      target(`max by (integration_id) (tailscale_posture_integration_last_sync_timestamp{${gv}}) * 1000`),
      target(`max by (integration_id) (tailscale_posture_integration_matched_hosts{${gv}})`),
      target(`max by (integration_id) (tailscale_posture_integration_provider_hosts{${gv}})`),
    ],
    [['A', 'Integration'], ['B', 'Failing'], ['C', 'Last sync', 'dateTimeFromNow'], ['D', 'Matched'], ['E', 'Provider hosts']],
    14,
    8,
  ),
  ts('Integrations failing', [target(`sum by (integration_id) (tailscale_posture_integration_error{${gv}}) * on (integration_id) group_left (provider) max by (integration_id, provider) (tailscale_posture_integration_info{${gv}})`, '{{provider}}')], 'short', 10, 8),
  row('Log streaming'),
  ts('Published bytes by log type', [target(`sum by (log_type) (rate(tailscale_log_stream_sent_bytes_total{${gv}}[15m]))`, '{{log_type}}')], 'Bps', 8),
  ts('Failed requests to the destination', [target(`sum by (log_type) (rate(tailscale_log_stream_failed_requests_total{${gv}}[15m]))`, '{{log_type}}')], 'reqps', 8),
  ts('Since last publish attempt', [target(`time() - max by (log_type) (tailscale_log_stream_last_activity_timestamp{${gv}})`, '{{log_type}}')], 's', 8),
  row('Services and their hosts'),
  peerTable('Services', [target(`max by (service, ipv4, ipv6) (tailscale_service_info{${gv}})`), target(`max by (service) (tailscale_service_hosts{${gv}})`), target(`max by (service) (tailscale_service_approved_hosts{${gv}})`)], [['A', 'Service'], ['B', 'Hosts'], ['C', 'Approved']], 12, 8),
  peerTable('Hosts', [target(`max by (service, device_name, approval_level, configured) (tailscale_service_host{${gv},device_name=~"$device"})`)], [['A', 'Host']], 12, 8),
  row('Tailnet settings, DNS, webhooks'),
  peerTable('Boolean settings', [target(`max by (setting) (tailscale_tailnet_setting{${gv}})`)], [['A', 'On']], 8, 8),
  stat('MagicDNS', `min(tailscale_dns_magic_dns{${gv}})`, 'short', 4),
  stat('Nameservers', `sum(tailscale_dns_nameservers{${gv}})`, 'short', 4),
  stat('Split-DNS domains', `sum(tailscale_dns_split_domains{${gv}})`, 'short', 4),
  stat('Webhook endpoints', `sum(tailscale_webhooks{${gv}})`, 'short', 4),
  ts('Collectors up (tsmetrics_source_up)', [target(`min by (source) (tsmetrics_source_up{${gv},source=~"tailscale_api.*"})`, '{{source}}')], 'short', 16, 8),
  ts('Node key lifetime (days)', [target(`max(tailscale_tailnet_device_key_duration_seconds{${gv}}) / ${DAY}`, 'devicesKeyDurationDays')], 'd', 8, 8),
];
const governanceDash = dashboard('tsmetrics-governance', 'Tailscale / Governance', governance, {
  deviceQuery: 'label_values(tailscale_service_host{job=~"$job"}, device_name)',
  deviceLabel: 'Service host',
  links: [
    { type: 'dashboards', title: 'Overview', url: '/d/tsmetrics-overview', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
    { type: 'dashboards', title: 'Device details', url: '/d/tsmetrics-device-details', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
  ],
});

// ---- Network flows (flow_metrics and audit_metrics connectors, fed by tailscale_logs) ----
nextId = 1;
grid.x = 0;
grid.y = 0;
const fl = 'job=~"$job",tailnet=~"$tailnet"';
const fsel = `${fl},src_device=~"$device"`;
// Payload traffic: physical (the WireGuard underlay) carries the same bytes again plus overhead.
const payload = `${fsel},traffic_type!="physical"`;
const au = `${fl}`;
const flows = [
  stat('Payload traffic', `sum(rate(tailscale_network_flow_bytes_total{${payload}}[5m]))`, 'Bps', 4),
  stat('Through exit nodes', `sum(rate(tailscale_network_flow_bytes_total{${fsel},traffic_type="exit"}[5m])) or vector(0)`, 'Bps', 4),
  stat('Through subnet routers', `sum(rate(tailscale_network_flow_bytes_total{${fsel},traffic_type="subnet"}[5m])) or vector(0)`, 'Bps', 4),
  stat('Underlay overhead', `100 * (sum(rate(tailscale_network_flow_bytes_total{${fsel},traffic_type="physical"}[5m])) / sum(rate(tailscale_network_flow_bytes_total{${payload}}[5m])) - 1)`, 'percent', 4),
  stat('Configuration changes (24h)', `sum(increase(tailscale_configuration_events_total{${au}}[24h])) or vector(0)`, 'short', 4),
  stat('Failed changes (24h)', `sum(increase(tailscale_configuration_events_total{${au},result="failed"}[24h])) or vector(0)`, 'short', 4, [{ color: 'green', value: null }, { color: 'orange', value: 1 }]),
  row('Top talkers'),
  ts('Top sources (payload)', [target(`topk(10, sum by (src_device) (rate(tailscale_network_flow_bytes_total{${payload}}[5m])))`, '{{src_device}}')], 'Bps'),
  ts('Top destinations (payload)', [target(`topk(10, sum by (dst_device) (rate(tailscale_network_flow_bytes_total{${payload}}[5m])))`, '{{dst_device}}')], 'Bps'),
  ts('Traffic by type', [target(`sum by (traffic_type) (rate(tailscale_network_flow_bytes_total{${fsel}}[5m]))`, '{{traffic_type}}')], 'Bps'),
  ts('Traffic by protocol (payload)', [target(`sum by (protocol) (rate(tailscale_network_flow_bytes_total{${payload}}[5m]))`, '{{protocol}}')], 'Bps'),
  row('Exit nodes and subnet routers'),
  ts('Exit traffic by reporting device', [target(`sum by (src_device) (rate(tailscale_network_flow_bytes_total{${fsel},traffic_type="exit",direction="tx"}[5m]))`, 'sent {{src_device}}'), target(`-sum by (src_device) (rate(tailscale_network_flow_bytes_total{${fsel},traffic_type="exit",direction="rx"}[5m]))`, 'received {{src_device}}')], 'Bps'),
  ts('Subnet traffic by destination', [target(`topk(10, sum by (dst_device) (rate(tailscale_network_flow_bytes_total{${fsel},traffic_type="subnet"}[5m])))`, '{{dst_device}}')], 'Bps'),
  row('Source → destination'),
  peerTable(
    'Source → destination (selected range)',
    [
      target(`topk(50, sum by (src_device, dst_device, traffic_type, protocol) (increase(tailscale_network_flow_bytes_total{${payload}}[$__range])))`),
      target(`sum by (src_device, dst_device, traffic_type, protocol) (increase(tailscale_network_flow_packets_total{${payload}}[$__range]))`),
    ],
    [['A', 'Bytes', 'decbytes'], ['B', 'Packets']],
    24,
    12,
  ),
  row('Configuration changes'),
  ts('Changes by target and action', [target(`sum by (event_type, action) (increase(tailscale_configuration_events_total{${au}}[1h]))`, '{{event_type}} {{action}}')], 'short', 12),
  ts('Changes by actor and result', [target(`sum by (actor_type, result) (increase(tailscale_configuration_events_total{${au}}[1h]))`, '{{actor_type}} {{result}}')], 'short', 12),
  row('tsmetrics'),
  ts('Log sources up', [target(`min by (source) (tsmetrics_source_up{job=~"$job",source=~".*:(network|configuration)"})`, '{{source}}')], 'short', 8),
  ts('Flow records over max_series / rejected', [target(`sum by (component_id) (rate(tsmetrics_flow_metrics_overflow_records_total{job=~"$job"}[5m]))`, 'overflow {{component_id}}'), target(`sum by (component_id) (rate(tsmetrics_flow_metrics_rejected_records_total{job=~"$job"}[5m]))`, 'rejected {{component_id}}')], 'short', 8),
  ts('Log records dropped by component', [target(`sum by (component_id) (rate(tsmetrics_component_dropped_log_records_total{job=~"$job"}[5m]))`, '{{component_id}}')], 'short', 8),
];
const flowsDash = dashboard('tsmetrics-flows', 'Tailscale / Network flows', flows, {
  deviceQuery: 'label_values(tailscale_network_flow_bytes_total{job=~"$job",tailnet=~"$tailnet"}, src_device)',
  deviceLabel: 'Source',
  extraVars: [{ name: 'tailnet', type: 'query', datasource: DS, query: 'label_values(tailscale_network_flow_bytes_total{job=~"$job"}, tailnet)', refresh: 2, includeAll: true, multi: true, allValue: '.*', current: {}, label: 'Tailnet' }],
  links: [
    { type: 'dashboards', title: 'Overview', url: '/d/tsmetrics-overview', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
    { type: 'dashboards', title: 'Governance', url: '/d/tsmetrics-governance', asDropdown: false, includeVars: false, keepTime: true, tags: [] },
  ],
});

const here = new URL('.', import.meta.url);
writeFileSync(new URL('tsmetrics-overview.json', here), JSON.stringify(overviewDash, null, 2) + '\n');
writeFileSync(new URL('tsmetrics-device-details.json', here), JSON.stringify(detailsDash, null, 2) + '\n');
writeFileSync(new URL('tsmetrics-connectivity.json', here), JSON.stringify(connectivityDash, null, 2) + '\n');
writeFileSync(new URL('tsmetrics-headscale.json', here), JSON.stringify(headscaleDash, null, 2) + '\n');
writeFileSync(new URL('tsmetrics-governance.json', here), JSON.stringify(governanceDash, null, 2) + '\n');
writeFileSync(new URL('tsmetrics-flows.json', here), JSON.stringify(flowsDash, null, 2) + '\n');
