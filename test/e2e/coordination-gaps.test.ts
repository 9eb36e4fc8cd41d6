/**
 * Operator actions that found no session to act on:
 * - a block or a revocation made while the charger was being admitted (its record was read, the
 *   CSMS was still being dialled): the session entered the registry afterwards, on the stale record;
 * - a block made while this replica's change-feed connection was down: the message was lost;
 * - a block whose message was never published (the writer's PUBLISH failed after its write).
 * All used to leave the session running until the charger's next reconnect.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { basicHeader } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { startLegacyCsms } from '../helpers/csms';
import { seedCharger, startProxyBeforeCsms, startTestProxy, TEST_PKI_DIR } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';
import { startRedis } from '../helpers/redis';
import { StoreError } from '../../proxy/store/errors';
import { RedisStore } from '../../proxy/store/redis';

const run = promisify(execFile);
const PASSWORD = 'coordination-pw-123';

/** Opens a charger connection; resolves once it is open, with the close code when it closes. */
function connect(url: string, identity: string, o: { ca: Buffer; auth?: string; cert?: string; key?: string }) {
  const ws = new WebSocket(`${url}/${identity}`, ['ocpp1.6'], {
    ca: o.ca, servername: 'localhost', headers: o.auth ? { authorization: o.auth } : {},
    cert: o.cert ? readFileSync(o.cert) : undefined, key: o.key ? readFileSync(o.key) : undefined,
  } as WebSocket.ClientOptions);
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return { ws, opened, closed };
}

const closedWithin = (closed: Promise<number>, ms: number) =>
  Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), ms).unref())]);

t.test('blocked or revoked while being admitted: the new session is checked again and closed', async (t) => {
  const pki = await makeTestPki(TEST_PKI_DIR);
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  let onDial: (() => void) | null = null;
  const csms = await startRawCsms({ delayMs: 600, onUpgrade: () => onDial?.() });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, redis: redis.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;

  await seedCharger(proxy, { identity: 'CG-BLOCK', password: PASSWORD });
  onDial = () => void store.updateCharger('CG-BLOCK', { status: 'blocked' });
  const blocked = connect(proxy.tlsUrl, 'CG-BLOCK', { ca: proxy.caPem, auth: basicHeader('CG-BLOCK', PASSWORD) });
  await blocked.opened; // admitted on the record read before the block
  t.equal(await closedWithin(blocked.closed, 3000), 1008, 'blocked while the CSMS was dialled: closed with 1008 once admitted');
  t.ok(proxy.logs.some((l) => l.event === 'session_closed_blocked' && l.identity === 'CG-BLOCK' && l.why === 'changed_during_admission'), 'logged, with why');

  await seedCharger(proxy, { identity: 'CG-CERT', minProfile: 3, serial: 'SER-CG-CERT' });
  const cert = await pki.charger('SER-CG-CERT');
  onDial = () => void store.revokeSerial(cert.serialHex, 'test');
  const revoked = connect(proxy.tlsUrl, 'CG-CERT', { ca: proxy.caPem, cert: cert.certPath, key: cert.keyPath });
  await revoked.opened;
  t.equal(await closedWithin(revoked.closed, 3000), 1008, 'certificate revoked while the CSMS was dialled: closed with 1008');
  t.ok(proxy.logs.some((l) => l.event === 'session_closed_revoked' && l.identity === 'CG-CERT'), 'logged');

  await seedCharger(proxy, { identity: 'CG-CALM', password: PASSWORD });
  onDial = () => void store.updateCharger('CG-OTHER', { status: 'blocked' }).catch(() => undefined); // another charger's change
  const calm = connect(proxy.tlsUrl, 'CG-CALM', { ca: proxy.caPem, auth: basicHeader('CG-CALM', PASSWORD) });
  await calm.opened;
  t.equal(await closedWithin(calm.closed, 1000), -1, 'a change to another charger meanwhile: the session stays');
  calm.ws.close();
});

t.test('a block published while the change feed was disconnected reaches the session once it is back', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startProxyBeforeCsms(t, { redis: redis.url, rotation: 'false' });
  // Another process on the same Redis (as the chargers CLI or another replica): its changes reach the
  // proxy only through the feed.
  const other = await RedisStore.open({ url: redis.url });
  t.teardown(() => other.close());
  await seedCharger(proxy, { identity: 'CG-FEED', password: PASSWORD });
  await seedCharger(proxy, { identity: 'CG-STAYS', password: PASSWORD });
  const victim = connect(proxy.tlsUrl, 'CG-FEED', { ca: proxy.caPem, auth: basicHeader('CG-FEED', PASSWORD) });
  const bystander = connect(proxy.tlsUrl, 'CG-STAYS', { ca: proxy.caPem, auth: basicHeader('CG-STAYS', PASSWORD) });
  await Promise.all([victim.opened, bystander.opened]);
  await waitFor(() => proxy.server.sessions.get('CG-FEED') && proxy.server.sessions.get('CG-STAYS'), 'both sessions registered');

  // The store's own reads fail the first two times they are tried for CG-FEED after the cut (its
  // connection may come back after the feed's): the resync tries that session again.
  const store = proxy.credentials.store;
  const getCharger = store.getCharger.bind(store);
  let failuresLeft = 2;
  store.getCharger = async (identity) => {
    if (identity === 'CG-FEED' && failuresLeft > 0) {
      failuresLeft--;
      throw new StoreError('store_unavailable', 'redis: connection is closed (test)');
    }
    return getCharger(identity);
  };
  // Cut the proxy's subscriber connection and block at once: ioredis waits 100 ms before it
  // reconnects, so the message is published to nobody.
  await run('redis-cli', ['-p', String(redis.port), 'CLIENT', 'KILL', 'TYPE', 'pubsub']);
  await other.updateCharger('CG-FEED', { status: 'blocked' });
  t.equal(await closedWithin(victim.closed, 8000), 1008, 'closed with 1008 after the feed came back (its reads retried)');
  t.equal(failuresLeft, 0, 'both failed reads happened');
  t.ok(proxy.logs.some((l) => l.event === 'coordination_resync'), 'the resync is logged');
  t.ok(proxy.logs.some((l) => l.event === 'session_closed_blocked' && l.identity === 'CG-FEED' && l.why === 'resync'), 'the close says why');
  t.equal(await closedWithin(bystander.closed, 500), -1, 'the other session stays');
  bystander.ws.close();
});

