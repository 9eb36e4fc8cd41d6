/**
 * A new password leaves for the charger only once a Redis replica holds it. Redis replicates
 * asynchronously: a failover right after the write-ahead could lose the value a charger then
 * applies, and nobody could let it in again. Here the replica is stopped (SIGSTOP): the rotation is
 * not sent, and goes out after its back-off once the replica acknowledges again.
 */
import t from 'tap';
import Redis from 'ioredis';
import { startLegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';
import { SimStation } from '../helpers/station';
import { parseRole } from '../../proxy/store/redis-replicas';

t.test('the rotation waits for a replica to hold the new password', async (t) => {
  const primary = await startRedis();
  t.teardown(() => primary.stop());
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  t.teardown(() => replica.stop());
  const admin = new Redis(primary.url);
  t.teardown(() => admin.disconnect());
  await waitFor(async () => parseRole(await admin.role()).replicaOffsets.length === 1, 'replica attached');

  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, redis: primary.url, callTimeoutMs: '1500', rotationRetryMs: '1000' });
  t.teardown(() => proxy.stop());
  const store = proxy.credentials.store;
  const identity = 'CP-REPLICA';
  await seedCharger(proxy, { identity, password: 'operator-set-password-1' });

  process.kill(replica.pid, 'SIGSTOP');
  let stopped = true;
  const resume = () => {
    if (stopped) process.kill(replica.pid, 'SIGCONT');
    stopped = false;
  };
  t.teardown(resume);

  const station = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: 'operator-set-password-1', ca: proxy.caPem, behaviour: 'apply' });
  t.teardown(() => station.stop());
  await station.connect();
  await waitFor(() => proxy.logs.some((l) => l.event === 'rotation_not_replicated' && l.identity === identity), 'the rotation notices the silent replica', 15_000);
  t.equal(station.keyChanges.length, 0, 'no password was sent while no replica acknowledged it');
  const rec = (await store.getCharger(identity))!;
  t.ok(rec.pending?.sentAt, 'the value is written ahead (and marked as if sent: it will be resent, never replaced)');
  t.equal(rec.rotation?.lastResult, 'not_replicated', 'the charger record says why');
  t.ok(rec.rotation!.nextAttemptAt! > Date.now() - 5_000, 'a retry is scheduled');
  t.notOk(JSON.stringify(proxy.logs.filter((l) => l.event === 'rotation_not_replicated')).match(/[A-Za-z0-9]{20}/), 'no password-like value in the log line');

  resume();
  await waitFor(() => station.keyChanges.length === 1, 'sent after the back-off, once the replica acknowledges', 20_000);
  await waitFor(async () => (await store.getCharger(identity))?.pending === undefined, 'the charger logs in with it and it is committed', 20_000);
  t.equal((await store.getCharger(identity))!.passwordSource, 'generated', 'the new password is current');
});
