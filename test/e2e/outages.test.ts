/**
 * Issue 9, item 5: outages of what the proxy depends on. What is asserted (the documented behaviour):
 * - Redis down (OUTAGES_REDIS_MS, default 30 s, then restarted with its AOF data): live sessions keep
 *   relaying and are never closed; a new connection gets 503 `gate_error` at once (fail closed, never
 *   admitted unchecked); /readyz answers 503 naming the store. Once Redis is back, new connections are
 *   admitted and the change feed works again without any action (recover alone).
 * - Redis failover through Sentinel (master stopped, replica promoted): live sessions unaffected; new
 *   connections are admitted again on their own once the new master is found, and writes go to it.
 * - CSMS stopped (its process gone: sockets cut): live sessions close with 1012 (try again later), a
 *   new charger gets 503 `backend_unavailable` at once, and every charger is back on its own (reconnect
 *   with back-off) once the CSMS listens again.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import WebSocket from 'ws';
import { startLegacyCsms } from '../helpers/csms';
import { sleep, waitFor } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { scratchDir, seedCharger, startTestProxy, TEST_PKI_DIR, type TestProxy } from '../helpers/proxy';
import { startRedis, startSentinel } from '../helpers/redis';
import { SimStation } from '../helpers/station';

const REDIS_OUTAGE_MS = Number(process.env.OUTAGES_REDIS_MS ?? 30000);
const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
const password = (identity: string) => `outage-password-${identity}`;

/** One upgrade attempt: status, the reason label in the body (101 and '' when admitted) and any Retry-After. */
function attempt(proxy: TestProxy, identity: string): Promise<{ status: number; body: string; ms: number; retryAfter?: string }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, ['ocpp1.6'], {
      ca: proxy.caPem, servername: 'localhost', headers: { authorization: basic(identity, password(identity)) },
    } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim(), ms: Date.now() - started, retryAfter: res.headers['retry-after'] }));
    });
    ws.on('open', () => { ws.close(); resolve({ status: 101, body: '', ms: Date.now() - started }); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

async function readyz(proxy: TestProxy): Promise<{ status: number; body: any }> {
  const res = await fetch(`${proxy.adminUrl}/readyz`);
  return { status: res.status, body: await res.json() };
}

/** A station that, like a real charger, reconnects by itself whenever its link is gone. Records close codes. */
async function liveStation(t: { teardown(fn: () => unknown): void }, proxy: TestProxy, identity: string) {
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: password(identity), ca: proxy.caPem, reconnectDelayMs: 300 });
  const closes: number[] = [];
  let watched: unknown = null;
  const watch = () => {
    if (!s.client || s.client === watched) return;
    watched = s.client;
    s.client.once('close', (e: { code: number }) => closes.push(e.code));
  };
  await s.connect();
  watch();
  const timer = setInterval(() => {
    watch();
    if (!s.client) s.reconnectSoon();
  }, 20);
  t.teardown(async () => { clearInterval(timer); await s.stop(); });
  return { s, closes, heartbeat: () => s.client.call('Heartbeat', {}) as Promise<{ currentTime: string }> };
}

const redisCli = (port: number, ...args: string[]) => new Promise<string>((resolve, reject) =>
  execFile('redis-cli', ['-p', String(port), ...args], { timeout: 10000 }, (err, out) => (err ? reject(err) : resolve(out))));

t.before(() => makeTestPki(TEST_PKI_DIR));

t.test(`Redis stopped for ${REDIS_OUTAGE_MS / 1000} s and restarted`, async (t) => {
  const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', scratchDir(t, 'redis-outage-')] });
  t.teardown(() => redis.stop());
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, redis: redis.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  for (const id of ['RO-LIVE-1', 'RO-LIVE-2', 'RO-NEW']) await seedCharger(proxy, { identity: id, password: password(id) });
  const live = [await liveStation(t, proxy, 'RO-LIVE-1'), await liveStation(t, proxy, 'RO-LIVE-2')];
  t.equal((await readyz(proxy)).status, 200, 'ready before the outage');

  await redis.stop();
  const downAt = Date.now();
  const refused = await attempt(proxy, 'RO-NEW');
  t.equal(refused.status, 503, 'a new connection during the outage gets 503');
  t.equal(refused.body, 'gate_error', 'reason gate_error: the gates fail closed');
  t.ok(refused.ms < 3000, `refused quickly (${refused.ms} ms)`);
  const r = await readyz(proxy);
  t.equal(r.status, 503, '/readyz is 503 while the store is down');
  t.match(JSON.stringify(r.body.checks), /store/, '/readyz names the store');
  await waitFor(() => proxy.logs.some((l) => l.event === 'redis_connection_lost'), 'the loss logged', 5000, 50);
  t.equal(proxy.logs.find((l) => l.event === 'redis_connection_lost')!.level, 40, 'the lost connection is a warning in the log');

  let heartbeats = 0;
  let attempts = 0;
  const statuses = new Set<string>();
  while (Date.now() - downAt < REDIS_OUTAGE_MS) {
    for (const l of live) { await l.heartbeat(); heartbeats++; }
    const a = await attempt(proxy, 'RO-NEW');
    statuses.add(`${a.status} ${a.body}`);
    attempts++;
    await sleep(1000);
  }
  t.same([...statuses], ['503 gate_error'], `${attempts} new connections during the outage: all 503 gate_error`);
  t.ok(heartbeats >= 2 * attempts, `${heartbeats} heartbeats relayed on the live sessions during the outage`);
  t.same(live.map((l) => l.s.connections), [1, 1], 'live sessions never dropped');

  await redis.restart();
  const back = Date.now();
  await waitFor(async () => (await attempt(proxy, 'RO-NEW')).status === 101, 'a new connection admitted after Redis is back', 15000, 200);
  t.pass(`new connections admitted again ${Date.now() - back} ms after Redis came back`);
  await waitFor(async () => (await readyz(proxy)).status === 200, '/readyz 200 again', 10000, 200);
  t.equal(proxy.logs.filter((l) => l.event === 'redis_connection_lost').length, 1, 'logged once for the outage, not per reconnect attempt');
  t.ok(proxy.logs.some((l) => l.event === 'redis_connection_restored'), 'and its end logged');
  for (const l of live) await l.heartbeat();
  t.same(live.map((l) => l.closes.length), [0, 0], 'live sessions still the original ones');

  // The change feed's subscriber came back too: an operator block reaches the live session.
  await waitFor(async () => {
    await proxy.credentials.store.updateCharger('RO-LIVE-2', { status: 'blocked' });
    await sleep(300);
    return live[1]!.closes.length > 0;
  }, 'block delivered through the change feed after the outage', 10000, 0);
  t.equal(live[1]!.closes[0], 1008, 'blocked charger closed with 1008 after the outage');
});

