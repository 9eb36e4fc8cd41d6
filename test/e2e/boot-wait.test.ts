/**
 * The proxy's own calls (rotation, profile upgrade) wait for the charger's boot: a charger that
 * rebooted sends a BootNotification first and refuses other calls until it is answered (B03.FR.08),
 * and a 2.x charger the CSMS holds in Pending takes only variables and triggers (B02.FR.01; libocpp
 * answers anything else SecurityError). Real chargers (ocpp-rpc clients), a real proxy and CSMS.
 */
import t from 'tap';
import { RPCClient } from 'ocpp-rpc';
import { startLegacyCsms } from '../helpers/csms';
import { sleep, waitFor } from '../helpers/net';
import { startRedis, watchCommands } from '../helpers/redis';
import { seedCharger, startTestProxy, type TestProxy } from '../helpers/proxy';

interface Seen { action: string; at: number; params: any }

/** A 2.0.1 charger that records every call it gets and answers the proxy's calls plainly. */
function charger(proxy: TestProxy, identity: string, password: string, secure: boolean) {
  const seen: Seen[] = [];
  const client: any = new RPCClient({
    endpoint: secure ? proxy.tlsUrl : proxy.plainUrl!, identity, protocols: ['ocpp2.0.1'], password,
    reconnect: false, pingIntervalMs: 0, callTimeoutMs: 10000, strictMode: false,
    wsOpts: { perMessageDeflate: false, ...(secure ? { ca: proxy.caPem, servername: 'localhost' } : {}) },
  } as any);
  client.handle(({ method, params }: { method: string; params: any }) => {
    seen.push({ action: method, at: Date.now(), params });
    if (method === 'GetVariables') return { getVariableResult: [{ attributeStatus: 'Accepted', attributeValue: '1', component: { name: 'OCPPCommCtrlr' }, variable: { name: 'NetworkConfigurationPriority' } }] };
    // A new password is refused: this charger keeps its session (and the test its timeline).
    if (method === 'SetVariables') return { setVariableResult: params.setVariableData.map((d: any) => ({ attributeStatus: d.variable.name === 'BasicAuthPassword' ? 'Rejected' : 'Accepted', component: d.component, variable: d.variable })) };
    return { status: 'Accepted' };
  });
  const boot = () => client.call('BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: 'Sim', model: 'S1', serialNumber: `SN-${identity}` } });
  return { client, seen, boot };
}

t.test('a charger that rebooted is sent nothing of the proxy\'s before its BootNotification is answered', async (t) => {
  // The CSMS takes its time over the BootNotification, as a busy one does.
  let bootAnsweredAt = 0;
  const csms = await startLegacyCsms({
    onClient: (c: any) => c.handle('BootNotification', async () => {
      await sleep(1500);
      bootAnsweredAt = Date.now();
      return { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 };
    }),
  });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, bootWaitMs: 5000, plainListen: '127.0.0.1:0', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;
  // Booted on an earlier connection; a password the operator set (rotated at once); an upgrade asked for.
  await seedCharger(proxy, { identity: 'BW-REBOOT', password: 'boot-wait-password-1', minProfile: 1, source: 'operator' });
  await store.updateCharger('BW-REBOOT', { bootState: 'Accepted', targetProfile: 2 });

  const c = charger(proxy, 'BW-REBOOT', 'boot-wait-password-1', false);
  t.teardown(() => c.client.close({ force: true }));
  await c.client.connect();
  await c.boot();
  await waitFor(() => c.seen.some((x) => x.action === 'GetVariables'), 'the upgrade went ahead after the answer', 10000);
  await waitFor(() => c.seen.some((x) => x.action === 'SetVariables' && x.params.setVariableData[0].variable.name === 'BasicAuthPassword'), 'the rotation went ahead after the answer', 10000);
  const early = c.seen.filter((x) => x.at < bootAnsweredAt).map((x) => x.action);
  t.same(early, [], 'no call before the BootNotification was answered');
});

t.test('a charger that reconnects without booting: its first other message ends the wait; a silent one waits bootWaitMs', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, bootWaitMs: 6000, rotation: 'true' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;
  for (const identity of ['BW-TALKS', 'BW-SILENT']) {
    await seedCharger(proxy, { identity, password: 'boot-wait-password-2', minProfile: 2, source: 'operator' });
    await store.updateCharger(identity, { bootState: 'Accepted' });
  }
  const talks = charger(proxy, 'BW-TALKS', 'boot-wait-password-2', true);
  const silent = charger(proxy, 'BW-SILENT', 'boot-wait-password-2', true);
  t.teardown(() => talks.client.close({ force: true }));
  t.teardown(() => silent.client.close({ force: true }));
  const openedAt = Date.now();
  await Promise.all([talks.client.connect(), silent.client.connect()]);
  await sleep(300);
  t.same([...talks.seen, ...silent.seen].map((x) => x.action), [], 'nothing sent while a BootNotification may still come');
  const heartbeatAt = Date.now();
  await talks.client.call('Heartbeat', {});
  const first = await waitFor(() => talks.seen[0], 'the rotation sent to the charger that spoke', 10000);
  t.equal(first.action, 'SetVariables');
  t.ok(first.at >= heartbeatAt, 'after its Heartbeat');
  const late = await waitFor(() => silent.seen[0], 'the rotation sent to the silent charger', 15000);
  t.ok(late.at - openedAt >= 5900, `the silent charger after bootWaitMs (${late.at - openedAt} ms)`);
  t.ok(first.at < late.at - 2000, 'the one that spoke well before it: its Heartbeat ended the wait');
});

