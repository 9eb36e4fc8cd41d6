/**
 * A store that refuses writes (a read-only replica after a failover, a Redis at its memory limit
 * with eviction off): failed logins can no longer be counted in it. The guard then counts them in
 * its own process, so the lockout limits still hold: before, every wrong guess got 503 and could be
 * repeated without limit while the right password got 101.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { startLegacyCsms } from '../helpers/csms';
import { tryBasicLogin } from '../helpers/login';
import { sleep, waitFor } from '../helpers/net';
import { seedCharger, startProxyBeforeCsms, startTestProxy } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';

const run = promisify(execFile);
const RIGHT = 'the-right-password-123';

t.test('Redis refusing writes: failed logins are counted in the process and the lockout still holds', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  // The charger and the guesser share 127.0.0.1 here: the strict rule, without the familiar-address exemption.
  const proxy = await startTestProxy({ backend: csms.url, redis: redis.url, rotation: 'false', lockoutThreshold: '3', lockoutBaseMs: '2000', lockoutMaxMs: '2000', lockoutSparesFamiliarAddress: 'false' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'CP-RO', password: RIGHT });
  const login = (password: string) => tryBasicLogin(proxy.tlsUrl, proxy.caPem, 'CP-RO', password, 'ocpp1.6');
  t.equal(await login(RIGHT), 101, 'admitted while Redis takes writes');

  // A replica of a master that does not exist: reads are served, writes refused (READONLY).
  await run('redis-cli', ['-p', String(redis.port), 'REPLICAOF', '127.0.0.1', '1']);
  t.teardown(() => run('redis-cli', ['-p', String(redis.port), 'REPLICAOF', 'NO', 'ONE']).then(() => undefined));
  for (let i = 1; i <= 3; i++) t.equal(await login(`wrong-guess-number-${i}`), 401, `wrong guess ${i}: 401, as always (not 503)`);
  t.equal(await login('wrong-guess-number-4'), 401, 'a fourth guess is refused ...');
  t.equal(await login(RIGHT), 401, '... and so is the right password: the identity is locked out');
  const refusals = proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.identity === 'CP-RO').map((l) => l.reason);
  t.same(refusals.slice(-5), ['bad_password', 'bad_password', 'bad_password', 'locked_out', 'locked_out'], 'the refusals say why');
  t.equal(proxy.logs.filter((l) => l.event === 'failures_counted_locally').length, 1, 'one warning says failures are counted in this process only');

  await sleep(2100); // the lockout (lockoutBaseMs) ends on its own
  t.equal(await login(RIGHT), 101, 'once the lockout ends the right password gets in again');

  // Locked out here again; then Redis takes writes again and an operator lifts the lockout.
  for (let i = 1; i <= 3; i++) await login(`another-wrong-guess-${i}`);
  t.equal(await login(RIGHT), 401, 'locked out in this process again');
  await run('redis-cli', ['-p', String(redis.port), 'REPLICAOF', 'NO', 'ONE']);
  const res = await fetch(`${proxy.adminUrl}/api/v1/chargers/CP-RO/unlock`, { method: 'POST', headers: { authorization: `Bearer ${proxy.adminToken}` } });
  t.equal(res.status, 200, 'the unlock is written');
  t.equal(await login(RIGHT), 101, 'and lifts the lockout this process kept as well');
});

t.test('Redis refusing writes: the right password still gets in when a login would write (a failure count to clear, a rotation to settle)', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startProxyBeforeCsms(t, { redis: redis.url, lockoutThreshold: '5', callTimeoutMs: '1000' });
  const { store, hasher, sealer } = proxy.credentials;
  await seedCharger(proxy, { identity: 'CP-RO2', password: RIGHT });
  const NEW = 'Gen3ratedPassw0rdXYZ';
  await seedCharger(proxy, { identity: 'CP-ROT', password: RIGHT });
  const createdAt = Date.now();
  t.ok(await store.setPending('CP-ROT', { encrypted: sealer.seal(Buffer.from(NEW), 'CP-ROT'), hash: hasher.hashGenerated(Buffer.from(NEW)), createdAt, attempt: 1 }), 'CP-ROT mid-rotation');
  await store.updatePending('CP-ROT', createdAt, { acceptedAt: Date.now() });
  const login = (identity: string, password: string) => tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, password, 'ocpp1.6');

  t.equal(await login('CP-RO2', 'one-wrong-guess-1'), 401, 'one wrong guess, counted in Redis');
  await run('redis-cli', ['-p', String(redis.port), 'REPLICAOF', '127.0.0.1', '1']);
  t.teardown(() => run('redis-cli', ['-p', String(redis.port), 'REPLICAOF', 'NO', 'ONE']).then(() => undefined));

  t.equal(await login('CP-RO2', RIGHT), 101, 'the right password: 101, though the count it would clear cannot be cleared');
  t.equal(await login('CP-ROT', NEW), 101, 'the accepted new password: 101, though the commit cannot be written');
  t.ok(proxy.logs.some((l) => l.event === 'rotation_settlement_deferred' && l.identity === 'CP-ROT' && l.settlement === 'commit'), 'logged as deferred');
  t.notOk(proxy.logs.some((l) => l.event === 'rotation_committed' && l.identity === 'CP-ROT'), 'not logged as committed');
  t.ok((await store.getCharger('CP-ROT'))!.pending, 'the pending password is still pending');
  t.equal(await login('CP-ROT', RIGHT), 101, 'the old password too: nothing was settled');
  t.notOk(proxy.logs.some((l) => l.event === 'upgrade_rejected' && (l.identity === 'CP-ROT' || l.identity === 'CP-RO2') && l.reason !== 'bad_password'), 'no 503 for either');

  await run('redis-cli', ['-p', String(redis.port), 'REPLICAOF', 'NO', 'ONE']);
  t.equal(await login('CP-ROT', NEW), 101, 'writes back: the new password logs in ...');
  await waitFor(async () => (await store.getCharger('CP-ROT'))?.pending === undefined, '... and commits the rotation');
  t.equal((await store.getCharger('CP-ROT'))!.passwordSource, 'generated', 'the new password is current');
});
