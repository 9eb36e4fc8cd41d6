/**
 * Observability end to end: a real Prometheus server scrapes the admin port while the test drives a
 * known mix of traffic, then PromQL answers must equal exactly what was driven; readiness follows
 * Redis and the CSMS going away and coming back; structured logs and the live-session API say what
 * happened without leaking a secret or putting a charger identity into a metric label.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { createLogger } from '../../proxy/log';
import { startLegacyCsms, type LegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { startPrometheus, type RunningPrometheus } from '../helpers/prometheus';
import { makeCharger, seedCharger, startTestProxy, TMP_ROOT, type TestProxy } from '../helpers/proxy';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { SimStation } from '../helpers/station';

const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

/** One upgrade attempt with Basic credentials: the HTTP status (101 = admitted, socket then closed). */
function tryLogin(proxy: TestProxy, identity: string, password: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, ['ocpp1.6'], {
      ca: proxy.caPem, servername: 'localhost', headers: { authorization: basic(identity, password) },
    } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

// Identities are lower-case with underscores on purpose: they would survive the `reason` label clamp,
// so the label scan below really catches an identity that reaches a label.
const GOOD = ['cp_good_1', 'cp_good_2', 'cp_good_3'];
const GOOD_PASSWORD = 'Generated-Secret-Pw-0001';
const HEARTBEATS = 2;
const WRONG_ID = 'cp_wrong_pw';
const WRONG_PASSWORDS = ['wrong-secret-aaaa-1111', 'wrong-secret-bbbb-2222', 'wrong-secret-cccc-3333'];
const UNKNOWN = ['cp_unknown_1', 'cp_unknown_2'];
const UNKNOWN_PASSWORD = 'unknown-secret-zzzz-9999';
const ROTATING = 'cp_rotating';
const OPERATOR_PASSWORD = 'operator-set-password-1';
const ALL_IDENTITIES = [...GOOD, WRONG_ID, ...UNKNOWN, ROTATING];

const N = GOOD.length;
const M = WRONG_PASSWORDS.length;
const K = UNKNOWN.length;
/** Frames each good charger sends (BootNotification + heartbeats); the station adds its one boot. */
const CALLS = N * (1 + HEARTBEATS) + 1;

t.test('observability with Redis, a legacy CSMS and a real Prometheus', async (t) => {
  const aof = mkdtempSync(path.join(TMP_ROOT, 'redis-obs-'));
  // AOF so the restart in the readiness test keeps the charger records.
  const redis: RedisProcess = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', aof] });
  let csms: LegacyCsms = await startLegacyCsms();
  const proxy: TestProxy = await startTestProxy({ backend: csms.url, redis: redis.url, rotationGraceMs: '0', callTimeoutMs: '3000' });
  let prom: RunningPrometheus | null = null;
  const chargers: any[] = [];
  let station: SimStation | null = null;
  t.teardown(async () => {
    for (const c of chargers) await c.close({ force: true, awaitPending: false }).catch(() => undefined);
    await station?.stop();
    await prom?.stop();
    await proxy.stop();
    await csms.stop();
    await redis.stop();
    rmSync(aof, { recursive: true, force: true });
    rmSync(proxy.config.dataDir, { recursive: true, force: true });
  });
  prom = await startPrometheus({ targets: [`127.0.0.1:${proxy.addresses.admin.port}`], scrapeIntervalMs: 1000 });

  for (const identity of GOOD) await seedCharger(proxy, { identity, password: GOOD_PASSWORD, source: 'generated' });
  await seedCharger(proxy, { identity: WRONG_ID, password: 'the-right-one-never-used' });
  await seedCharger(proxy, { identity: ROTATING, password: OPERATOR_PASSWORD });

  // ---- the known mix of traffic -------------------------------------------------------------------
  await Promise.all(GOOD.map(async (identity) => {
    const c = makeCharger({ identity, endpoint: proxy.tlsUrl, ca: proxy.caPem, password: GOOD_PASSWORD });
    chargers.push(c);
    await c.connect();
    await c.call('BootNotification', { chargePointVendor: 'Obs', chargePointModel: 'M1' });
    for (let i = 0; i < HEARTBEATS; i++) await c.call('Heartbeat', {});
  }));
  for (const pw of WRONG_PASSWORDS) t.equal(await tryLogin(proxy, WRONG_ID, pw), 401, 'wrong password refused');
  for (const identity of UNKNOWN) t.equal(await tryLogin(proxy, identity, UNKNOWN_PASSWORD), 404, 'unknown identity refused');
  station = new SimStation({ identity: ROTATING, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: OPERATOR_PASSWORD, ca: proxy.caPem });
  await station.connect();
  await waitFor(() => station!.keyChanges.length === 1 && station!.connections === 2, 'station rotated and back with its new key', 10_000);
  await waitFor(async () => (await proxy.credentials.store.getCharger(ROTATING))?.passwordSource === 'generated', 'rotation committed');
  const newStationPassword = station.keyChanges[0]!.password;

  await t.test('the admin API lists the live sessions', async (t) => {
    const unauthorised = await fetch(`${proxy.adminUrl}/api/v1/sessions`);
    t.equal(unauthorised.status, 401, 'no bearer token: 401');
    const res = await fetch(`${proxy.adminUrl}/api/v1/sessions`, { headers: { authorization: `Bearer ${proxy.adminToken}` } });
    t.equal(res.status, 200);
    const { items } = (await res.json()) as { items: any[] };
    t.same(items.map((s) => s.identity).sort(), [...GOOD, ROTATING].sort(), 'every live session, nothing else');
    for (const s of items) {
      t.equal(s.profile, 2, `${s.identity}: profile`);
      t.equal(s.subprotocol, 'ocpp1.6', `${s.identity}: subprotocol`);
      t.ok(!Number.isNaN(Date.parse(s.since)) && Date.parse(s.since) <= Date.now(), `${s.identity}: since is a past ISO time`);
      t.equal(s.replica, proxy.replica, `${s.identity}: replica`);
      const expected = GOOD.includes(s.identity) ? 1 + HEARTBEATS : 0; // the station booted on its first connection
      t.same(s.frames, { charger_to_csms: expected, csms_to_charger: expected }, `${s.identity}: frames per direction`);
    }
  });

  await t.test('Prometheus sees exactly the traffic driven', async (t) => {
    // The accepted rotation is counted after its writes and its audit entry, which may end after the commit.
    await waitFor(async () => /ocpp_proxy_password_rotations_total\{outcome="accepted"\} 1\b/.test(await (await fetch(`${proxy.adminUrl}/metrics`)).text()), 'the accepted rotation counted');
    await prom!.waitForScrape();
    const value = async (q: string): Promise<number> => {
      const v = await prom!.queryVector(q);
      return v.length === 0 ? 0 : Number(v[0]!.value[1]);
    };
    const series = async (q: string) => (await prom!.queryVector(q)).map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
    const up = await series('up');
    t.same(up.map((s) => s.value), [1], 'the admin port is scraped');

    t.equal(await value('ocpp_proxy_upgrade_attempts_total{result="rejected",reason="bad_password"}'), M, 'bad_password == M');
    t.equal(await value('ocpp_proxy_upgrade_attempts_total{result="rejected",reason="unknown_identity"}'), K, 'unknown_identity == K');
    t.equal(await value('ocpp_proxy_upgrade_attempts_total{result="admitted",reason="ok"}'), N + 2, 'admitted: N chargers + the station twice');
    t.equal(await value('sum(ocpp_proxy_upgrade_attempts_total{result="rejected"})'), M + K, 'no other rejection');
    t.equal(await value('ocpp_proxy_sessions_active{profile="2",ocpp_version="ocpp1.6"}'), N + 1, 'live sessions');
    t.equal(await value('ocpp_proxy_backend_sessions_opened_total{ocpp_version="ocpp1.6"}'), N + 2, 'CSMS sessions opened');

    const frames = await series('ocpp_proxy_frames_relayed_total');
    const byKey = Object.fromEntries(frames.map((s) => [`${s.labels.direction}/${s.labels.message_type}`, s.value]));
    t.same(byKey, { 'charger_to_csms/call': CALLS, 'csms_to_charger/callresult': CALLS },
      'frames relayed by direction and type; the injected call and its answer are not relayed');
    t.equal(await value('sum(ocpp_proxy_relay_latency_seconds_count)'), 2 * CALLS, 'one latency observation per relayed frame');

    const injected = await series('ocpp_proxy_injected_calls_total');
    t.same(injected.map((s) => [s.labels.action, s.labels.outcome, s.value]), [['ChangeConfiguration', 'accepted', 1]],
      'one injected call: the ChangeConfiguration the station accepted');
    t.equal(await value('ocpp_proxy_password_rotations_total{outcome="started"}'), 1, 'rotation started once');
    t.equal(await value('ocpp_proxy_password_rotations_total{outcome="accepted"}'), 1, 'rotation accepted once');
    t.equal(await value('ocpp_proxy_password_rotations_total{outcome="committed"}'), 1, 'rotation committed once');

    t.equal(await value('ocpp_proxy_auth_duration_seconds_count{result="ok"}'), N + 2, 'auth duration per admission (result="ok")');
    t.equal(await value('ocpp_proxy_auth_duration_seconds_count{result="bad_password"}'), M, 'auth duration per bad password');
    t.equal(await value('ocpp_proxy_auth_duration_seconds_count{result="unknown_identity"}'), K, 'auth duration per unknown identity');
    t.equal(await value('sum(ocpp_proxy_auth_duration_seconds_count)'), N + 2 + M + K, 'one observation per upgrade, nothing else');
    t.equal(await value('ocpp_proxy_auth_duration_seconds_bucket{result="ok",le="+Inf"}'), N + 2, 'with its buckets');
    t.ok(await value('ocpp_proxy_store_operation_duration_seconds_count{operation="getCharger"}') > 0, 'store op histogram present');
    t.ok((await series('ocpp_proxy_store_operation_duration_seconds_bucket{operation="getCharger",le="+Inf"}')).length === 1, 'with its buckets');
    t.equal(await value('sum(ocpp_proxy_store_errors_total)'), 0, 'no store errors yet');
    t.equal(await value('sum(ocpp_proxy_lockouts_total)'), 0, 'M < lockout threshold: no lockout');
    t.equal(await value('ocpp_proxy_sessions_closed_total{close_reason="charger_normal"}'), 1, 'the station closed its first session itself');
  });

  await t.test('sessions end: gauge, close reasons and session_ended log lines', async (t) => {
    const endedBefore = proxy.logs.filter((l) => l.event === 'session_ended').length;
    // A second connection of the first charger replaces its session (the proxy closes the old one with 1008).
    const replaced = new Promise<any>((r) => chargers[0].once('close', r));
    const replacement = makeCharger({ identity: GOOD[0]!, endpoint: proxy.tlsUrl, ca: proxy.caPem, password: GOOD_PASSWORD });
    await replacement.connect();
    t.equal((await replaced).code, 1008, 'older session closed with 1008');
    chargers[0] = replacement;
    await Promise.all(chargers.map((c) => c.close({ code: 1000 })));
    await waitFor(() => proxy.server.sessions.size === 1, 'only the station left');
    await prom!.waitForScrape();
    const [active] = await prom!.queryVector('ocpp_proxy_sessions_active{profile="2",ocpp_version="ocpp1.6"}');
    t.equal(Number(active!.value[1]), 1, 'gauge back down to the station alone');
    const [closed] = await prom!.queryVector('ocpp_proxy_sessions_closed_total{close_reason="charger_normal"}');
    t.equal(Number(closed!.value[1]), N + 1, 'N chargers + the station\'s first session closed normally by the charger');
    const [policy] = await prom!.queryVector('ocpp_proxy_sessions_closed_total{close_reason="proxy_policy"}');
    t.equal(Number(policy?.value[1]), 1, 'the replaced session counted as closed by the proxy for policy (1008)');

    const started = proxy.logs.filter((l) => l.event === 'session_started');
    t.same(started.map((l) => l.identity).sort(), [...GOOD, GOOD[0], ROTATING, ROTATING].sort(), 'one session_started line per session');
    for (const l of started) {
      t.equal(l.profile, 2, `${String(l.identity)}: profile`);
      t.equal(l.subprotocol, 'ocpp1.6', `${String(l.identity)}: subprotocol`);
      t.equal(l.level, 30, 'info level');
    }
    const ended = proxy.logs.filter((l) => l.event === 'session_ended');
    t.equal(ended.length - endedBefore, N + 1, 'one session_ended line per closed session (the replaced one too)');
    const replacedLine = ended.find((e) => e.identity === GOOD[0] && e.code === 1008);
    t.equal(replacedLine?.by, 'proxy', 'the replaced session\'s line: closed by the proxy with 1008');
    for (const identity of GOOD.slice(1)) {
      const l = ended.find((e) => e.identity === identity);
      t.ok(l, `${identity}: session_ended`);
      if (!l) continue;
      t.equal(l.profile, 2);
      t.equal(l.subprotocol, 'ocpp1.6');
      t.equal(l.code, 1000, 'close code');
      t.equal(l.by, 'charger', 'who closed');
      t.ok(typeof l.durationMs === 'number' && l.durationMs >= 0, 'durationMs');
      t.same(l.frames, { charger_to_csms: 1 + HEARTBEATS, csms_to_charger: 1 + HEARTBEATS }, 'frame counts');
    }
  });

  await t.test('rejections: one line each, with its reason, and no secret anywhere', async (t) => {
    const rejected = proxy.logs.filter((l) => l.event === 'upgrade_rejected');
    t.equal(rejected.length, M + K, 'one line per rejection');
    t.equal(rejected.filter((l) => l.identity === WRONG_ID && l.reason === 'bad_password').length, M, 'bad_password lines');
    for (const identity of UNKNOWN) {
      t.equal(rejected.filter((l) => l.identity === identity && l.reason === 'unknown_identity').length, 1, `${identity}: unknown_identity line`);
    }
    for (const l of rejected) t.equal(l.remoteAddress, '127.0.0.1', 'remote address logged');
    for (const step of ['rotation_started', 'rotation_accepted', 'rotation_committed']) {
      t.equal(proxy.logs.filter((l) => l.event === step && l.identity === ROTATING).length, 1, `${step} logged once (security-relevant)`);
    }
    const text = JSON.stringify(proxy.logs);
    for (const secret of [GOOD_PASSWORD, ...WRONG_PASSWORDS, UNKNOWN_PASSWORD, OPERATOR_PASSWORD, newStationPassword,
      Buffer.from(newStationPassword, 'latin1').toString('hex')]) {
      t.notOk(text.includes(secret), 'no password (or its 1.6 hex form) in the logs');
    }
    t.notOk(text.includes(basic(WRONG_ID, WRONG_PASSWORDS[0]!).slice(6)), 'no Basic header in the logs');
  });

  await t.test('no metric label value is a charger identity', async (t) => {
    await prom!.waitForScrape();
    const all = await prom!.queryVector('{__name__=~"ocpp_proxy_.+"}');
    t.ok(all.length > 20, `Prometheus holds the proxy's series (${all.length})`);
    const identities = new Set(ALL_IDENTITIES);
    const leaks = all.flatMap((s) => Object.entries(s.metric).filter(([, v]) => identities.has(v)).map(([k, v]) => `${s.metric.__name__}{${k}="${v}"}`));
    t.same(leaks, [], 'no label value equals an identity');
    const exposition = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    for (const id of ALL_IDENTITIES) t.notOk(exposition.includes(id), `${id} nowhere in /metrics`);
  });

  await t.test('readiness follows Redis and the CSMS; liveness does not', async (t) => {
    await station!.stop();
    const ready = async () => {
      const res = await fetch(`${proxy.adminUrl}/readyz`);
      return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string> } };
    };
    const healthy = async () => (await fetch(`${proxy.adminUrl}/healthz`)).status;
    const first = await ready();
    t.equal(first.status, 200, 'ready with everything up');
    t.same(first.body.checks, { listeners: 'ok', store: 'ok', csms: 'ok' }, 'every check ok');

    await redis.stop();
    const noStore = (await waitFor(async () => { const r = await ready(); return r.status === 503 ? r : null; }, '503 without Redis', 8000, 100))!;
    t.equal(noStore.body.status, 'not_ready');
    t.match(noStore.body.checks.store, /^failing/, 'checks.store failing');
    t.equal(noStore.body.checks.csms, 'ok', 'the CSMS is still fine');
    t.equal(await healthy(), 200, '/healthz 200 while Redis is down');
    await redis.restart();
    await waitFor(async () => (await ready()).status === 200, 'ready again once Redis is back', 15_000, 200);
    t.pass('ready again after Redis returned');

    const port = csms.port;
    await csms.stop();
    const noCsms = (await waitFor(async () => { const r = await ready(); return r.status === 503 ? r : null; }, '503 without the CSMS', 8000, 100))!;
    t.match(noCsms.body.checks.csms, /^failing/, 'checks.csms failing');
    t.equal(noCsms.body.checks.store, 'ok', 'the store is still fine');
    t.equal(await healthy(), 200, '/healthz 200 while the CSMS is down');
    csms = await startLegacyCsms({ port });
    await waitFor(async () => (await ready()).status === 200, 'ready again once the CSMS is back', 8000, 100);
    t.pass('ready again after the CSMS returned on the same port');
    t.equal(await tryLogin(proxy, GOOD[0]!, GOOD_PASSWORD), 101, 'and admitting chargers again');
  });
});

