/**
 * A store write that fails inside an interceptor's asynchronous work must cost that step only: the
 * proxy runs its sessions in one process, and a rejection left unhandled would end it (and every
 * session in it). Here the write that completes a profile upgrade fails as the charger arrives on
 * its new profile.
 */
import t from 'tap';
import { StoreError } from '../../proxy/store/errors';
import { waitFor } from '../helpers/net';
import { seedCharger, startProxyBeforeCsms } from '../helpers/proxy';
import { SimStation } from '../helpers/station';

t.test('the profile-upgrade completion write fails: logged, the session and the process carry on, the next session completes it', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => { process.off('unhandledRejection', onUnhandled); });

  const proxy = await startProxyBeforeCsms(t, { rotation: 'false' });
  const { store } = proxy.credentials;
  const identity = 'UPGRADE-STORE-DOWN';
  await seedCharger(proxy, { identity, password: 'profile-two-password', minProfile: 1 });
  await store.updateCharger(identity, { targetProfile: 2 }); // already reached: it connects on Profile 2
  const updateCharger = store.updateCharger.bind(store);
  let failed = 0;
  store.updateCharger = async (id, patch) => {
    if (patch.targetProfile === null && failed === 0) {
      failed++;
      throw new StoreError('store_unavailable', 'Redis went away');
    }
    return updateCharger(id, patch);
  };
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: 'profile-two-password', ca: proxy.caPem });
  t.teardown(() => s.stop());
  await s.connect();
  await waitFor(() => proxy.logs.some((l) => l.event === 'profile_upgrade_error'), 'the failed write logged');
  t.equal(failed, 1, 'the completion write was refused');
  t.match(proxy.logs.find((l) => l.event === 'profile_upgrade_error'), { step: 'complete', err: /Redis went away/ });
  t.same(unhandled, [], 'no unhandled rejection');
  t.ok(proxy.server.sessions.get(identity), 'the session is still up');
  t.equal((await store.getCharger(identity))?.targetProfile, 2, 'the upgrade is not recorded as complete');

  await s.stop();
  const again = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: 'profile-two-password', ca: proxy.caPem });
  t.teardown(() => again.stop());
  await again.connect();
  await waitFor(async () => (await store.getCharger(identity))?.targetProfile === undefined || null, 'completed by the next session');
  t.equal((await store.getCharger(identity))?.minProfile, 2, 'minimum profile raised then');
});
