/**
 * Targeted lockout: anyone who knows a charger's identity can lock it out with a few wrong guesses.
 * From the address the charger's last session came from, a locked-out identity still gets its
 * password checked (failures there still count), so guesses from elsewhere no longer keep the
 * charger itself out. `lockoutSparesFamiliarAddress: false` restores the strict rule.
 */
import t from 'tap';
import WebSocket from 'ws';
import { basicHeader } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { seedCharger, startProxyBeforeCsms } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';
import { addressKey, identityKey } from '../../proxy/store/counter-keys';

const RIGHT = 'familiar-right-password';
const CHARGER_ADDRESS = '127.0.0.1';
const ATTACKER_ADDRESS = '127.0.0.2';

function login(url: string, ca: Buffer, identity: string, password: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/${identity}`, ['ocpp1.6'], { ca, servername: 'localhost', localAddress, headers: { authorization: basicHeader(identity, password) } } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

for (const spare of [true, false]) {
  t.test(`lockoutSparesFamiliarAddress ${spare}`, async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const proxy = await startProxyBeforeCsms(t, { redis: redis.url, rotation: 'false', lockoutThreshold: '3', addressLockoutThreshold: '1000', lockoutSparesFamiliarAddress: String(spare) });
    await seedCharger(proxy, { identity: 'FA-1', password: RIGHT });
    const go = (password: string, from: string) => login(proxy.tlsUrl, proxy.caPem, 'FA-1', password, from);

    t.equal(await go(RIGHT, CHARGER_ADDRESS), 101, 'the charger logs in from its address');
    await waitFor(async () => (await proxy.credentials.store.getCharger('FA-1'))?.session?.address === CHARGER_ADDRESS, 'its session\'s address is on record');
    for (let i = 0; i < 3; i++) t.equal(await go(`guess-${i}`, ATTACKER_ADDRESS), 401, `a guess from elsewhere (${i + 1})`);
    t.equal(await go(RIGHT, ATTACKER_ADDRESS), 401, 'the identity is locked out elsewhere, even with the right password');

    if (spare) {
      t.equal(await go(RIGHT, CHARGER_ADDRESS), 101, 'from its familiar address the charger still gets in');
      await waitFor(() => proxy.logs.some((l) => l.event === 'lockout_spared' && l.identity === 'FA-1'), 'logged as spared');
      const before = (await proxy.credentials.store.readAdmission('FA-1')).failures;
      t.equal(await go('another-wrong-one', CHARGER_ADDRESS), 401, 'a wrong password from the familiar address is refused ...');
      t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.identity === 'FA-1' && l.reason === 'bad_password' && l.remoteAddress === CHARGER_ADDRESS), '... as checked (bad_password) ...');
      t.equal((await proxy.credentials.store.readAdmission('FA-1')).failures, before + 1, '... and counted');
      t.equal(await go(RIGHT, ATTACKER_ADDRESS), 401, 'and elsewhere the lockout stands');
    } else {
      t.equal(await go(RIGHT, CHARGER_ADDRESS), 401, 'strict: the charger is locked out too');
    }
  });
}

t.test('the familiar address holds to the address lockout, even for guesses sent at once; only verified logins make an address familiar', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startProxyBeforeCsms(t, { redis: redis.url, rotation: 'false', lockoutThreshold: '3', addressLockoutThreshold: '10' });
  const { store } = proxy.credentials;
  await seedCharger(proxy, { identity: 'FA-2', password: RIGHT });
  t.equal(await login(proxy.tlsUrl, proxy.caPem, 'FA-2', RIGHT, CHARGER_ADDRESS), 101, 'the charger logs in from its address');
  await waitFor(async () => (await store.getCharger('FA-2'))?.session?.address === CHARGER_ADDRESS, 'familiar address on record');

  const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => login(proxy.tlsUrl, proxy.caPem, 'FA-2', `burst-${i}`, CHARGER_ADDRESS)));
  t.same([...new Set(statuses)], [401], 'forty guesses at once from the familiar address: all refused');
  const reasons = proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.identity === 'FA-2').map((l) => l.reason);
  t.equal(reasons.filter((r) => r === 'bad_password').length, 10, 'only addressLockoutThreshold of them were checked');
  t.equal(reasons.filter((r) => r === 'locked_out').length, 30, 'then the address lockout held');

  // A password reset (after a leak, say) makes the last session's address unfamiliar.
  await store.setLockout(addressKey(CHARGER_ADDRESS), 0);
  await store.resetFailures(addressKey(CHARGER_ADDRESS));
  t.equal(await store.getLockout(addressKey(CHARGER_ADDRESS)), 0, 'the address lockout lifted');
  t.ok((await store.getLockout(identityKey('FA-2'))) > 0, 'the identity still locked out');
  await store.updateCharger('FA-2', { password: await proxy.credentials.hasher.hashOperator(Buffer.from('a-new-password-after-reset')), passwordSetAt: Date.now() + 1 });
  t.equal(await login(proxy.tlsUrl, proxy.caPem, 'FA-2', 'a-new-password-after-reset', CHARGER_ADDRESS), 401, 'after the reset the identity lockout applies from that address too (not spared)');
  t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.identity === 'FA-2' && l.reason === 'locked_out' && l.remoteAddress === CHARGER_ADDRESS), 'refused as locked_out');
});

t.test('a report-only admission does not make its address familiar', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startProxyBeforeCsms(t, { redis: redis.url, rotation: 'false', reportOnly: 'true' });
  await seedCharger(proxy, { identity: 'FA-3', password: RIGHT });
  t.equal(await login(proxy.tlsUrl, proxy.caPem, 'FA-3', 'wrong-but-report-only', ATTACKER_ADDRESS), 101, 'report-only: a wrong password is let in');
  await waitFor(async () => (await proxy.credentials.store.getCharger('FA-3'))?.session !== undefined, 'the session claimed');
  t.equal((await proxy.credentials.store.getCharger('FA-3'))!.session!.address, undefined, 'its address is not recorded as familiar');
  t.equal(await login(proxy.tlsUrl, proxy.caPem, 'FA-3', RIGHT, CHARGER_ADDRESS), 101, 'a verified login ...');
  await waitFor(async () => (await proxy.credentials.store.getCharger('FA-3'))?.session?.address === CHARGER_ADDRESS, '... records its address');
});
