/**
 * A signing CA (caDir) whose root the listener's client CA bundle does not contain would issue
 * certificates the proxy then refuses: every charger that installed one would be locked out of
 * Profile 3. The proxy says so at start and signs nothing, until the bundle (followed at runtime,
 * as the listener follows it) contains that root.
 */
import t from 'tap';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RPCClient } from 'ocpp-rpc';
import { createRootCa, saveCa } from '../../certs';
import { opensslCsr } from '../helpers/certificate-harness';
import { sleep } from '../helpers/net';
import { scratchDir, seedCharger, startProxyBeforeCsms, TEST_PKI_DIR } from '../helpers/proxy';

t.test('a signing CA outside clientCa: logged at start, SignCertificate refused, and signing resumes once clientCa holds its root', async (t) => {
  const dir = scratchDir(t, 'signing-ca-');
  const other = await createRootCa({ keyType: 'ec', commonName: 'Some Other CA', organization: 'Elsewhere' });
  await saveCa(other, path.join(dir, 'ca'));
  const clientCa = path.join(dir, 'client-ca.crt');
  writeFileSync(clientCa, readFileSync(path.join(TEST_PKI_DIR, 'ca.crt')));
  const proxy = await startProxyBeforeCsms(t, { caDir: path.join(dir, 'ca'), clientCa, organization: 'Test CPO', rotation: 'false' });
  t.match(proxy.logs.find((l) => l.event === 'signing_ca_untrusted'), { level: 50 }, 'an error at start');
  t.notOk(proxy.logs.some((l) => l.event === 'no_signing_ca'), 'not mistaken for a missing CA');

  await seedCharger(proxy, { identity: 'CA-MISMATCH', password: 'profile-two-password', minProfile: 2, serial: 'SN-CA-MISMATCH' });
  const client = new RPCClient({
    endpoint: proxy.tlsUrl, identity: 'CA-MISMATCH', protocols: ['ocpp2.0.1'], password: 'profile-two-password', reconnect: false, pingIntervalMs: 0,
    wsOpts: { ca: proxy.caPem, servername: 'localhost' },
  } as any) as any;
  t.teardown(() => client.close({ force: true }).catch(() => undefined));
  client.handle('CertificateSigned', () => ({ status: 'Accepted' }));
  await client.connect();
  const sign = () => client.call('SignCertificate', { csr: opensslCsr(dir, { CN: 'SN-CA-MISMATCH', O: 'Test CPO' }), certificateType: 'ChargingStationCertificate' });
  t.same(await sign(), { status: 'Rejected', statusInfo: { reasonCode: 'signer_untrusted' } }, 'refused: nothing is issued that the proxy would not accept');

  // The operator adds the signing CA's root to the client CA bundle: picked up within 5 s.
  writeFileSync(clientCa, readFileSync(path.join(TEST_PKI_DIR, 'ca.crt'), 'utf8') + other.rootPem);
  const later = Date.now() / 1000 + 1;
  utimesSync(clientCa, later, later);
  await sleep(5500);
  t.same(await sign(), { status: 'Accepted' }, 'signed once the bundle holds its root');
});
