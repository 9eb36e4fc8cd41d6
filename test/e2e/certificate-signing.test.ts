import t from 'tap';
import path from 'node:path';
import { certificateInfo } from '../../certs';
import { certificateSigning } from '../../policies/interceptors/certificate-signing';
import { CaSigner } from '../../proxy/ca-signer';
import { sleep, waitFor } from '../helpers/net';
import { TEST_PKI_DIR } from '../helpers/proxy';
import { breakSignature, opensslCsr, opensslKeyAndCsr, opensslVerify, schemaErrors, startCertRig, strictCharger, type CertRig } from '../helpers/certificate-harness';

const CERT_ACTIONS = ['SignCertificate', 'CertificateSigned'];

t.test('the proxy signs charger CSRs itself', async (t) => {
  const counted: string[] = [];
  const signer = await CaSigner.load(TEST_PKI_DIR, { days: 365 });
  const rig: CertRig = await startCertRig(t, (store) => [
    certificateSigning({ store, signer, organization: 'Test CPO', metrics: { certificate: (o, r) => counted.push(`${o}:${r}`) }, deliveryTimeoutMs: 2000 }),
  ]);
  const audit = async (identity: string) => (await rig.store.readAudit(200)).filter((e) => e.identity === identity);

  for (const [protocol, key, type] of [
    ['ocpp1.6', 'ec-p256', undefined],
    ['ocpp2.0.1', 'rsa-2048', 'ChargingStationCertificate'],
    ['ocpp2.1', 'ec-p256', 'ChargingStationCertificate'],
  ] as const) {
    t.test(`${protocol} ${key}: Accepted, CertificateSigned delivered, chain verifies, binding stored`, async (t) => {
      const identity = `CS-${protocol.replace(/\W/g, '')}`;
      const serial = `SN-${identity}`;
      await rig.addCharger(identity, { certificate: { serialNumber: serial } });
      const charger = strictCharger(rig, identity, protocol); // Profile 2: the usual way to get a first certificate
      const delivered: any[] = [];
      charger.handle('CertificateSigned', ({ params }: any) => { delivered.push(params); return { status: 'Accepted' }; });
      await charger.connect();
      const csr = opensslCsr(rig.dir, { CN: serial, O: 'Test CPO' }, key);
      const request: Record<string, unknown> = { csr };
      if (type) request.certificateType = type;
      if (protocol === 'ocpp2.1') request.requestId = 42;
      const answer = await charger.call('SignCertificate', request);
      t.same(answer, { status: 'Accepted' });
      t.equal(schemaErrors(protocol, 'SignCertificate', 'conf', answer), '', 'answer valid per schema');
      await waitFor(() => delivered.length === 1, 'CertificateSigned');
      const got = delivered[0];
      t.equal(schemaErrors(protocol, 'CertificateSigned', 'req', got), '', 'CertificateSigned valid per schema');
      if (type) t.equal(got.certificateType, type, 'certificateType echoed');
      else t.notOk('certificateType' in got, '1.6 has no certificateType');
      if (protocol === 'ocpp2.1') t.equal(got.requestId, 42, 'requestId echoed');
      const verified = await opensslVerify(rig.dir, got.certificateChain, path.join(TEST_PKI_DIR, 'ca.crt'));
      t.equal(verified.code, 0, `openssl verify: ${verified.out.trim()}`);
      const info = certificateInfo(got.certificateChain);
      t.equal(info.subject.CN, serial);
      t.equal(info.subject.O, 'Test CPO');
      const record = await waitFor(async () => {
        const r = await rig.store.getCharger(identity);
        return r?.certificate?.boundSerialHex ? r : undefined;
      }, 'binding stored');
      const { boundAt, ...binding } = record!.certificate!;
      t.same(binding, { serialNumber: serial, boundSerialHex: info.serialHex, notAfter: info.notAfter.getTime(), commonName: serial }, 'binding kept and extended, with the CN it was issued for');
      t.ok(boundAt! > Date.now() - 60_000 && boundAt! <= Date.now(), 'with when the charger accepted it');
      const types = await waitFor(async () => {
        const ts = (await audit(identity)).map((e) => e.type);
        return ts.includes('certificate_bound') ? ts : undefined;
      }, 'audit of the binding');
      t.ok(types!.includes('certificate_issued') && types!.includes('certificate_bound'), `audit: ${types!.join(',')}`);
      t.notOk(JSON.stringify(await rig.store.readAudit(200)).includes('PRIVATE KEY'), 'no key material in the audit stream');
      t.same(rig.csmsSaw(identity, CERT_ACTIONS), [], 'CSMS saw none of these frames');
      await charger.close();
    });
  }

  t.test('bad CSRs and V2G requests are Rejected and nothing is delivered', async (t) => {
    const identity = 'CS-REJECT';
    await rig.addCharger(identity, { certificate: { serialNumber: 'SN-REJECT' } });
    const charger = strictCharger(rig, identity, 'ocpp2.0.1');
    const delivered: any[] = [];
    charger.handle('CertificateSigned', ({ params }: any) => { delivered.push(params); return { status: 'Accepted' }; });
    await charger.connect();
    const good = opensslCsr(rig.dir, { CN: 'SN-REJECT', O: 'Test CPO' });
    const cases: [string, Record<string, unknown>, string][] = [
      ['wrong CN', { csr: opensslCsr(rig.dir, { CN: 'SN-OTHER', O: 'Test CPO' }) }, 'csr_cn_mismatch'],
      ['wrong O', { csr: opensslCsr(rig.dir, { CN: 'SN-REJECT', O: 'Other CPO' }) }, 'csr_o_mismatch'],
      ['RSA 1024', { csr: opensslCsr(rig.dir, { CN: 'SN-REJECT', O: 'Test CPO' }, 'rsa-1024') }, 'csr_weak_key'],
      ['broken signature', { csr: breakSignature(good) }, 'csr_bad_signature'],
      ['not a CSR', { csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----' }, 'csr_unparsable'],
      ['V2G type', { csr: good, certificateType: 'V2GCertificate' }, 'v2g_unsupported'],
    ];
    for (const [label, request, reason] of cases) {
      const answer = await charger.call('SignCertificate', request);
      t.same(answer, { status: 'Rejected', statusInfo: { reasonCode: reason.slice(0, 20) } }, `${label} → Rejected (${reason})`);
    }
    await sleep(200);
    t.equal(delivered.length, 0, 'no CertificateSigned sent');
    t.same((await rig.store.getCharger(identity))!.certificate, { serialNumber: 'SN-REJECT' }, 'binding unchanged');
    const reasons = (await audit(identity)).filter((e) => e.type === 'csr_rejected').map((e) => e.detail?.reason);
    t.same(reasons.sort(), cases.map((c) => c[2]).sort(), 'every rejection audited with its reason');
    t.ok(counted.includes('rejected:csr_cn_mismatch') && counted.includes('signed:ok'), 'metrics hook called');
    t.same(rig.csmsSaw(identity, CERT_ACTIONS), [], 'CSMS saw none of these frames');
    await charger.close();
  });

  t.test('1.6 rejection has no statusInfo; unknown charger is Rejected', async (t) => {
    const charger = strictCharger(rig, 'CS-UNKNOWN', 'ocpp1.6');
    await charger.connect();
    t.same(await charger.call('SignCertificate', { csr: opensslCsr(rig.dir, { CN: 'CS-UNKNOWN', O: 'Test CPO' }) }), { status: 'Rejected' });
    t.ok((await audit('CS-UNKNOWN')).some((e) => e.detail?.reason === 'charger_unknown'), 'audited as charger_unknown');
    await charger.close();
  });

  t.test('retries: the same CSR is never signed twice; a new CSR supersedes', async (t) => {
    const identity = 'CS-RETRY';
    await rig.addCharger(identity, { certificate: { serialNumber: 'SN-RETRY' } });
    const charger = strictCharger(rig, identity, 'ocpp2.0.1');
    const delivered: string[] = [];
    let mode: 'slow' | 'fail' | 'ok' = 'slow';
    charger.handle('CertificateSigned', async ({ params }: any) => {
      delivered.push(certificateInfo(params.certificateChain).serialHex);
      if (mode === 'slow') await sleep(500);
      if (mode === 'fail') throw new Error('storage full');
      return { status: 'Accepted' };
    });
    await charger.connect();
    const csr = opensslCsr(rig.dir, { CN: 'SN-RETRY', O: 'Test CPO' });
    t.same(await charger.call('SignCertificate', { csr }), { status: 'Accepted' });
    await waitFor(() => delivered.length === 1, 'first delivery under way');
    t.same(await charger.call('SignCertificate', { csr }), { status: 'Accepted' }, 'repeat while delivering: Accepted');
    await sleep(700);
    t.equal(delivered.length, 1, 'no second delivery while the first was in flight');
    const issued = () => audit(identity).then((a) => a.filter((e) => e.type === 'certificate_issued'));
    t.equal((await issued()).length, 1, 'signed once');

    // Delivery fails (CALLERROR); the charger re-sends the same CSR: the same certificate comes again.
    const csr2 = opensslCsr(rig.dir, { CN: 'SN-RETRY', O: 'Test CPO' });
    mode = 'fail';
    t.same(await charger.call('SignCertificate', { csr: csr2 }), { status: 'Accepted' }, 'new key pair: signed');
    await waitFor(async () => (await audit(identity)).some((e) => e.type === 'certificate_delivery_failed'), 'delivery failure audited');
    mode = 'ok';
    t.same(await charger.call('SignCertificate', { csr: csr2 }), { status: 'Accepted' });
    await waitFor(() => delivered.length === 3, 'redelivered');
    t.equal(delivered[2], delivered[1], 'same certificate redelivered, not re-signed');
    t.not(delivered[1], delivered[0], 'the new CSR got a new certificate');
    t.equal((await issued()).length, 2, 'two certificates issued in all');
    const bound = await waitFor(async () => {
      const r = await rig.store.getCharger(identity);
      return r?.certificate?.boundSerialHex === delivered[2] ? r : undefined;
    }, 'newest bound');
    t.ok(bound, 'the newest accepted certificate is bound');
    t.same(rig.csmsSaw(identity, CERT_ACTIONS), [], 'CSMS saw none of these frames');
    await charger.close();
  });

  t.test('a repeated CSR is not answered with a certificate revoked, or issued for another CN, since', async (t) => {
    const identity = 'CS-REVOKED-REPEAT';
    await rig.addCharger(identity, { certificate: { serialNumber: 'SN-RR' } });
    const charger = strictCharger(rig, identity, 'ocpp2.0.1');
    const delivered: string[] = [];
    let fail = true;
    charger.handle('CertificateSigned', ({ params }: any) => {
      delivered.push(certificateInfo(params.certificateChain).serialHex);
      if (fail) throw new Error('storage full');
      return { status: 'Accepted' };
    });
    await charger.connect();
    const csr = opensslCsr(rig.dir, { CN: 'SN-RR', O: 'Test CPO' });
    t.same(await charger.call('SignCertificate', { csr }), { status: 'Accepted' });
    await waitFor(async () => (await audit(identity)).some((e) => e.type === 'certificate_delivery_failed'), 'the first delivery failed');
    await rig.store.revokeSerial(delivered[0]!); // the operator revokes it meanwhile
    fail = false;
    t.same(await charger.call('SignCertificate', { csr }), { status: 'Accepted' }, 'the same CSR again');
    await waitFor(() => delivered.length === 2, 'delivered');
    t.not(delivered[1], delivered[0], 'a new certificate, not the revoked one the charger would then be refused with');

    // The operator changes the charger's serial: the same CSR (old CN) is checked afresh, and refused.
    await rig.store.updateCharger(identity, { certificate: { serialNumber: 'SN-RR-2' } });
    const answer = await charger.call('SignCertificate', { csr });
    t.equal(answer.status, 'Rejected', 'a CSR for the CN the charger no longer has is refused, not answered from memory');
    t.equal(delivered.length, 2, 'nothing more delivered');
    await charger.close();
  });
});

t.test('the binding follows the certificate in use: one the proxy issued, whose Accepted was lost, is bound at its first login; an older one presented later is not', async (t) => {
  const signer = await CaSigner.load(TEST_PKI_DIR, { days: 365 });
  const rig: CertRig = await startCertRig(t, (store) => [certificateSigning({ store, signer, organization: 'Test CPO', deliveryTimeoutMs: 2000 })]);
  const identity = 'CS-IN-USE';
  const older = await rig.pki.charger('SN-IN-USE', { days: 10 }); // from the CA, not issued by the proxy: names no identity
  await rig.addCharger(identity, { certificate: { serialNumber: 'SN-IN-USE', boundSerialHex: older.serialHex, notAfter: older.notAfter.getTime() } });
  // On Profile 2 the charger gets a certificate, installs it, and its Accepted is lost (here: an error answer).
  const { csr, keyPem } = opensslKeyAndCsr(rig.dir, { CN: 'SN-IN-USE', O: 'Test CPO' });
  const p2 = strictCharger(rig, identity, 'ocpp2.0.1');
  let installed: string | null = null;
  p2.handle('CertificateSigned', ({ params }: any) => { installed = params.certificateChain; throw new Error('link dropped before the answer'); });
  await p2.connect();
  t.same(await p2.call('SignCertificate', { csr, certificateType: 'ChargingStationCertificate' }), { status: 'Accepted' });
  await waitFor(() => installed, 'CertificateSigned');
  await p2.close();
  const issued = certificateInfo(installed!);
  await sleep(200);
  t.equal((await rig.store.getCharger(identity))?.certificate?.boundSerialHex, older.serialHex, 'not bound: the proxy never heard the Accepted');

  const login = async (cert: { certPem: string; keyPem: string }) => {
    const charger = strictCharger(rig, identity, 'ocpp2.0.1', cert);
    await charger.connect();
    await sleep(200);
    await charger.close();
  };
  await login({ certPem: installed!, keyPem });
  const bound = await waitFor(async () => { const r = await rig.store.getCharger(identity); return r?.certificate?.boundSerialHex === issued.serialHex ? r : undefined; }, 'bound at its first login');
  t.same([bound!.certificate!.serialNumber, bound!.certificate!.notAfter, bound!.certificate!.commonName], ['SN-IN-USE', issued.notAfter.getTime(), 'SN-IN-USE'], 'serial kept, expiry and CN of the one in use');
  t.ok(await waitFor(async () => (await rig.store.readAudit(20)).some((e) => e.identity === identity && e.type === 'certificate_bound' && e.detail?.reason === 'in_use'), 'the binding audited (after its write)'), 'audited');
  await login(older);
  t.equal((await rig.store.getCharger(identity))?.certificate?.boundSerialHex, issued.serialHex, 'the older certificate presented later does not take the binding back');
});

t.test('without a signer every SignCertificate is Rejected', async (t) => {
  const rig = await startCertRig(t, (store) => [certificateSigning({ store, signer: null, organization: null })]);
  await rig.addCharger('CS-NOSIGNER');
  const charger = strictCharger(rig, 'CS-NOSIGNER', 'ocpp2.0.1');
  await charger.connect();
  t.same(await charger.call('SignCertificate', { csr: opensslCsr(rig.dir, { CN: 'CS-NOSIGNER' }) }), { status: 'Rejected', statusInfo: { reasonCode: 'no_signer' } });
  t.same(rig.csmsSaw('CS-NOSIGNER', CERT_ACTIONS), []);
  await charger.close();
});
