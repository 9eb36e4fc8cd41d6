import t from 'tap';
import { tryBasicLogin } from '../helpers/login';
import { startLegacyCsms } from '../helpers/csms';
import { freePort, waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { SimStation } from '../helpers/station';


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

      const res = await fetch(`${proxy.adminUrl}/api/v1/chargers/${identity}/upgrade`, {
        method: 'POST', headers: { authorization: `Bearer ${proxy.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ profile: 3 }),
      });
      t.ok(res.status === 200 || res.status === 202, `upgrade requested (${res.status})`);

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