t.test('2.x in Pending: the password is rotated (SetVariables is allowed), the profile switch waits for Accepted', async (t) => {
  let boots = 0;
  const csms = await startLegacyCsms({
    onClient: (c: any) => c.handle('BootNotification', () => ({ status: ++boots === 1 ? 'Pending' : 'Accepted', currentTime: new Date().toISOString(), interval: 300 })),
  });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, plainListen: '127.0.0.1:0', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'BW-PENDING', password: 'boot-wait-password-3', minProfile: 1, source: 'operator' });
  await proxy.credentials.store.updateCharger('BW-PENDING', { targetProfile: 2 });

  const c = charger(proxy, 'BW-PENDING', 'boot-wait-password-3', false);
  t.teardown(() => c.client.close({ force: true }));
  await c.client.connect();
  t.equal((await c.boot()).status, 'Pending');
  await waitFor(() => c.seen.some((x) => x.action === 'SetVariables'), 'the password rotation sent while Pending');
  await sleep(500);
  t.notOk(c.seen.some((x) => ['GetVariables', 'SetNetworkProfile', 'Reset'].includes(x.action)), 'no profile switch while Pending');

  t.equal((await c.boot()).status, 'Accepted', 'the CSMS accepts it');
  await waitFor(() => c.seen.some((x) => x.action === 'Reset'), 'the profile switch sent once Accepted', 10000);
  t.same(c.seen.filter((x) => x.action !== 'SetVariables' || x.params.setVariableData[0].variable.name !== 'BasicAuthPassword').map((x) => x.action),
    ['GetVariables', 'SetNetworkProfile', 'SetVariables', 'Reset'], 'the switch in order');
});

t.test('a booted charger that reconnects with nothing due costs no store read after its admission', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, redis: redis.url, bootWaitMs: 300, rotation: 'true' });
  t.teardown(() => proxy.stop());
  // A generated password (not due for rotation), no upgrade asked for, booted before.
  await seedCharger(proxy, { identity: 'BW-QUIET', password: 'boot-wait-password-4', minProfile: 2, source: 'generated' });
  await proxy.credentials.store.updateCharger('BW-QUIET', { bootState: 'Accepted' });
  await sleep(300); // the seeding's change messages arrive before the admission (heard after it, they would be rechecked)
  const watch = await watchCommands(redis.url);
  t.teardown(() => watch.stop());
  const c = charger(proxy, 'BW-QUIET', 'boot-wait-password-4', true);
  t.teardown(() => c.client.close({ force: true }));
  await c.client.connect();
  await c.client.call('Heartbeat', {});
  await sleep(1000); // past bootWaitMs: rotation and upgrade have decided
  const mine = watch.seen.filter((x) => x.source !== 'lua' && x.args.some((a) => a.includes('BW-QUIET')));
  const claim = mine.findIndex((x) => x.command === 'evalsha' || x.command === 'eval');
  t.ok(claim >= 0, 'the admission claimed the session');
  t.same(mine.slice(claim + 1).filter((x) => x.command === 'get' || x.command === 'mget').map((x) => x.command), [], 'no read of the charger after the claim');
  t.same(c.seen, [], 'and nothing sent to it');
});

