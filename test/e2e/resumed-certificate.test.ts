/**
 * TLS session resumption skips certificate verification: the resumed session keeps the verdict of
 * its full handshake. A client certificate that expired since must still be refused.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { createRootCa, issueChargerCertificate } from '../../certs';
import { sleep } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { scratchDir, seedCharger, startProxyBeforeCsms, TEST_PKI_DIR, type TestProxy } from '../helpers/proxy';

/** One Profile 3 upgrade over TLS, offering `session` for resumption: the HTTP status, whether it resumed, and the session to offer next. */
function upgrade(proxy: TestProxy, identity: string, cert: { certPem: string; keyPem: string }, session?: Buffer): Promise<{ status: number; resumed: boolean; session?: Buffer }> {
  return new Promise((resolve, reject) => {
    let next: Buffer | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port: proxy.addresses.tls.port, ca: proxy.caPem, servername: 'localhost', cert: cert.certPem, key: cert.keyPem, session, maxVersion: 'TLSv1.2' });
    socket.on('session', (s) => { next = s; });
    socket.on('error', reject);
    socket.once('secureConnect', () => {
      socket.write([`GET /ocpp/${identity} HTTP/1.1`, 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: ocpp1.6', '', ''].join('\r\n'));
    });
    socket.once('data', (d) => {
      const resumed = socket.isSessionReused();
      setTimeout(() => { socket.destroy(); resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(d.toString())?.[1] ?? 0), resumed, session: next }); }, 50);
    });
  });
}

t.test('a resumed session with a certificate that has expired since is refused', async (t) => {
  const pki = await makeTestPki(TEST_PKI_DIR);
  const proxy = await startProxyBeforeCsms(t, { organization: 'Test CPO', rotation: 'false', lockoutThreshold: '100' });
  await seedCharger(proxy, { identity: 'SHORT-LIVED', minProfile: 3, serial: 'SN-SHORT-LIVED' });
  const now = Date.now();
  const cert = await issueChargerCertificate(pki.ca, { commonName: 'SN-SHORT-LIVED', organization: 'Test CPO', keyType: 'ec', notBefore: new Date(now - 60_000), notAfter: new Date(now + 4000) });

  const first = await upgrade(proxy, 'SHORT-LIVED', cert);
  t.equal(first.status, 101, 'admitted while valid (full handshake)');
  t.ok(first.session, 'a session to resume');
  const again = await upgrade(proxy, 'SHORT-LIVED', cert, first.session);
  t.same([again.status, again.resumed], [101, true], 'resumed, and admitted while still valid');

  await sleep(Math.max(0, cert.notAfter.getTime() - Date.now()) + 1500);
  const late = await upgrade(proxy, 'SHORT-LIVED', cert, again.session ?? first.session);
  t.equal(late.resumed, true, 'the TLS session still resumes (it skips verification)');
  t.equal(late.status, 401, 'but the expired certificate is refused');
  t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.reason === 'cert_expired'), 'as cert_expired');
});

t.test('a CA removed from clientCa: sessions verified under it no longer resume', async (t) => {
  const pki = await makeTestPki(TEST_PKI_DIR);
  const dir = scratchDir(t, 'resume-ca-');
  const clientCa = path.join(dir, 'client-ca.crt');
  writeFileSync(clientCa, readFileSync(path.join(TEST_PKI_DIR, 'ca.crt')));
  // Shared ticket keys (as replicas have): they survive the reload, so only the context can end resumption.
  const ticketKeys = path.join(dir, 'tickets.key');
  writeFileSync(ticketKeys, randomBytes(48), { mode: 0o600 });
  const proxy = await startProxyBeforeCsms(t, { organization: 'Test CPO', rotation: 'false', lockoutThreshold: '100', clientCa, tlsTicketKeyFile: ticketKeys });
  await seedCharger(proxy, { identity: 'CA-GONE', minProfile: 3, serial: 'SN-CA-GONE' });
  const cert = await pki.charger('SN-CA-GONE');
  const first = await upgrade(proxy, 'CA-GONE', cert);
  t.equal(first.status, 101, 'admitted');
  const again = await upgrade(proxy, 'CA-GONE', cert, first.session);
  t.same([again.status, again.resumed], [101, true], 'resumes while the CA is trusted');

  // The operator removes that CA (a compromise, say): the listener reloads the bundle.
  writeFileSync(clientCa, (await createRootCa({ keyType: 'ec', commonName: 'Replacement CA' })).rootPem);
  const later = Date.now() / 1000 + 1;
  utimesSync(clientCa, later, later);
  await sleep(3500);
  const late = await upgrade(proxy, 'CA-GONE', cert, again.session ?? first.session);
  t.equal(late.resumed, false, 'the old session does not resume under the new bundle');
  t.equal(late.status, 401, 'and the full handshake refuses the certificate');
});
