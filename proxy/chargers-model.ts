/**
 * The operator-facing model of a charger: inputs, the redacted view, errors and the checks every
 * operator path (CLI, admin API, CSV import) applies.
 */
import { OCPP_INTERFACES, type ChargerRecord, type OcppInterface, type ProfileUpgradeState, type SecurityProfile } from './store/types';
import { isValidIdentity } from '../policies/gates/identity';
import { normaliseSerial, SerialError } from '../certs';

/** Reason labels of {@link ChargerAdminError}. */
export type ChargerAdminReason =
  | 'not_found' | 'already_exists' | 'bad_identity' | 'bad_input'
  | 'password_too_short' | 'password_too_long' | 'rotation_disabled' | 'import_invalid' | 'lockouts_elsewhere' | 'upgrade_already_sent';

/** One rejected line of a CSV import. */
export interface ImportLineError { line: number; message: string }

/** A refused operator action. Messages name the charger or field, never a secret. */
export class ChargerAdminError extends Error {
  constructor(readonly reason: ChargerAdminReason, message: string, readonly lines: ImportLineError[] = []) {
    super(message);
    this.name = 'ChargerAdminError';
  }
}

/** Shortest / longest operator password in bytes (OCPP-SECURITY.md: 1.6 16..20 bytes, 2.x 16..40/64 chars). */
export const MIN_PASSWORD_BYTES = 16;
export const MAX_PASSWORD_BYTES = 64;

/** Fields of a new charger. */
export interface ChargerInput {
  identity: string;
  password?: Buffer;
  /** Minimum security profile; default 2 (TLS + Basic auth). */
  profile?: SecurityProfile;
  /** Charger serial number = expected CN of its client certificate (Profile 3). */
  serial?: string;
  organization?: string;
  /** Basic username towards the CSMS; defaults to the identity when `backendPassword` is given. */
  backendUsername?: string;
  backendPassword?: Buffer;
  reportOnly?: boolean;
  /** Never rotate this charger's password automatically (one that mishandles the change, say). */
  rotationDisabled?: boolean;
  /** Accept a password shorter than 16 bytes (with a warning). */
  allowShortPassword?: boolean;
}

/** Changes to an existing charger: absent = unchanged, `null` = remove. */
export interface ChargerChanges {
  password?: Buffer | null;
  profile?: SecurityProfile;
  serial?: string | null;
  organization?: string | null;
  backendUsername?: string | null;
  backendPassword?: Buffer | null;
  reportOnly?: boolean;
  rotationDisabled?: boolean;
  allowShortPassword?: boolean;
}

/** A charger as operators see it: state and timestamps (ISO 8601), no secret material. */
export interface ChargerView {
  identity: string;
  status: 'active' | 'blocked';
  minProfile: SecurityProfile;
  targetProfile: SecurityProfile | null;
  hasPassword: boolean;
  passwordSource: string | null;
  passwordSetAt: string | null;
  /**
   * A rotation in flight: when the new password was stored, sent, accepted (or answered
   * RebootRequired: the charger switches to it when it reboots), and which attempt.
   */
  pending: { since: string; sent: string | null; accepted: string | null; rebootRequired: string | null; attempt: number } | null;
  rotation: { disabled: boolean; requestedAt: string | null; lastAttemptAt: string | null; nextAttemptAt: string | null; failures: number; lastResult: string | null };
  /**
   * The profile upgrade toward `targetProfile`: when it was asked for, when the switch was last sent
   * (and whether the charger answered that it applies it at its next reboot), how the last attempt went (`accepted`, a refusal, `not_reached`, `gave_up`...), the failures so
   * far, when the next attempt may start, the 2.x interface asked for (null: the default, `Any` on
   * 2.1 and `Wired0` on 2.0.1) and the configuration slot written.
   */
  profileUpgrade: {
    requestedAt: string | null; sentAt: string | null; awaitsReboot: boolean; lastResult: string | null; failures: number;
    nextAttemptAt: string | null; ocppInterface: OcppInterface | null; slot: number | null;
  } | null;
  boot: { state: string; at: string | null } | null;
  certificate: { serialNumber: string | null; expectedCn: string | null; boundSerialHex: string | null; notAfter: string | null } | null;
  organization: string | null;
  backend: { username: string; hasPassword: boolean } | null;
  reportOnly: boolean;
  lastSeen: string | null;
  createdAt: string;
  updatedAt: string;
  /**
   * The brute-force lockout of this identity and its failed logins in the current window. Only in
   * `show` and `unlock`, and absent where this process cannot see them (see `lockoutsVisible`).
   */
  lockout?: LockoutView;
}

/** A lockout as operators see it. */
export interface LockoutView { lockedUntil: string | null; recentFailures: number }

/** Outcome of a mutation that may carry non-fatal warnings (e.g. a short password allowed). */
export interface Mutation { charger: ChargerView; warnings: string[] }

/** Outcome of `importCsv`. */
export interface ImportResult { created: string[]; updated: string[]; warnings: string[] }