t.test('--log-format pretty writes human text, not JSON, still without secrets', async (t) => {
  let out = '';
  const sink = new Writable({ write(chunk, _enc, cb) { out += chunk.toString(); cb(); } });
  const log = createLogger({ format: 'pretty', destination: sink });
  log.info({ event: 'session_started', identity: 'CP-PRETTY', profile: 2, password: 'never-shown-secret' }, 'charger connected');
  log.flush?.();
  await waitFor(() => out.includes('charger connected'), 'pretty line written');
  t.match(out, /INFO/, 'level as a word');
  t.match(out, /session_started/, 'fields shown');
  t.match(out, /CP-PRETTY/);
  t.notOk(out.includes('never-shown-secret'), 'password redacted in pretty output too');
  t.notOk(out.includes('\u001b['), 'no colour escape codes when not writing to a terminal');
  for (const line of out.split('\n').filter((l) => l.trim())) t.throws(() => JSON.parse(line), 'not a JSON line');

  let jsonOut = '';
  const jsonSink = new Writable({ write(chunk, _enc, cb) { jsonOut += chunk.toString(); cb(); } });
  createLogger({ destination: jsonSink }).info({ event: 'x', authorization: 'Basic c2VjcmV0' }, 'json line');
  await waitFor(() => jsonOut.includes('json line'), 'json line written');
  const parsed = JSON.parse(jsonOut.trim());
  t.equal(parsed.event, 'x', 'default format is one JSON object per line');
  t.equal(parsed.authorization, undefined, 'authorization redacted');
});
