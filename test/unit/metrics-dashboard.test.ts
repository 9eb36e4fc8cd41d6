/**
 * The Grafana dashboard under charts/ is well formed and every PromQL expression in it names only
 * metrics that ProxyMetrics registers (so a renamed metric cannot silently blank a panel).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyMetrics } from '../../proxy/metrics';

/** Path from the compiled test (dist/test/unit) or the source (test/unit) to the repo root. */
const ROOT = [join(__dirname, '..', '..', '..'), join(__dirname, '..', '..')]
  .find((dir) => { try { readFileSync(join(dir, 'package.json')); return true; } catch { return false; } }) ?? '.';
export const DASHBOARD_PATH = join(ROOT, 'charts', 'ocpp-security-proxy', 'dashboards', 'ocpp-security-proxy.json');

interface Target { expr: string; datasource?: { uid?: string } }
interface Panel {
  id: number; type: string; title: string; datasource?: { uid?: string };
  gridPos: { h: number; w: number; x: number; y: number }; targets?: Target[];
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring',
  'group_left', 'group_right', 'inf', 'nan']);

/**
 * Metric names a PromQL expression selects: identifiers left after removing label matchers, range
 * selectors, strings, grouping clauses and function calls.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = stripped.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(rest) || PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Every series name a scrape of ProxyMetrics can show (histograms expand to _bucket/_sum/_count). */
async function exposedNames(): Promise<Set<string>> {
  const m = new ProxyMetrics();
  const names = new Set<string>();
  for (const d of await m.registry.getMetricsAsJSON()) {
    names.add(d.name);
    if (String(d.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(d.name + s);
  }
  return names;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as {
  uid: string; title: string; schemaVersion: number; panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
};
const panels = dashboard.panels.filter((p) => p.type !== 'row');
const exprs = panels.flatMap((p) => (p.targets ?? []).map((tg) => ({ panel: p.title, expr: tg.expr })));

t.test('metricNamesIn parses PromQL', async (t) => {
  t.same(metricNamesIn('sum by (le, x) (rate(a_bucket{job=~"$job"}[$__rate_interval]))'), ['a_bucket']);
  t.same(metricNamesIn('histogram_quantile(0.99, sum by (le) (rate(b_seconds_bucket[5m]))) or vector(0)'),
    ['b_seconds_bucket']);
  t.same(metricNamesIn('x_total / on (instance) group_left y_info'), ['x_total', 'y_info']);
  t.same(metricNamesIn('count(up{a="}"})'), ['up']);
});

t.test('dashboard is a well-formed Grafana dashboard', async (t) => {
  t.equal(dashboard.uid, 'ocpp-security-proxy');
  t.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, 'schemaVersion ~39');
  const ds = dashboard.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
  t.equal(ds?.type, 'datasource', 'datasource is a variable');
  t.equal(ds?.query, 'prometheus');
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids unique');
  const cells = new Set<string>();
  for (const p of dashboard.panels) {
    const g = p.gridPos;
    t.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${p.title} fits the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        if (cells.has(`${x},${y}`)) t.fail(`${p.title} overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
  }
  for (const p of panels) {
    t.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title} uses the datasource variable`);
    t.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
    for (const tg of p.targets ?? []) t.equal(tg.datasource?.uid, '${DS_PROMETHEUS}', `${p.title} target datasource`);
  }
});

t.test('every expression names only registered metrics', async (t) => {
  const known = await exposedNames();
  const variableQueries = dashboard.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => ({ panel: `variable ${v.name}`, expr: String((v.query as { query: string }).query).replace(/^label_values\((.*),\s*\w+\)$/, '$1') }));
  for (const { panel, expr } of [...exprs, ...variableQueries]) {
    const names = metricNamesIn(expr);
    t.ok(names.length > 0, `${panel}: ${expr} selects a metric`);
    for (const n of names) t.ok(known.has(n), `${panel}: ${n} is registered by ProxyMetrics`);
  }
});

t.test('dashboard covers every required topic', async (t) => {
  const all = exprs.map((e) => e.expr).join('\n');
  for (const metric of [
    'ocpp_proxy_sessions_active', 'ocpp_proxy_upgrade_attempts_total', 'ocpp_proxy_tls_handshake_failures_total',
    'ocpp_proxy_password_rotations_total', 'ocpp_proxy_profile_upgrades_total', 'ocpp_proxy_certificates_total',
    'ocpp_proxy_relay_latency_seconds_bucket', 'ocpp_proxy_auth_duration_seconds_bucket', 'ocpp_proxy_frames_relayed_total',
    'ocpp_proxy_store_operation_duration_seconds_bucket', 'ocpp_proxy_store_errors_total', 'ocpp_proxy_lockouts_total',
    'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds',
  ]) t.ok(all.includes(metric), `a panel uses ${metric}`);
  t.match(all, /histogram_quantile\(0\.99, sum by \(le, direction\) \(rate\(ocpp_proxy_relay_latency_seconds_bucket/,
    'relay latency p99 per direction');
});
