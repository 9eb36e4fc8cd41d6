/**
 * Guesses sent at once count as guesses made one after another: the lockout threshold holds. Before,
 * every upgrade read the lockout when it started, so thirty guesses sent together were all checked
 * (each an scrypt for an operator's password) before the first failure was counted.
 */
import t from 'tap';
import { startLegacyCsms } from '../helpers/csms';
import { tryBasicLogin } from '../helpers/login';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';

const RIGHT = 'concurrent-right-password';

for (const store of ['embedded', 'redis'] as const) {
  t.test(`${store}: thirty wrong guesses at once, threshold 3: three are checked, the rest refused unchecked`, async (t) => {
    const csms = await startLegacyCsms();
    t.teardown(() => csms.stop());
    let redisUrl: string | undefined;
    if (store === 'redis') {
      const redis = await startRedis();
      t.teardown(() => redis.stop());
      redisUrl = redis.url;
    }
    const proxy = await startTestProxy({ backend: csms.url, rotation: 'false', lockoutThreshold: '3', addressLockoutThreshold: '1000', ...(redisUrl ? { redis: redisUrl } : {}) });
    t.teardown(() => proxy.stop());
    await seedCharger(proxy, { identity: 'CG-1', password: RIGHT });
    await seedCharger(proxy, { identity: 'CG-2', password: RIGHT });
    const login = (identity: string, password: string) => tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, password, 'ocpp1.6');

    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => login('CG-1', `wrong-guess-${i}`)));
    t.same([...new Set(statuses)], [401], 'all refused');
    const reasons = proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.identity === 'CG-1').map((l) => l.reason);
    t.equal(reasons.filter((r) => r === 'bad_password').length, 3, 'exactly lockoutThreshold of them were checked');
    t.equal(reasons.filter((r) => r === 'locked_out').length, 27, 'the others found the identity locked out');
    t.equal(await login('CG-1', RIGHT), 401, 'the identity is locked out');
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    t.match(metrics, /ocpp_proxy_lockouts_total\{scope="identity"\} 1\n/, 'one lockout imposed: refusals of a locked identity are not counted as lockouts');

    const rights = await Promise.all(Array.from({ length: 5 }, () => login('CG-2', RIGHT)));
    t.same(rights, [101, 101, 101, 101, 101], 'five right logins at once: each admitted in turn (the newest session wins)');
    t.notOk(proxy.logs.some((l) => l.identity === 'CG-2' && l.event === 'upgrade_rejected'), 'none refused');
  });
}
