/**
 * The coordinator's sweep hands every session its record again every few minutes. A profile upgrade
 * acts on a sweep's record only when it brings a request (a new target, a new operator request);
 * otherwise its retries stay where they were (a boot, a reconnect, a change heard).
 */
import t from 'tap';
import { profileUpgrade } from '../../policies/interceptors/profile-upgrade';
import type { Interceptor, SessionApi } from '../../policies/interceptors/types';
import { silentLogger } from '../../proxy/log';
import { EmbeddedStore } from '../../proxy/store/embedded';
import type { ChargerRecord } from '../../proxy/store/types';
import { tempDir } from '../helpers/pki';

t.test('a sweep\'s re-read starts no upgrade attempt; a change heard does', async (t) => {
  const store = await EmbeddedStore.open({ dataDir: await tempDir(t, 'ocpp-pu-sweep-') });
  t.teardown(() => store.close());
  await store.putCharger({ identity: 'PU1', minProfile: 1, status: 'active' });
  const record = (await store.updateCharger('PU1', { targetProfile: 2, bootState: 'Accepted' } as never))!;
  t.equal(record.targetProfile, 2, 'target profile 2 set');
  const sent: string[] = [];
  const session: SessionApi = {
    identity: 'PU1', subprotocol: 'ocpp1.6', profile: 1, closed: false, log: silentLogger(),
    facts: { charger: record, passwordMatched: 'current' },
    injectCall: async (action) => { sent.push(action); return { kind: 'result', payload: { status: 'Rejected' } } as never; },
    close: () => undefined,
  };
  const upgrade = profileUpgrade({ store, publicUrl: null, retryMs: 60_000, callTimeoutMs: 1000 })(session) as Interceptor;
  t.ok(upgrade, 'the interceptor is made for an admitted session');
  const settle = () => new Promise((r) => setTimeout(r, 100));

  upgrade.onRecordChanged!(session, record as ChargerRecord, true);
  await settle();
  t.same(sent, [], 'the sweep\'s copy of an unchanged record: nothing sent');

  upgrade.onRecordChanged!(session, record as ChargerRecord, false);
  await settle();
  t.same(sent, ['ChangeConfiguration'], 'the same record heard as a change: the upgrade is tried');

  const requested = (await store.updateCharger('PU1', { profileUpgrade: { requestedAt: Date.now() } } as never))!;
  t.ok(requested.profileUpgrade?.requestedAt, 'an operator asks again');
  upgrade.onRecordChanged!(session, requested, true);
  await settle();
  t.same(sent, ['ChangeConfiguration', 'ChangeConfiguration'], 'a sweep that finds the request (its change message lost): acted on at once, back-off or not');
});
