/**
 * A legacy CSMS reached over wss:// (TLS on the proxy's CSMS leg): its certificate must chain to
 * `backendCa` when that is set (else to Node's root CAs) and name the address dialled. A CSMS that
 * does not verify gets the charger 502 `backend_untrusted`, counted and logged, and nothing reaches
 * it; `/readyz` and the start-up probe say so. The bundle is re-read when it changes.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { createRootCa } from '../../certs';
import { ProbeError } from '../../proxy/backend-probe';
import { ConfigError, loadConfig } from '../../proxy/config';
import { startLegacyCsms, type LegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { makeCharger, scratchDir, startTestProxy, TEST_PKI_DIR, testServerTls, type TestProxy } from '../helpers/proxy';

const TEST_CA = path.join(TEST_PKI_DIR, 'ca.crt');

/** The status the proxy answers a charger's upgrade with (101 when admitted). */
function upgradeStatus(proxy: TestProxy, identity: string, deflate = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: deflate } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); });
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

/** A charger boots through the proxy and answers a CSMS call: both directions cross the TLS leg. */
async function roundTrip(t: Test, proxy: TestProxy, csms: LegacyCsms, identity: string, deflate: boolean): Promise<void> {
  const charger = makeCharger({ identity, endpoint: proxy.tlsUrl, ca: proxy.caPem, deflate });
  charger.handle('GetConfiguration', () => ({ configurationKey: [{ key: 'HeartbeatInterval', readonly: false, value: '300' }] }));
  await charger.connect();
  t.teardown(() => charger.close({ force: true }));
  const boot = await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' });
  t.equal(boot.status, 'Accepted', 'the charger\'s call crossed to the TLS CSMS and back');
  const client = await waitFor(() => csms.clients.get(identity), 'CSMS client');
  const answer = await client.call('GetConfiguration', { key: ['HeartbeatInterval'] });
  t.equal(answer.configurationKey[0].value, '300', 'and so did the CSMS\'s call');
}

t.test('a wss:// CSMS with a private CA named by backendCa', async (t) => {
  const csms = await startLegacyCsms({ tls: testServerTls() });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, backendCa: TEST_CA, reportOnly: 'true' });
  t.teardown(() => proxy.stop());

  t.test('frames cross both ways on the proxy\'s own framing', (t) => roundTrip(t, proxy, csms, 'CP-TLS-1', false));
  t.test('and on ws (permessage-deflate)', (t) => roundTrip(t, proxy, csms, 'CP-TLS-2', true));

  t.test('/readyz checks the CSMS with a TLS handshake that verifies', async (t) => {
    const res = await fetch(`${proxy.adminUrl}/readyz`);
    t.equal(res.status, 200);
    t.match(await res.json(), { checks: { csms: 'ok' } });
  });
});

t.test('a CSMS certificate that does not verify: 502 backend_untrusted, and nothing reaches the CSMS', async (t) => {
  const dir = scratchDir(t, 'backend-tls-');
  const otherCa = path.join(dir, 'other-ca.crt');
  writeFileSync(otherCa, (await createRootCa({ keyType: 'ec', commonName: 'Some Other CA', organization: 'Elsewhere' })).rootPem);
  // On 127.0.0.2 the certificate (localhost, 127.0.0.1, ::1) does not name the address dialled.
  const elsewhere = await startLegacyCsms({ tls: testServerTls(), host: '127.0.0.2' });
  t.teardown(() => elsewhere.stop());
  const csms = await startLegacyCsms({ tls: testServerTls() });
  t.teardown(() => csms.stop());

  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no backendCa: Node\'s root CAs do not hold the private CA', { backend: csms.url }, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN/],
    ['backendCa names another CA', { backend: csms.url, backendCa: otherCa }, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN/],
    ['the certificate does not name the address dialled', { backend: elsewhere.url, backendCa: TEST_CA }, /ERR_TLS_CERT_ALTNAME_INVALID/],
  ];
  for (const [name, flags, code] of cases) {
    t.test(name, async (t) => {
      const proxy = await startTestProxy({ ...flags, reportOnly: 'true' });
      t.teardown(() => proxy.stop());
      t.equal(await upgradeStatus(proxy, 'CP-UNTRUSTED'), 502, 'own framing: 502');
      t.equal(await upgradeStatus(proxy, 'CP-UNTRUSTED-WS', true), 502, 'ws (deflate): 502');
      const failures = proxy.logs.filter((l) => l.event === 'backend_connect_failed');
      t.equal(failures.length, 2);
      for (const f of failures) {
        t.equal(f.reason, 'backend_untrusted');
        t.match(f.err, code, 'the log names OpenSSL\'s verdict');
        t.match(f.err, /backendCa/, 'and the setting that fixes it');
      }
      t.match(await proxy.metrics.metricsText(), /ocpp_proxy_backend_connect_failures_total\{reason="backend_untrusted"\} 2/, 'counted');
      const probe = await proxy.probeCsms().then(() => null, (err: unknown) => err);
      t.ok(probe instanceof ProbeError && probe.kind === 'untrusted', 'the start-up probe tells an untrusted CSMS from an unreachable one');
      t.match((probe as Error).message, code);
      const ready = await fetch(`${proxy.adminUrl}/readyz`);
      t.equal(ready.status, 503, '/readyz: not ready');
      t.match(await ready.json(), { checks: { csms: /failing: CSMS certificate not trusted/ } });
    });
  }
  t.test('nothing reached either CSMS', async (t) => {
    t.equal(csms.handshakes.length + elsewhere.handshakes.length, 0);
  });
});

