import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createIntermediateCa, createRootCa, issueChargerCertificate, normaliseSerial } from '../../certs';
import { parseNetworks } from '../../proxy/cidr';
import { parseCaBundle, parseXfccElements, readForwardedCertificate, toPeerCertificate, type ForwardedCertOptions } from '../../proxy/forwarded-cert';
import { makeTestPki, tempDir } from '../helpers/pki';

const derB64 = (pem: string) => new X509Certificate(pem).raw.toString('base64');
const xfccCert = (pem: string) => encodeURIComponent(pem);

t.test('forwarded client certificates', async (t) => {
  const dir = await tempDir(t, 'ocpp-xfcc-');
  const pki = await makeTestPki(dir);
  const caPem = readFileSync(pki.caCert, 'utf8');
  const good = await pki.charger('SER-001', { organization: 'Acme CPO' });
  const expired = await pki.charger('SER-OLD', { expired: true });
  const foreign = await pki.charger('SER-FOREIGN', { untrusted: true });
  const base: Omit<ForwardedCertOptions, 'header'> = { trusted: parseNetworks(['10.0.0.0/8', '127.0.0.1']), peerAddress: '10.1.2.3', clientCa: caPem };
  const xfcc = (value: string, opts: Partial<ForwardedCertOptions> = {}) =>
    readForwardedCertificate({ headers: { 'x-forwarded-client-cert': value } }, { ...base, header: 'x-forwarded-client-cert', ...opts });
  const rfc = (value: string, chain?: string, opts: Partial<ForwardedCertOptions> = {}) =>
    readForwardedCertificate({ headers: { 'client-cert': value, ...(chain ? { 'client-cert-chain': chain } : {}) } }, { ...base, header: 'Client-Cert', ...opts });
  const envoyValue = (pem: string) =>
    `By=spiffe://cluster.local/ns/ocpp/sa/proxy;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Cert="${xfccCert(pem)}";Subject="CN=x,O=Acme, Inc.";URI=;DNS=a.example;DNS=b.example`;

  await t.test('Envoy XFCC from a trusted front: parsed, verified, authorized', async (t) => {
    const r = xfcc(envoyValue(good.certPem));
    t.ok(r);
    t.equal(r!.authorized, true);
    t.equal(r!.error, null);
    t.equal(r!.certificate!.fingerprint256, new X509Certificate(good.certPem).fingerprint256);
    t.equal(xfcc(envoyValue(good.certPem), { peerAddress: '::ffff:127.0.0.1' })?.authorized, true, 'IPv4-mapped peer address');
  });

  await t.test('the same header from an untrusted peer is ignored entirely', async (t) => {
    t.equal(xfcc(envoyValue(good.certPem), { peerAddress: '192.0.2.9' }), null);
    t.equal(rfc(`:${derB64(good.certPem)}:`, undefined, { peerAddress: '203.0.113.1' }), null);
    t.equal(xfcc(envoyValue(good.certPem), { trusted: parseNetworks([]) }), null, 'no trusted networks: nothing is believed');
    t.equal(xfcc(envoyValue(good.certPem), { peerAddress: '' }), null);
  });

  await t.test('absent or empty header gives null', async (t) => {
    t.equal(readForwardedCertificate({ headers: {} }, { ...base, header: 'x-forwarded-client-cert' }), null);
    t.equal(xfcc('   '), null);
  });

  await t.test('RFC 9440 Client-Cert byte sequence', async (t) => {
    const r = rfc(`:${derB64(good.certPem)}:`);
    t.equal(r?.authorized, true);
    t.equal(r?.certificate?.subject, 'O=Acme CPO\nCN=SER-001');
    t.equal(rfc(`:${derB64(good.certPem)}:;param=1`)?.authorized, true, 'parameters are ignored');
  });

  await t.test('our own verification: expired, foreign CA, bad chain', async (t) => {
    t.same(pick(xfcc(envoyValue(expired.certPem))), { authorized: false, error: 'CERT_HAS_EXPIRED', hasCert: true });
    t.same(pick(rfc(`:${derB64(foreign.certPem)}:`)), { authorized: false, error: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', hasCert: true });
    const notYet = await issueChargerCertificate(pki.ca, { commonName: 'SER-FUTURE', keyType: 'ec', notBefore: new Date(Date.now() + 86400000), notAfter: new Date(Date.now() + 2 * 86400000) });
    t.same(pick(xfcc(envoyValue(notYet.certPem))), { authorized: false, error: 'CERT_NOT_YET_VALID', hasCert: true });
    t.equal(xfcc(envoyValue(good.certPem), { now: new Date(Date.now() + 400 * 86400000) })?.error, 'CERT_HAS_EXPIRED', 'checked against the clock given');
  });

  await t.test('an impostor CA with the same name does not verify', async (t) => {
    const realName = new X509Certificate(caPem).subject;
    const cn = /CN=([^\n]*)/.exec(realName)?.[1];
    const o = /O=([^\n]*)/.exec(realName)?.[1];
    const impostor = await createRootCa({ keyType: 'ec', commonName: cn, organization: o });
    const forged = await issueChargerCertificate(impostor, { commonName: 'SER-001', organization: 'Acme CPO', keyType: 'ec' });
    const r = xfcc(envoyValue(forged.certPem));
    t.equal(r?.authorized, false);
    t.match(r?.error, /^(CERT_SIGNATURE_FAILURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/);
  });

  await t.test('intermediates from XFCC Chain / Client-Cert-Chain or from the CA bundle', async (t) => {
    const root = await createRootCa({ keyType: 'ec', commonName: 'Chain Root' });
    const inter = await createIntermediateCa(root, { keyType: 'ec', commonName: 'Chain Sub CA' });
    const leaf = await issueChargerCertificate(inter, { commonName: 'SER-CHAIN', keyType: 'ec' });
    const onlyRoot = { clientCa: root.rootPem };
    t.equal(xfcc(`Hash=ab;Cert="${xfccCert(leaf.certPem)}"`, onlyRoot)?.error, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'leaf alone does not reach the root');
    const withChain = xfcc(`Hash=ab;Cert="${xfccCert(leaf.certPem)}";Chain="${xfccCert(leaf.chainPem)}"`, onlyRoot);
    t.equal(withChain?.authorized, true);
    t.equal(withChain?.chain.length, 1, 'leaf removed from the chain list');
    t.equal(xfcc(`Chain="${xfccCert(leaf.chainPem)}"`, onlyRoot)?.authorized, true, 'Chain alone: its first certificate is the leaf');
    t.equal(rfc(`:${derB64(leaf.certPem)}:`, `:${derB64(leaf.certPem)}:, :${derB64(inter.certPem)}:`, onlyRoot)?.authorized, true, 'Client-Cert-Chain');
    t.equal(rfc(`:${derB64(leaf.certPem)}:`, undefined, { clientCa: parseCaBundle(root.rootPem + inter.certPem) })?.authorized, true, 'intermediate in the CA bundle');
    const otherRoot = await createRootCa({ keyType: 'ec', commonName: 'Other Root' });
    t.equal(xfcc(`Cert="${xfccCert(leaf.certPem)}";Chain="${xfccCert(leaf.chainPem)}"`, { clientCa: otherRoot.rootPem })?.authorized, false, 'a valid chain to a root we do not trust');
  });

  await t.test('the first XFCC element (the client side) is the one used', async (t) => {
    const value = `${envoyValue(good.certPem)},By=spiffe://mesh/edge;Hash=cd;Cert="${xfccCert(foreign.certPem)}"`;
    const r = xfcc(value);
    t.equal(r?.certificate?.fingerprint256, new X509Certificate(good.certPem).fingerprint256);
    t.equal(r?.authorized, true);
  });

  await t.test('malformed or certificate-less headers are values, not exceptions', async (t) => {
    for (const bad of ['Cert="%E0%A4%A"', 'Cert="not a certificate"', 'Cert="unterminated', 'garbage-without-equals', `Cert="${xfccCert('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')}"`]) {
      t.same(pick(xfcc(bad)), { authorized: false, error: 'FORWARDED_CERT_MALFORMED', hasCert: false }, bad);
    }
    t.same(pick(xfcc('By=spiffe://x;Hash=abcdef')), { authorized: false, error: 'FORWARDED_CERT_MISSING', hasCert: false }, 'Envoy without cert details');
    for (const bad of ['MIIB', ':MIIB', ':not base64!:', `:${derB64(good.certPem)}:, :${derB64(good.certPem)}:`, ':AAAA:']) {
      t.equal(rfc(bad)?.error, 'FORWARDED_CERT_MALFORMED', bad);
    }
    t.equal(rfc(`:${derB64(good.certPem)}:`, ':zz')?.error, 'FORWARDED_CERT_MALFORMED', 'bad chain header');
  });

  await t.test('parseXfccElements honours quotes and escapes', async (t) => {
    const els = parseXfccElements('By=a;Subject="CN=x,O=y;z";URI=,By="q\\"uote";Hash=1');
    t.equal(els.length, 2);
    t.equal(els[0].get('subject'), 'CN=x,O=y;z');
    t.equal(els[0].get('uri'), '');
    t.equal(els[1].get('by'), 'q"uote');
  });

  await t.test('a certificate whose extended key usage excludes clientAuth is refused, as at the TLS listener', async (t) => {
    const issue = (eku: string) => {
      const key = path.join(dir, `eku-${eku}.key`);
      const crt = path.join(dir, `eku-${eku}.crt`);
      const ext = path.join(dir, `eku-${eku}.ext`);
      writeFileSync(ext, `extendedKeyUsage=${eku}\n`);
      execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/CN=SER-EKU', '-out', `${crt}.csr`], { stdio: 'ignore' });
      execFileSync('openssl', ['x509', '-req', '-in', `${crt}.csr`, '-CA', pki.caCert, '-CAkey', pki.caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', crt], { stdio: 'ignore' });
      return readFileSync(crt, 'utf8');
    };
    t.same(pick(xfcc(envoyValue(issue('serverAuth')))), { authorized: false, error: 'INVALID_PURPOSE', hasCert: true }, 'serverAuth only: refused');
    t.same(pick(xfcc(envoyValue(issue('clientAuth')))), { authorized: true, error: null, hasCert: true }, 'clientAuth: accepted');
    t.same(pick(xfcc(envoyValue(issue('serverAuth,clientAuth')))), { authorized: true, error: null, hasCert: true }, 'both: accepted');
    t.same(pick(xfcc(envoyValue(good.certPem))), { authorized: true, error: null, hasCert: true }, 'no extended key usage at all: accepted, as by OpenSSL');
  });

  await t.test('toPeerCertificate gives the shape the gates read', async (t) => {
    const cert = xfcc(envoyValue(good.certPem))!.certificate!;
    const peer = toPeerCertificate(cert);
    t.equal(peer.subject.CN, 'SER-001');
    t.equal(peer.subject.O, 'Acme CPO');
    t.match(peer.serialNumber, /^[0-9A-F]+$/, 'uppercase hex like getPeerCertificate()');
    t.equal(normaliseSerial(peer.serialNumber), good.serialHex);
    t.equal(peer.fingerprint256, cert.fingerprint256);
    t.equal(new Date(peer.valid_to).getTime(), good.notAfter.getTime());
    t.ok(peer.valid_from);
    t.ok(peer.raw.equals(cert.raw));
  });
});

function pick(r: ReturnType<typeof readForwardedCertificate>) {
  return r && { authorized: r.authorized, error: r.error, hasCert: r.certificate !== null };
}
