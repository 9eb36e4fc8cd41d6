import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createIntermediateCa, createRootCa, CsrError, identityUri, inspectCsr, namesIdentity, signCsr } from '../../certs';
import { runOpenssl, tempDir } from '../helpers/pki';

/** Makes a CSR with the openssl CLI and returns its PEM. */
async function opensslCsr(dir: string, name: string, keyArgs: string[], subj: string, extra: string[] = []): Promise<string> {
  const csrFile = path.join(dir, `${name}.csr`);
  const r = runOpenssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', path.join(dir, `${name}.key`), '-subj', subj, ...extra, '-out', csrFile]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return fs.readFile(csrFile, 'utf8');
}

const EC_P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const POLICY = { expectedCommonName: 'SER123', expectedOrganization: 'Acme' };

t.test('CSR signing with real openssl CSRs', async (t) => {
  const dir = await tempDir(t);
  const root = await createRootCa({ keyType: 'ec', organization: 'Test CPO' });
  await fs.writeFile(path.join(dir, 'root.crt'), root.rootPem);
  const ecCsr = await opensslCsr(dir, 'ec', EC_P256, '/C=DE/O=Acme/CN=SER123', [
    '-addext', 'subjectAltName=DNS:evil.example',
    '-addext', 'extendedKeyUsage=serverAuth',
    '-addext', 'basicConstraints=critical,CA:TRUE',
  ]);
  const rsaCsr = await opensslCsr(dir, 'rsa', ['-newkey', 'rsa:2048'], '/C=DE/O=Acme/CN=SER123');

  t.test('inspectCsr reads an EVerest-style EC P-256 CSR', async (t) => {
    t.same(await inspectCsr(ecCsr), { subject: { CN: 'SER123', O: 'Acme', C: 'DE' }, keyType: 'ec', keyBits: 256, curve: 'P-256', signatureValid: true });
    const rsa = await inspectCsr(rsaCsr);
    t.equal(rsa.keyType, 'rsa');
    t.equal(rsa.keyBits, 2048);
    t.equal(rsa.curve, undefined);
    // chargers send CRLF line ends and the legacy "NEW CERTIFICATE REQUEST" label
    const legacy = ecCsr.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST').replace(/\n/g, '\r\n');
    t.equal((await inspectCsr(legacy)).signatureValid, true);
  });

  t.test('EC CSR is signed, verifies with openssl, copies only C/O/CN and none of the requested extensions', async (t) => {
    const result = await signCsr(root, ecCsr, POLICY);
    if (!result.ok) throw new Error(`unexpected rejection ${result.reason}`);
    const file = path.join(dir, 'ec-signed.crt');
    await fs.writeFile(file, result.chainPem);
    const verify = runOpenssl(['verify', '-CAfile', path.join(dir, 'root.crt'), file]);
    t.equal(verify.code, 0, verify.stdout + verify.stderr);
    const text = runOpenssl(['x509', '-in', file, '-noout', '-text']).stdout;
    t.match(text, /Subject: C = DE, O = Acme, CN = SER123/);
    t.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    t.match(text, /Key Usage: critical\s+Digital Signature, Key Agreement/);
    t.match(text, /CA:FALSE/);
    t.notMatch(text, /Extended Key Usage/);
    t.notMatch(text, /evil\.example/);
    const cert = new crypto.X509Certificate(result.certPem);
    t.equal(cert.serialNumber.toLowerCase().replace(/^0+/, ''), result.serialHex);
    t.equal(result.serialHex.length <= 32, true);
    const days = (result.notAfter.getTime() - Date.now()) / 86400000;
    t.ok(days > 364 && days < 366, `default validity ~365 days, got ${days}`);
  });

  t.test('RSA 2048 CSR is signed and verifies; days policy applies', async (t) => {
    const result = await signCsr(root, rsaCsr, { ...POLICY, days: 30 });
    if (!result.ok) throw new Error(`unexpected rejection ${result.reason}`);
    const file = path.join(dir, 'rsa-signed.crt');
    await fs.writeFile(file, result.chainPem);
    const verify = runOpenssl(['verify', '-CAfile', path.join(dir, 'root.crt'), file]);
    t.equal(verify.code, 0, verify.stdout + verify.stderr);
    const days = (result.notAfter.getTime() - Date.now()) / 86400000;
    t.ok(days > 29 && days < 31);
  });

  t.test('policy rejections carry the right reason', async (t) => {
    t.same(await signCsr(root, ecCsr, { ...POLICY, expectedCommonName: 'OTHER' }), { ok: false, reason: 'csr_cn_mismatch' });
    t.same(await signCsr(root, ecCsr, { ...POLICY, expectedOrganization: 'Evil Corp' }), { ok: false, reason: 'csr_o_mismatch' });
    t.same(await signCsr(root, rsaCsr, { minRsaBits: 3072 }), { ok: false, reason: 'csr_weak_key' });
    t.same(await signCsr(root, ecCsr, { allowedCurves: ['P-384'] }), { ok: false, reason: 'csr_key_type' });
    const weak = await opensslCsr(dir, 'rsa1024', ['-newkey', 'rsa:1024'], '/O=Acme/CN=SER123');
    t.same(await signCsr(root, weak, POLICY), { ok: false, reason: 'csr_weak_key' });
    const ed = await opensslCsr(dir, 'ed', ['-newkey', 'ed25519'], '/O=Acme/CN=SER123');
    t.same(await signCsr(root, ed, POLICY), { ok: false, reason: 'csr_key_type' });
  });

  t.test('an unsupported curve (P-192) is csr_key_type, P-384 is accepted', async (t) => {
    const p192 = await opensslCsr(dir, 'p192', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-192'], '/O=Acme/CN=SER123');
    const info = await inspectCsr(p192);
    t.equal(info.curve, 'prime192v1');
    t.equal(info.signatureValid, true);
    t.same(await signCsr(root, p192, POLICY), { ok: false, reason: 'csr_key_type' });
    const p384 = await opensslCsr(dir, 'p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], '/O=Acme/CN=SER123');
    t.equal((await inspectCsr(p384)).curve, 'P-384');
    t.equal((await signCsr(root, p384, POLICY)).ok, true);
  });

  t.test('a flipped byte in the signature is csr_bad_signature', async (t) => {
    const der = Buffer.from(ecCsr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 3] ^= 0x01; // the signature BIT STRING is the last element
    const broken = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    t.equal((await inspectCsr(broken)).signatureValid, false);
    t.same(await signCsr(root, broken, POLICY), { ok: false, reason: 'csr_bad_signature' });
    // a flipped byte in the subject also breaks the signature
    const tampered = ecCsr.replace(/^(-----BEGIN CERTIFICATE REQUEST-----\n)(.{40})(.)/, (_m, head: string, pre: string, c: string) => head + pre + (c === 'A' ? 'B' : 'A'));
    const result = await signCsr(root, tampered, POLICY);
    t.equal(result.ok, false);
  });

  t.test('garbage gives csr_unparsable', async (t) => {
    for (const junk of ['', 'garbage', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', root.certPem]) {
      t.same(await signCsr(root, junk, POLICY), { ok: false, reason: 'csr_unparsable' }, JSON.stringify(junk.slice(0, 30)));
    }
    await t.rejects(inspectCsr('not a csr'), CsrError);
    const err = await inspectCsr('not a csr').catch((e: unknown) => e);
    t.equal((err as CsrError).reason, 'csr_unparsable');
    t.notMatch((err as Error).message, /not a csr/, 'the input is not echoed');
  });

  t.test('an intermediate CA signs a CSR and the chain verifies', async (t) => {
    const intermediate = await createIntermediateCa(root, { keyType: 'ec' });
    const result = await signCsr(intermediate, ecCsr, POLICY);
    if (!result.ok) throw new Error(`unexpected rejection ${result.reason}`);
    t.equal((result.chainPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'leaf + intermediate');
    const leaf = path.join(dir, 'inter-leaf.crt');
    const chain = path.join(dir, 'inter-chain.crt');
    await fs.writeFile(leaf, result.certPem);
    await fs.writeFile(chain, intermediate.chainPem);
    const ok = runOpenssl(['verify', '-CAfile', path.join(dir, 'root.crt'), '-untrusted', chain, leaf]);
    t.equal(ok.code, 0, ok.stdout + ok.stderr);
    const withoutIntermediate = runOpenssl(['verify', '-CAfile', path.join(dir, 'root.crt'), leaf]);
    t.not(withoutIntermediate.code, 0, 'the leaf alone does not chain to the root');
  });
});

t.test('the identity a certificate is issued to: named in its subjectAltName, read back exactly', async (t) => {
  const dir = await tempDir(t);
  const root = await createRootCa({ keyType: 'ec', organization: 'Test CPO' });
  // The CSR asks for a SAN of its own: the certificate carries ours only.
  const csr = await opensslCsr(dir, 'san', EC_P256, '/C=DE/O=Acme/CN=SER123', ['-addext', 'subjectAltName=URI:urn:ocpp-security-proxy:identity:VICTIM,DNS:evil.example']);
  const identity = 'CP 7,"x"/é';
  const signed = await signCsr(root, csr, { ...POLICY, identity });
  if (!signed.ok) throw new Error(signed.reason);
  const peer = new crypto.X509Certificate(signed.certPem).toLegacyObject();
  t.equal(peer.subjectaltname, `URI:${identityUri(identity)}`, 'one URI, percent-encoded: nothing from the CSR');
  t.equal(namesIdentity(peer.subjectaltname, identity), true, 'names the identity it was issued to');
  t.equal(namesIdentity(peer.subjectaltname, 'CP 7'), false, 'and no other');
  const backdated = Date.now() - Date.parse(new crypto.X509Certificate(signed.certPem).validFrom);
  t.ok(backdated > 59 * 60_000 && backdated < 62 * 60_000, `valid from an hour ago, for chargers whose clock runs behind (${Math.round(backdated / 60_000)} min)`);
  const plain = await signCsr(root, csr, POLICY);
  if (!plain.ok) throw new Error(plain.reason);
  t.equal(new crypto.X509Certificate(plain.certPem).toLegacyObject().subjectaltname, undefined, 'without an identity: no SAN at all');

  t.equal(namesIdentity(undefined, 'CP1'), null, 'no SAN: names no identity (a certificate from another CA)');
  t.equal(namesIdentity('DNS:cp1.example, URI:https://example.com/x', 'CP1'), null, 'other names only: none');
  t.equal(namesIdentity('DNS:a, URI:urn:ocpp-security-proxy:identity:CP1', 'CP1'), true, 'found among others');
  t.equal(namesIdentity('URI:urn:ocpp-security-proxy:identity:CP1, URI:urn:ocpp-security-proxy:identity:CP2', 'CP2'), true, 'any of several');
  t.equal(namesIdentity('URI:"urn:ocpp-security-proxy:identity:CP1,x"', 'CP1'), false, 'a quoted value that is not exactly ours names another');
  t.equal(namesIdentity('URI:urn:ocpp-security-proxy:identity:CP10', 'CP1'), false, 'no prefix match');
});
