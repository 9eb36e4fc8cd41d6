import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { RPCClient } from 'ocpp-rpc';
import { basicHeader, tryBasicLogin } from '../helpers/login';
import { startLegacyCsms } from '../helpers/csms';
import { freePort, sleep, waitFor } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { seedCharger, startProxyBeforeCsms, startTestProxy, TEST_PKI_DIR, type TestProxy } from '../helpers/proxy';
import { SimStation } from '../helpers/station';


/** Asks the admin API to move `identity` to `profile`: the HTTP status. */
async function requestUpgrade(proxy: TestProxy, identity: string, profile: number, extra: Record<string, unknown> = {}): Promise<number> {
  const res = await fetch(`${proxy.adminUrl}/api/v1/chargers/${identity}/upgrade`, {
    method: 'POST', headers: { authorization: `Bearer ${proxy.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ profile, ...extra }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** A proxy with a plain port, and a Profile 1 charger there with an upgrade to `target` requested. */
async function profileOneCharger(t: Test, identity: string, target: 2 | 3, flags: Record<string, string> = {}) {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false', plainListen: '127.0.0.1:0', ...flags });
  await seedCharger(proxy, { identity, password: 'profile-one-password', minProfile: 1 });
  await proxy.credentials.store.updateCharger(identity, { targetProfile: target });
  return { proxy, store: proxy.credentials.store };
}

t.test('Profile 2 → 3: certificate signed by the proxy, profile raised, Profile 2 refused afterwards', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  // 2.x SetNetworkProfile must point chargers at the proxy itself: fix its port and public URL.
  const port = await freePort();
  const proxy = await startTestProxy({ backend: csms.url, organization: 'Test CPO', rotation: 'false', listen: `127.0.0.1:${port}`, publicUrl: `wss://127.0.0.1:${port}/ocpp` });
  t.teardown(() => proxy.stop());

  for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const) {
    t.test(protocol, async (t) => {
      const identity = `UP-${protocol.replace(/\W/g, '')}`;
      const serial = `SER-${identity}`;
      await seedCharger(proxy, { identity, password: 'profile-two-password', minProfile: 2, serial });
      const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol, password: 'profile-two-password', ca: proxy.caPem, serial, organization: 'Test CPO' });
      t.teardown(() => s.stop());
      await s.connect();
      t.equal(proxy.server.sessions.get(identity)!.profile, 2, 'connected on Profile 2');

      t.equal(await requestUpgrade(proxy, identity, 3), 202, 'upgrade requested');

      await waitFor(() => s.certPem, 'charger received its certificate (CertificateSigned)', 15000);
      await waitFor(() => s.profile === 3 && s.connections >= 2, 'charger reconnected with its client certificate', 15000).catch(async (e) => {
        console.error('DEBUG', JSON.stringify(s.otherCalls.map((c) => c.action)), JSON.stringify((await proxy.credentials.store.readAudit(40)).filter((a) => a.identity === identity).reverse().map((a) => [a.type, a.detail])), s.refusals, JSON.stringify(proxy.logs.filter((l) => l.identity === identity).slice(-12).map((l) => [l.event, l.reason, l.status])));
        throw e;
      });
      await waitFor(() => proxy.server.sessions.get(identity)?.profile === 3, 'admitted on Profile 3', 10000);
      const rec = await waitFor(async () => { const r = await proxy.credentials.store.getCharger(identity); return r?.minProfile === 3 ? r : null; }, 'minimum profile raised', 10000);
      t.equal(rec!.minProfile, 3, 'minimum profile raised to 3');
      t.equal(rec!.targetProfile, undefined, 'target cleared');
      t.ok(rec!.certificate?.boundSerialHex, 'new certificate bound to the charger');
      t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, 'profile-two-password', protocol), 401, 'a Profile 2 attempt afterwards is refused');
      if (protocol === 'ocpp1.6') {
        t.ok(s.otherCalls.some((c) => c.action === 'ChangeConfiguration' && c.params.key === 'SecurityProfile' && c.params.value === '3'), 'ChangeConfiguration SecurityProfile 3');
      } else {
        const np = s.otherCalls.find((c) => c.action === 'SetNetworkProfile');
        t.equal(np?.params.connectionData.securityProfile, 3, 'SetNetworkProfile with securityProfile 3');
        t.equal(np?.params.connectionData.ocppCsmsUrl, proxy.tlsUrl, 'pointing at the proxy');
        t.ok(s.otherCalls.some((c) => c.action === 'SetVariables' && c.params.setVariableData[0].variable.name === 'NetworkConfigurationPriority'), 'priority set');
        t.ok(s.otherCalls.some((c) => c.action === 'Reset' && c.params.type === 'OnIdle'), 'Reset OnIdle');
      }
      const leaked = csms.frames.filter((f) => f.identity === identity && /SignCertificate|CertificateSigned|SecurityProfile|SetNetworkProfile|NetworkConfigurationPriority|TriggerMessage|"Reset"/.test(f.raw));
      t.same(leaked, [], 'the CSMS saw none of these frames');
    });
  }
});

