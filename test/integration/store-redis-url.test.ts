/** Redis URL parsing (pure; no Redis needed). */
import t from 'tap';
import { StoreError } from '../../proxy/store/errors';
import { describeRedisTarget, parseRedisUrl, redactRedisUrl } from '../../proxy/store/redis-url';

t.test('standalone', async (t) => {
  t.same(parseRedisUrl('redis://127.0.0.1'), { kind: 'standalone', host: '127.0.0.1', port: 6379, db: 0, tls: false });
  t.same(parseRedisUrl('rediss://user:p%40ss%3Aw@redis.example:6380/3'), {
    kind: 'standalone', host: 'redis.example', port: 6380, db: 3, tls: true, username: 'user', password: 'p@ss:w',
  });
  t.same(parseRedisUrl('redis://:only-pass@[::1]:7000'), { kind: 'standalone', host: '::1', port: 7000, db: 0, tls: false, password: 'only-pass' });
  t.equal(parseRedisUrl('REDIS://h').kind, 'standalone', 'scheme is case-insensitive');
});

t.test('sentinel', async (t) => {
  t.same(parseRedisUrl('redis-sentinel://:pw@s1:26380,s2,[::1]:26381/mymaster/2?sentinelPassword=sp&sentinelUsername=su'), {
    kind: 'sentinel',
    sentinels: [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }, { host: '::1', port: 26381 }],
    masterName: 'mymaster', db: 2, tls: false, password: 'pw', sentinelPassword: 'sp', sentinelUsername: 'su',
  });
  t.equal(parseRedisUrl('rediss-sentinel://s1/m').tls, true);
});

t.test('cluster', async (t) => {
  t.same(parseRedisUrl('redis-cluster://n1:7000,n2:7001'), {
    kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }], tls: false,
  });
  t.equal(parseRedisUrl('rediss-cluster://u:p@n1').tls, true);
});

t.test('bad URLs: clear errors without the password', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /not a URL/],
    ['localhost:6379', /not a URL/],
    ['http://:hunter2@h', /unknown scheme/],
    ['redis://:hunter2@a,b', /exactly one host/],
    ['redis://:hunter2@h/x', /database must be a number/],
    ['redis://:hunter2@h:99999', /bad port/],
    ['redis://:hunter2@h:0', /bad port/],
    ['redis-sentinel://:hunter2@s1', /master name/],
    ['redis-cluster://:hunter2@n1/0', /no path/],
    ['redis://:%zz@h', /percent-encoding/],
  ];
  for (const [url, why] of bad) {
    let err: unknown;
    try {
      parseRedisUrl(url);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof StoreError && err.reason === 'redis_url_invalid', `${JSON.stringify(url)} rejected`);
    t.match((err as Error).message, why, `${JSON.stringify(url)}: says why`);
    t.notMatch((err as Error).message, /hunter2/, `${JSON.stringify(url)}: no password in message`);
  }
});

t.test('redaction and description', async (t) => {
  t.equal(redactRedisUrl('redis://u:secret@h:1/0'), 'redis://u:***@h:1/0');
  t.equal(redactRedisUrl('redis-sentinel://s/m?sentinelPassword=secret&x=1'), 'redis-sentinel://s/m?sentinelPassword=***&x=1');
  t.equal(redactRedisUrl('redis://h'), 'redis://h');
  t.equal(describeRedisTarget(parseRedisUrl('rediss://u:secret@[::1]:7000/1')), 'redis standalone [::1]:7000 db 1 tls');
  t.notMatch(describeRedisTarget(parseRedisUrl('redis-sentinel://:secret@a,b/m')), /secret/);
});
