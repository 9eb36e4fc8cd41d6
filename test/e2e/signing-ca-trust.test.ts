/**
 * A signing CA (caDir) that the listener's client CA bundle does not contain would issue
 * certificates the proxy then refuses: every charger that installed one would be locked out of
 * Profile 3. The proxy says so at start and does not sign.
 */
import t from 'tap';
import { RPCClient } from 'ocpp-rpc';
import { createRootCa, saveCa } from '../../certs';
import { opensslCsr } from '../helpers/certificate-harness';
import { scratchDir, seedCharger, startProxyBeforeCsms } from '../helpers/proxy';

t.test('a signing CA outside clientCa: logged at start, and SignCertificate is refused', async (t) => {
  const dir = scratchDir(t, 'signing-ca-');
  await saveCa(await createRootCa({ keyType: 'ec', commonName: 'Some Other CA', organization: 'Elsewhere' }), dir);
  const proxy = await startProxyBeforeCsms(t, { caDir: dir, organization: 'Test CPO', rotation: 'false' });
  t.match(proxy.logs.find((l) => l.event === 'signing_ca_untrusted'), { level: 50 }, 'an error at start');
  t.notOk(proxy.logs.some((l) => l.event === 'no_signing_ca'), 'not mistaken for a missing CA');

  await seedCharger(proxy, { identity: 'CA-MISMATCH', password: 'profile-two-password', minProfile: 2, serial: 'SN-CA-MISMATCH' });
  const client = new RPCClient({
    endpoint: proxy.tlsUrl, identity: 'CA-MISMATCH', protocols: ['ocpp2.0.1'], password: 'profile-two-password', reconnect: false, pingIntervalMs: 0,
    wsOpts: { ca: proxy.caPem, servername: 'localhost' },
  } as any) as any;
  t.teardown(() => client.close({ force: true }).catch(() => undefined));
  await client.connect();
  const answer = await client.call('SignCertificate', { csr: opensslCsr(dir, { CN: 'SN-CA-MISMATCH', O: 'Test CPO' }), certificateType: 'ChargingStationCertificate' });
  t.same(answer, { status: 'Rejected', statusInfo: { reasonCode: 'no_signer' } }, 'refused: nothing is issued that the proxy would not accept');
});
