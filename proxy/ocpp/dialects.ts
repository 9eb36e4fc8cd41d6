/**
 * Per-version shapes of the security messages the proxy answers or sends itself: certificate
 * signing (SignCertificate / CertificateSigned), renewal triggers, security-extension notifications
 * and the BootNotification serial number. Pure functions over plain payloads; 1.6 uses the names of
 * the security whitepaper (OCPP-SECURITY.md §5.1), 2.0.1 and 2.1 those of §5.2.
 *
 * Readers never throw: a payload of the wrong shape yields `{ problem }` with a short label.
 */

/** The OCPP family a subprotocol belongs to; `ocpp2.0` is read like 2.0.1. */
export type OcppDialect = '1.6' | '2.0.1' | '2.1';

/** Maps a negotiated subprotocol (`ocpp1.6`, `ocpp2.0.1`, ...) to its dialect, or null when unknown. */
export function dialectOf(subprotocol: string): OcppDialect | null {
  switch (subprotocol) {
    case 'ocpp1.6':
      return '1.6';
    case 'ocpp2.0':
    case 'ocpp2.0.1':
      return '2.0.1';
    case 'ocpp2.1':
      return '2.1';
    default:
      return null;
  }
}

/** A payload that could not be read, with a short label. */
export interface PayloadProblem {
  problem: string;
}

/** What a charger's SignCertificate asks for. */
export interface SignCertificateRequest {
  csr: string;
  /** 2.x only; absent means "for the CSMS connection (and 15118, if implemented)". */
  certificateType?: string;
  /** 2.1 only; to be echoed in CertificateSigned. */
  requestId?: number;
}

/** Certificate types that ask for an ISO 15118 (V2G) certificate rather than a charger one. */
const V2G_TYPES: ReadonlySet<string> = new Set(['V2GCertificate', 'V2G20Certificate']);
/** Every certificateType the 2.x schemas allow (V2G20Certificate is 2.1's). */
const CERTIFICATE_TYPES: ReadonlySet<string> = new Set(['ChargingStationCertificate', ...V2G_TYPES]);

/** True when a SignCertificate asks for a V2G (ISO 15118) certificate. */
export function isV2gRequest(req: SignCertificateRequest): boolean {
  return req.certificateType !== undefined && V2G_TYPES.has(req.certificateType);
}

/** Reads a SignCertificate payload; 1.6 has only `csr`. */
export function readSignCertificate(dialect: OcppDialect, payload: unknown): SignCertificateRequest | PayloadProblem {
  if (!isObject(payload) || typeof payload.csr !== 'string' || payload.csr.trim() === '') return { problem: 'csr_missing' };
  const req: SignCertificateRequest = { csr: payload.csr };
  if (dialect === '1.6') return req;
  if (payload.certificateType !== undefined) {
    // An unknown type is not signed as a charger certificate: echoed back in CertificateSigned, it
    // would break the schema there too.
    if (typeof payload.certificateType !== 'string' || !CERTIFICATE_TYPES.has(payload.certificateType)) return { problem: 'bad_certificate_type' };
    req.certificateType = payload.certificateType;
  }
  if (dialect === '2.1' && payload.requestId !== undefined) {
    if (!Number.isInteger(payload.requestId)) return { problem: 'bad_request_id' };
    req.requestId = payload.requestId as number;
  }
  return req;
}

/** Longest `statusInfo.reasonCode` the 2.x schemas allow. */
const REASON_CODE_MAX = 20;

/**
 * The SignCertificate answer. On 2.x a rejection carries `statusInfo.reasonCode` (the short reason
 * label, cut to the schema's 20 characters) so the station's log says why; 1.6 has only `status`.
 */
export function signCertificateAnswer(dialect: OcppDialect, status: 'Accepted' | 'Rejected', reason?: string): Record<string, unknown> {
  if (dialect === '1.6' || status === 'Accepted' || !reason) return { status };
  return { status, statusInfo: { reasonCode: reason.slice(0, REASON_CODE_MAX) } };
}

/**
 * The CertificateSigned request carrying `chainPem` (leaf first, then intermediates).
 * 2.x echoes `certificateType` when the request named one; 2.1 also echoes `requestId`.
 */
export function certificateSignedRequest(dialect: OcppDialect, chainPem: string, req: Omit<SignCertificateRequest, 'csr'> = {}): Record<string, unknown> {
  const payload: Record<string, unknown> = { certificateChain: chainPem };
  if (dialect === '1.6') return payload;
  if (req.certificateType !== undefined) payload.certificateType = req.certificateType;
  if (dialect === '2.1' && req.requestId !== undefined) payload.requestId = req.requestId;
  return payload;
}

/** Largest `certificateChain` the schemas of every version accept. */
export const MAX_CERTIFICATE_CHAIN_CHARS = 10_000;

/** Reads the `status` of an answer (CertificateSigned, TriggerMessage, ...); `{problem}` when absent. */
export function readStatus(payload: unknown): { status: string } | PayloadProblem {
  if (!isObject(payload) || typeof payload.status !== 'string') return { problem: 'status_missing' };
  return { status: payload.status };
}

/**
 * The call asking a charger to renew its certificate (A02): 1.6 ExtendedTriggerMessage
 * SignChargePointCertificate, 2.x TriggerMessage SignChargingStationCertificate.
 */
export function renewalTrigger(dialect: OcppDialect): { action: string; payload: Record<string, unknown> } {
  return dialect === '1.6'
    ? { action: 'ExtendedTriggerMessage', payload: { requestedMessage: 'SignChargePointCertificate' } }
    : { action: 'TriggerMessage', payload: { requestedMessage: 'SignChargingStationCertificate' } };
}

/** A SecurityEventNotification as reported. */
export interface SecurityEvent {
  type: string;
  timestamp: string;
  techInfo?: string;
}

/** Reads a SecurityEventNotification payload (same shape in every version). */
export function readSecurityEvent(payload: unknown): SecurityEvent | PayloadProblem {
  if (!isObject(payload) || typeof payload.type !== 'string' || payload.type === '') return { problem: 'type_missing' };
  if (typeof payload.timestamp !== 'string') return { problem: 'timestamp_missing' };
  const event: SecurityEvent = { type: payload.type, timestamp: payload.timestamp };
  if (typeof payload.techInfo === 'string') event.techInfo = payload.techInfo;
  return event;
}

/**
 * Notifications of the 1.6 security extension that a plain 1.6 CSMS does not know; each is
 * confirmed with an empty payload (OCPP-SECURITY.md §5.1).
 */
export const OCPP16_SECURITY_NOTIFICATIONS: readonly string[] = [
  'SecurityEventNotification',
  'SignedFirmwareStatusNotification',
  'LogStatusNotification',
];

/** The confirmation of any of those notifications: an empty object in every version. */
export function notificationAnswer(): Record<string, unknown> {
  return {};
}

/**
 * The serial number a BootNotification reports: 2.x `chargingStation.serialNumber`; 1.6
 * `chargeBoxSerialNumber`, else `chargePointSerialNumber`. Undefined when the charger sent none.
 */
export function bootSerialNumber(dialect: OcppDialect, payload: unknown): string | undefined {
  if (!isObject(payload)) return undefined;
  if (dialect === '1.6') {
    const v = payload.chargeBoxSerialNumber ?? payload.chargePointSerialNumber;
    return typeof v === 'string' ? v : undefined;
  }
  const station = payload.chargingStation;
  return isObject(station) && typeof station.serialNumber === 'string' ? station.serialNumber : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
