/**
 * Rotation against writers that act between its steps: another session of the same charger writing
 * a pending password first, an operator replacing the password before the send, and an operator's
 * request arriving while a call is out. The first two are set off by wrapping the proxy's own store
 * (a real one), so the other writer lands exactly between the read and the write.
 */
import t, { type Test } from 'tap';
import { startLegacyCsms } from '../helpers/csms';
import { openRawCharger, tryBasicLogin } from '../helpers/login';
import { sleep, waitFor } from '../helpers/net';
import { seedCharger, startProxyBeforeCsms, startTestProxy, type TestProxy } from '../helpers/proxy';
import { SimStation, type PasswordBehaviour } from '../helpers/station';

const OLD = 'operator-set-password-1';
const OTHER = 'Othe4SessionsPassw0rdOthe4SessionsPassw0'; // 40 characters, as the proxy generates for 2.x
const SET_BY_OPERATOR = 'replaced-by-the-operator-9';

function station(t: Test, proxy: TestProxy, identity: string, behaviour: PasswordBehaviour): SimStation {
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp2.0.1', password: OLD, ca: proxy.caPem, behaviour });
  t.teardown(() => s.stop());
  return s;
}

const admin = (proxy: TestProxy, method: string, path: string, body?: unknown) => fetch(`${proxy.adminUrl}/api/v1/chargers/${path}`, {
  method, headers: { authorization: `Bearer ${proxy.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
  body: body ? JSON.stringify(body) : undefined,
});

t.test('two sessions writing ahead at once: the second leaves the value to the first, and resends it if that one never arrives', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { callTimeoutMs: '800' });
  const { store, sealer, hasher } = proxy.credentials;
  const identity = 'RACE-WRITE';
  await seedCharger(proxy, { identity, password: OLD });
  // The other session (the old link, about to close) writes and sends its value just before this one writes.
  const setPending = store.setPending.bind(store);
  store.setPending = async (id, pending) => {
    store.setPending = setPending;
    const at = Date.now();
    await setPending(id, { encrypted: sealer.seal(Buffer.from(OTHER), id), hash: hasher.hashGenerated(Buffer.from(OTHER)), createdAt: at, attempt: 1, sentAt: at });
    return setPending(id, pending);
  };
  const s = station(t, proxy, identity, 'apply');
  await s.connect();
  await waitFor(() => s.keyChanges.length === 1, 'a password change, once the other session\'s call would have timed out', 8000);
  t.ok(proxy.logs.some((l) => l.event === 'rotation_raced'), 'the lost race is logged');
  t.equal(s.keyChanges[0]!.password, OTHER, 'the other session\'s value, not a second one the store would not know');
  await waitFor(() => s.connections === 2, 'back with it');
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, OTHER, 'ocpp2.0.1'), 101, 'and admitted with it');
});

t.test('a password the operator sets before the send: the dropped value is not sent', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { callTimeoutMs: '800' });
  const { store } = proxy.credentials;
  const identity = 'RACE-OPERATOR';
  await seedCharger(proxy, { identity, password: OLD });
  // The operator replaces the password between the write-ahead and the send.
  const updatePending = store.updatePending.bind(store);
  store.updatePending = async (id, expected, patch) => {
    if (patch.sentAt !== undefined) {
      store.updatePending = updatePending;
      const res = await admin(proxy, 'PATCH', id, { password: SET_BY_OPERATOR });
      if (res.status !== 200) throw new Error(`PATCH answered ${res.status}`);
    }
    return updatePending(id, expected, patch);
  };
  const s = station(t, proxy, identity, 'apply');
  await s.connect();
  await waitFor(() => proxy.logs.some((l) => l.event === 'rotation_stale'), 'the rotation notices');
  await sleep(1500);
  t.equal(s.keyChanges.length, 0, 'nothing sent: the charger would have applied a password the store no longer knows');
  t.match(proxy.logs.find((l) => l.event === 'rotation_stale'), { step: 'send' });
  t.equal((await store.getCharger(identity))?.pending, undefined, 'no pending password');
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, SET_BY_OPERATOR, 'ocpp2.0.1'), 101, 'the operator\'s password admits');
});

t.test('a password the operator sets while the call waits behind a CSMS call: withdrawn unsent', async (t) => {
  const identity = 'RACE-QUEUED';
  let csmsCallId: string | null = null;
  // The CSMS calls the charger as it connects; the charger holds that call, so the rotation's waits for the line.
  const csms = await startLegacyCsms({ onClient: (client) => { client.call('GetConfiguration', {}).catch(() => undefined); } });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, callTimeoutMs: '20000' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity, password: OLD });
  const { ws, got } = await openRawCharger(t, proxy, identity, OLD);
  await waitFor(() => (csmsCallId = got.map((f) => JSON.parse(f) as unknown[]).find((f) => f[2] === 'GetConfiguration')?.[1] as string ?? null), 'the CSMS call arrived');
  ws.send(JSON.stringify([2, 'boot-1', 'BootNotification', { chargePointVendor: 'Raw', chargePointModel: 'R1' }]));
  await waitFor(async () => (await proxy.credentials.store.getCharger(identity))?.pending?.sentAt !== undefined, 'the rotation stamped its send and waits for the line');
  const res = await admin(proxy, 'PATCH', identity, { password: SET_BY_OPERATOR });
  t.equal(res.status, 200, 'the operator sets a password meanwhile');
  await waitFor(() => proxy.logs.some((l) => l.event === 'rotation_send_withdrawing'), 'the change reached the session');
  ws.send(JSON.stringify([3, csmsCallId, { configurationKey: [] }])); // the line is free
  await waitFor(() => proxy.logs.some((l) => l.event === 'rotation_withdrawn'), 'the waiting call withdrawn');
  await sleep(300);
  t.notOk(got.some((f) => f.includes('AuthorizationKey')), 'the dropped value never reached the charger');
  t.equal((await proxy.credentials.store.getCharger(identity))?.pending, undefined, 'no pending password');
  t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, SET_BY_OPERATOR, 'ocpp1.6'), 101, 'the operator\'s password admits');
});

t.test('an operator\'s request made while a call is out runs when that call ends, not after its back-off', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { callTimeoutMs: '5000', rotationRetryMs: '600000' });
  const identity = 'RACE-REQUEST';
  await seedCharger(proxy, { identity, password: OLD });
  const s = station(t, proxy, identity, 'manual');
  await s.connect();
  await waitFor(() => s.keyChanges.length === 1, 'the operator-set password is rotated');
  t.equal((await admin(proxy, 'POST', `${identity}/rotate`)).status, 202, 'the operator asks meanwhile');
  await sleep(300); // the request reaches the session through the change feed while its call is out
  s.keyChanges[0]!.answer('Rejected');
  await waitFor(() => s.keyChanges.length === 2, 'the request runs at once (the back-off is 10 minutes)', 5000);
  t.not(s.keyChanges[1]!.password, s.keyChanges[0]!.password, 'with a new value: the refused one was dropped');
  s.keyChanges[1]!.answer('Accepted');
  await waitFor(() => s.connections === 2, 'back with it');
  t.equal((await proxy.credentials.store.getCharger(identity))?.rotation?.requestedAt, undefined, 'the request is served');
});
