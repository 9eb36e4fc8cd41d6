/**
 * BackendTrust on real TLS sockets: verification cannot be switched off from the environment, and a
 * bundle replaced between the start's read and the watch is picked up when the watch starts.
 */
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { createRootCa } from '../../certs';
import { BackendTrust } from '../../proxy/backend-trust';
import { createLogger } from '../../proxy/log';
import { logCapture, scratchDir, TEST_PKI_DIR, testServerTls } from '../helpers/proxy';

const TEST_CA = path.join(TEST_PKI_DIR, 'ca.crt');

/** A TLS server with the shared test PKI's certificate (localhost, 127.0.0.1), closed at teardown. */
async function testServer(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const server = tls.createServer(testServerTls(), (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

/** 'ok', or the error code of a handshake with `trust`'s options. */
function handshake(port: number, trust: BackendTrust): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ ...trust.connectOptions(), host: '127.0.0.1', port });
    socket.once('secureConnect', () => { socket.destroy(); resolve('ok'); });
    socket.once('error', (err: NodeJS.ErrnoException) => { socket.destroy(); resolve(err.code ?? err.message); });
  });
}

t.test('NODE_TLS_REJECT_UNAUTHORIZED=0 does not turn verification off', async (t) => {
  const port = await testServer(t);
  const dir = scratchDir(t, 'backend-trust-');
  const other = path.join(dir, 'other.crt');
  writeFileSync(other, (await createRootCa({ keyType: 'ec', commonName: 'Other CA', organization: 'Elsewhere' })).rootPem);
  const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  // Node warns on stderr that the variable disables verification; here it is the point of the test.
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (w) => { if (!/NODE_TLS_REJECT_UNAUTHORIZED/.test(w.message)) for (const p of printers) p(w); });
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  t.teardown(() => {
    if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
    process.removeAllListeners('warning');
    for (const p of printers) process.on('warning', p);
  });
  t.match(await handshake(port, new BackendTrust(other)), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/, 'another CA: refused');
  t.match(await handshake(port, new BackendTrust(null)), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/, 'Node\'s roots: refused');
  t.equal(await handshake(port, new BackendTrust(TEST_CA)), 'ok', 'the right CA: accepted');
});

t.test('a bundle replaced before the watch starts is read when it does', async (t) => {
  const port = await testServer(t);
  const dir = scratchDir(t, 'backend-trust-');
  const bundle = path.join(dir, 'csms-ca.crt');
  writeFileSync(bundle, (await createRootCa({ keyType: 'ec', commonName: 'Old CA', organization: 'Elsewhere' })).rootPem);
  const trust = new BackendTrust(bundle);
  t.not(await handshake(port, trust), 'ok', 'the old bundle does not verify the server');
  writeFileSync(bundle, readFileSync(TEST_CA));
  utimesSync(bundle, new Date(), new Date(Date.now() + 5000)); // a visible change even on a coarse clock
  const { logs, sink } = logCapture();
  const outcomes: boolean[] = [];
  const stop = trust.watch(createLogger({ level: 'info', destination: sink }), 60_000, (ok) => outcomes.push(ok));
  t.teardown(stop);
  t.same(outcomes, [true], 'reloaded at once, without waiting for a poll');
  t.equal(await handshake(port, trust), 'ok', 'the new bundle verifies it');
  await new Promise((r) => setTimeout(r, 50)); // the log stream writes asynchronously
  t.ok(logs.some((l) => l.event === 'backend_ca_reloaded'), 'and says so');
});

t.test('a watch with nothing changed reloads nothing', async (t) => {
  const trust = new BackendTrust(TEST_CA);
  const outcomes: boolean[] = [];
  const stop = trust.watch(createLogger({ level: 'info', destination: logCapture().sink }), 60_000, (ok) => outcomes.push(ok));
  t.teardown(stop);
  t.same(outcomes, []);
});
