/**
 * The TLS listener against the real openssl CLI and Node's TLS client: OCPP suites and which
 * certificate each gets, refused versions and suites, no renegotiation, optional client
 * certificates, certificate hot reload under a live session, and handshake timeouts.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import { issueServerCertificate, loadCa } from '../../certs';
import { createTlsServer, serverTlsOptions } from '../../proxy/tls';
import { startLegacyCsms } from '../helpers/csms';
import { sleep, waitFor } from '../helpers/net';
import { tempDir } from '../helpers/pki';
import { makeCharger, startTestProxy, TEST_PKI_DIR, type TestProxy } from '../helpers/proxy';

const CA_FILE = path.join(TEST_PKI_DIR, 'ca.crt');

/** Result of one `openssl s_client` run. */
interface SClient {
  code: number | null;
  out: string;
}

/**
 * Runs `openssl s_client` against the proxy without blocking this process's event loop (the proxy
 * runs in it). Stdin gets `input` line by line with `pauseMs` between lines, then EOF.
 */
function sClient(port: number, args: string[], input: string[] = [], pauseMs = 0): Promise<SClient> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', CA_FILE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, out });
    });
    void (async () => {
      for (const line of input) {
        if (pauseMs) await sleep(pauseMs);
        if (child.stdin.writable) child.stdin.write(line + '\n');
      }
      if (pauseMs) await sleep(pauseMs);
      child.stdin.end();
    })();
  });
}

/** The cipher the SSL-Session block reports (or "(NONE)"). */
function negotiatedCipher(out: string): string | undefined {
  return /^\s*Cipher\s*:\s*(\S+)/m.exec(out)?.[1];
}

/** Key type of the first certificate the server presented. */
function serverKeyType(out: string): string | undefined {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
  return pem ? new X509Certificate(pem).publicKey.asymmetricKeyType : undefined;
}

/** Canonical serial: lowercase hex, no leading zeros. */
const canonicalSerial = (s: string) => s.toLowerCase().replace(/^0+(?=.)/, '');

/** A TLS 1.2 ECDSA handshake with Node's client; resolves with the server certificate's serial. */
function ecdsaServerSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: undefined, rejectUnauthorized: false, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(canonicalSerial(serial));
    });
    s.on('error', reject);
  });
}

/** Resolves with how long the server took to close the connection `connect` opens. */
function timeUntilClosed(connect: () => net.Socket, limitMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const s = connect();
    const limit = setTimeout(() => {
      s.destroy();
      reject(new Error(`connection still open after ${limitMs} ms`));
    }, limitMs);
    s.on('error', () => undefined);
    s.resume(); // read (and drop) the 408 the server may send, so its close is seen
    s.on('close', () => {
      clearTimeout(limit);
      resolve(Date.now() - started);
    });
  });
}

