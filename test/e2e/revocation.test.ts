import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { startLegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { makeCharger, seedCharger, startTestProxy, TEST_PKI_DIR } from '../helpers/proxy';
import { readFileSync } from 'node:fs';

t.test('revocation cuts a live Profile 3 session and refuses the next handshake', async (t) => {
  const pki = await makeTestPki(TEST_PKI_DIR);
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url });
  t.teardown(() => proxy.stop());

  for (const via of ['admin API', 'certs revoke CLI'] as const) {
    const identity = via === 'admin API' ? 'REV-API' : 'REV-CLI';
    await seedCharger(proxy, { identity, minProfile: 3, serial: `SER-${identity}` });
    const cert = await pki.charger(`SER-${identity}`);
    const charger = makeCharger({ identity, endpoint: proxy.tlsUrl, ca: proxy.caPem, cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) });
    await charger.connect();
    t.equal(proxy.server.sessions.get(identity)?.profile, 3, `${via}: live on Profile 3`);
    const closed = new Promise<any>((r) => charger.once('close', r));
    // Any spelling of the serial works: upper case with colons, as openssl prints it.
    const spelled = cert.serialHex.toUpperCase().match(/.{1,2}/g)!.join(':');
    if (via === 'admin API') {
      const res = await fetch(`${proxy.adminUrl}/api/v1/revocations`, {
        method: 'POST', headers: { authorization: `Bearer ${proxy.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ serial: spelled, reason: 'key compromise' }),
      });
      t.ok(res.status === 200 || res.status === 201, `revoked through the admin API (${res.status})`);
    } else {
      // Asynchronous spawn: the proxy in this process must keep running (it shares the store's lock).
      const cli = spawn(process.execPath, [path.resolve(__dirname, '../../proxy/cli.js'), 'certs', 'revoke', spelled, '--data-dir', proxy.config.dataDir]);
      let stderr = '';
      cli.stderr.on('data', (d) => { stderr += d; });
      const [code] = (await once(cli, 'exit')) as [number];
      t.equal(code, 0, `certs revoke exits 0 ${stderr.trim()}`);
    }
    const info = await closed;
    t.equal(info.code, 1008, `${via}: live session closed with 1008`);
    const again = makeCharger({ identity, endpoint: proxy.tlsUrl, ca: proxy.caPem, cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) });
    await t.rejects(again.connect(), `${via}: the next handshake with it is refused`);
    await waitFor(() => proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.identity === identity && l.reason === 'cert_revoked'), 'cert_revoked logged');
  }
});
