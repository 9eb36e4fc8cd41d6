import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  CaError,
  createIntermediateCa,
  createRootCa,
  generateKeyPair,
  issueChargerCertificate,
  issueServerCertificate,
  IssueError,
  loadCa,
  saveCa,
} from '../../certs';
import { runOpenssl, tempDir } from '../helpers/pki';

async function mode(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777;
}

async function caError(promise: Promise<unknown>): Promise<CaError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof CaError)) throw new Error(`expected a CaError, got ${String(err)}`);
  return err;
}

t.test('root CA: save, load, key mode 0600, errors', async (t) => {
  const dir = await tempDir(t);
  const root = await createRootCa({ keyType: 'ec', organization: 'Acme', commonName: 'Acme Root' });
  t.equal(root.chainPem, '', 'a root issuing directly has no chain');
  t.equal(root.certPem, root.rootPem);
  const caDir = path.join(dir, 'root');
  await saveCa(root, caDir);
  t.equal(await mode(path.join(caDir, 'ca.key')), 0o600);
  t.equal(await mode(path.join(caDir, 'ca.crt')), 0o644);
  const loaded = await loadCa(caDir);
  t.equal(loaded.certPem, root.certPem);
  t.equal(loaded.keyPem, root.keyPem);
  t.equal(loaded.chainPem, '');
  const text = runOpenssl(['x509', '-in', path.join(caDir, 'ca.crt'), '-noout', '-text']).stdout;
  t.match(text, /Subject: O = Acme, CN = Acme Root/);
  t.match(text, /CA:TRUE/);
  t.match(text, /Certificate Sign, CRL Sign/);

  t.equal((await caError(loadCa(path.join(dir, 'nowhere')))).reason, 'ca_missing');
  const broken = path.join(dir, 'broken');
  await fs.mkdir(broken);
  await fs.writeFile(path.join(broken, 'ca.crt'), 'garbage');
  t.equal((await caError(loadCa(broken))).reason, 'ca_unparsable');
  const mismatch = path.join(dir, 'mismatch');
  await saveCa(root, mismatch);
  await fs.writeFile(path.join(mismatch, 'ca.key'), (await generateKeyPair({ type: 'ec' })).privateKeyPem);
  const err = await caError(loadCa(mismatch));
  t.equal(err.reason, 'ca_key_mismatch');
  t.notMatch(err.message, /PRIVATE KEY/, 'no key material in messages');
});

t.test('intermediate CA: saved, loaded with or without the root key, must chain to the root', async (t) => {
  const dir = await tempDir(t);
  const root = await createRootCa({ keyType: 'ec' });
  const intermediate = await createIntermediateCa(root, { keyType: 'ec' });
  t.equal(intermediate.rootPem, root.rootPem);
  t.equal(intermediate.chainPem, intermediate.certPem);
  await saveCa(intermediate, dir);
  t.equal(await mode(path.join(dir, 'intermediate.key')), 0o600);
  t.equal(await mode(path.join(dir, 'ca.key')), 0o600);
  t.equal(await fs.readFile(path.join(dir, 'ca.key'), 'utf8'), root.keyPem, 'the root key is saved too');
  const loaded = await loadCa(dir);
  t.equal(loaded.certPem, intermediate.certPem);
  t.equal(loaded.keyPem, intermediate.keyPem);
  t.equal(loaded.chainPem, intermediate.chainPem);
  t.equal(loaded.rootPem, root.rootPem);
  const v = runOpenssl(['verify', '-CAfile', path.join(dir, 'ca.crt'), path.join(dir, 'intermediate.crt')]);
  t.equal(v.code, 0, v.stdout + v.stderr);
  t.match(runOpenssl(['x509', '-in', path.join(dir, 'intermediate.crt'), '-noout', '-text']).stdout, /CA:TRUE, pathlen:0/);

  await fs.rm(path.join(dir, 'ca.key'));
  t.equal((await loadCa(dir)).keyPem, intermediate.keyPem, 'root key may be kept offline');

  const stranger = await createRootCa({ keyType: 'ec' });
  await fs.writeFile(path.join(dir, 'ca.crt'), stranger.rootPem);
  t.equal((await caError(loadCa(dir))).reason, 'ca_unparsable', 'intermediate from another root');
});