t.test('TLS listener', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy: TestProxy = await startTestProxy({ backend: csms.url, handshakeTimeoutMs: '500', reportOnly: 'true' });
  t.teardown(() => proxy.stop());
  const port = proxy.addresses.tls.port;

  const suites: [string, 'ec' | 'rsa'][] = [
    ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ec'],
    ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ec'],
    ['AES128-GCM-SHA256', 'rsa'],
    ['AES256-GCM-SHA384', 'rsa'],
    ['ECDHE-RSA-AES128-GCM-SHA256', 'rsa'],
    ['ECDHE-RSA-AES256-GCM-SHA384', 'rsa'],
  ];
  for (const [suite, keyType] of suites) {
    t.test(`TLS 1.2 ${suite} with the ${keyType === 'ec' ? 'ECDSA' : 'RSA'} certificate`, async (t) => {
      const r = await sClient(port, ['-tls1_2', '-cipher', suite, '-verify_return_error']);
      t.equal(negotiatedCipher(r.out), suite, 'negotiated suite');
      t.match(r.out, /Protocol\s*:\s*TLSv1\.2/);
      t.match(r.out, /Verify return code: 0 \(ok\)/, 'chain verifies against the dev CA');
      t.equal(serverKeyType(r.out), keyType, 'certificate type matches the suite');
      t.match(r.out, /Compression: NONE/, 'no TLS compression');
    });
  }

  t.test('TLS 1.3 works', async (t) => {
    const r = await sClient(port, ['-tls1_3']);
    t.match(r.out, /New, TLSv1\.3, Cipher is TLS_AES_(256_GCM_SHA384|128_GCM_SHA256)|New, TLSv1\.3, Cipher is TLS_CHACHA20/);
    t.equal(r.code, 0);
  });

  for (const [flag, name] of [['-tls1', 'TLS 1.0'], ['-tls1_1', 'TLS 1.1']] as const) {
    t.test(`${name} is refused`, async (t) => {
      const before = proxy.logs.length;
      const r = await sClient(port, [flag, '-cipher', 'DEFAULT:@SECLEVEL=0']);
      t.not(r.code, 0, 'openssl reports failure');
      t.notMatch(r.out, /no protocols available/, 'the client really offered the old version');
      t.match(r.out, /alert protocol version|unsupported protocol|wrong version number/i);
      t.notMatch(r.out, /Cipher is [A-Z]/, 'no cipher negotiated');
      const logged = await waitFor(() => proxy.logs.slice(before).find((l) => l.event === 'tls_handshake_failed'), 'failure log line');
      t.equal(logged?.reason, 'protocol_version', 'logged with a bounded reason');
    });
  }

  for (const suite of ['ECDHE-RSA-AES128-SHA256', 'AES128-SHA', 'ECDHE-ECDSA-AES128-SHA', 'AES256-SHA256']) {
    t.test(`CBC suite ${suite} is refused`, async (t) => {
      const r = await sClient(port, ['-tls1_2', '-cipher', `${suite}:@SECLEVEL=0`]);
      t.not(r.code, 0);
      t.match(r.out, /handshake failure|no shared cipher|no ciphers available/i);
      t.notMatch(r.out, /Cipher is [A-Z]/, 'no cipher negotiated');
    });
  }

  t.test('client-initiated renegotiation is refused (openssl R command)', async (t) => {
    const r = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'], ['R'], 400);
    t.equal(negotiatedCipher(r.out), 'ECDHE-RSA-AES128-GCM-SHA256', 'initial handshake done');
    t.match(r.out, /RENEGOTIATING/, 'the client asked');
    t.match(r.out, /no renegotiation|alert/i, 'the server refused');
    t.notMatch(r.out, /verify return:1\s*\n[\s\S]*verify return:1[\s\S]*verify return:1[\s\S]*verify return:1/, 'no second full handshake');
  });

  t.test('client-initiated renegotiation is refused (Node renegotiate)', async (t) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: proxy.caPem, maxVersion: 'TLSv1.2' });
    await new Promise<void>((resolve, reject) => { s.once('secureConnect', () => resolve()); s.once('error', reject); });
    const outcome = await new Promise<string>((resolve) => {
      s.on('error', (err) => resolve(`error: ${err.message}`));
      s.on('close', () => resolve('closed'));
      const started = s.renegotiate({ rejectUnauthorized: false }, (err) => resolve(err ? `error: ${err.message}` : 'renegotiated'));
      if (!started) resolve('not started');
    });
    t.not(outcome, 'renegotiated', `renegotiation did not succeed (${outcome})`);
    s.destroy();
  });

  t.test('ALPN: http/1.1 is selected when offered; a client offering only other protocols is refused', async (t) => {
    const alpn = (offer: string[] | undefined) => new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: proxy.caPem, ALPNProtocols: offer }, () => {
        resolve(`selected ${String(s.alpnProtocol)}`);
        s.destroy();
      });
      s.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    });
    t.equal(await alpn(['h2', 'http/1.1']), 'selected http/1.1');
    t.equal(await alpn(undefined), 'selected false', 'a client without ALPN is not asked for it');
    t.equal(await alpn(['h2']), 'error ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL', 'no_application_protocol alert (RFC 7301)');
    const charger = makeCharger({ identity: 'CP-ALPN', endpoint: proxy.tlsUrl, ca: proxy.caPem });
    await charger.connect();
    t.equal((await charger.call('Heartbeat', {})).currentTime !== undefined, true, 'a WebSocket charger still connects');
    await charger.close();
  });

  t.test('a client certificate is requested but not required', async (t) => {
    const r = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    t.match(r.out, /Acceptable client certificate CA names/, 'CertificateRequest sent');
    t.equal(negotiatedCipher(r.out), 'ECDHE-ECDSA-AES128-GCM-SHA256', 'handshake completes without one');
    const charger = makeCharger({ identity: 'CP-NOCERT', endpoint: proxy.tlsUrl, ca: proxy.caPem });
    await charger.connect();
    const boot = await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' });
    t.equal(boot.status, 'Accepted', 'a charger without a certificate is relayed (Profile 2)');
    await charger.close();
  });

  t.test('a TCP client that sends nothing is cut after handshakeTimeoutMs', async (t) => {
    const ms = await timeUntilClosed(() => net.connect(port, '127.0.0.1'), 5000);
    t.ok(ms >= 400 && ms < 2500, `cut after ${ms} ms (timeout 500)`);
  });

  t.test('a client that finishes TLS but never sends HTTP is cut', async (t) => {
    const ms = await timeUntilClosed(() => tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: proxy.caPem }), 8000);
    t.ok(ms < 3000, `cut after ${ms} ms (timeout 500)`);
  });

  t.test('a client that sends half a request line is cut', async (t) => {
    const ms = await timeUntilClosed(() => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: proxy.caPem }, () => s.write('GET /ocpp/CP-SLOW HTTP/1.1\r\nHost: x\r\n'));
      return s;
    }, 8000);
    t.ok(ms < 3000, `cut after ${ms} ms (timeout 500)`);
  });
});