t.test('the minimum profile is raised to the target, and only on credentials that were checked', async (t) => {
  const pki = await makeTestPki(TEST_PKI_DIR);
  const proxy = await startProxyBeforeCsms(t, { organization: 'Test CPO', rotation: 'false' });
  const { store } = proxy.credentials;
  const p3 = (identity: string, cert: { certPem: string; keyPem: string }) => new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', cert: cert.certPem, key: cert.keyPem } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { setTimeout(() => ws.close(), 300); resolve(101); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });

  t.test('a charger sent to Profile 2 that presents a client certificate anyway: minimum 2, not 3', async (t) => {
    await seedCharger(proxy, { identity: 'UP-TO-2', password: 'profile-one-password', minProfile: 1, serial: 'SN-UP-TO-2' });
    await store.updateCharger('UP-TO-2', { targetProfile: 2 });
    t.equal(await p3('UP-TO-2', await pki.charger('SN-UP-TO-2', { organization: 'Test CPO' })), 101, 'admitted on Profile 3');
    const rec = await waitFor(async () => { const r = await store.getCharger('UP-TO-2'); return r?.targetProfile === undefined ? r : null; }, 'upgrade completed');
    t.equal(rec!.minProfile, 2, 'raised to the target: it is configured for Profile 2 and may stop sending the certificate');
  });

  t.test('target 3, a charger on Profile 2 settings that sends its certificate beside its password: not raised, the upgrade goes on', async (t) => {
    await seedCharger(proxy, { identity: 'UP-BOTH', password: 'profile-two-password', minProfile: 2, serial: 'SN-UP-BOTH' });
    await store.updateCharger('UP-BOTH', { targetProfile: 3, bootState: 'Accepted' });
    const cert = await pki.charger('SN-UP-BOTH', { organization: 'Test CPO' });
    const got: string[] = [];
    const ws = new WebSocket(`${proxy.tlsUrl}/UP-BOTH`, ['ocpp1.6'], {
      ca: proxy.caPem, servername: 'localhost', cert: cert.certPem, key: cert.keyPem, headers: { authorization: basicHeader('UP-BOTH', 'profile-two-password') },
    } as WebSocket.ClientOptions);
    t.teardown(() => ws.terminate());
    ws.on('message', (d) => got.push(d.toString()));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    await waitFor(() => got.some((f) => f.includes('SignChargePointCertificate')), 'the upgrade goes on: its own certificate is asked for');
    const rec = await store.getCharger('UP-BOTH');
    t.equal(rec!.minProfile, 2, 'the minimum stays 2: raised on a certificate sent unasked, it would be refused the day that stops');
    t.equal(rec!.targetProfile, 3, 'the target stays');
    t.notOk(proxy.logs.some((l) => l.event === 'profile_upgrade_completed' && l.identity === 'UP-BOTH'), 'not completed');
  });

  t.test('admitted in report-only mode with a certificate that fails the checks: the minimum stays', async (t) => {
    await seedCharger(proxy, { identity: 'UP-REPORT', password: 'profile-two-password', minProfile: 2, serial: 'SN-UP-REPORT' });
    await store.updateCharger('UP-REPORT', { targetProfile: 3, reportOnly: true });
    // The certificate is another charger's (CN mismatch): report-only admits it, and says so.
    t.equal(await p3('UP-REPORT', await pki.charger('SN-SOMEONE-ELSE', { organization: 'Test CPO' })), 101, 'admitted (report-only)');
    await waitFor(() => proxy.logs.some((l) => l.event === 'profile_upgrade_unproven'), 'the unproven profile logged');
    const rec = await store.getCharger('UP-REPORT');
    t.equal(rec!.minProfile, 2, 'not raised: enforcing the checks later would lock it out');
    t.equal(rec!.targetProfile, 3, 'the upgrade stays requested');
  });
});