t.test('backendCa is re-read when it changes; a broken new bundle keeps the previous one', async (t) => {
  const dir = scratchDir(t, 'backend-tls-');
  const bundle = path.join(dir, 'csms-ca.crt');
  writeFileSync(bundle, (await createRootCa({ keyType: 'ec', commonName: 'Old CSMS CA', organization: 'Elsewhere' })).rootPem);
  const csms = await startLegacyCsms({ tls: testServerTls() });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, backendCa: bundle, reportOnly: 'true' });
  t.teardown(() => proxy.stop());
  const logged = (event: string, n: number) => waitFor(() => (proxy.logs.filter((l) => l.event === event).length >= n ? proxy.logs.filter((l) => l.event === event)[n - 1] : undefined), `${event} #${n}`, 10_000);
  t.equal(await upgradeStatus(proxy, 'CP-RELOAD-1'), 502, 'the old CA does not verify the CSMS');

  writeFileSync(bundle, 'not a certificate\n');
  t.match((await logged('backend_ca_reload_failed', 1))?.err, /holds no PEM certificate/);
  t.equal(await upgradeStatus(proxy, 'CP-RELOAD-2'), 502, 'a broken bundle fails closed: the old one, which trusts nothing here, stays');

  copyFileSync(TEST_CA, bundle);
  await logged('backend_ca_reloaded', 1);
  t.equal(await upgradeStatus(proxy, 'CP-RELOAD-3'), 101, 'the new CA does, without a restart');

  writeFileSync(bundle, 'not a certificate either\n');
  await logged('backend_ca_reload_failed', 2);
  t.equal(await upgradeStatus(proxy, 'CP-RELOAD-4'), 101, 'the previous bundle stays in force');
  const metrics = await proxy.metrics.metricsText();
  t.match(metrics, /ocpp_proxy_tls_reloads_total\{outcome="ok"\} 1\b/, 'reloads counted with the TLS ones, for the same alert');
  t.match(metrics, /ocpp_proxy_tls_reloads_total\{outcome="failed"\} 2\b/);
});

t.test('HTTP passthrough to an https:// CSMS origin trusts what the WebSocket dials trust', async (t) => {
  const csms = await startLegacyCsms({ tls: testServerTls() });
  t.teardown(() => csms.stop());
  for (const [name, flags, status] of [['with backendCa', { backendCa: TEST_CA }, 404], ['without', {}, 502]] as const) {
    const proxy = await startTestProxy({ backend: csms.url, httpPassthrough: 'true', reportOnly: 'true', ...flags });
    t.teardown(() => proxy.stop());
    const res = await new Promise<{ status: number; standIn: boolean }>((resolve, reject) => {
      https.get(`${proxy.tlsUrl.replace(/^wss/, 'https')}/status`, { ca: proxy.caPem, servername: 'localhost' }, (r) => {
        r.resume();
        resolve({ status: r.statusCode ?? 0, standIn: r.headers['x-stand-in-csms'] === '1' });
      }).on('error', reject);
    });
    t.equal(res.status, status, `${name}: ${status}`);
    t.equal(res.standIn, status === 404, status === 404 ? 'answered by the CSMS over TLS' : 'the CSMS never answered');
    if (status === 502) t.match(proxy.logs.find((l) => l.event === 'http_passthrough_failed')?.err, /certificate/i, 'logged as a certificate failure');
  }
});

t.test('a wss:// backend that is a plain ws:// server: the probe says the TLS handshake failed, chargers get 502', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url.replace(/^ws:/, 'wss:'), backendCa: TEST_CA, reportOnly: 'true' });
  t.teardown(() => proxy.stop());
  t.equal(await upgradeStatus(proxy, 'CP-PLAIN'), 502);
  t.equal(proxy.logs.find((l) => l.event === 'backend_connect_failed')?.reason, 'backend_error');
  const probe = await proxy.probeCsms().then(() => null, (err: unknown) => err);
  t.ok(probe instanceof ProbeError && probe.kind === 'tls', 'not taken for an unreachable CSMS, nor an untrusted one');
  t.match((probe as Error).message, /CSMS TLS handshake failed/);
});

t.test('a backendCa the proxy cannot use stops it at start, naming the setting', async (t) => {
  const dir = scratchDir(t, 'backend-tls-');
  const empty = path.join(dir, 'empty.crt');
  writeFileSync(empty, '# no certificate here\n');
  const garbled = path.join(dir, 'garbled.crt');
  writeFileSync(garbled, readFileSync(TEST_CA, 'latin1').replace(/(-----BEGIN CERTIFICATE-----\n)(.{10})/, '$1AAAAAAAAAA'));
  const backend = 'wss://127.0.0.1:9/ocpp';
  await t.rejects(startTestProxy({ backend, backendCa: path.join(dir, 'missing.crt') }), { name: 'ConfigError', message: /"backendCa" file .*missing\.crt does not exist/ });
  await t.rejects(startTestProxy({ backend, backendCa: empty }), { name: 'ConfigError', message: /"backendCa" file .*empty\.crt holds no PEM certificate/ });
  await t.rejects(startTestProxy({ backend, backendCa: garbled }), { name: 'ConfigError', message: /certificate 1 of 1 is not a valid X\.509 certificate/ });
  t.throws(() => loadConfig({ env: {}, flags: { backend: 'ws://127.0.0.1:9000/ocpp', backendCa: TEST_CA } }), new ConfigError('"backendCa" is set but "backend" is a ws:// URL, which uses no TLS: give a wss:// backend, or drop backendCa'));
});