t.test('certificate files swapped under a live session', async (t) => {
  const dir = await tempDir(t, 'ocpp-tls-swap-');
  const files = ['server-rsa.crt', 'server-rsa.key', 'server-ec.crt', 'server-ec.key'];
  for (const f of files) copyFileSync(path.join(TEST_PKI_DIR, f), path.join(dir, f));
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({
    backend: csms.url,
    reportOnly: 'true', // admission has its own tests: here every charger gets in
    handshakeTimeoutMs: '500', // a live WebSocket must outlive the HTTP request timeouts
    tlsCert: [path.join(dir, 'server-rsa.crt'), path.join(dir, 'server-ec.crt')],
    tlsKey: [path.join(dir, 'server-rsa.key'), path.join(dir, 'server-ec.key')],
  });
  t.teardown(() => proxy.stop());
  const port = proxy.addresses.tls.port;
  const oldSerial = await ecdsaServerSerial(port);

  const charger = makeCharger({ identity: 'CP-SWAP', endpoint: proxy.tlsUrl, ca: proxy.caPem });
  await charger.connect();
  t.teardown(() => charger.close({ force: true }));
  t.equal((await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' })).status, 'Accepted');

  const ca = await loadCa(TEST_PKI_DIR);
  const issued = await issueServerCertificate(ca, { hosts: ['localhost', '127.0.0.1'], keyType: 'ec' });
  t.not(canonicalSerial(issued.serialHex), oldSerial, 'the new certificate has a new serial');
  writeFileSync(path.join(dir, 'server-ec.key'), issued.keyPem);
  writeFileSync(path.join(dir, 'server-ec.crt'), issued.chainPem);

  const reloaded = await waitFor(async () => (await ecdsaServerSerial(port)) === canonicalSerial(issued.serialHex), 'new certificate served', 15000, 250);
  t.ok(reloaded, 'a new handshake presents the new certificate');
  t.ok(proxy.logs.some((l) => l.event === 'tls_reloaded'), 'reload logged');
  t.equal(proxy.server.sessions.all().length, 1, 'the live session survived');
  const hb = await charger.call('Heartbeat', {});
  t.ok(hb.currentTime, 'the old session still relays a call');
  const still = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA256']);
  t.not(still.code, 0, 'the reloaded context keeps the cipher policy (CBC refused)');
  const tls13 = await sClient(port, ['-tls1_3']);
  t.match(tls13.out, /New, TLSv1\.3/, 'and still speaks TLS 1.3');

  // A broken replacement: the key file becomes garbage. The previous certificates keep serving.
  writeFileSync(path.join(dir, 'server-ec.key'), '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
  const failed = await waitFor(() => proxy.logs.find((l) => l.event === 'tls_reload_failed'), 'reload failure logged', 15000, 100);
  t.equal(failed?.level, 50, 'logged as an error');
  t.notMatch(JSON.stringify(failed), /bm90IGEga2V5/, 'key material is not logged');
  t.equal(await ecdsaServerSerial(port), canonicalSerial(issued.serialHex), 'the last good certificate still serves');
  const hb2 = await charger.call('Heartbeat', {});
  t.ok(hb2.currentTime, 'the session is unaffected');
  // A key of another type (RSA for the ECDSA certificate): OpenSSL would take it and fail every handshake.
  const logsBefore = proxy.logs.length;
  copyFileSync(path.join(TEST_PKI_DIR, 'server-rsa.key'), path.join(dir, 'server-ec.key'));
  const mismatch = await waitFor(() => proxy.logs.slice(logsBefore).find((l) => l.event === 'tls_reload_failed'), 'mismatched key refused', 15000, 100);
  t.match(String(mismatch?.err), /"tlsKey" file .*server-ec\.key does not belong to the certificate in .*server-ec\.crt/, 'the mismatched pair is refused, naming the files');
  t.equal(await ecdsaServerSerial(port), canonicalSerial(issued.serialHex), 'the last good certificate still serves');
  const fresh = makeCharger({ identity: 'CP-AFTER', endpoint: proxy.tlsUrl, ca: proxy.caPem });
  await fresh.connect();
  t.equal((await fresh.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' })).status, 'Accepted', 'new chargers still connect');
  await fresh.close();
});

t.test('a client CA bundle in OpenSSL\'s trusted-certificate form is accepted, as Node accepts it', async (t) => {
  const dir = await tempDir(t, 'ocpp-tls-trusted-');
  const trusted = path.join(dir, 'trusted.pem');
  await new Promise<void>((resolve, reject) => spawn('openssl', ['x509', '-in', path.join(TEST_PKI_DIR, 'ca.crt'), '-trustout', '-addtrust', 'clientAuth', '-out', trusted])
    .on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`openssl exited ${code}`)))));
  const pki = (f: string) => path.join(TEST_PKI_DIR, f);
  const options = serverTlsOptions({ certs: [pki('server-rsa.crt')], keys: [pki('server-rsa.key')], clientCa: trusted }, 5000);
  t.match(String(options.ca), /BEGIN TRUSTED CERTIFICATE/);
  t.doesNotThrow(() => tls.createSecureContext(options), 'and Node builds a context from it');
});

t.test('a TLS connection keeps no Buffer-pool slice alive (memory per charger)', async (t) => {
  // Node's default ALPN list is copied into a 9-byte slice of the shared 8 KiB Buffer pool for every
  // connection; a charger connecting alone then keeps a whole pool alive for its session. Connect 200
  // TLS clients to the proxy's own listener one by one, filling a pool between them as a busy proxy
  // would, and weigh what their server-side sockets keep (the proxy runs in this process).
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, handshakeTimeoutMs: '60000' });
  t.teardown(() => proxy.stop());
  const port = proxy.addresses.tls.port;
  const clients: tls.TLSSocket[] = [];
  t.teardown(() => { for (const c of clients) c.destroy(); });
  const connectOne = () => new Promise<void>((resolve, reject) => {
    const c = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: proxy.caPem }, () => setImmediate(resolve));
    c.on('error', reject);
    clients.push(c);
  });
  // Weighs once late TLS messages (session tickets) have been handled: a busy machine delays them.
  const settled = async () => {
    let last = Number.NaN;
    for (let i = 0; i < 30; i++) {
      await sleep(100);
      gc();
      const now = process.memoryUsage().arrayBuffers;
      if (Math.abs(now - last) < 1024) return now;
      last = now;
    }
    return last;
  };
  for (let i = 0; i < 10; i++) await connectOne();
  const before = await settled();
  const n = 200;
  let filler: Buffer | null = null;
  for (let i = 0; i < n; i++) {
    await connectOne();
    for (let j = 0; j < 40; j++) filler = Buffer.from('x'.repeat(200));
  }
  t.ok(filler);
  const perConnection = ((await settled()) - before) / n;
  // Half a pool: well clear of noise (measured -778 to 41 bytes, 2 KiB on a loaded machine) and of the defect (8,386).
  t.ok(perConnection < 4096, `${perConnection.toFixed(0)} bytes of ArrayBuffer memory per connection (a pinned pool is 8192)`);
  t.equal(clients.filter((c) => c.destroyed).length, 0, 'every connection was still open when weighed');
});

t.test('on a Node that refuses an ALPN callback beside https\'s default list, the default list is used', async (t) => {
  // Node 20 releases before nodejs/node#54411 add ALPNProtocols themselves; passing both reproduces their refusal.
  const files = { certs: [path.join(TEST_PKI_DIR, 'server-ec.crt')], keys: [path.join(TEST_PKI_DIR, 'server-ec.key')], clientCa: null };
  const options = { ...serverTlsOptions(files, 5000), ALPNProtocols: ['http/1.1'] };
  t.throws(() => https.createServer(options), { code: 'ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS' }, 'this Node refuses the pair');
  const server = createTlsServer(options, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const alpn = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => { resolve(String(s.alpnProtocol)); s.destroy(); });
    s.on('error', reject);
  });
  t.equal(alpn, 'http/1.1', 'the server still starts and negotiates http/1.1');
});