t.test('Profile 2 → 3 with a bound certificate since revoked: a new certificate first, then the switch', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { organization: 'Test CPO', rotation: 'false' });
  const { store } = proxy.credentials;
  const identity = 'UP-REVOKED';
  const serial = 'SN-UP-REVOKED';
  await seedCharger(proxy, { identity, password: 'profile-two-password', minProfile: 2, serial });
  await store.updateCharger(identity, { certificate: { serialNumber: serial, boundSerialHex: 'abc123', notAfter: Date.now() + 300 * 24 * 3600_000 } });
  await store.revokeSerial('abc123');
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp1.6', password: 'profile-two-password', ca: proxy.caPem, serial, organization: 'Test CPO' });
  t.teardown(() => s.stop());
  await s.connect();
  t.equal(await requestUpgrade(proxy, identity, 3), 202, 'upgrade requested');
  await waitFor(() => s.profile === 3 && s.connections >= 2, 'on Profile 3 with a new certificate', 15000);
  const actions = s.otherCalls.map((c) => c.action);
  t.ok(actions.indexOf('ExtendedTriggerMessage') >= 0 && actions.indexOf('ExtendedTriggerMessage') < actions.indexOf('ChangeConfiguration'), `asked for a CSR before the switch (${actions.join(', ')})`);
  const rec = await waitFor(async () => { const r = await store.getCharger(identity); return r?.minProfile === 3 ? r : null; }, 'completed', 10000);
  t.not(rec!.certificate?.boundSerialHex, 'abc123', 'bound to the new certificate');
});

t.test('1.6 Profile 1 → 2: the charger comes back on the same port with TLS (as libocpp does), and the minimum is raised', async (t) => {
  const identity = 'UP-SAME-PORT';
  const { proxy, store } = await profileOneCharger(t, identity, 2);
  const s = new SimStation({ identity, endpoint: proxy.plainUrl!, protocol: 'ocpp1.6', password: 'profile-one-password', ca: proxy.caPem, switchesSchemeForProfile2: true });
  t.teardown(() => s.stop());
  await s.connect();
  await waitFor(() => s.endpoint.startsWith('wss://') && s.connections === 2, 'back over TLS', 8000);
  t.equal(new URL(s.endpoint).port, new URL(proxy.plainUrl!).port, 'on the plain port it was told nothing about');
  await waitFor(async () => (await store.getCharger(identity))?.minProfile === 2, 'minimum raised to 2');
  t.equal((await store.getCharger(identity))?.targetProfile, undefined, 'target cleared');
  t.ok(proxy.logs.some((l) => l.event === 'session_started' && l.identity === identity && l.profile === 2), 'its session there is a Profile 2 one');
  t.equal(await tryBasicLogin(proxy.plainUrl!, proxy.caPem, identity, 'profile-one-password', 'ocpp1.6'), 401, 'Profile 1 refused from then on');
});

t.test('1.6: a switch answered RebootRequired waits for the charger\'s reboot; only a connection after it that is still below counts', async (t) => {
  const identity = 'UP-16-REBOOT';
  const { proxy, store } = await profileOneCharger(t, identity, 2);
  const seen: string[] = [];
  const connect = async (boot: boolean) => {
    const c: any = new RPCClient({ endpoint: proxy.plainUrl!, identity, protocols: ['ocpp1.6'], password: 'profile-one-password', reconnect: false, pingIntervalMs: 0, strictMode: false, wsOpts: { perMessageDeflate: false } } as any);
    t.teardown(() => c.close({ force: true }));
    c.handle(({ method, params }: any) => { seen.push(`${method} ${params.key ?? ''}`); return { status: 'RebootRequired' }; });
    await c.connect();
    if (boot) await c.call('BootNotification', { chargePointVendor: 'Sim', chargePointModel: 'S1' });
    return c;
  };
  const first = await connect(true);
  const state = await waitFor(async () => { const r = await store.getCharger(identity); return r?.profileUpgrade?.lastResult === 'accepted' ? r.profileUpgrade : null; }, 'switch answered');
  t.equal(state!.awaitsReboot, true, 'recorded as waiting for a reboot');
  const view = await (await fetch(`${proxy.adminUrl}/api/v1/chargers/${identity}`, { headers: { authorization: `Bearer ${proxy.adminToken}` } })).json() as any;
  t.equal(view.profileUpgrade.awaitsReboot, true, 'and shown so');
  // The link drops and comes back without a reboot: not a failure, and the switch is not sent again.
  await first.close({ force: true });
  const again = await connect(false);
  await sleep(800);
  t.equal((await store.getCharger(identity))?.profileUpgrade?.lastResult, 'accepted', 'not counted: the charger has not rebooted');
  t.equal(seen.filter((x) => x === 'ChangeConfiguration SecurityProfile').length, 1, 'sent once');
  // It reboots and is still on Profile 1: that is the switch failing.
  await again.close({ force: true });
  await connect(true);
  await waitFor(async () => (await store.getCharger(identity))?.profileUpgrade?.lastResult === 'not_reached' || null, 'counted after the reboot');
});