t.test('a charger that starts booting during an upgrade: the next call waits for the boot\'s answer, and no failure is counted', async (t) => {
  let bootAnsweredAt = 0;
  let boots = 0;
  const csms = await startLegacyCsms({
    onClient: (c: any) => c.handle('BootNotification', async () => {
      if (++boots === 2) await sleep(800); // the second boot, mid-upgrade, is answered slowly
      bootAnsweredAt = Date.now();
      return { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 };
    }),
  });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false', plainListen: '127.0.0.1:0', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;
  await seedCharger(proxy, { identity: 'BW-MIDBOOT', password: 'boot-wait-password-5', minProfile: 1 });
  await store.updateCharger('BW-MIDBOOT', { targetProfile: 2 });
  const seen: Seen[] = [];
  const c: any = new RPCClient({ endpoint: proxy.plainUrl!, identity: 'BW-MIDBOOT', protocols: ['ocpp2.0.1'], password: 'boot-wait-password-5', reconnect: false, pingIntervalMs: 0, strictMode: false, callTimeoutMs: 10000, wsOpts: { perMessageDeflate: false } } as any);
  t.teardown(() => c.close({ force: true }));
  const bootCall = () => c.call('BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: 'Sim', model: 'S1', serialNumber: 'SN-MIDBOOT' } });
  let rebooting: Promise<unknown> | null = null;
  c.handle(({ method, params }: { method: string; params: any }) => {
    seen.push({ action: method, at: Date.now(), params });
    if (method === 'GetVariables') {
      // The first time, it reboots while answering: its BootNotification goes out before the answer.
      rebooting ??= bootCall();
      return { getVariableResult: [{ attributeStatus: 'Accepted', attributeValue: '1', component: { name: 'OCPPCommCtrlr' }, variable: { name: 'NetworkConfigurationPriority' } }] };
    }
    if (method === 'SetVariables') return { setVariableResult: params.setVariableData.map((d: any) => ({ attributeStatus: 'Accepted', component: d.component, variable: d.variable })) };
    return { status: 'Accepted' };
  });
  await c.connect();
  await bootCall();
  await waitFor(() => rebooting, 'the reboot began mid-upgrade');
  await rebooting;
  await waitFor(() => seen.some((x) => x.action === 'Reset'), 'the upgrade completed after the boot\'s answer', 10000);
  const profile = seen.find((x) => x.action === 'SetNetworkProfile')!;
  t.ok(profile.at >= bootAnsweredAt, 'no SetNetworkProfile while the BootNotification was unanswered');
  t.ok(proxy.logs.some((l) => l.event === 'profile_upgrade_paused'), 'the pause logged');
  // Written once the charger's answer to the Reset is back: the charger has seen the Reset before that.
  const rec = await waitFor(async () => { const r = await store.getCharger('BW-MIDBOOT'); return r?.profileUpgrade?.lastResult ? r : null; }, 'the switch\'s outcome recorded');
  t.equal(rec!.profileUpgrade?.lastResult, 'accepted');
  t.equal(rec!.profileUpgrade?.failures ?? 0, 0, 'the pause was not counted as a failure');
});

t.test('a rotation call waiting for the line when the charger starts booting goes out only after the boot\'s answer, not counted as a failure', async (t) => {
  let bootAnsweredAt = 0;
  const csms = await startLegacyCsms({
    onClient: (c: any) => {
      c.handle('BootNotification', async () => {
        await sleep(800);
        bootAnsweredAt = Date.now();
        return { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 };
      });
      // A CSMS call holds the line to the charger: the proxy's own call waits behind it.
      void c.call('GetConfiguration', {}).catch(() => undefined);
    },
  });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'true', plainListen: '127.0.0.1:0' });
  t.teardown(() => proxy.stop());
  const { store } = proxy.credentials;
  await seedCharger(proxy, { identity: 'BW-ROT-BOOT', password: 'boot-wait-password-6', minProfile: 1, source: 'operator' });
  await store.updateCharger('BW-ROT-BOOT', { bootState: 'Accepted' });
  const seen: Seen[] = [];
  let answerCsms: (() => void) | null = null;
  const c: any = new RPCClient({ endpoint: proxy.plainUrl!, identity: 'BW-ROT-BOOT', protocols: ['ocpp1.6'], password: 'boot-wait-password-6', reconnect: false, pingIntervalMs: 0, strictMode: false, callTimeoutMs: 10000, wsOpts: { perMessageDeflate: false } } as any);
  t.teardown(() => c.close({ force: true }));
  c.handle('GetConfiguration', () => new Promise((r) => { answerCsms = () => r({ configurationKey: [] }); }));
  c.handle(({ method, params }: { method: string; params: any }) => { seen.push({ action: method, at: Date.now(), params }); return { status: 'Rejected' }; });
  await c.connect();
  await waitFor(() => answerCsms, 'the CSMS call holds the line');
  await c.call('Heartbeat', {}); // running: the rotation decides, and its call waits behind the CSMS's
  await sleep(300);
  const booting = c.call('BootNotification', { chargePointVendor: 'Sim', chargePointModel: 'S1' });
  await sleep(100);
  answerCsms!(); // the line is free while the BootNotification is unanswered
  await booting;
  const change = await waitFor(() => seen.find((x) => x.action === 'ChangeConfiguration'), 'the rotation after the boot', 10000);
  t.ok(change!.at >= bootAnsweredAt, 'not while the BootNotification was unanswered');
  t.ok(proxy.logs.some((l) => l.event === 'rotation_paused'), 'the pause logged');
  t.notOk(proxy.logs.some((l) => l.event === 'rotation_unanswered' && l.identity === 'BW-ROT-BOOT'), 'not taken for an unanswered call');
});