t.test('a block whose change message never went out reaches the session at the next sweep', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, redis: redis.url, rotation: 'false' }, { coordinationSweepMs: 1000 });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'CG-SWEEP', password: PASSWORD });
  await seedCharger(proxy, { identity: 'CG-KEPT', password: PASSWORD });
  const victim = connect(proxy.tlsUrl, 'CG-SWEEP', { ca: proxy.caPem, auth: basicHeader('CG-SWEEP', PASSWORD) });
  const bystander = connect(proxy.tlsUrl, 'CG-KEPT', { ca: proxy.caPem, auth: basicHeader('CG-KEPT', PASSWORD) });
  await Promise.all([victim.opened, bystander.opened]);
  // The record is blocked as a writer whose PUBLISH failed would leave it: written, never announced.
  const key = 'ocpp:{CG-SWEEP}:charger';
  const record = JSON.parse((await run('redis-cli', ['-p', String(redis.port), 'GET', key])).stdout);
  await run('redis-cli', ['-p', String(redis.port), 'SET', key, JSON.stringify({ ...record, status: 'blocked' })]);
  t.equal(await closedWithin(victim.closed, 5000), 1008, 'closed with 1008 by the sweep');
  t.ok(proxy.logs.some((l) => l.event === 'session_closed_blocked' && l.identity === 'CG-SWEEP' && l.why === 'sweep'), 'the close says why');
  t.ok(proxy.logs.some((l) => l.event === 'coordination_resync' && l.why === 'sweep'), 'sweeps ran');
  t.notOk(proxy.logs.some((l) => l.event === 'coordination_resync' && (l.level as number) > 20 && l.why === 'sweep'), 'routine sweeps are logged at debug only');
  t.equal(await closedWithin(bystander.closed, 500), -1, 'the other session stays');
  bystander.ws.close();
});

t.test('a Redis that lost its data (FLUSHALL, a restart without it) keeps live sessions instead of closing them as removed', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, redis: redis.url, rotation: 'false' }, { coordinationSweepMs: 500 });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'CG-WIPED', password: PASSWORD });
  await seedCharger(proxy, { identity: 'CG-REMOVED', password: PASSWORD });
  const kept = connect(proxy.tlsUrl, 'CG-WIPED', { ca: proxy.caPem, auth: basicHeader('CG-WIPED', PASSWORD) });
  const removed = connect(proxy.tlsUrl, 'CG-REMOVED', { ca: proxy.caPem, auth: basicHeader('CG-REMOVED', PASSWORD) });
  await Promise.all([kept.opened, removed.opened]);

  // A removal while the store is whole still closes its session.
  t.equal(await proxy.credentials.store.removeCharger('CG-REMOVED'), true);
  t.equal(await closedWithin(removed.closed, 5000), 1008, 'a charger removed by the operator is closed');

  await run('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
  await waitFor(() => proxy.logs.some((l) => l.event === 'store_wiped'), 'the loss reported', 5000, 50).catch((e) => { console.error(proxy.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')); throw e; });
  t.equal(await closedWithin(kept.closed, 1500), -1, 'the live session is kept through the sweeps that find its record gone');
  const wiped = proxy.logs.find((l) => l.event === 'store_wiped')!;
  t.equal(wiped.level, 50, 'reported as an error');
  t.equal(proxy.logs.filter((l) => l.event === 'store_wiped').length, 1, 'once a minute at most, not per sweep');
  t.notOk(proxy.logs.some((l) => l.event === 'session_closed_removed' && l.identity === 'CG-WIPED'), 'not closed as removed');
  kept.ws.close();
});

t.test('a block during the drain grace still closes the session at once (1008), not at the end of the grace', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startProxyBeforeCsms(t, { redis: redis.url, rotation: 'false', drainGraceMs: '5000' });
  const other = await RedisStore.open({ url: redis.url });
  t.teardown(() => other.close());
  await seedCharger(proxy, { identity: 'CG-DRAIN', password: PASSWORD });
  const c = connect(proxy.tlsUrl, 'CG-DRAIN', { ca: proxy.caPem, auth: basicHeader('CG-DRAIN', PASSWORD) });
  await c.opened;
  await waitFor(() => proxy.server.sessions.get('CG-DRAIN'), 'session registered');
  const drained = proxy.drain();
  await other.updateCharger('CG-DRAIN', { status: 'blocked' });
  t.equal(await closedWithin(c.closed, 2000), 1008, 'blocked while draining: 1008 at once');
  await drained;
});
