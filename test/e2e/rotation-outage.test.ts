/**
 * A rotation is settled only by a login that gets a session. A charger that accepted a new
 * password and comes back while the CSMS is down gets 503; if the proxy had committed the new
 * password then, a charger falling back to its old one (as firmware does after a failed
 * connection) would have been refused and locked out. Now nothing is written until the CSMS leg is
 * open, so both passwords stay valid until a login with the new one succeeds.
 */
import t from 'tap';
import { startLegacyCsms } from '../helpers/csms';
import { tlsConnected, tryBasicLogin, upgradeRequest } from '../helpers/login';
import { sleep, waitFor } from '../helpers/net';
import { seedCharger, startTestProxy, type TestProxy } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';

const IDENTITY = 'CP-OUTAGE';
const OLD = 'operator-set-password-1';
const NEW = 'Gen3ratedPassw0rdXYZ'; // 20 characters, as the proxy generates for OCPP 1.6

/** The charger on OLD with NEW pending, as the rotation interceptor writes it (and marks it, once answered Accepted). */
async function chargerMidRotation(proxy: TestProxy, o: { accepted: boolean }): Promise<void> {
  const { store, hasher, sealer } = proxy.credentials;
  await seedCharger(proxy, { identity: IDENTITY, password: OLD });
  const createdAt = Date.now();
  if (!(await store.setPending(IDENTITY, { encrypted: sealer.seal(Buffer.from(NEW), IDENTITY), hash: hasher.hashGenerated(Buffer.from(NEW)), createdAt, attempt: 1 }))) throw new Error('pending not written');
  if (o.accepted) await store.updatePending(IDENTITY, createdAt, { acceptedAt: Date.now() });
}

t.test('a CSMS outage between a rotation\'s Accepted and the reconnect locks nobody out', async (t) => {
  let csms = await startLegacyCsms();
  const port = csms.port;
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotationGraceMs: '600000', lockoutThreshold: '3', callTimeoutMs: '1500' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;
  // The charger answered Accepted to NEW a moment ago.
  await chargerMidRotation(proxy, { accepted: true });
  const login = (password: string) => tryBasicLogin(proxy.tlsUrl, proxy.caPem, IDENTITY, password, 'ocpp1.6');

  await csms.stop();
  t.equal(await login(NEW), 503, 'the new password, CSMS down: 503 (retry)');
  let rec = (await store.getCharger(IDENTITY))!;
  t.ok(rec.pending, 'nothing committed: no session was made');
  t.equal(rec.passwordSource, 'operator', 'the old password is still current');
  for (let i = 0; i < 5; i++) t.equal(await login(OLD), 503, `the old password (fallback), CSMS down: 503, not 401 (${i + 1})`);
  t.notOk(proxy.logs.some((l) => l.reason === 'locked_out' || l.reason === 'bad_password'), 'no failure counted, no lockout');

  csms = await startLegacyCsms({ port });
  t.equal(await login(OLD), 101, 'CSMS back: the old password still works within the grace period');
  t.equal(await login(NEW), 101, 'the new password works');
  await waitFor(async () => (await store.getCharger(IDENTITY))?.pending === undefined, 'committed by the login that got a session');
  rec = (await store.getCharger(IDENTITY))!;
  t.equal(rec.passwordSource, 'generated', 'the new password is current');
  t.equal(await login(OLD), 401, 'and the old one is refused from then on');
});

t.test('a login with the old password settles nothing while the CSMS is down either', async (t) => {
  let csms = await startLegacyCsms();
  const port = csms.port;
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, callTimeoutMs: '1500' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;
  // Sent, never answered: a login with the old password means the charger did not apply it.
  await chargerMidRotation(proxy, { accepted: false });
  const login = (password: string) => tryBasicLogin(proxy.tlsUrl, proxy.caPem, IDENTITY, password, 'ocpp1.6');

  await csms.stop();
  t.equal(await login(OLD), 503, 'CSMS down: 503');
  t.ok((await store.getCharger(IDENTITY))!.pending, 'the pending password is kept: the charger may still hold it');
  t.equal(await login(NEW), 503, 'and a login with it is judged a valid one (503, not 401)');
  csms = await startLegacyCsms({ port });
  t.equal(await login(OLD), 101, 'CSMS back: the old password gets a session');
  await waitFor(async () => (await store.getCharger(IDENTITY))?.pending === undefined, 'now the pending password is dropped');
});

t.test('a charger that gives up while the CSMS is slow to answer settles nothing', async (t) => {
  // A CSMS that takes 800 ms to answer the upgrade; the charger leaves once the dial has begun.
  let dialled: () => void;
  const dialBegun = new Promise<void>((r) => { dialled = r; });
  const csms = await startRawCsms({ delayMs: 800, onUpgrade: () => dialled() });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, callTimeoutMs: '1500' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;
  await chargerMidRotation(proxy, { accepted: true });

  const socket = await tlsConnected(proxy.addresses.tls.port, proxy.caPem);
  socket.write(upgradeRequest(IDENTITY, NEW, 'ocpp1.6'));
  await dialBegun;
  socket.destroy();
  await waitFor(() => proxy.logs.some((l) => l.reason === 'client_gone'), 'the departure logged as client_gone', 5000);
  await sleep(100); // the CSMS's 101 came 800 ms after the dial began: anything written then is in
  const rec = (await store.getCharger(IDENTITY))!;
  t.ok(rec.pending, 'the pending password was not committed');
  t.equal(rec.passwordSource, 'operator', 'the old password is still current');
});
