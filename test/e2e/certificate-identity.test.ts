/**
 * A certificate's CN is the charger's serial number, and nothing keeps one charger's identity from
 * being another's serial. A certificate the proxy signed for charger B (CN = B's expected CN) must
 * not log in as charger A whose serial is that same text: the certificate names the identity it was
 * issued to. Full proxy, real gates, certificates signed by the proxy from openssl CSRs.
 */
import t, { type Test } from 'tap';
import { RPCClient } from 'ocpp-rpc';
import WebSocket from 'ws';
import { certificateInfo } from '../../certs';
import { opensslKeyAndCsr } from '../helpers/certificate-harness';
import { waitFor } from '../helpers/net';
import { scratchDir, seedCharger, startProxyBeforeCsms, type TestProxy } from '../helpers/proxy';

const SERIAL = 'SER-4711';
const ORG = 'Test CPO';

/** Logs in on Profile 2 as `identity`, asks the proxy to sign a CSR for `cn`, and returns what it delivered with the key. */
async function certificateFor(t: Test, proxy: TestProxy, dir: string, identity: string, password: string, cn: string) {
  const { csr, keyPem } = opensslKeyAndCsr(dir, { CN: cn, O: ORG });
  const client = new RPCClient({
    endpoint: proxy.tlsUrl, identity, protocols: ['ocpp2.0.1'], password, reconnect: false, pingIntervalMs: 0,
    wsOpts: { ca: proxy.caPem, servername: 'localhost' },
  } as any) as any;
  t.teardown(() => client.close({ force: true }).catch(() => undefined));
  let chain: string | null = null;
  client.handle('CertificateSigned', ({ params }: any) => { chain = params.certificateChain; return { status: 'Accepted' }; });
  await client.connect();
  t.same(await client.call('SignCertificate', { csr, certificateType: 'ChargingStationCertificate' }), { status: 'Accepted' }, `${identity}: CSR for CN ${cn} accepted`);
  await waitFor(() => chain, `${identity}: CertificateSigned`);
  await client.close();
  return { certPem: chain!, keyPem };
}

/** One Profile 3 upgrade attempt with a client certificate: 101, or the refusal's status. */
function profile3(proxy: TestProxy, identity: string, cert: { certPem: string; keyPem: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${proxy.tlsUrl}/${encodeURIComponent(identity)}`, ['ocpp2.0.1'], { ca: proxy.caPem, servername: 'localhost', cert: cert.certPem, key: cert.keyPem } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

t.test('a certificate the proxy issued logs in as the charger it was issued to, not as one whose serial is its CN', async (t) => {
  const dir = scratchDir(t, 'cert-identity-');
  const proxy = await startProxyBeforeCsms(t, { organization: ORG, rotation: 'false', lockoutThreshold: '100' });
  // VICTIM's serial is SER-4711; another charger's identity is that very text (and it has no serial of its own).
  await seedCharger(proxy, { identity: 'VICTIM', password: 'victim-password-0123', minProfile: 2, serial: SERIAL });
  await seedCharger(proxy, { identity: SERIAL, password: 'other-password-01234', minProfile: 2 });

  const others = await certificateFor(t, proxy, dir, SERIAL, 'other-password-01234', SERIAL);
  t.equal(certificateInfo(others.certPem).subject.CN, SERIAL, 'the other charger\'s certificate carries CN SER-4711, as VICTIM\'s must');
  t.equal(await profile3(proxy, SERIAL, others), 101, 'it logs in as the charger it was issued to');
  t.equal(await profile3(proxy, 'VICTIM', others), 401, 'but not as VICTIM, whose serial its CN matches');
  t.ok(proxy.logs.some((l) => l.identity === 'VICTIM' && l.reason === 'cert_identity_mismatch'), 'refused as cert_identity_mismatch');

  const victims = await certificateFor(t, proxy, dir, 'VICTIM', 'victim-password-0123', SERIAL);
  t.equal(await profile3(proxy, 'VICTIM', victims), 101, 'VICTIM\'s own certificate logs in as VICTIM');
  t.equal(await profile3(proxy, SERIAL, victims), 401, 'and not as the other charger, whose identity its CN equals');
});
