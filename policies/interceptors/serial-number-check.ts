import type { Logger } from 'pino';
import { bootSerialNumber, dialectOf } from '../../proxy/ocpp/dialects';
import type { CredentialStore } from '../../proxy/store/types';
import { admissionFacts } from '../gates/facts';
import { duplicateKeyIn } from '../../proxy/ocpp/duplicate-keys';
import type { ChargerCallDecision, InterceptorFactory, SessionApi } from './types';

/** Dependencies of {@link serialNumberCheck}. */
export interface SerialNumberCheckDeps {
  /** Config `checkSerialNumber` (default on). */
  enabled: boolean;
  /** Where mismatches are audited; optional so the check works without a store. */
  store?: CredentialStore;
  /** Accepted for symmetry with the other factories; per-session lines go to `session.log`. */
  log?: Logger;
  /** Apply the rule to 1.6 (`chargeBoxSerialNumber`) too; the specification has it for 2.x only. Default false. */
  alsoOcpp16?: boolean;
  /** Treat a BootNotification without a serial number as a mismatch. Default false (the field is optional). */
  requireSerialNumber?: boolean;
}

/** Close code used on a mismatch: policy violation (RFC 6455 §7.4.1). */
export const SERIAL_MISMATCH_CLOSE_CODE = 1008;

/**
 * OCPP 2.x B01.FR.11/12: on Security Profile 3 the BootNotification's
 * `chargingStation.serialNumber` must equal the client certificate's CN, else the connection is
 * closed. The mismatching BootNotification never reaches the CSMS. Sessions without an admitted
 * certificate (Profile 1/2) are not checked.
 */
export function serialNumberCheck(deps: SerialNumberCheckDeps): InterceptorFactory {
  return (session) => {
    if (!deps.enabled || session.profile !== 3) return undefined;
    const dialect = dialectOf(session.subprotocol);
    const cert = admissionFacts(session.facts)?.certificate;
    if (!dialect || !cert || (dialect === '1.6' && !deps.alsoOcpp16)) return undefined;
    return {
      name: 'serial-number-check',
      onChargerCall(s, call, raw) {
        if (call.action !== 'BootNotification') return undefined;
        // Forwarded byte for byte: with a key twice, the CSMS's parser may read the other serial number.
        const duplicate = duplicateKeyIn(raw.toString());
        if (duplicate !== null) return refuse(s, { reason: 'duplicate_key', key: duplicate, commonName: cert.commonName, serialHex: cert.serialHex });
        const serialNumber = bootSerialNumber(dialect, call.payload);
        if (serialNumber === undefined && !deps.requireSerialNumber) {
          s.log.warn({ event: 'serial_number_unchecked', reason: 'serial_number_missing', commonName: cert.commonName });
          return undefined;
        }
        if (serialNumber === cert.commonName) return undefined;
        return refuse(s, { reason: 'serial_number_mismatch', serialNumber: serialNumber ?? null, commonName: cert.commonName, serialHex: cert.serialHex });
      },
    };
  };

  /** Audits, closes the session, and keeps the BootNotification from the CSMS. */
  function refuse(s: SessionApi, detail: Record<string, unknown> & { reason: string }): ChargerCallDecision {
    s.log.warn({ event: 'boot_refused', ...detail });
    const type = detail.reason === 'duplicate_key' ? 'serial_number_ambiguous' : 'serial_number_mismatch';
    deps.store?.appendAudit({ type, identity: s.identity, detail })
      .catch((err: unknown) => s.log.error({ event: 'audit_failed', type, err: String(err) }));
    s.close(SERIAL_MISMATCH_CLOSE_CODE, detail.reason);
    // Not sent (the session is closed); keeps the CSMS from ever seeing the BootNotification.
    return { error: { code: 'SecurityError', description: 'BootNotification refused: its serial number is not the certificate\'s' } };
  }
}
