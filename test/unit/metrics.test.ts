/**
 * ProxyMetrics: naming conventions, bounded labels, security event mapping, default process metrics,
 * and the /metrics handler over a real loopback HTTP server.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRIC_PREFIX, ProxyMetrics } from '../../proxy/metrics';
import { handleMetricsRequest } from '../../proxy/metrics-http';
import {
  OTHER, SECURITY_EVENT_TYPES, actionLabel, enumLabel, ocppVersionLabel, operationLabel, profileLabel, reasonLabel,
  securityEventTypeLabel,
} from '../../proxy/metrics-labels';

const DEFAULT_PREFIXES = ['process_', 'nodejs_'];

/** Every metric of a registry as prom-client describes it (name, type, values with labels). */
async function described(m: ProxyMetrics) {
  return (await m.registry.getMetricsAsJSON()) as unknown as {
    name: string; type: string; help: string; values: { labels: Record<string, string | number>; value: number }[];
  }[];
}

t.test('names follow Prometheus conventions', async (t) => {
  const m = new ProxyMetrics();
  const all = await described(m);
  const ours = all.filter((d) => !DEFAULT_PREFIXES.some((p) => d.name.startsWith(p)));
  t.ok(ours.length >= 20, `at least 20 proxy metrics (${ours.length})`);
  for (const d of ours) {
    t.ok(d.name.startsWith(METRIC_PREFIX), `${d.name} has the one prefix`);
    t.match(d.name, /^[a-z][a-z0-9_]*$/, `${d.name} is snake_case`);
    t.ok(d.help.length > 10, `${d.name} has help text`);
    if (d.type === 'counter') t.match(d.name, /_total$/, `counter ${d.name} ends _total`);
    else t.notMatch(d.name, /_total$/, `non-counter ${d.name} does not end _total`);
    if (d.type === 'histogram') t.match(d.name, /_seconds$/, `histogram ${d.name} is in seconds`);
    t.notMatch(d.name, /_(ms|milliseconds|us|micros)/, `${d.name} uses base units`);
  }
  const required = [
    'sessions_active', 'upgrade_attempts_total', 'tls_handshake_failures_total', 'auth_duration_seconds',
    'frames_relayed_total', 'relay_latency_seconds', 'backend_connect_failures_total', 'injected_calls_total',
    'locally_answered_calls_total', 'password_rotations_total', 'profile_upgrades_total', 'certificates_total',
    'security_events_total', 'store_operation_duration_seconds', 'store_errors_total', 'lockouts_total',
    'backend_sessions_opened_total', 'sessions_closed_total', 'draining_sessions', 'build_info',
  ];
  for (const name of required) t.ok(ours.some((d) => d.name === METRIC_PREFIX + name), `${name} registered`);
  const forbidden = /identity|charger_id|address|ip|password|serial/;
  for (const d of ours) {
    const labels = (m.registry.getSingleMetric(d.name) as unknown as { labelNames: string[] }).labelNames;
    for (const l of labels) t.notMatch(l, forbidden, `${d.name} label ${l} is not an identity`);
  }
});

t.test('default process metrics are present unless disabled', async (t) => {
  const names = new ProxyMetrics().metricNames();
  for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds',
    'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) t.ok(names.includes(n), n);
  const bare = new ProxyMetrics({ collectDefault: false }).metricNames();
  t.notOk(bare.some((n) => DEFAULT_PREFIXES.some((p) => n.startsWith(p))), 'none when collectDefault is false');
});

t.test('instances have separate registries', async (t) => {
  const a = new ProxyMetrics({ collectDefault: false });
  const b = new ProxyMetrics({ collectDefault: false });
  a.lockouts.inc({ scope: 'identity' });
  t.match(await a.metricsText(), /ocpp_proxy_lockouts_total\{scope="identity"\} 1/);
  t.notMatch(await b.metricsText(), /ocpp_proxy_lockouts_total\{scope="identity"\}/);
  t.match(a.contentType, /^text\/plain/);
  t.match(await a.metricsText(), /ocpp_proxy_build_info\{version="unknown",node_version="[0-9.]+",allocator="unknown"\} 1/);
});

t.test('label clamps', async (t) => {
  t.equal(reasonLabel('bad_password'), 'bad_password');
  t.equal(reasonLabel('http_status'), 'http_status');
  for (const bad of ['Bad_Password', 'bad password', '', 'x'.repeat(41), 'CP-0042', '10.0.0.1', undefined, 42, null]) {
    t.equal(reasonLabel(bad), OTHER, `reason ${JSON.stringify(bad)} -> other`);
  }
  t.equal(reasonLabel('x'.repeat(40)), 'x'.repeat(40), '40 chars allowed');
  t.equal(enumLabel('b', ['a', 'b'] as const), 'b');
  t.equal(enumLabel('c', ['a', 'b'] as const), OTHER);
  t.equal(profileLabel(2), '2');
  t.equal(profileLabel('3'), '3');
  t.equal(profileLabel(4), OTHER);
  t.equal(ocppVersionLabel('ocpp1.6'), 'ocpp1.6');
  t.equal(ocppVersionLabel('ocpp2.0.1'), 'ocpp2.0.1');
  t.equal(ocppVersionLabel('ocpp9.9'), OTHER);
  t.equal(actionLabel('ChangeConfiguration'), 'ChangeConfiguration');
  t.equal(actionLabel('SetVariables'), 'SetVariables');
  t.equal(actionLabel('MyVendorAction'), OTHER);
  t.equal(operationLabel('getCharger'), 'getCharger');
  t.equal(operationLabel('get charger'), OTHER);
  t.equal(operationLabel('1abc'), OTHER);
});

