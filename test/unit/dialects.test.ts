import t, { type Test } from 'tap';
import { createValidator } from 'ocpp-rpc';
import {
  bootSerialNumber, certificateSignedRequest, dialectOf, isV2gRequest, notificationAnswer, OCPP16_SECURITY_NOTIFICATIONS,
  readSecurityEvent, readSignCertificate, readStatus, renewalTrigger, signCertificateAnswer, type OcppDialect,
} from '../../proxy/ocpp/dialects';

/** The official schemas ocpp-rpc ships, one validator per version. */
const validators = {
  '1.6': createValidator('ocpp1.6', require('ocpp-rpc/lib/schemas/ocpp1_6.json')),
  '2.0.1': createValidator('ocpp2.0.1', require('ocpp-rpc/lib/schemas/ocpp2_0_1.json')),
  '2.1': createValidator('ocpp2.1', require('ocpp-rpc/lib/schemas/ocpp2_1.json')),
} as const;

/** Schema id of a message in a version (2.1 names them `XRequest`/`XResponse`). */
function schemaId(dialect: OcppDialect, action: string, kind: 'req' | 'conf'): string {
  if (dialect === '2.1') return `urn:${action}${kind === 'req' ? 'Request' : 'Response'}`;
  return `urn:${action}.${kind}`;
}

function valid(t: Test, dialect: OcppDialect, action: string, kind: 'req' | 'conf', payload: unknown): void {
  t.doesNotThrow(() => (validators[dialect] as any).validate(schemaId(dialect, action, kind), payload), `${dialect} ${action}.${kind} ${JSON.stringify(payload).slice(0, 60)}`);
}

const CHAIN = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const ALL: OcppDialect[] = ['1.6', '2.0.1', '2.1'];

t.test('dialectOf maps subprotocols', async (t) => {
  t.equal(dialectOf('ocpp1.6'), '1.6');
  t.equal(dialectOf('ocpp2.0'), '2.0.1');
  t.equal(dialectOf('ocpp2.0.1'), '2.0.1');
  t.equal(dialectOf('ocpp2.1'), '2.1');
  t.equal(dialectOf('ocpp1.5'), null);
  t.equal(dialectOf(''), null);
});

t.test('every message the proxy builds validates against the official schemas', async (t) => {
  for (const d of ALL) {
    valid(t, d, 'SignCertificate', 'conf', signCertificateAnswer(d, 'Accepted'));
    valid(t, d, 'SignCertificate', 'conf', signCertificateAnswer(d, 'Rejected', 'csr_cn_mismatch'));
    valid(t, d, 'SignCertificate', 'conf', signCertificateAnswer(d, 'Rejected', 'a_very_long_reason_label_beyond_twenty'));
    valid(t, d, 'CertificateSigned', 'req', certificateSignedRequest(d, CHAIN));
    const trig = renewalTrigger(d);
    valid(t, d, trig.action, 'req', trig.payload);
    valid(t, d, 'SecurityEventNotification', 'conf', notificationAnswer());
  }
  for (const d of ['2.0.1', '2.1'] as const) {
    valid(t, d, 'CertificateSigned', 'req', certificateSignedRequest(d, CHAIN, { certificateType: 'ChargingStationCertificate' }));
  }
  valid(t, '2.1', 'CertificateSigned', 'req', certificateSignedRequest('2.1', CHAIN, { certificateType: 'ChargingStationCertificate', requestId: 7 }));
  for (const action of OCPP16_SECURITY_NOTIFICATIONS) valid(t, '1.6', action, 'conf', notificationAnswer());
});

t.test('builders carry exactly the fields of each version', async (t) => {
  t.same(certificateSignedRequest('1.6', CHAIN, { certificateType: 'ChargingStationCertificate', requestId: 3 }), { certificateChain: CHAIN }, '1.6: chain only');
  t.same(certificateSignedRequest('2.0.1', CHAIN, { certificateType: 'ChargingStationCertificate', requestId: 3 }),
    { certificateChain: CHAIN, certificateType: 'ChargingStationCertificate' }, '2.0.1: no requestId');
  t.same(certificateSignedRequest('2.1', CHAIN, { requestId: 3 }), { certificateChain: CHAIN, requestId: 3 }, '2.1: echoes requestId');
  t.same(signCertificateAnswer('1.6', 'Rejected', 'csr_weak_key'), { status: 'Rejected' }, '1.6 has no statusInfo');
  t.same(signCertificateAnswer('2.0.1', 'Rejected', 'a_very_long_reason_label_beyond_twenty'),
    { status: 'Rejected', statusInfo: { reasonCode: 'a_very_long_reason_l' } }, 'reasonCode cut to 20');
  t.same(renewalTrigger('1.6'), { action: 'ExtendedTriggerMessage', payload: { requestedMessage: 'SignChargePointCertificate' } });
  t.same(renewalTrigger('2.1'), { action: 'TriggerMessage', payload: { requestedMessage: 'SignChargingStationCertificate' } });
});