t.test('a switch the charger accepts but does not reach: counted, backed off, given up after five; a new request starts over', async (t) => {
  const identity = 'UP-NEVER-THERE';
  const { proxy, store } = await profileOneCharger(t, identity, 2);
  // A 1.6 station that answers Accepted to SecurityProfile 2 but keeps coming back on the plain port.
  const switches = () => proxy.logs.filter((l) => l.event === 'profile_upgrade_accepted').length;
  // Each logged once its store write is done: a switch, one counted as not reached, or giving up.
  const acted = () => proxy.logs.filter((l) => ['profile_upgrade_accepted', 'profile_upgrade_not_reached', 'profile_upgrade_gave_up'].includes(String(l.event))).length;
  const backOffs: number[] = [];
  /** One connection; `acts`: it stays until the proxy has acted on it (else a fixed 300 ms, for "nothing happens"). */
  const session = async (acts = true) => {
    // The back-off (retryMs doubling) passes between connections: its end is moved to now.
    const state = (await store.getCharger(identity))?.profileUpgrade;
    if (state?.nextAttemptAt) {
      backOffs.push(state.nextAttemptAt - Date.now());
      const { nextAttemptAt: _passed, ...rest } = state;
      await store.updateCharger(identity, { profileUpgrade: rest });
    }
    const s = new SimStation({ identity, endpoint: proxy.plainUrl!, protocol: 'ocpp1.6', password: 'profile-one-password' });
    const before = acted();
    await s.connect();
    if (acts) await waitFor(() => acted() > before, 'the proxy acted on this connection', 10_000);
    else await sleep(300);
    await s.stop();
    return s;
  };
  const first = await session();
  t.equal(switches(), 1, 'the switch is sent');
  t.ok(first.otherCalls.some((c) => c.action === 'ChangeConfiguration' && c.params.key === 'SecurityProfile' && c.params.value === '2'));
  for (let i = 0; i < 12 && !proxy.logs.some((l) => l.event === 'profile_upgrade_gave_up'); i++) await session();
  t.equal(proxy.logs.filter((l) => l.event === 'profile_upgrade_not_reached').length, 4, 'four connections below the target after an accepted switch counted');
  t.ok(proxy.logs.some((l) => l.event === 'profile_upgrade_gave_up'), 'the fifth gives up');
  t.equal(switches(), 5, 'five switches in all, not one per reconnect');
  t.match((await store.getCharger(identity))?.profileUpgrade, { lastResult: 'gave_up', failures: 5 });
  t.ok(backOffs.length === 4 && backOffs.every((b, i) => i === 0 || b > backOffs[i - 1]!), `backed off longer each time (${backOffs.map((b) => Math.round(b / 1000)).join(', ')} s)`);
  await session(false);
  await session(false);
  t.equal(switches(), 5, 'none after giving up');

  t.equal(await requestUpgrade(proxy, identity, 2), 202);
  await session();
  t.equal(switches(), 6, 'an operator\'s new request starts over');
});