/** A factory default as listed (no hash). */
export interface FactoryDefaultView { id: string; match: { prefix?: string; batch?: string }; createdAt: string }

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Strips a record down to what an operator may see. */
export function viewCharger(r: ChargerRecord): ChargerView {
  const rot = r.rotation ?? {};
  const c = r.certificate;
  return {
    identity: r.identity,
    status: r.status,
    minProfile: r.minProfile,
    targetProfile: r.targetProfile ?? null,
    hasPassword: r.password !== undefined,
    passwordSource: r.passwordSource ?? null,
    passwordSetAt: iso(r.passwordSetAt),
    pending: r.pending ? { since: iso(r.pending.createdAt)!, sent: iso(r.pending.sentAt), accepted: iso(r.pending.acceptedAt), rebootRequired: iso(r.pending.rebootRequiredAt), attempt: r.pending.attempt } : null,
    rotation: { disabled: rot.disabled === true, requestedAt: iso(rot.requestedAt), lastAttemptAt: iso(rot.lastAttemptAt), nextAttemptAt: iso(rot.nextAttemptAt), failures: rot.failures ?? 0, lastResult: rot.lastResult ?? null },
    profileUpgrade: viewProfileUpgrade(r.profileUpgrade),
    boot: r.bootState ? { state: r.bootState, at: iso(r.bootAt) } : null,
    certificate: c ? { serialNumber: c.serialNumber ?? null, expectedCn: c.expectedCn ?? null, boundSerialHex: c.boundSerialHex ?? null, notAfter: iso(c.notAfter) } : null,
    organization: r.organization ?? null,
    backend: r.backendCredentials ? { username: r.backendCredentials.username, hasPassword: true } : null,
    reportOnly: r.reportOnly === true,
    lastSeen: iso(r.lastSeenAt),
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

function viewProfileUpgrade(u: ProfileUpgradeState | undefined): ChargerView['profileUpgrade'] {
  if (!u) return null;
  return { requestedAt: iso(u.requestedAt), sentAt: iso(u.sentAt), awaitsReboot: u.awaitsReboot === true, lastResult: u.lastResult ?? null, failures: u.failures ?? 0, nextAttemptAt: iso(u.nextAttemptAt), ocppInterface: u.ocppInterface ?? null, slot: u.slot ?? null };
}

/** Validates a 2.x network interface name (SetNetworkProfile `ocppInterface`). @throws ChargerAdminError bad_input */
export function parseOcppInterface(value: unknown): OcppInterface {
  const known = OCPP_INTERFACES as readonly string[];
  if (typeof value === 'string' && known.includes(value)) return value as OcppInterface;
  throw new ChargerAdminError('bad_input', `ocppInterface must be one of ${OCPP_INTERFACES.join(', ')}`);
}

/** The view of a lockout read from the store (`until` in ms epoch, 0 or past = not locked). */
export function viewLockout(until: number, failures: number, now = Date.now()): LockoutView {
  return { lockedUntil: until > now ? new Date(until).toISOString() : null, recentFailures: failures };
}

/** Validates a profile given as number or text. @throws ChargerAdminError bad_input */
export function parseProfile(value: unknown): SecurityProfile {
  const n = typeof value === 'string' && /^[123]$/.test(value.trim()) ? Number(value) : value;
  if (n !== 1 && n !== 2 && n !== 3) throw new ChargerAdminError('bad_input', 'profile must be 1, 2 or 3');
  return n;
}

export function notFound(identity: string): ChargerAdminError {
  return new ChargerAdminError('not_found', `no charger with identity ${identity}`);
}

export function checkIdentity(identity: unknown): asserts identity is string {
  if (typeof identity !== 'string' || !isValidIdentity(identity)) {
    throw new ChargerAdminError('bad_identity', 'an identity is 1..48 characters of A-Z a-z 0-9 * - _ = + | @ .');
  }
}

export function checkPassword(pw: Buffer, allowShort: boolean, warnings: string[]): void {
  if (!Buffer.isBuffer(pw) || pw.length === 0) throw new ChargerAdminError('bad_input', 'the password is empty');
  if (pw.length > MAX_PASSWORD_BYTES) throw new ChargerAdminError('password_too_long', `the password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  if (pw.length < MIN_PASSWORD_BYTES) {
    const msg = `the password is shorter than the OCPP minimum of ${MIN_PASSWORD_BYTES} bytes`;
    if (!allowShort) throw new ChargerAdminError('password_too_short', `${msg} (allow it explicitly for a legacy charger: --allow-short-password in the chargers CLI, allowShortPassword (allowShortPasswords for an import) in the admin API)`);
    warnings.push(msg);
  }
}

export function checkText(value: unknown, what: string): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.trim() === '' || value.length > 255 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new ChargerAdminError('bad_input', `the ${what} must be 1..255 printable characters`);
  }
  return value.trim();
}

/** A Basic username towards the CSMS: printable text without ":" (which would split it). */
export function checkBackendUsername(value: unknown): string {
  const username = checkText(value, 'backend username');
  if (username.includes(':')) throw new ChargerAdminError('bad_input', 'the backend username must not contain ":"');
  return username;
}

/** A password towards the CSMS: 1..256 bytes. */
export function checkBackendPassword(value: Buffer): Buffer {
  if (value.length === 0 || value.length > 256) throw new ChargerAdminError('bad_input', 'the backend password must be 1..256 bytes');
  return value;
}

export function canonicalSerial(serial: string): string {
  try {
    return normaliseSerial(serial);
  } catch (err) {
    if (err instanceof SerialError) throw new ChargerAdminError('bad_input', err.message);
    throw err;
  }
}
