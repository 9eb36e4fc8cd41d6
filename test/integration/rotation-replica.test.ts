/**
 * A new password leaves for the charger only once a Redis replica holds it. Redis replicates
 * asynchronously: a failover right after the write-ahead could lose the value a charger then
 * applies, and nobody could let it in again. Here the replica is stopped (SIGSTOP): the rotation is
 * not sent, and goes out after its back-off once the replica acknowledges again; a password set by
 * an operator while the rotation waits for the replica stops it; and a Redis user not allowed ROLE
 * gets its rotations sent unchecked, with one warning.
 */
import t, { type Test } from 'tap';
import Redis from 'ioredis';
import { startLegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';
import { SimStation } from '../helpers/station';
import { parseRole } from '../../proxy/store/redis-replicas';

t.test('the rotation waits for a replica to hold the new password', async (t) => {
  const { replica, proxy } = await replicatedRig(t);
  const store = proxy.credentials.store;
  const identity = 'CP-REPLICA';
  await seedCharger(proxy, { identity, password: 'operator-set-password-1' });
  const resume = stopReplica(t, replica.pid);

  const station = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: 'operator-set-password-1', ca: proxy.caPem, behaviour: 'apply' });
  t.teardown(() => station.stop());
  await station.connect();
  await waitFor(() => proxy.logs.some((l) => l.event === 'rotation_not_replicated' && l.identity === identity), 'the rotation notices the silent replica', 15_000);
  t.equal(station.keyChanges.length, 0, 'no password was sent while no replica acknowledged it');
  // The back-off is written after the log line: read the record once it is there.
  await waitFor(async () => (await store.getCharger(identity))?.rotation?.lastResult === 'not_replicated', 'the back-off recorded');
  const rec = (await store.getCharger(identity))!;
  t.ok(rec.pending, 'the value is written ahead (resent later, never replaced)');
  t.equal(rec.pending?.sentAt, undefined, 'its sentAt stamp is taken back: never sent, it stays a first send');
  t.equal(rec.rotation?.lastResult, 'not_replicated', 'the charger record says why');
  t.ok(rec.rotation!.nextAttemptAt! > Date.now() - 5_000, 'a retry is scheduled');
  t.notOk(JSON.stringify(proxy.logs.filter((l) => l.event === 'rotation_not_replicated')).match(/[A-Za-z0-9]{20}/), 'no password-like value in the log line');

  resume();
  await waitFor(() => station.keyChanges.length === 1, 'sent after the back-off, once the replica acknowledges', 20_000);
  await waitFor(async () => (await store.getCharger(identity))?.pending === undefined, 'the charger logs in with it and it is committed', 20_000);
  t.equal((await store.getCharger(identity))!.passwordSource, 'generated', 'the new password is current');
});

/** A primary with one attached replica, and a proxy on the primary. */
async function replicatedRig(t: Test, o: { user?: { name: string; password: string; rules: string[] } } = {}) {
  const primary = await startRedis();
  t.teardown(() => primary.stop());
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  t.teardown(() => replica.stop());
  const admin = new Redis(primary.url);
  t.teardown(() => admin.disconnect());
  await waitFor(async () => parseRole(await admin.role()).replicaOffsets.length === 1, 'replica attached');
  if (o.user) await admin.call('ACL', 'SETUSER', o.user.name, 'on', `>${o.user.password}`, ...o.user.rules);
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const redis = o.user ? `redis://${o.user.name}:${o.user.password}@127.0.0.1:${primary.port}` : primary.url;
  const proxy = await startTestProxy({ backend: csms.url, redis, callTimeoutMs: '1500', rotationRetryMs: '1000' });
  t.teardown(() => proxy.stop());
  return { replica, proxy };
}

/** Stops the replica (SIGSTOP): it stays attached but acknowledges nothing. Returns its resume (idempotent, also at teardown). */
function stopReplica(t: Test, pid: number): () => void {
  process.kill(pid, 'SIGSTOP');
  let stopped = true;
  const resume = () => {
    if (stopped) process.kill(pid, 'SIGCONT');
    stopped = false;
  };
  t.teardown(resume);
  return resume;
}

t.test('a password set while the rotation waits for the replica: the rotation sends nothing', async (t) => {
  const { replica, proxy } = await replicatedRig(t);
  const identity = 'CP-REPLICA-SET';
  await seedCharger(proxy, { identity, password: 'operator-set-password-1' });
  const resume = stopReplica(t, replica.pid);
  const station = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: 'operator-set-password-1', ca: proxy.caPem, behaviour: 'apply' });
  t.teardown(() => station.stop());
  await station.connect();
  await waitFor(() => proxy.logs.some((l) => l.event === 'rotation_started' && l.identity === identity), 'the rotation started (and waits for the replica)');
  // The operator sets a password meanwhile (it drops the pending value), then the replica wakes up.
  const { store, hasher } = proxy.credentials;
  await store.updateCharger(identity, { password: await hasher.hashOperator(Buffer.from('operator-set-password-2')), passwordSource: 'operator', passwordSetAt: Date.now(), pending: null });
  resume();
  await waitFor(() => proxy.logs.some((l) => l.identity === identity && (l.event === 'rotation_stale' || l.event === 'rotation_withdrawn')), 'the rotation gives the value up', 15_000);
  await new Promise((r) => setTimeout(r, 500));
  t.equal(station.keyChanges.length, 0, 'nothing was sent: the charger never holds a value the store dropped');
  t.equal((await store.getCharger(identity))?.pending, undefined, 'no pending value');
});

t.test('a Redis user not allowed ROLE: the rotation goes out unchecked, with one warning', async (t) => {
  // Everything but ROLE, on every key and channel (as a restricted ACL user of a managed Redis).
  const { proxy } = await replicatedRig(t, { user: { name: 'rotator', password: 'rotator-pw', rules: ['~*', '&*', '+@all', '-role'] } });
  const identities = ['CP-NOROLE-1', 'CP-NOROLE-2'];
  for (const identity of identities) {
    await seedCharger(proxy, { identity, password: 'operator-set-password-1' });
    const station = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: 'operator-set-password-1', ca: proxy.caPem, behaviour: 'apply' });
    t.teardown(() => station.stop());
    await station.connect();
    await waitFor(() => station.keyChanges.length === 1, `${identity}: the password change is sent`, 15_000);
  }
  t.equal(proxy.logs.filter((l) => l.event === 'redis_replica_check_refused').length, 1, 'one warning for the process, not one per rotation');
  t.notOk(proxy.logs.some((l) => l.event === 'rotation_not_replicated'), 'no rotation held back');
});
