/**
 * A pending password the charger took up (answered Accepted, or RebootRequired) is one it holds or
 * will hold: nothing may replace it, and RebootRequired keeps the old password valid until the
 * charger logs in with the new one. And a refusal of a value sent before without an answer proves
 * nothing: that pending password stays. Each case below locked a charger out before.
 */
import t, { type Test } from 'tap';
import { tryBasicLogin } from '../helpers/login';
import { sleep, waitFor } from '../helpers/net';
import { seedCharger, startProxyBeforeCsms, type TestProxy } from '../helpers/proxy';
import { SimStation, type PasswordBehaviour } from '../helpers/station';

const OLD = 'operator-set-password-1';
const NEW = 'Gen3ratedPassw0rdXYZ0Gen3ratedPassw0rdXY'; // 40 characters, as the proxy generates for 2.x

function station(t: Test, proxy: TestProxy, identity: string, behaviour: PasswordBehaviour, password = OLD): SimStation {
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp2.0.1', password, ca: proxy.caPem, behaviour });
  t.teardown(() => s.stop());
  return s;
}

/** A charger on OLD that answers password changes only when the test says, once the first change has arrived. */
async function firstChangeArrived(t: Test, identity: string, flags: Record<string, string>) {
  const proxy = await startProxyBeforeCsms(t, flags);
  await seedCharger(proxy, { identity, password: OLD });
  const s = station(t, proxy, identity, 'manual');
  await s.connect();
  await waitFor(() => s.keyChanges.length === 1, 'password change received');
  return { proxy, store: proxy.credentials.store, s };
}

/** The charger on OLD with NEW pending, answered Accepted a minute ago (its link dropped before it came back with NEW). */
async function acceptedPending(proxy: TestProxy, identity: string): Promise<number> {
  const { store, hasher, sealer } = proxy.credentials;
  await seedCharger(proxy, { identity, password: OLD });
  const createdAt = Date.now() - 120_000;
  if (!(await store.setPending(identity, { encrypted: sealer.seal(Buffer.from(NEW), identity), hash: hasher.hashGenerated(Buffer.from(NEW)), createdAt, attempt: 1, sentAt: createdAt }))) throw new Error('pending not written');
  await store.updatePending(identity, createdAt, { acceptedAt: createdAt + 1000 });
  return createdAt + 1000;
}

t.test('an operator request while the charger holds an accepted password waits for it, and runs after', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { callTimeoutMs: '1500' });
  const identity = 'TAKEN-ACCEPTED';
  await acceptedPending(proxy, identity);
  const res = await fetch(`${proxy.adminUrl}/api/v1/chargers/${identity}/rotate`, { method: 'POST', headers: { authorization: `Bearer ${proxy.adminToken}` } });
  t.ok(res.status === 200 || res.status === 202, 'the operator asks for a rotation');

  // Back with OLD within the grace period: it is sent the value it accepted once more, not a new one.
  const s = station(t, proxy, identity, 'apply');
  await s.connect();
  await waitFor(() => s.keyChanges.length === 1, 'the accepted value sent again');
  t.equal(s.keyChanges[0]!.password, NEW, 'the same value it accepted, not a new one');
  // It applies it and comes back with NEW (committed); only then does the operator's request run.
  await waitFor(() => s.keyChanges.length === 2, 'the requested rotation runs once NEW is committed', 8000);
  t.not(s.keyChanges[1]!.password, NEW, 'a new value this time');
  await waitFor(() => s.connections === 3, 'back with the rotated password');
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, s.keyChanges[1]!.password, 'ocpp2.0.1'), 101);
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, NEW, 'ocpp2.0.1'), 401, 'NEW is gone once the next one is committed (grace 24 h applies to the accepted one only)');
});