t.test('every metric call site is clamped', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  m.upgradeAttempts.inc({ result: 'admitted', reason: 'Charger CP-1 from 192.0.2.7 failed' });
  m.upgradeAttempts.inc({ result: 'bogus' as never, reason: 'ok' });
  m.sessionsActive.inc({ profile: 9, ocpp_version: 'ws-with-identity-CP-1' });
  m.injectedCalls.inc({ action: 'AnythingAChargerSays', outcome: 'accepted' });
  m.authDuration.observe({ result: 'ok' }, 0.0002);
  const stop = m.storeOperationDuration.startTimer();
  const seconds = stop({ operation: 'getCharger' });
  t.ok(seconds >= 0 && seconds < 1, 'timer returns elapsed seconds');
  const text = await m.metricsText();
  t.notMatch(text, /CP-1|192\.0\.2\.7|AnythingAChargerSays|bogus/, 'no raw value leaks');
  t.match(text, /ocpp_proxy_upgrade_attempts_total\{result="admitted",reason="other"\} 1/);
  t.match(text, /ocpp_proxy_upgrade_attempts_total\{result="other",reason="ok"\} 1/);
  t.match(text, /ocpp_proxy_sessions_active\{profile="other",ocpp_version="other"\} 1/);
  t.match(text, /ocpp_proxy_injected_calls_total\{action="other",outcome="accepted"\} 1/);
  t.match(text, /ocpp_proxy_auth_duration_seconds_bucket\{le="0.00025",result="ok"\} 1/);
  t.match(text, /ocpp_proxy_store_operation_duration_seconds_count\{operation="getCharger"\} 1/);
  // A JS caller that forgets a label still gets a bounded series, not a prom-client throw.
  m.lockouts.inc({} as never);
  t.match(await m.metricsText(), /ocpp_proxy_lockouts_total\{scope="other"\} 1/);
});

t.test('security event types map to a bounded set', async (t) => {
  t.ok(SECURITY_EVENT_TYPES.length >= 25, 'all standard 1.6 and 2.x names listed');
  for (const name of SECURITY_EVENT_TYPES) t.equal(securityEventTypeLabel(name), name, name);
  t.equal(securityEventTypeLabel('FailedToAuthenticateAtCsms'), 'FailedToAuthenticateAtCsms', '2.x spelling kept');
  t.equal(securityEventTypeLabel('FailedToAuthenticateAtCentralSystem'), 'FailedToAuthenticateAtCentralSystem');
  t.equal(securityEventTypeLabel('Invalid TLS Version'), 'InvalidTLSVersion', 'first-edition spaces ignored');
  t.equal(securityEventTypeLabel('invalidtlsciphersuite'), 'InvalidTLSCipherSuite', 'case ignored');
  for (const other of ['CSRGenerationFailed', '', 'x'.repeat(500), 'InvalidTLSVersion; DROP TABLE']) {
    t.equal(securityEventTypeLabel(other), OTHER, `${other.slice(0, 30)} -> other`);
  }
  t.equal(securityEventTypeLabel(undefined as unknown as string), OTHER, 'non-string -> other');
  const m = new ProxyMetrics({ collectDefault: false });
  m.securityEvents.inc({ type: 'TamperDetectionActivated' });
  m.securityEvents.inc({ type: 'AcmeVendorEvent' });
  const text = await m.metricsText();
  t.match(text, /ocpp_proxy_security_events_total\{type="TamperDetectionActivated"\} 1/);
  t.match(text, /ocpp_proxy_security_events_total\{type="other"\} 1/);
});

t.test('handleMetricsRequest over a real HTTP server', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  m.framesRelayed.inc({ direction: 'csms_to_charger', message_type: 'callresult' }, 4);
  const server = createServer((req, res) => {
    void handleMetricsRequest(m, req, res).then((handled) => { if (!handled) res.writeHead(404).end(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const ok = await fetch(`${base}/metrics?x=1`);
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('content-type'), m.contentType);
  t.match(await ok.text(), /ocpp_proxy_frames_relayed_total\{direction="csms_to_charger",message_type="callresult"\} 4/);
  const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal((await head.text()).length, 0, 'HEAD has no body');
  const post = await fetch(`${base}/metrics`, { method: 'POST' });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD');
  t.equal((await fetch(`${base}/healthz`)).status, 404, 'other paths left to the caller');
});
