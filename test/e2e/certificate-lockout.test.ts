/**
 * A good certificate clears the identity's failure count, as the right password does. A charger
 * that now and then presents an older (expired) certificate before its current one, as
 * A02.FR.09/10 allow, used to add those failures up across successful logins until it locked
 * itself out.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { makeTestPki } from '../helpers/pki';
import { seedCharger, startProxyBeforeCsms, TEST_PKI_DIR } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';

function attempt(url: string, identity: string, ca: Buffer, cert: { certPath: string; keyPath: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/${identity}`, ['ocpp1.6'], { ca, servername: 'localhost', cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

for (const store of ['embedded', 'redis'] as const) {
  t.test(`${store}: a Profile 3 login clears the failures counted before it`, async (t) => {
    const pki = await makeTestPki(TEST_PKI_DIR);
    let redisUrl: string | undefined;
    if (store === 'redis') {
      const redis = await startRedis();
      t.teardown(() => redis.stop());
      redisUrl = redis.url;
    }
    const proxy = await startProxyBeforeCsms(t, { lockoutThreshold: '3', failureWindowMs: '600000', ...(redisUrl ? { redis: redisUrl } : {}) });
    await seedCharger(proxy, { identity: 'CL-3', minProfile: 3, serial: 'SER-CL-3' });
    const good = await pki.charger('SER-CL-3');
    const expired = await pki.charger('SER-CL-3', { expired: true });
    for (let round = 1; round <= 3; round++) {
      t.equal(await attempt(proxy.tlsUrl, 'CL-3', proxy.caPem, expired), 401, `round ${round}: the expired certificate first (counted)`);
      t.equal(await attempt(proxy.tlsUrl, 'CL-3', proxy.caPem, expired), 401, `round ${round}: twice`);
      t.equal(await attempt(proxy.tlsUrl, 'CL-3', proxy.caPem, good), 101, `round ${round}: then the current one gets in`);
    }
    t.notOk(proxy.logs.some((l) => l.reason === 'locked_out'), 'six failures in the window, never three in a row: no lockout');
    t.equal((await proxy.credentials.store.readAdmission('CL-3')).failures, 0, 'the count is 0 after the last good login');
  });
}
