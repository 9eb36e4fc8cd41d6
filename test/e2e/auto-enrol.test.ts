import t from 'tap';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startLegacyCsms } from '../helpers/csms';
import { makeTestPki } from '../helpers/pki';
import { startTestProxy, TEST_PKI_DIR } from '../helpers/proxy';

const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

/** One upgrade attempt; resolves with the HTTP status (101: admitted, the socket is closed again). */
function attempt(url: string, identity: string, o: { ca: Buffer; auth?: string; cert?: string; key?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/${identity}`, ['ocpp1.6'], {
      ca: o.ca, servername: 'localhost',
      cert: o.cert ? readFileSync(o.cert) : undefined, key: o.key ? readFileSync(o.key) : undefined,
      headers: o.auth ? { authorization: o.auth } : {},
    } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

t.test('auto-enrolment admits an unknown identity with its factory default password, and nothing else', async (t) => {
  const pki = await makeTestPki(TEST_PKI_DIR);
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, autoEnrol: 'true', lockoutThreshold: '100' });
  t.teardown(() => proxy.stop());
  const { store, hasher } = proxy.credentials;
  await store.addFactoryDefault({ prefix: 'AE-' }, await hasher.hashOperator(Buffer.from('factory-default-pw1')));
  const ca = proxy.caPem;
  const refusal = (identity: string, reason: string) =>
    proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.identity === identity && l.reason === reason);

  t.test('a certificate alone does not enrol: unknown identity, 404, the CSMS never dialled', async (t) => {
    const before = csms.handshakes.length;
    const cert = await pki.charger('AE-CERT1');
    t.equal(await attempt(proxy.tlsUrl, 'AE-CERT1', { ca, cert: cert.certPath, key: cert.keyPath, auth: basic('AE-CERT1', 'x') }), 404,
      'certificate (CN = identity) with any Authorization header → 404');
    t.ok(refusal('AE-CERT1', 'unknown_identity'), 'logged as unknown_identity');
    t.equal(await attempt(proxy.tlsUrl, 'AE-CERT1', { ca, cert: cert.certPath, key: cert.keyPath, auth: basic('AE-CERT1', 'factory-default-pw1') }), 404,
      'not even with the factory password beside it: auto-enrolment is Profile 1/2 only');
    t.equal(await store.getCharger('AE-CERT1'), null, 'no record written');
    t.equal(csms.handshakes.length, before, 'the CSMS saw no connection');
  });

  t.test('wrong factory password, or an identity outside the prefix: refused, not recorded', async (t) => {
    const before = csms.handshakes.length;
    t.equal(await attempt(proxy.tlsUrl, 'AE-WRONG', { ca, auth: basic('AE-WRONG', 'not-the-factory-pw') }), 401, 'wrong password → 401');
    t.ok(refusal('AE-WRONG', 'bad_password'), 'bad_password');
    t.equal(await attempt(proxy.tlsUrl, 'XX-OTHER', { ca, auth: basic('XX-OTHER', 'factory-default-pw1') }), 401, 'prefix does not match → 401');
    t.equal(await attempt(proxy.tlsUrl, 'AE-NOAUTH', { ca }), 404, 'no Authorization header → 404 (not a candidate)');
    for (const id of ['AE-WRONG', 'XX-OTHER', 'AE-NOAUTH']) t.equal(await store.getCharger(id), null, `${id} not recorded`);
    t.equal(csms.handshakes.length, before, 'the CSMS saw no connection');
  });

  t.test('the factory password enrols on Profile 2: admitted and recorded', async (t) => {
    t.equal(await attempt(proxy.tlsUrl, 'AE-NEW2', { ca, auth: basic('AE-NEW2', 'factory-default-pw1') }), 101, 'admitted');
    const rec = await store.getCharger('AE-NEW2');
    t.match(rec, { identity: 'AE-NEW2', minProfile: 2, status: 'active', passwordSource: 'factory' }, 'recorded with the factory password, minimum profile 2');
    t.ok((await store.readAudit(50)).some((e) => e.type === 'charger_enrolled' && e.identity === 'AE-NEW2'), 'audited');
    t.ok(csms.handshakes.some((h) => h.identity === 'AE-NEW2'), 'the CSMS saw it');
  });
});