t.test('2.x to Profile 3 with a BootNotification serial that is not the certificate\'s CN: not switched (each boot would be refused there)', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { organization: 'Test CPO', rotation: 'false', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  const { store } = proxy.credentials;
  const identity = 'UP-SERIAL';
  // The record's serial (the CN its certificate gets) is not what the station says in its BootNotification (SN-UP-SERIAL).
  await seedCharger(proxy, { identity, password: 'profile-two-password', minProfile: 2, serial: 'RECORDED-SERIAL' });
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp2.0.1', password: 'profile-two-password', ca: proxy.caPem, serial: 'RECORDED-SERIAL', bootSerial: 'SN-UP-SERIAL', organization: 'Test CPO' });
  t.teardown(() => s.stop());
  await s.connect();
  t.equal(await requestUpgrade(proxy, identity, 3), 202);
  const rec = await waitFor(async () => { const r = await store.getCharger(identity); return r?.profileUpgrade?.lastResult === 'serial_mismatch' ? r : null; }, 'refused', 10000);
  t.ok(rec!.certificate?.boundSerialHex, 'the certificate was signed and bound first');
  t.notOk(s.otherCalls.some((c) => c.action === 'SetNetworkProfile' || c.action === 'Reset'), 'no switch sent');
  t.match(proxy.logs.find((l) => l.event === 'profile_upgrade_serial_mismatch'), { serialNumber: 'SN-UP-SERIAL', commonName: 'RECORDED-SERIAL' });
  t.equal(rec!.minProfile, 2, 'still on Profile 2');

  // As the README advises: the operator sets the serial the charger reports, and asks again. The
  // bound certificate carries the old CN now: a new one first, or the switch would lock it out.
  const patched = await fetch(`${proxy.adminUrl}/api/v1/chargers/${identity}`, {
    method: 'PATCH', headers: { authorization: `Bearer ${proxy.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ serial: 'SN-UP-SERIAL' }),
  });
  t.equal(patched.status, 200);
  (s as any).o.serial = 'SN-UP-SERIAL'; // its CSRs carry its serial number
  t.equal(await requestUpgrade(proxy, identity, 3), 202);
  await waitFor(() => s.profile === 3 && s.connections >= 2, 'on Profile 3', 15000);
  const actions = s.otherCalls.map((c) => c.action);
  t.equal(actions.filter((a) => a === 'TriggerMessage').length, 2, `a second CSR asked for before the switch (${actions.join(', ')})`);
  const done = await waitFor(async () => { const r = await store.getCharger(identity); return r?.minProfile === 3 ? r : null; }, 'completed', 10000);
  t.equal(done!.certificate?.commonName, 'SN-UP-SERIAL', 'bound to a certificate for its serial number');
});

t.test('Profile 1 straight to 3: said once (a certificate is signed over TLS only), not asked for a CSR that would be refused', async (t) => {
  const identity = 'UP-ONE-TO-THREE';
  const { proxy, store } = await profileOneCharger(t, identity, 3);
  const s = new SimStation({ identity, endpoint: proxy.plainUrl!, protocol: 'ocpp1.6', password: 'profile-one-password' });
  t.teardown(() => s.stop());
  await s.connect();
  await waitFor(async () => (await store.getCharger(identity))?.profileUpgrade?.lastResult === 'needs_profile_2' || null, 'recorded');
  await waitFor(() => proxy.logs.some((l) => l.event === 'profile_upgrade_needs_profile_2'), 'logged (after the write is durable)');
  await sleep(300);
  t.same(s.otherCalls.map((c) => c.action), [], 'no CSR asked for, nothing switched');
  t.equal(proxy.logs.filter((l) => l.event === 'profile_upgrade_needs_profile_2').length, 1, 'logged once');
});

t.test('2.x: a connection below the target after an accepted switch counts only when the charger rebooted (it switches through Reset)', async (t) => {
  const identity = 'UP-2X-DROP';
  const { proxy, store } = await profileOneCharger(t, identity, 2, { publicUrl: 'wss://127.0.0.1:1/ocpp' });
  // This station accepts the new network profile and the Reset, but does not switch (as if the new profile failed).
  const s = new SimStation({ identity, endpoint: proxy.plainUrl!, protocol: 'ocpp2.0.1', password: 'profile-one-password' });
  t.teardown(() => s.stop());
  await s.connect();
  await waitFor(async () => (await store.getCharger(identity))?.profileUpgrade?.lastResult === 'accepted' || null, 'switch accepted');
  // The link drops and comes back before any reboot: no BootNotification on the new connection.
  await s.client.close({ force: true });
  await s.connect();
  await sleep(500);
  t.equal((await store.getCharger(identity))?.profileUpgrade?.lastResult, 'accepted', 'not counted: the charger has not rebooted yet');
  // It reboots and comes back below the target: that is the switch failing.
  await s.stop();
  const rebooted = new SimStation({ identity, endpoint: proxy.plainUrl!, protocol: 'ocpp2.0.1', password: 'profile-one-password' });
  t.teardown(() => rebooted.stop());
  await rebooted.connect();
  await waitFor(async () => (await store.getCharger(identity))?.profileUpgrade?.lastResult === 'not_reached' || null, 'counted after the reboot');
  t.equal(s.otherCalls.filter((c) => c.action === 'SetNetworkProfile').length, 1, 'one switch sent meanwhile');
});

t.test('2.x: the new connection profile names the interface the operator asked for; unasked, Any on 2.1 and Wired0 on 2.0.1', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false', plainListen: '127.0.0.1:0', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  const { store } = proxy.credentials;
  const station = async (identity: string, protocol: 'ocpp2.0.1' | 'ocpp2.1', request: Record<string, unknown> | null) => {
    await seedCharger(proxy, { identity, password: 'profile-one-password', minProfile: 1 });
    if (request) t.equal(await requestUpgrade(proxy, identity, 2, request), 202, `${identity}: upgrade requested with ${JSON.stringify(request)}`);
    else await store.updateCharger(identity, { targetProfile: 2 });
    const s = new SimStation({ identity, endpoint: proxy.plainUrl!, protocol, password: 'profile-one-password' });
    t.teardown(() => s.stop());
    await s.connect();
    return s;
  };
  const sentInterface = async (s: SimStation) => (await waitFor(() => s.otherCalls.find((c) => c.action === 'SetNetworkProfile'), 'switch sent'))!.params.connectionData.ocppInterface;

  t.equal(await sentInterface(await station('UP-IF-201', 'ocpp2.0.1', null)), 'Wired0', '2.0.1 unasked: Wired0 (2.0.1 has no Any)');
  t.equal(await sentInterface(await station('UP-IF-21', 'ocpp2.1', null)), 'Any', '2.1 unasked: Any');

  const lte = await station('UP-IF-LTE', 'ocpp2.0.1', { ocppInterface: 'Wireless0' });
  t.equal(await sentInterface(lte), 'Wireless0', 'the interface asked for');
  const view = await (await fetch(`${proxy.adminUrl}/api/v1/chargers/UP-IF-LTE`, { headers: { authorization: `Bearer ${proxy.adminToken}` } })).json() as any;
  t.equal(view.profileUpgrade?.ocppInterface, 'Wireless0', 'shown with the charger');
  await waitFor(async () => (await store.getCharger('UP-IF-LTE'))?.profileUpgrade?.lastResult === 'accepted' || null, 'switch accepted');
  const acceptedState = (await store.getCharger('UP-IF-LTE'))!.profileUpgrade!;
  t.equal(acceptedState.ocppInterface, 'Wireless0', 'kept for the retries of this request');
  t.equal(acceptedState.awaitsReboot, true, 'a 2.x switch waits for the Reset');
  t.equal(await requestUpgrade(proxy, 'UP-IF-LTE', 2, { ocppInterface: 'Wireless0' }), 409, 'the same switch again, accepted and not yet taken: refused (another reboot)');
  t.equal(lte.otherCalls.filter((c) => c.action === 'SetNetworkProfile').length, 1, 'and not sent again');
  t.equal(await requestUpgrade(proxy, 'UP-IF-LTE', 2, { ocppInterface: 'Wireless1' }), 202, 'another interface: a new request');
  const again = (await store.getCharger('UP-IF-LTE'))!.profileUpgrade!;
  t.equal(again.slot, acceptedState.slot, 'which keeps the slot the first one wrote');
  t.equal(await requestUpgrade(proxy, 'UP-IF-LTE', 2, { ocpp_interface: 'Wireless0' }), 400, 'a misspelt field: 400, not the default interface');

  const any201 = await station('UP-IF-ANY', 'ocpp2.0.1', { ocppInterface: 'Any' });
  const refused = await waitFor(async () => { const r = await store.getCharger('UP-IF-ANY'); return r?.profileUpgrade?.lastResult ? r : null; }, 'attempt recorded');
  t.equal(refused!.profileUpgrade!.lastResult, 'interface_any_needs_ocpp2.1', 'Any refused for a 2.0.1 charger, said why');
  t.equal(refused!.profileUpgrade!.ocppInterface, 'Any', 'the request is kept as asked');
  t.ok(refused!.profileUpgrade!.requestedAt, 'with its time');
  t.equal(refused!.profileUpgrade!.nextAttemptAt, undefined, 'parked: no next attempt until an operator asks again');
  t.notOk(any201.otherCalls.some((c) => c.action === 'SetNetworkProfile'), 'no profile its schema would reject was sent');

  t.equal(await requestUpgrade(proxy, 'UP-IF-201', 2, { ocppInterface: 'Wifi0' }), 400, 'an unknown interface: 400');
  t.equal(await requestUpgrade(proxy, 'UP-IF-201', 2, { ocppInterface: 'wireless0' }), 400, 'names are case-sensitive, as in the schema');
});

t.test('2.x: an operator\'s new request during an attempt is not overwritten by it, and runs after it', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false', plainListen: '127.0.0.1:0', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  const { store } = proxy.credentials;
  const identity = 'UP-RE-ASKED';
  await seedCharger(proxy, { identity, password: 'profile-one-password', minProfile: 1 });
  t.equal(await requestUpgrade(proxy, identity, 2, { ocppInterface: 'Wired1' }), 202);
  const profiles: string[] = [];
  let release: (() => void) | null = null;
  const c: any = new RPCClient({ endpoint: proxy.plainUrl!, identity, protocols: ['ocpp2.0.1'], password: 'profile-one-password', reconnect: false, pingIntervalMs: 0, strictMode: false, callTimeoutMs: 20000, wsOpts: { perMessageDeflate: false } } as any);
  t.teardown(() => c.close({ force: true }));
  c.handle('GetVariables', () => ({ getVariableResult: [{ attributeStatus: 'Accepted', attributeValue: '1', component: { name: 'OCPPCommCtrlr' }, variable: { name: 'NetworkConfigurationPriority' } }] }));
  c.handle('SetNetworkProfile', async ({ params }: any) => {
    profiles.push(params.connectionData.ocppInterface);
    // The first answer waits until the operator has asked again.
    if (profiles.length === 1) await new Promise<void>((r) => { release = r; });
    return { status: 'Rejected' };
  });
  await c.connect();
  await c.call('BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: 'Sim', model: 'S1', serialNumber: 'SN-RE' } });
  await waitFor(() => release, 'the first attempt under way');
  t.equal(await requestUpgrade(proxy, identity, 2, { ocppInterface: 'Wireless0' }), 202, 'asked again, another interface');
  release!();
  await waitFor(() => profiles.includes('Wireless0'), 'the new request ran after the attempt');
  t.same(profiles.slice(0, 2), ['Wired1', 'Wireless0'], 'the old attempt ended, then the new one ran');
  const rec = await waitFor(async () => { const r = await store.getCharger(identity); return r?.profileUpgrade?.lastResult ? r : null; }, 'recorded');
  t.equal(rec!.profileUpgrade!.ocppInterface, 'Wireless0', 'the new request\'s interface kept');
  t.ok(rec!.profileUpgrade!.requestedAt, 'with its time');
  t.ok(proxy.logs.some((l) => l.event === 'profile_upgrade_superseded'), 'the old attempt said it was superseded');
});

t.test('2.x: a slot the charger refuses is followed by the next candidate, and the refusal keeps the charger\'s reason', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false', plainListen: '127.0.0.1:0', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  const { store } = proxy.credentials;
  /** A 2.0.1 charger running on slot 2 whose valuesList allows only `allowed`. */
  const charger = async (identity: string, allowed: number[]) => {
    await seedCharger(proxy, { identity, password: 'profile-one-password', minProfile: 1 });
    await store.updateCharger(identity, { targetProfile: 2 });
    const slots: number[] = [];
    const c: any = new RPCClient({ endpoint: proxy.plainUrl!, identity, protocols: ['ocpp2.0.1'], password: 'profile-one-password', reconnect: false, pingIntervalMs: 0, strictMode: false, wsOpts: { perMessageDeflate: false } } as any);
    t.teardown(() => c.close({ force: true }));
    c.handle('GetVariables', () => ({ getVariableResult: [{ attributeStatus: 'Accepted', attributeValue: '2', component: { name: 'OCPPCommCtrlr' }, variable: { name: 'NetworkConfigurationPriority' } }] }));
    c.handle('SetNetworkProfile', ({ params }: any) => {
      slots.push(params.configurationSlot);
      return allowed.includes(params.configurationSlot) ? { status: 'Accepted' } : { status: 'Rejected', statusInfo: { reasonCode: 'InvalidConfSlot' } };
    });
    c.handle('SetVariables', ({ params }: any) => ({ setVariableResult: params.setVariableData.map((d: any) => ({ attributeStatus: 'Accepted', component: d.component, variable: d.variable })) }));
    c.handle('Reset', () => ({ status: 'Accepted' }));
    await c.connect();
    await c.call('BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: 'Sim', model: 'S1', serialNumber: `SN-${identity}` } });
    return slots;
  };
  const result = (identity: string) => waitFor(async () => (await store.getCharger(identity))?.profileUpgrade?.lastResult ?? null, `${identity}: attempt recorded`);

  const twoSlots = await charger('UP-SLOT-12', [1, 2]);
  t.equal(await result('UP-SLOT-12'), 'accepted');
  t.same(twoSlots, [1], 'a two-slot charger left on slot 2: slot 1 (the highest plus one would be refused)');

  const third = await charger('UP-SLOT-3', [2, 3]);
  t.equal(await result('UP-SLOT-3'), 'accepted');
  t.same(third, [1, 3], 'slot 1 refused: the next after the highest, in the same attempt');
  t.equal((await store.getCharger('UP-SLOT-3'))?.profileUpgrade?.slot, 3, 'the slot written is kept for retries');

  const none = await charger('UP-SLOT-NONE', [2]);
  t.equal(await result('UP-SLOT-NONE'), 'Rejected:InvalidConfSlot', 'the charger\'s reason recorded for the operator');
  t.same(none, [1, 3], 'each candidate tried once');
  t.equal((await store.getCharger('UP-SLOT-NONE'))?.profileUpgrade?.slot, undefined, 'no slot kept: nothing was written');
});

t.test('2.x to Profile 3 on a connection without a BootNotification: the serial number its record remembers decides, and none means wait', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { organization: 'Test CPO', rotation: 'false', publicUrl: 'wss://127.0.0.1:1/ocpp' });
  const { store } = proxy.credentials;
  const identity = 'UP-NO-BOOT';
  await seedCharger(proxy, { identity, password: 'profile-two-password', minProfile: 2, serial: 'SN-NO-BOOT' });
  await store.updateCharger(identity, { bootState: 'Accepted' }); // booted before: it reconnects without booting
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol: 'ocpp2.0.1', password: 'profile-two-password', ca: proxy.caPem, serial: 'SN-NO-BOOT', organization: 'Test CPO' });
  t.teardown(() => s.stop());
  s.booted = true;
  await s.connect();
  t.equal(await requestUpgrade(proxy, identity, 3), 202);
  await waitFor(async () => (await store.getCharger(identity))?.profileUpgrade?.lastResult === 'serial_unknown' || null, 'not switched: never seen booting');
  t.notOk(s.otherCalls.some((c) => c.action === 'SetNetworkProfile'), 'no switch sent');

  // Its record remembers a boot with the right serial number (as a BootNotification on an earlier connection leaves it).
  await store.updateCharger(identity, { bootSerialNumber: 'SN-NO-BOOT' });
  t.equal(await requestUpgrade(proxy, identity, 3), 202);
  await waitFor(() => s.profile === 3 && s.connections >= 2, 'on Profile 3', 15000);
});

t.test('a 2.x BootNotification leaves its serial number in the record', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false' });
  await seedCharger(proxy, { identity: 'UP-REMEMBER', password: 'profile-two-password', minProfile: 2 });
  const s = new SimStation({ identity: 'UP-REMEMBER', endpoint: proxy.tlsUrl, protocol: 'ocpp2.0.1', password: 'profile-two-password', ca: proxy.caPem, bootSerial: 'SN-REMEMBERED' });
  t.teardown(() => s.stop());
  await s.connect();
  await waitFor(async () => (await proxy.credentials.store.getCharger('UP-REMEMBER'))?.bootSerialNumber === 'SN-REMEMBERED' || null, 'remembered');
});
