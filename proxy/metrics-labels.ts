/**
 * Label clamps for every Prometheus label the proxy sets.
 *
 * Each metric series costs memory in the proxy and in Prometheus for as long as it exists, so a label
 * value must come from a small, known set. Every function here maps an arbitrary input to such a set:
 * known values pass (sometimes normalised), anything else becomes {@link OTHER}. A charger identity,
 * address, password or free text can therefore never become a label value.
 */

/** The value every clamp returns for input outside its known set. */
export const OTHER = 'other';

/** Which way a relayed frame travelled. */
export const DIRECTIONS = ['charger_to_csms', 'csms_to_charger'] as const;
/** OCPP-J message types by number, 2..6 in order (2.1 adds callresulterror and send). */
export const MESSAGE_TYPES = ['call', 'callresult', 'callerror', 'callresulterror', 'send'] as const;

const REASON_PATTERN = /^[a-z0-9_]{1,40}$/;

/**
 * Clamps a short reason label (`bad_password`, `timeout`, `http_status`...): lower-case letters,
 * digits and `_`, 1 to 40 characters. Anything else (spaces, upper case, long text) is "other".
 * Reason labels come from our own code (error `reason` fields), so the set stays bounded in practice;
 * the pattern stops free text (an error message, a peer-supplied string) from slipping through.
 */
export function reasonLabel(value: unknown): string {
  return typeof value === 'string' && REASON_PATTERN.test(value) ? value : OTHER;
}

/**
 * Returns `value` if it is one of `allowed`, else "other". Numbers are compared as their decimal text
 * (so a profile `2` matches `"2"`).
 */
export function enumLabel<const A extends readonly string[]>(value: unknown, allowed: A): A[number] | typeof OTHER {
  const text = typeof value === 'number' ? String(value) : value;
  return typeof text === 'string' && (allowed as readonly string[]).includes(text) ? (text as A[number]) : OTHER;
}

/** Security profiles as label values. */
export const PROFILES = ['0', '1', '2', '3'] as const;

/** Clamps a security profile (number or string) to "0".."3" or "other". */
export function profileLabel(value: unknown): string {
  return enumLabel(value, PROFILES);
}

/** WebSocket subprotocols of published OCPP versions (OCPP-SECURITY.md §1.5). */
export const OCPP_SUBPROTOCOLS = ['ocpp1.2', 'ocpp1.5', 'ocpp1.6', 'ocpp2.0', 'ocpp2.0.1', 'ocpp2.1'] as const;

/** Clamps a negotiated subprotocol to a known OCPP version string, else "other". */
export function ocppVersionLabel(value: unknown): string {
  return enumLabel(value, OCPP_SUBPROTOCOLS);
}

/**
 * OCPP actions the proxy itself sends (injected calls) or may answer locally. A charger can send any
 * action text, so only names in this list become label values.
 */
export const KNOWN_ACTIONS = [
  // 1.6 core and security whitepaper
  'BootNotification', 'ChangeConfiguration', 'GetConfiguration', 'TriggerMessage', 'ExtendedTriggerMessage',
  'Heartbeat', 'DataTransfer', 'Reset', 'SignCertificate', 'CertificateSigned', 'InstallCertificate',
  'DeleteCertificate', 'GetInstalledCertificateIds', 'SecurityEventNotification', 'SignedUpdateFirmware',
  'SignedFirmwareStatusNotification', 'GetLog', 'LogStatusNotification',
  // 2.0.1 / 2.1
  'SetVariables', 'GetVariables', 'SetNetworkProfile', 'GetBaseReport', 'NotifyReport', 'Get15118EVCertificate',
  'GetCertificateStatus', 'GetCertificateChainStatus', 'StatusNotification',
] as const;

/** Clamps an OCPP action name to {@link KNOWN_ACTIONS}, else "other". */
export function actionLabel(value: unknown): string {
  return enumLabel(value, KNOWN_ACTIONS);
}

const OPERATION_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

/**
 * Clamps a store operation name (a method name of the credential store, e.g. `getCharger`). Method
 * names are fixed by our code; the pattern keeps out anything that is not an identifier.
 */
export function operationLabel(value: unknown): string {
  return typeof value === 'string' && OPERATION_PATTERN.test(value) ? value : OTHER;
}

/**
 * Standard `SecurityEventNotification.type` names (OCPP-SECURITY.md §6): the 1.6 security whitepaper
 * names and the 2.0.1 / 2.1 names. Both spellings are kept as they are, because chargers mix them
 * (libocpp sends 2.x names on 1.6).
 */
export const SECURITY_EVENT_TYPES = [
  'FirmwareUpdated',
  'FailedToAuthenticateAtCentralSystem', 'FailedToAuthenticateAtCsms',
  'CentralSystemFailedToAuthenticate', 'CsmsFailedToAuthenticate',
  'SettingSystemTime', 'StartupOfTheDevice', 'ResetOrReboot', 'SecurityLogWasCleared',
  'ReconfigurationOfSecurityParameters', 'MemoryExhaustion', 'InvalidMessages', 'AttemptedReplayAttacks',
  'TamperDetectionActivated', 'InvalidFirmwareSignature', 'InvalidFirmwareSigningCertificate',
  'InvalidCentralSystemCertificate', 'InvalidCsmsCertificate',
  'InvalidChargePointCertificate', 'InvalidChargingStationCertificate',
  'InvalidTLSVersion', 'InvalidTLSCipherSuite',
  'MaintenanceLoginAccepted', 'MaintenanceLoginFailed', 'DiscardedRenewedClientCertificate',
] as const;

/** Lower-cased, whitespace-free key -> canonical name, so "Invalid TLS Version" still matches. */
const SECURITY_EVENT_BY_KEY = new Map<string, string>(
  SECURITY_EVENT_TYPES.map((name) => [name.toLowerCase(), name]),
);

/**
 * Maps a charger-supplied security event type to a bounded label: any standard 1.6 or 2.x name
 * (either spelling; case and whitespace ignored, as the 1.6 whitepaper's first edition had spaces in
 * some names) becomes its canonical spelling, anything else (vendor events, garbage) becomes "other".
 */
export function securityEventTypeLabel(type: string): string {
  if (typeof type !== 'string' || type.length > 60) return OTHER;
  return SECURITY_EVENT_BY_KEY.get(type.replace(/\s+/g, '').toLowerCase()) ?? OTHER;
}
