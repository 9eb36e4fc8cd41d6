/**
 * Targeted lockout: anyone who knows a charger's identity can lock it out with a few wrong guesses.
 * From the address the charger's last session came from, a locked-out identity still gets its
 * password checked (failures there still count), so guesses from elsewhere no longer keep the
 * charger itself out. `lockoutSparesFamiliarAddress: false` restores the strict rule.
 */
import t from 'tap';
import WebSocket from 'ws';
import { startLegacyCsms } from '../helpers/csms';
import { basicHeader } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';

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
    const csms = await startLegacyCsms();
    t.teardown(() => csms.stop());
    const proxy = await startTestProxy({ backend: csms.url, redis: redis.url, rotation: 'false', lockoutThreshold: '3', addressLockoutThreshold: '1000', lockoutSparesFamiliarAddress: String(spare) });
    t.teardown(() => proxy.stop());
    await seedCharger(proxy, { identity: 'FA-1', password: RIGHT });
    const go = (password: string, from: string) => login(proxy.tlsUrl, proxy.caPem, 'FA-1', password, from);

    t.equal(await go(RIGHT, CHARGER_ADDRESS), 101, 'the charger logs in from its address');
    await waitFor(async () => (await proxy.credentials.store.getCharger('FA-1'))?.session?.address === CHARGER_ADDRESS, 'its session\'s address is on record');
    for (let i = 0; i < 3; i++) t.equal(await go(`guess-${i}`, ATTACKER_ADDRESS), 401, `a guess from elsewhere (${i + 1})`);
    t.equal(await go(RIGHT, ATTACKER_ADDRESS), 401, 'the identity is locked out elsewhere, even with the right password');

    if (spare) {
      t.equal(await go(RIGHT, CHARGER_ADDRESS), 101, 'from its familiar address the charger still gets in');
      await waitFor(() => proxy.logs.some((l) => l.event === 'lockout_spared' && l.identity === 'FA-1'), 'logged as spared');
      t.equal(await go('a-wrong-one', CHARGER_ADDRESS), 401, 'a wrong password from the familiar address is refused ...');
      t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.identity === 'FA-1' && l.reason === 'bad_password' && l.remoteAddress === CHARGER_ADDRESS), '... as checked (bad_password), and counted');
      t.equal(await go(RIGHT, ATTACKER_ADDRESS), 401, 'and elsewhere the lockout stands');
    } else {
      t.equal(await go(RIGHT, CHARGER_ADDRESS), 401, 'strict: the charger is locked out too');
    }
  });
}
