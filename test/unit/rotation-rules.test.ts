import t from 'tap';
import { rotationReason } from '../../policies/interceptors/rotation';
import { readConfigurationAnswer } from '../../policies/interceptors/rotation-messages';
import { settleRotation } from '../../policies/rotation-login';
import type { ChargerRecord, PendingPassword } from '../../proxy/store/types';

/** The pure rules of "never lock a charger out": what a login settles, and when a new password may be made. */

const HOUR = 3600_000;
const NOW = 1_800_000_000_000;
const GRACE = 24 * HOUR;

function record(o: { source?: ChargerRecord['passwordSource']; pending?: Partial<PendingPassword>; requestedAt?: number; lastAttemptAt?: number } = {}): ChargerRecord {
  return {
    identity: 'CP', minProfile: 2, status: 'active', createdAt: 0, updatedAt: 0,
    password: { scheme: 'hmac-sha256', hash: 'h', salt: 's' },
    passwordSource: o.source ?? 'operator', passwordSetAt: NOW - HOUR,
    ...(o.pending ? { pending: { encrypted: 'v1.x', createdAt: NOW - 2 * HOUR, attempt: 1, ...o.pending } } : {}),
    ...(o.requestedAt !== undefined || o.lastAttemptAt !== undefined ? { rotation: { requestedAt: o.requestedAt, lastAttemptAt: o.lastAttemptAt } } : {}),
  } as ChargerRecord;
}

t.test('settleRotation: what a login with each password means', async (t) => {
  const settle = (r: ChargerRecord, matched: 'current' | 'pending' | 'factory', now = NOW) => settleRotation(r, matched, now, GRACE);
  t.strictSame(settle(record({ pending: {} }), 'pending'), { admit: true, action: 'commit' }, 'the new password commits');
  t.strictSame(settle(record(), 'current'), { admit: true, action: 'none' }, 'no rotation: nothing to settle');
  t.strictSame(settle(record({ pending: {} }), 'current'), { admit: true, action: 'drop_pending' }, 'never sent (a crash before the send): the charger never saw it');
  t.strictSame(settle(record({ pending: { sentAt: NOW - HOUR } }), 'current'), { admit: true, action: 'none' }, 'sent, never answered: kept, the charger may have staged it for its reboot');
  const accepted = record({ pending: { acceptedAt: NOW - HOUR } });
  t.strictSame(settle(accepted, 'current'), { admit: true, action: 'none' }, 'accepted, within the grace period');
  t.strictSame(settle(accepted, 'current', NOW + GRACE), { admit: false, reason: 'password_superseded' }, 'accepted, grace over: refused (A01.FR.03)');
  // The factory password that is current follows the same rules (it used to stay valid for ever after an Accepted).
  const acceptedFactory = record({ source: 'factory', pending: { acceptedAt: NOW - HOUR } });
  t.strictSame(settle(acceptedFactory, 'factory'), { admit: true, action: 'none' }, 'factory password, accepted, within the grace period');
  t.strictSame(settle(acceptedFactory, 'factory', NOW + GRACE), { admit: false, reason: 'password_superseded' }, 'factory password, grace over: refused too');
  t.strictSame(settle(record({ source: 'factory', pending: {} }), 'factory'), { admit: true, action: 'drop_pending' }, 'factory password, never sent: dropped as any other');
  t.strictSame(settle(record({ pending: { acceptedAt: NOW - 2 * GRACE, rebootRequiredAt: NOW - HOUR } }), 'current'), { admit: true, action: 'none' }, 'accepted, then RebootRequired to a resend: the old password waits for the reboot');
  // RebootRequired: the charger keeps the old password until it reboots (A01.FR.04: only Accepted retires it).
  const reboot = record({ pending: { rebootRequiredAt: NOW - HOUR } });
  t.strictSame(settle(reboot, 'current'), { admit: true, action: 'none' }, 'awaiting its reboot: the old password, pending kept');
  t.strictSame(settle(reboot, 'current', NOW + 400 * GRACE), { admit: true, action: 'none' }, 'however long the reboot takes');
  t.strictSame(settleRotation(reboot, 'current', NOW, 0), { admit: true, action: 'none' }, 'strict mode (grace 0) too');
  t.strictSame(settle(reboot, 'pending'), { admit: true, action: 'commit' }, 'after the reboot the new one commits');
});

t.test('rotationReason: never a new password over one the charger took up', async (t) => {
  t.equal(rotationReason(record({ pending: { acceptedAt: NOW }, requestedAt: NOW, lastAttemptAt: NOW - HOUR }), 0, NOW), null, 'accepted pending + operator request: waits');
  t.equal(rotationReason(record({ pending: { rebootRequiredAt: NOW }, requestedAt: NOW, lastAttemptAt: NOW - HOUR }), 0, NOW), null, 'awaiting a reboot + operator request: waits');
  t.equal(rotationReason(record({ source: 'factory', pending: { acceptedAt: NOW } }), 0, NOW), null, 'accepted pending over a factory password: waits');
  t.equal(rotationReason(record({ pending: { sentAt: NOW }, requestedAt: NOW, lastAttemptAt: NOW - HOUR }), 0, NOW), 'operator_request', 'an unanswered pending + operator request (resends the same value)');
  t.equal(rotationReason(record({ pending: { sentAt: NOW } }), 0, NOW), 'resend_pending');
  t.equal(rotationReason(record({ requestedAt: NOW, lastAttemptAt: NOW - HOUR }), 0, NOW), 'operator_request', 'the request runs once nothing is taken up');
  t.equal(rotationReason(record({ requestedAt: NOW - HOUR, lastAttemptAt: NOW }), 0, NOW), 'operator_request',
    'a request still there is not served, though the admin host\'s clock put it before the last attempt (a served one is removed)');
  t.equal(rotationReason(record({ lastAttemptAt: NOW }), 0, NOW), 'operator_password', 'no request: the other reasons');
  t.equal(rotationReason(record({ source: 'factory' }), 0, NOW), 'factory_password');
  t.equal(rotationReason(record({ source: 'generated' }), HOUR / 2, NOW), 'password_age');
  t.equal(rotationReason(record({ source: 'generated' }), 0, NOW), null);
});

t.test('readConfigurationAnswer: RebootRequired is an acceptance that waits for a reboot', async (t) => {
  t.strictSame(readConfigurationAnswer('ocpp1.6', { kind: 'result', payload: { status: 'Accepted' } }), { accepted: true, rebootRequired: false });
  t.strictSame(readConfigurationAnswer('ocpp1.6', { kind: 'result', payload: { status: 'RebootRequired' } }), { accepted: true, rebootRequired: true });
  t.strictSame(readConfigurationAnswer('ocpp2.0.1', { kind: 'result', payload: { setVariableResult: [{ attributeStatus: 'RebootRequired' }] } }), { accepted: true, rebootRequired: true });
  t.strictSame(readConfigurationAnswer('ocpp2.0.1', { kind: 'result', payload: { setVariableResult: [{ attributeStatus: 'Rejected' }] } }), { accepted: false, status: 'Rejected' });
  t.strictSame(readConfigurationAnswer('ocpp1.6', { kind: 'error', code: 'NotImplemented', description: '', details: {} }), { accepted: false, status: 'callerror_NotImplemented' });
});