t.test('readSignCertificate', async (t) => {
  t.same(readSignCertificate('1.6', { csr: 'X', certificateType: 'V2GCertificate' }), { csr: 'X' }, '1.6 ignores 2.x fields');
  t.same(readSignCertificate('2.0.1', { csr: 'X', certificateType: 'V2GCertificate', requestId: 1 }), { csr: 'X', certificateType: 'V2GCertificate' });
  t.same(readSignCertificate('2.1', { csr: 'X', certificateType: 'V2G20Certificate', requestId: 9 }), { csr: 'X', certificateType: 'V2G20Certificate', requestId: 9 });
  t.same(readSignCertificate('2.0.1', {}), { problem: 'csr_missing' });
  t.same(readSignCertificate('2.0.1', { csr: '   ' }), { problem: 'csr_missing' });
  t.same(readSignCertificate('1.6', null), { problem: 'csr_missing' });
  t.same(readSignCertificate('2.0.1', { csr: 'X', certificateType: 5 }), { problem: 'bad_certificate_type' });
  t.same(readSignCertificate('2.0.1', { csr: 'X', certificateType: 'ManufacturerRootCertificate' }), { problem: 'bad_certificate_type' }, 'a type the schema does not have');
  t.same(readSignCertificate('2.1', { csr: 'X', certificateType: 'V2G20Certificate' }), { csr: 'X', certificateType: 'V2G20Certificate' });
  t.same(readSignCertificate('2.1', { csr: 'X', requestId: 1.5 }), { problem: 'bad_request_id' });
  t.ok(isV2gRequest({ csr: 'X', certificateType: 'V2GCertificate' }));
  t.ok(isV2gRequest({ csr: 'X', certificateType: 'V2G20Certificate' }));
  t.notOk(isV2gRequest({ csr: 'X', certificateType: 'ChargingStationCertificate' }));
  t.notOk(isV2gRequest({ csr: 'X' }), 'absent type = charging station certificate');
});

t.test('readStatus, readSecurityEvent, bootSerialNumber', async (t) => {
  t.same(readStatus({ status: 'Accepted' }), { status: 'Accepted' });
  t.same(readStatus({}), { problem: 'status_missing' });
  t.same(readStatus('x'), { problem: 'status_missing' });
  t.same(readSecurityEvent({ type: 'TamperDetectionActivated', timestamp: '2025-01-01T00:00:00Z', techInfo: 'lid' }),
    { type: 'TamperDetectionActivated', timestamp: '2025-01-01T00:00:00Z', techInfo: 'lid' });
  t.same(readSecurityEvent({ type: 'CSRGenerationFailed', timestamp: 'x' }), { type: 'CSRGenerationFailed', timestamp: 'x' }, 'unknown types accepted');
  t.same(readSecurityEvent({ timestamp: 'x' }), { problem: 'type_missing' });
  t.same(readSecurityEvent({ type: 'X' }), { problem: 'timestamp_missing' });
  t.equal(bootSerialNumber('2.0.1', { reason: 'PowerUp', chargingStation: { vendorName: 'A', model: 'B', serialNumber: 'SN1' } }), 'SN1');
  t.equal(bootSerialNumber('2.1', { chargingStation: { vendorName: 'A', model: 'B' } }), undefined);
  t.equal(bootSerialNumber('1.6', { chargePointVendor: 'A', chargePointModel: 'B', chargeBoxSerialNumber: 'BOX', chargePointSerialNumber: 'CP' }), 'BOX');
  t.equal(bootSerialNumber('1.6', { chargePointVendor: 'A', chargePointModel: 'B', chargePointSerialNumber: 'CP' }), 'CP');
  t.equal(bootSerialNumber('2.0.1', null), undefined);
});
