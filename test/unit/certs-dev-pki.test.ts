import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as tls from 'node:tls';
import { AddressInfo } from 'node:net';
import { ensureDevPki, issueChargerCertificate, normaliseSerial } from '../../certs';
import { makeTestPki, runOpenssl, tempDir } from '../helpers/pki';

interface Handshake {
  authorized: boolean;
  authorizationError?: string;
  peerSerial?: string;
  serverSerial?: string;
  cipher?: string;
}

/**
 * One real TLS handshake on loopback: a server with `serverCert`/`serverKey` that requests
 * (but does not require) a client certificate, and a client that trusts `caFile`.
 */
async function handshake(opts: { serverCert: string; serverKey: string; caFile: string; ciphers?: string; clientCert?: string; clientKey?: string }): Promise<Handshake> {
  const ca = await fs.readFile(opts.caFile);
  const server = tls.createServer({
    cert: await fs.readFile(opts.serverCert),
    key: await fs.readFile(opts.serverKey),
    ca,
    requestCert: true,
    rejectUnauthorized: false,
    maxVersion: 'TLSv1.2',
    ciphers: opts.ciphers,
  });
  const serverSide = new Promise<Handshake>((resolve) => {
    server.once('secureConnection', (socket) => {
      const peer = socket.getPeerCertificate();
      resolve({
        authorized: socket.authorized,
        authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
        peerSerial: peer && peer.serialNumber ? peer.serialNumber : undefined,
        cipher: socket.getCipher().name,
      });
      socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const client = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca,
      cert: opts.clientCert ? await fs.readFile(opts.clientCert) : undefined,
      key: opts.clientKey ? await fs.readFile(opts.clientKey) : undefined,
      ciphers: opts.ciphers,
      maxVersion: 'TLSv1.2',
    });
    const serverSerial = await new Promise<string>((resolve, reject) => {
      client.once('secureConnect', () => resolve(client.getPeerCertificate().serialNumber));
      client.once('error', reject);
    });
    const result = await serverSide;
    client.destroy();
    return { ...result, serverSerial };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

t.test('development PKI (RSA-3072 root) is created, verifies, serves TLS and is reused', async (t) => {
  const dir = await tempDir(t);
  const started = Date.now();
  const paths = await ensureDevPki(dir);
  t.comment(`created dev PKI in ${Date.now() - started} ms`);
  t.equal(paths.created, true);
  for (const key of [paths.caKey, paths.rsaKey, paths.ecKey]) t.equal((await fs.stat(key)).mode & 0o777, 0o600, key);
  for (const cert of [paths.rsaCert, paths.ecCert]) {
    const v = runOpenssl(['verify', '-CAfile', paths.caCert, cert]);
    t.equal(v.code, 0, v.stdout + v.stderr);
  }
  const caText = runOpenssl(['x509', '-in', paths.caCert, '-noout', '-text']).stdout;
  t.match(caText, /Public-Key: \(3072 bit\)/);
  const rsaText = runOpenssl(['x509', '-in', paths.rsaCert, '-noout', '-text']).stdout;
  t.match(rsaText, /Digital Signature, Key Encipherment/, 'static-RSA suites need keyEncipherment');
  t.match(rsaText, /DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1/);
  t.match(runOpenssl(['x509', '-in', paths.ecCert, '-noout', '-text']).stdout, /NIST CURVE: P-256/);

  const before = await fs.readFile(paths.rsaCert, 'utf8');
  const again = await ensureDevPki(dir);
  t.equal(again.created, false, 'second call reuses');
  t.equal(await fs.readFile(paths.rsaCert, 'utf8'), before);

  await fs.rm(paths.ecCert);
  const caBefore = await fs.readFile(paths.caCert, 'utf8');
  t.equal((await ensureDevPki(dir)).created, true, 'a missing server cert is reissued');
  t.equal(await fs.readFile(paths.caCert, 'utf8'), caBefore, 'the CA is kept');
  t.equal(await fs.readFile(paths.rsaCert, 'utf8'), before, 'the other server cert is kept');
  t.equal(runOpenssl(['verify', '-CAfile', paths.caCert, paths.ecCert]).code, 0);

  t.equal((await ensureDevPki(dir, { hosts: ['proxy.test'] })).created, true, 'other hosts: reissued');
  t.equal(new crypto.X509Certificate(await fs.readFile(paths.rsaCert)).checkHost('proxy.test'), 'proxy.test');
  await ensureDevPki(dir); // back to the default hosts for the TLS tests below

  const pki = await makeTestPki(dir);
  t.equal(pki.created, false, 'the test helper reuses the same PKI');

  t.test('ECDSA and static-RSA OCPP suites handshake; charger serial round-trips through TLS', async (t) => {
    const charger = await pki.charger('SER-TLS-1');
    const ec = await handshake({ serverCert: paths.ecCert, serverKey: paths.ecKey, caFile: paths.caCert, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', clientCert: charger.certPath, clientKey: charger.keyPath });
    t.equal(ec.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
    t.equal(ec.authorized, true);
    t.equal(normaliseSerial(ec.peerSerial ?? ''), charger.serialHex);
    const rsa = await handshake({ serverCert: paths.rsaCert, serverKey: paths.rsaKey, caFile: paths.caCert, ciphers: 'AES256-GCM-SHA384' });
    t.equal(rsa.cipher, 'AES256-GCM-SHA384');
    t.equal(normaliseSerial(rsa.serverSerial ?? ''), normaliseSerial(new crypto.X509Certificate(await fs.readFile(paths.rsaCert)).serialNumber));
  });

  t.test('a serial with a leading zero nibble normalises identically from TLS', async (t) => {
    let issued;
    for (let i = 0; i < 300 && !(issued && issued.serialHex.length < 32); i++) {
      issued = await issueChargerCertificate(pki.ca, { commonName: 'SER-ZERO', keyType: 'ec' });
    }
    if (!issued || issued.serialHex.length >= 32) throw new Error('no short serial found');
    const certFile = `${dir}/zero.crt`;
    const keyFile = `${dir}/zero.key`;
    await fs.writeFile(certFile, issued.certPem);
    await fs.writeFile(keyFile, issued.keyPem);
    const result = await handshake({ serverCert: paths.ecCert, serverKey: paths.ecKey, caFile: paths.caCert, clientCert: certFile, clientKey: keyFile });
    t.comment(`TLS serial ${result.peerSerial}, canonical ${issued.serialHex}`);
    t.equal(normaliseSerial(result.peerSerial ?? ''), issued.serialHex);
    const colonForm = runOpenssl(['x509', '-in', certFile, '-noout', '-serial']).stdout.trim().replace(/^serial=/, '');
    t.equal(normaliseSerial(colonForm), issued.serialHex, 'openssl spelling too');
  });

  t.test('expired and untrusted charger certificates are reported by TLS', async (t) => {
    const expired = await pki.charger('SER-OLD', { expired: true });
    t.ok(expired.notAfter.getTime() < Date.now());
    const e = await handshake({ serverCert: paths.ecCert, serverKey: paths.ecKey, caFile: paths.caCert, clientCert: expired.certPath, clientKey: expired.keyPath });
    t.equal(e.authorized, false);
    t.equal(e.authorizationError, 'CERT_HAS_EXPIRED');
    const untrusted = await pki.charger('SER-EVIL', { untrusted: true, keyType: 'rsa' });
    const u = await handshake({ serverCert: paths.ecCert, serverKey: paths.ecKey, caFile: paths.caCert, clientCert: untrusted.certPath, clientKey: untrusted.keyPath });
    t.equal(u.authorized, false);
    t.match(u.authorizationError ?? '', /UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);
    t.match(await pki.untrustedCaPem(), /BEGIN CERTIFICATE/);
  });
});