t.test('a charger that accepted but keeps its old password gets the value once a session, and no longer grace', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { callTimeoutMs: '1500' });
  const { store } = proxy.credentials;
  const identity = 'TAKEN-STUBBORN';
  const acceptedAt = await acceptedPending(proxy, identity);
  const s = station(t, proxy, identity, 'manual');
  await s.connect();
  await waitFor(() => s.keyChanges.length === 1, 'the accepted value sent again');
  s.keyChanges[0]!.answer('Accepted');
  (s as any).password = OLD; // says Accepted again, and still comes back with OLD
  await waitFor(() => s.connections === 2, 'back with OLD');
  await waitFor(() => s.keyChanges.length === 2, 'sent once in that session too');
  s.keyChanges[1]!.answer('Rejected');
  await waitFor(async () => (await store.getCharger(identity))?.rotation?.lastResult === 'rejected', 'the refusal recorded');
  // Anything that makes the session look again (here an operator's request) sends nothing more.
  const res = await fetch(`${proxy.adminUrl}/api/v1/chargers/${identity}/rotate`, { method: 'POST', headers: { authorization: `Bearer ${proxy.adminToken}` } });
  t.ok(res.status === 200 || res.status === 202, 'an operator request arrives');
  await sleep(500);
  t.equal(s.keyChanges.length, 2, 'once a session, not in a loop');
  const rec = (await store.getCharger(identity))!;
  t.equal(rec.pending?.acceptedAt, acceptedAt, 'the grace still runs from the first Accepted');
  t.ok(rec.pending, 'a refusal of a value it once accepted keeps it');
});

t.test('RebootRequired: the old password keeps working (strict mode too) until the charger logs in with the new one', async (t) => {
  const identity = 'TAKEN-REBOOT';
  const { proxy, store, s } = await firstChangeArrived(t, identity, { callTimeoutMs: '1500', rotationGraceMs: '0' });
  const change = s.keyChanges[0]!;
  change.answer('RebootRequired');
  (s as any).password = OLD; // not rebooted yet: it still uses the old password
  // Two writes, the second after the first is durable: wait for both.
  await waitFor(async () => { const r = await store.getCharger(identity); return r?.pending?.rebootRequiredAt !== undefined && r.rotation?.lastResult === 'reboot_required'; }, 'RebootRequired recorded');
  t.equal((await store.getCharger(identity))?.rotation?.lastResult, 'reboot_required');
  await waitFor(() => s.connections === 2, 'back (before its reboot) with the old password');
  await waitFor(() => s.keyChanges.length === 2, 'the same value sent once in that session');
  await sleep(500);
  t.equal(s.keyChanges[1]!.password, change.password, 'the value it will use after its reboot, not a new one');
  t.equal(s.keyChanges.length, 2, 'and only once');
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, OLD, 'ocpp2.0.1'), 101, 'the old password is still admitted, grace 0 or not');
  t.ok((await store.getCharger(identity))?.pending, 'and the pending one is kept');
  await s.stop();
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, change.password, 'ocpp2.0.1'), 101, 'after its reboot: the new password');
  await waitFor(async () => (await store.getCharger(identity))?.passwordSource === 'generated', 'committed');
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, OLD, 'ocpp2.0.1'), 401, 'the old one is gone from then on');
});

t.test('a refusal of a value sent before without an answer keeps it: the charger may hold it', async (t) => {
  const identity = 'TAKEN-RESENT';
  const { proxy, store, s } = await firstChangeArrived(t, identity, { callTimeoutMs: '600', rotationRetryMs: '1000' });
  // No answer (the charger applied it, its Accepted was lost): the proxy times out and retries.
  await waitFor(() => s.keyChanges.length === 2, 'the same value sent again', 8000);
  t.equal(s.keyChanges[1]!.password, s.keyChanges[0]!.password, 'a retry resends the same value');
  s.keyChanges[1]!.answer('Rejected');
  await waitFor(async () => (await store.getCharger(identity))?.rotation?.lastResult === 'rejected', 'refusal recorded');
  const rec = (await store.getCharger(identity))!;
  t.ok(rec.pending, 'the pending password is kept');
  t.ok(proxy.logs.some((l) => l.event === 'rotation_refused' && l.pendingKept === true), 'the log says it was kept');
  await s.stop();
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, s.keyChanges[0]!.password, 'ocpp2.0.1'), 101, 'the charger that applied it gets in with it');
});
