/**
 * A real Prometheus scrapes two ProxyMetrics registries served on loopback and reports exactly the
 * values the code recorded, through its HTTP query API.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ProxyMetrics } from '../../proxy/metrics';
import { handleMetricsRequest } from '../../proxy/metrics-http';
import { PrometheusHarnessError, startPrometheus } from '../helpers/prometheus';

/** Serves `metrics` at /metrics on a loopback port; other paths get 404. */
async function serve(metrics: ProxyMetrics): Promise<{ target: string; server: Server }> {
  const server = createServer((req, res) => {
    handleMetricsRequest(metrics, req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    }, () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { target: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Every PromQL expression of the Grafana dashboard, with Grafana's variables filled in. */
function dashboardExpressions(): { title: string; expr: string }[] {
  const file = join(__dirname, '..', '..', '..', 'charts', 'ocpp-security-proxy', 'dashboards', 'ocpp-security-proxy.json');
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((tg) => ({
    title: p.title,
    expr: tg.expr.replace(/\$__rate_interval/g, '1m').replace(/\$(job|instance)\b/g, '.*'),
  })));
}

/** The single sample's numeric value, or a test failure if there is not exactly one. */
function only(samples: { value: [number, string] }[]): number {
  if (samples.length !== 1) throw new Error(`expected one series, got ${samples.length}`);
  return Number(samples[0].value[1]);
}

t.test('bad options give clear errors before anything starts', async (t) => {
  await t.rejects(startPrometheus({ targets: [] }), { name: 'PrometheusHarnessError', reason: 'bad_option' });
  await t.rejects(startPrometheus({ targets: ['not a target'] }), { reason: 'bad_option', message: /host:port/ });
  await t.rejects(startPrometheus({ targets: ['127.0.0.1:1'], scrapeIntervalMs: 5 }), PrometheusHarnessError);
});

t.test('real Prometheus sees the exact recorded values', async (t) => {
  const a = new ProxyMetrics({ version: '1.2.3' });
  const b = new ProxyMetrics({ collectDefault: false });
  const sa = await serve(a);
  const sb = await serve(b);
  t.teardown(() => { sa.server.close(); sb.server.close(); });

  a.upgradeAttempts.inc({ result: 'admitted', reason: 'ok' }, 3);
  a.upgradeAttempts.inc({ result: 'rejected', reason: 'bad_password' });
  a.upgradeAttempts.inc({ result: 'rejected', reason: 'Charger CP-0042 from 10.1.2.3' }); // clamped
  a.sessionsActive.inc({ profile: 2, ocpp_version: 'ocpp1.6' });
  a.sessionsActive.inc({ profile: 3, ocpp_version: 'ocpp2.0.1' }, 2);
  a.securityEvents.inc({ type: 'InvalidTLSVersion' });
  a.securityEvents.inc({ type: 'VendorSpecificThing' });
  for (const ms of [0.03, 0.07, 0.3, 4]) a.relayLatency.observe({ direction: 'charger_to_csms' }, ms / 1000);
  b.upgradeAttempts.inc({ result: 'admitted', reason: 'ok' }, 7);

  const prom = await startPrometheus({ targets: [sa.target, sb.target], scrapeIntervalMs: 500 });
  t.teardown(() => prom.stop());
  await prom.waitForScrape();

  const ups = await prom.queryVector('up');
  t.same(ups.map((s) => s.value[1]), ['1', '1'], 'both targets up');

  t.equal(only(await prom.queryVector(
    `ocpp_proxy_upgrade_attempts_total{instance="${sa.target}",result="admitted",reason="ok"}`)), 3);
  t.equal(only(await prom.queryVector(
    `ocpp_proxy_upgrade_attempts_total{instance="${sb.target}",result="admitted",reason="ok"}`)), 7);
  t.equal(only(await prom.queryVector(
    `ocpp_proxy_upgrade_attempts_total{instance="${sa.target}",reason="other"}`)), 1, 'free text clamped');
  t.equal(only(await prom.queryVector('sum(ocpp_proxy_upgrade_attempts_total)')), 12);
  t.equal(only(await prom.queryVector(
    `ocpp_proxy_sessions_active{profile="3",ocpp_version="ocpp2.0.1"}`)), 2);
  t.equal(only(await prom.queryVector('ocpp_proxy_security_events_total{type="InvalidTLSVersion"}')), 1);
  t.equal(only(await prom.queryVector('ocpp_proxy_security_events_total{type="other"}')), 1);
  t.equal(only(await prom.queryVector(
    `ocpp_proxy_relay_latency_seconds_bucket{instance="${sa.target}",direction="charger_to_csms",le="0.0001"}`)), 2);
  t.equal(only(await prom.queryVector(
    `ocpp_proxy_relay_latency_seconds_count{instance="${sa.target}",direction="charger_to_csms"}`)), 4);
  t.equal(only(await prom.queryVector(`ocpp_proxy_build_info{instance="${sa.target}"}`)), 1);
  t.equal((await prom.queryVector(`ocpp_proxy_build_info{version="1.2.3"}`)).length, 1);

  t.ok(only(await prom.queryVector(`process_resident_memory_bytes{instance="${sa.target}"}`)) > 1e6,
    'default process metrics scraped');
  t.equal((await prom.queryVector(`process_resident_memory_bytes{instance="${sb.target}"}`)).length, 0,
    'collectDefault:false registers none');

  const labelValues = await fetch(`${prom.url}/api/v1/label/reason/values`).then((r) => r.json()) as { data: string[] };
  t.notOk(labelValues.data.some((v) => /CP-0042|10\.1\.2\.3/.test(v)), 'no identity or address in any label');

  // Values recorded after a scrape show up in the next one.
  a.upgradeAttempts.inc({ result: 'admitted', reason: 'ok' }, 2);
  a.sessionsActive.dec({ profile: '3', ocpp_version: 'ocpp2.0.1' });
  await prom.waitForScrape();
  t.equal(only(await prom.queryVector(
    `ocpp_proxy_upgrade_attempts_total{instance="${sa.target}",result="admitted",reason="ok"}`)), 5);
  t.equal(only(await prom.queryVector(
    `ocpp_proxy_sessions_active{profile="3",ocpp_version="ocpp2.0.1"}`)), 1);

  // Every dashboard query is valid PromQL for this Prometheus and finds the data it is meant to show.
  const results = new Map<string, number>();
  for (const { title, expr } of dashboardExpressions()) {
    const data = await prom.query(expr);
    if (data.resultType === 'vector') results.set(title, Math.max(results.get(title) ?? 0, data.result.length));
  }
  t.ok(results.size >= 25, `${results.size} dashboard panels queried`);
  t.equal(results.get('Sessions by security profile and OCPP version'), 2, 'sessions panel shows both series');
  t.ok((results.get('Relay latency added by the proxy') ?? 0) >= 1, 'relay latency quantiles computed');
  t.ok((results.get('Resident memory') ?? 0) >= 1, 'process panel has data');

  await t.rejects(prom.query('sum(('), { name: 'PrometheusHarnessError', reason: 'query_failed' }, 'bad PromQL is a clear error');
});

t.test('stop ends the process and is idempotent', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  const s = await serve(m);
  t.teardown(() => s.server.close());
  const prom = await startPrometheus({ targets: [s.target] });
  await prom.stop();
  await prom.stop();
  t.throws(() => process.kill(prom.pid, 0), { code: 'ESRCH' }, 'process gone');
  await t.rejects(fetch(`${prom.url}/-/ready`), 'port closed');
});