t.test('leaf certificates', async (t) => {
  const dir = await tempDir(t);
  const ca = await createRootCa({ keyType: 'ec' });
  await fs.writeFile(path.join(dir, 'ca.crt'), ca.rootPem);

  t.test('server certificate: CN = first host, SAN for DNS and IPv4/IPv6, no EKU', async (t) => {
    const issued = await issueServerCertificate(ca, { hosts: ['proxy.example', '127.0.0.1', '::1'], keyType: 'ec', organization: 'Acme' });
    await fs.writeFile(path.join(dir, 'server.crt'), issued.chainPem);
    t.equal(runOpenssl(['verify', '-CAfile', path.join(dir, 'ca.crt'), path.join(dir, 'server.crt')]).code, 0);
    const cert = new crypto.X509Certificate(issued.certPem);
    t.equal(cert.subject, 'O=Acme\nCN=proxy.example');
    t.equal(cert.subjectAltName, 'DNS:proxy.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    t.equal(cert.checkIP('::1'), '::1');
    t.notOk(cert.keyUsage, 'Node lists EKU in keyUsage: there is none');
    t.ok(cert.checkPrivateKey(crypto.createPrivateKey(issued.keyPem)));
    const serial = Buffer.from(issued.serialHex.padStart(32, '0'), 'hex');
    t.equal(serial.length, 16);
    t.ok(serial[0] > 0 && serial[0] < 0x80, 'positive, 16 significant bytes');
    t.equal(issued.chainPem, issued.certPem, 'root issues directly: chain is the leaf');
    await t.rejects(issueServerCertificate(ca, { hosts: [' '], keyType: 'ec' }), IssueError);
    await t.rejects(issueServerCertificate(ca, { hosts: ['a'], keyType: 'ec', days: 0 }), IssueError);
  });

  t.test('charger certificate: CN = serial, O, KeyUsage digitalSignature+keyAgreement, no EKU', async (t) => {
    const issued = await issueChargerCertificate(ca, { commonName: 'SER-42', organization: 'Acme CPO', keyType: 'ec' });
    const file = path.join(dir, 'charger.crt');
    await fs.writeFile(file, issued.certPem);
    const text = runOpenssl(['x509', '-in', file, '-noout', '-text']).stdout;
    t.match(text, /Subject: O = Acme CPO, CN = SER-42/);
    t.match(text, /Key Usage: critical\s+Digital Signature, Key Agreement/);
    t.notMatch(text, /Extended Key Usage|Subject Alternative Name/);
    t.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    t.equal(runOpenssl(['verify', '-CAfile', path.join(dir, 'ca.crt'), file]).code, 0);
  });

  t.test('an expired charger certificate keeps the requested dates', async (t) => {
    const notBefore = new Date('2020-01-01T00:00:00Z');
    const notAfter = new Date('2021-06-30T12:34:56Z');
    const issued = await issueChargerCertificate(ca, { commonName: 'OLD1', keyType: 'ec', notBefore, notAfter });
    t.equal(issued.notAfter.toISOString(), notAfter.toISOString());
    const cert = new crypto.X509Certificate(issued.certPem);
    t.equal(new Date(cert.validFrom).toISOString(), notBefore.toISOString());
    t.equal(new Date(cert.validTo).toISOString(), notAfter.toISOString());
    const file = path.join(dir, 'expired.crt');
    await fs.writeFile(file, issued.certPem);
    const v = runOpenssl(['verify', '-CAfile', path.join(dir, 'ca.crt'), file]);
    t.not(v.code, 0);
    t.match(v.stdout + v.stderr, /expired/);
    await t.rejects(issueChargerCertificate(ca, { commonName: 'X', keyType: 'ec', notBefore: notAfter, notAfter: notBefore }), IssueError);
    await t.rejects(issueChargerCertificate(ca, { commonName: '', keyType: 'ec' }), IssueError);
  });
});

t.test('key generation rejects unsupported sizes and curves', async (t) => {
  await t.rejects(generateKeyPair({ type: 'rsa', bits: 1024 as 2048 }), RangeError);
  await t.rejects(generateKeyPair({ type: 'ec', curve: 'P-521' as 'P-256' }), RangeError);
  const p384 = await generateKeyPair({ type: 'ec', curve: 'P-384' });
  t.match(p384.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  t.equal(crypto.createPrivateKey(p384.privateKeyPem).asymmetricKeyDetails?.namedCurve, 'secp384r1');
});