t.test('Redis failover with Sentinel: live sessions unaffected, new connections recover alone', async (t) => {
  const master = await startRedis();
  t.teardown(() => master.stop());
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  t.teardown(() => replica.stop());
  await waitFor(async () => /master_link_status:up/.test(await redisCli(replica.port, 'info', 'replication')), 'replica in sync', 10000, 100);
  const sentinel = await startSentinel(master.port);
  t.teardown(() => sentinel.stop());
  await waitFor(async () => (await redisCli(sentinel.port, 'sentinel', 'replicas', 'mymaster')).includes(String(replica.port)), 'Sentinel knows the replica', 15000, 200);
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, redis: sentinel.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  for (const id of ['SF-LIVE-1', 'SF-LIVE-2', 'SF-NEW']) await seedCharger(proxy, { identity: id, password: password(id) });
  await redisCli(master.port, 'wait', '1', '5000');
  const live = [await liveStation(t, proxy, 'SF-LIVE-1'), await liveStation(t, proxy, 'SF-LIVE-2')];

  await master.stop();
  const downAt = Date.now();
  const seen = new Set<string>();
  let heartbeats = 0;
  await waitFor(async () => {
    for (const l of live) { await l.heartbeat(); heartbeats++; }
    const a = await attempt(proxy, 'SF-NEW');
    seen.add(`${a.status} ${a.body}`);
    return a.status === 101;
  }, 'a new connection admitted through the promoted replica', 30000, 250);
  t.pass(`new connections admitted again ${Date.now() - downAt} ms after the master stopped (seen: ${[...seen].join(', ')})`);
  t.ok([...seen].every((s) => s === '101 ' || s === '503 gate_error'), 'during the failover new connections only ever got 503 gate_error');
  t.ok(/role:master/.test(await redisCli(replica.port, 'info', 'replication')), 'the replica was promoted');
  t.ok(heartbeats > 0, `${heartbeats} heartbeats relayed during the failover`);
  t.same(live.map((l) => l.closes.length), [0, 0], 'live sessions never dropped');
  await waitFor(async () => (await readyz(proxy)).status === 200, '/readyz 200 after the failover', 10000, 200);
  const rec = await waitFor(async () => { const r = await proxy.credentials.store.getCharger('SF-NEW'); return r?.session ? r : null; }, 'session claim written', 5000);
  t.ok(rec!.session!.since >= downAt, 'the new session was recorded on the new master');
});

t.test('CSMS stopped: 1012 to live chargers, 503 at once to new ones, all back when the CSMS is', async (t) => {
  let csms = await startLegacyCsms();
  const port = csms.port;
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  const ids = ['CD-1', 'CD-2', 'CD-3'];
  for (const id of [...ids, 'CD-NEW']) await seedCharger(proxy, { identity: id, password: password(id) });
  t.equal((await attempt(proxy, 'CD-NEW')).status, 101, 'CD-NEW admitted before the outage (its password is now cached)');
  const live: Awaited<ReturnType<typeof liveStation>>[] = [];
  for (const id of ids) live.push(await liveStation(t, proxy, id));

  await csms.stop(); // its sockets are cut, as when the process dies
  await waitFor(() => live.every((l) => l.closes.length > 0), 'every live session closed', 5000);
  t.same(live.map((l) => l.closes[0]), [1012, 1012, 1012], 'live chargers get 1012 (service restart: come back later)');
  const a = await attempt(proxy, 'CD-NEW');
  t.equal(a.status, 503, 'a new charger gets 503 while the CSMS is down');
  t.equal(a.body, 'backend_unavailable', 'reason backend_unavailable');
  t.equal(a.retryAfter, '10', 'with Retry-After, as every 503');
  t.ok(a.ms < 3000, `answered at once, not after backendTimeoutMs (10 s): ${a.ms} ms`);
  // SimStation records 0 for these (it reads the status from the error text; ocpp-rpc puts it in err.code).
  await waitFor(() => live.every((l) => l.s.refusals.length > 0), 'every reconnecting charger refused at least once', 10000);
  t.ok(live.every((l) => !l.s.client), 'the reconnecting chargers are refused meanwhile');

  csms = await startLegacyCsms({ port });
  const back = Date.now();
  await waitFor(() => ids.every((id) => csms.clients.has(id)) && live.every((l) => l.s.client), 'every charger back through the proxy', 20000, 50);
  t.pass(`all chargers back ${Date.now() - back} ms after the CSMS returned`);
  for (const l of live) t.ok((await l.heartbeat()).currentTime, 'relaying again');
  t.equal((await attempt(proxy, 'CD-NEW')).status, 101, 'new chargers admitted again');
});
