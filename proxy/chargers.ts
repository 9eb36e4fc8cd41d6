/**
 * Operator management of chargers over the credential store: the one service behind both the
 * `chargers` CLI and the admin HTTP API, so the two cannot disagree.
 *
 * Rules it enforces:
 * - identities must be valid OCPP identities (policies/gates/identity.ts);
 * - operator passwords are hashed with scrypt (source `operator`); a password shorter than 16 bytes
 *   (the OCPP minimum for 1.6 AuthorizationKey and 2.x BasicAuthPassword) is **rejected** unless the
 *   caller passes `allowShortPassword`, which turns the refusal into a warning (for legacy chargers
 *   already configured with a short password); longer than 64 bytes is always rejected;
 * - back-end (CSMS) passwords are sealed with the server secret, bound to the identity;
 * - what leaves this service ({@link ChargerView}) never holds a hash, salt or sealed value;
 * - every mutation appends an audit event (never with a secret in it).
 * Rotation and profile-upgrade requests are only recorded here; the running proxy acts on them.
 */
import type { Credentials } from './store-setup';
import type { AuditEvent, ChargerPatch, ChargerRecord, NewChargerRecord, RotationState, SecurityProfile } from './store/types';
import { isValidIdentity } from '../policies/gates/identity';
import { normaliseSerial, SerialError } from '../certs';
import { parseCsv, CsvError } from './csv';

/** Reason labels of {@link ChargerAdminError}. */
export type ChargerAdminReason =
  | 'not_found' | 'already_exists' | 'bad_identity' | 'bad_input'
  | 'password_too_short' | 'password_too_long' | 'rotation_disabled' | 'import_invalid';

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
  /** A rotation in flight: when the new password was stored, sent, accepted, and which attempt. */
  pending: { since: string; sent: string | null; accepted: string | null; attempt: number } | null;
  rotation: { disabled: boolean; requestedAt: string | null; nextAttemptAt: string | null; failures: number; lastResult: string | null };
  boot: { state: string; at: string | null } | null;
  certificate: { serialNumber: string | null; expectedCn: string | null; boundSerialHex: string | null; notAfter: string | null } | null;
  organization: string | null;
  backend: { username: string; hasPassword: boolean } | null;
  reportOnly: boolean;
  lastSeen: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Rotation bookkeeping plus the operator's request time (read by the rotation interceptor). */
export type RotationIntent = RotationState & { requestedAt?: number };

/** Outcome of a mutation that may carry non-fatal warnings (e.g. a short password allowed). */
export interface Mutation { charger: ChargerView; warnings: string[] }

/** Outcome of `importCsv`. */
export interface ImportResult { created: string[]; updated: string[]; warnings: string[] }

/** A factory default as listed (no hash). */
export interface FactoryDefaultView { id: string; match: { prefix?: string; batch?: string }; createdAt: string }

const CSV_COLUMNS = ['identity', 'password', 'profile', 'serial', 'organization', 'backend_username', 'backend_password'] as const;
const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Strips a record down to what an operator may see. */
export function viewCharger(r: ChargerRecord): ChargerView {
  const rot = (r.rotation ?? {}) as RotationIntent;
  const c = r.certificate;
  return {
    identity: r.identity,
    status: r.status,
    minProfile: r.minProfile,
    targetProfile: r.targetProfile ?? null,
    hasPassword: r.password !== undefined,
    passwordSource: r.passwordSource ?? null,
    passwordSetAt: iso(r.passwordSetAt),
    pending: r.pending ? { since: iso(r.pending.createdAt)!, sent: iso(r.pending.sentAt), accepted: iso(r.pending.acceptedAt), attempt: r.pending.attempt } : null,
    rotation: { disabled: rot.disabled === true, requestedAt: iso(rot.requestedAt), nextAttemptAt: iso(rot.nextAttemptAt), failures: rot.failures ?? 0, lastResult: rot.lastResult ?? null },
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

/** Validates a profile given as number or text. @throws ChargerAdminError bad_input */
export function parseProfile(value: unknown): SecurityProfile {
  const n = typeof value === 'string' && /^[123]$/.test(value.trim()) ? Number(value) : value;
  if (n !== 1 && n !== 2 && n !== 3) throw new ChargerAdminError('bad_input', 'profile must be 1, 2 or 3');
  return n;
}

/** Operator actions on chargers, factory defaults, revocations and the audit stream. */
export class ChargerAdmin {
  /**
   * @param creds the opened store and keys (`openCredentials`)
   * @param opts.actor recorded in audit events (`cli`, `admin-api`)
   */
  constructor(private readonly creds: Credentials, private readonly opts: { actor?: string } = {}) {}

  /** Registers a new charger. @throws ChargerAdminError (`already_exists`, `bad_identity`, password rules) */
  async add(input: ChargerInput): Promise<Mutation> {
    checkIdentity(input.identity);
    const warnings: string[] = [];
    const rec: NewChargerRecord = { identity: input.identity, minProfile: input.profile ?? 2, status: 'active' };
    await this.applyFields(rec, input, warnings);
    if (await this.creds.store.getCharger(input.identity)) throw new ChargerAdminError('already_exists', `charger ${input.identity} already exists`);
    const saved = await this.creds.store.putCharger(rec);
    await this.audit_('charger_added', input.identity, { profile: saved.minProfile, password: saved.password !== undefined });
    return { charger: viewCharger(saved), warnings };
  }

  /** Changes fields of an existing charger. @throws ChargerAdminError `not_found` and input rules */
  async set(identity: string, changes: ChargerChanges): Promise<Mutation> {
    const current = await this.get(identity);
    const warnings: string[] = [];
    const patch: ChargerPatch = {};
    if (changes.password === null) Object.assign(patch, { password: null, passwordSource: null, passwordSetAt: null });
    if (changes.serial === null) patch.certificate = stripSerial(current);
    if (changes.organization === null) patch.organization = null;
    if (changes.backendPassword === null) patch.backendCredentials = null;
    const fields: Partial<NewChargerRecord> = {};
    await this.applyFields(fields as NewChargerRecord, { ...changes, identity, password: changes.password ?? undefined, serial: changes.serial ?? undefined,
      organization: changes.organization ?? undefined, backendPassword: changes.backendPassword ?? undefined, backendUsername: changes.backendUsername ?? undefined }, warnings, current);
    Object.assign(patch, fields);
    if (changes.profile !== undefined) patch.minProfile = parseProfile(changes.profile);
    if (changes.rotationDisabled !== undefined) patch.rotation = { ...current.rotation, disabled: changes.rotationDisabled };
    const saved = await this.update(identity, patch);
    const changed = Object.keys(changes).filter((k) => k !== 'allowShortPassword' && (changes as Record<string, unknown>)[k] !== undefined);
    await this.audit_('charger_updated', identity, { fields: changed });
    return { charger: viewCharger(saved), warnings };
  }

  /** The redacted view of one charger. @throws ChargerAdminError `not_found` */
  async show(identity: string): Promise<ChargerView> {
    return viewCharger(await this.get(identity));
  }

  /** One page of chargers in identity order. */
  async list(opts: { cursor?: string; limit?: number } = {}): Promise<{ items: ChargerView[]; cursor?: string }> {
    const page = await this.creds.store.listChargers(opts);
    return { items: page.items.map(viewCharger), ...(page.cursor !== undefined ? { cursor: page.cursor } : {}) };
  }

  /** Refuses the charger at its next connection attempt (live sessions are closed by the proxy). */
  async block(identity: string): Promise<ChargerView> {
    const saved = await this.update(identity, { status: 'blocked' });
    await this.audit_('charger_blocked', identity);
    return viewCharger(saved);
  }

  async unblock(identity: string): Promise<ChargerView> {
    const saved = await this.update(identity, { status: 'active' });
    await this.audit_('charger_unblocked', identity);
    return viewCharger(saved);
  }

  /** Deletes the charger. @throws ChargerAdminError `not_found` */
  async remove(identity: string): Promise<void> {
    if (!(await this.creds.store.removeCharger(identity))) throw notFound(identity);
    this.creds.cache.invalidate(identity);
    await this.audit_('charger_removed', identity);
  }

  /** Asks the proxy to rotate this charger's password at its next opportunity. */
  async requestRotation(identity: string): Promise<ChargerView> {
    const current = await this.get(identity);
    if (current.rotation?.disabled) throw new ChargerAdminError('rotation_disabled', `rotation is disabled for charger ${identity}; enable it first`);
    const rotation: RotationIntent = { ...current.rotation, requestedAt: Date.now() };
    delete rotation.nextAttemptAt; // an operator request skips any back-off
    const saved = await this.update(identity, { rotation });
    await this.audit_('rotation_requested', identity);
    return viewCharger(saved);
  }

  /** Asks the proxy to move the charger up to `target` (2 or 3). */
  async requestProfileUpgrade(identity: string, target: SecurityProfile): Promise<ChargerView> {
    const profile = parseProfile(target);
    const current = await this.get(identity);
    if (profile <= current.minProfile) throw new ChargerAdminError('bad_input', `charger ${identity} already requires profile ${current.minProfile}; the target must be higher`);
    const saved = await this.update(identity, { targetProfile: profile });
    await this.audit_('profile_upgrade_requested', identity, { from: current.minProfile, to: profile });
    return viewCharger(saved);
  }

  /** Switches automatic rotation off (true) or on (false) for one charger. */
  async setRotationDisabled(identity: string, disabled: boolean): Promise<ChargerView> {
    return (await this.set(identity, { rotationDisabled: disabled })).charger;
  }

  /**
   * Imports chargers from CSV (header row required; columns identity,password,profile,serial,
   * organization,backend_username,backend_password in any order, only `identity` mandatory).
   * Every line is checked first: any error ⇒ nothing is written and a `import_invalid` error lists
   * every bad line. Then new identities are added and existing ones updated with the non-empty
   * cells (an empty cell leaves the field as it is).
   */
  async importCsv(text: string, opts: { allowShortPasswords?: boolean } = {}): Promise<ImportResult> {
    const rows = readImportRows(text, opts.allowShortPasswords === true);
    // Second check against the store, still before any write: a backend username alone needs stored backend credentials.
    const existing = new Map<string, ChargerRecord | null>();
    const errors: ImportLineError[] = [];
    for (const row of rows) {
      const rec = await this.creds.store.getCharger(row.identity);
      existing.set(row.identity, rec);
      if (row.backendUsername !== undefined && row.backendPassword === undefined && !rec?.backendCredentials) {
        errors.push({ line: row.line, message: 'a backend username needs a backend password' });
      }
    }
    if (errors.length > 0) throw new ChargerAdminError('import_invalid', `${errors.length} bad line(s); nothing was imported`, errors);
    const result: ImportResult = { created: [], updated: [], warnings: [] };
    for (const { line: _line, ...row } of rows) {
      const exists = existing.get(row.identity) !== null;
      const m = exists ? await this.set(row.identity, row) : await this.add(row);
      (exists ? result.updated : result.created).push(row.identity);
      result.warnings.push(...m.warnings.map((w) => `${row.identity}: ${w}`));
    }
    await this.audit_('chargers_imported', undefined, { created: result.created.length, updated: result.updated.length });
    return result;
  }

  /** Registers a factory default password for an identity prefix and/or a batch label; returns its id. */
  async addFactoryDefault(match: { prefix?: string; batch?: string }, password: Buffer): Promise<string> {
    const clean = { ...(match.prefix ? { prefix: match.prefix } : {}), ...(match.batch ? { batch: match.batch } : {}) };
    if (!clean.prefix && !clean.batch) throw new ChargerAdminError('bad_input', 'a factory default needs a prefix or a batch');
    if (!Buffer.isBuffer(password) || password.length === 0 || password.length > MAX_PASSWORD_BYTES) throw new ChargerAdminError('bad_input', `the factory password must be 1..${MAX_PASSWORD_BYTES} bytes`);
    const id = await this.creds.store.addFactoryDefault(clean, await this.creds.hasher.hashOperator(password));
    await this.audit_('factory_default_added', undefined, { id, ...clean });
    return id;
  }

  async listFactoryDefaults(): Promise<FactoryDefaultView[]> {
    return (await this.creds.store.listFactoryDefaults()).map((f) => ({ id: f.id, match: f.match, createdAt: new Date(f.createdAt).toISOString() }));
  }

  async removeFactoryDefault(id: string): Promise<void> {
    if (!(await this.creds.store.removeFactoryDefault(id))) throw new ChargerAdminError('not_found', `no factory default with id ${id}`);
    await this.audit_('factory_default_removed', undefined, { id });
  }

  /** Revokes a certificate serial (any common spelling); returns the canonical serial. */
  async revoke(serial: string, reason?: string): Promise<string> {
    const hex = canonicalSerial(serial);
    await this.creds.store.revokeSerial(hex, reason);
    await this.audit_('certificate_revoked', undefined, { serialHex: hex, ...(reason ? { reason } : {}) });
    return hex;
  }

  async unrevoke(serial: string): Promise<string> {
    const hex = canonicalSerial(serial);
    if (!(await this.creds.store.unrevokeSerial(hex))) throw new ChargerAdminError('not_found', `serial ${hex} is not revoked`);
    await this.audit_('certificate_unrevoked', undefined, { serialHex: hex });
    return hex;
  }

  async listRevoked(): Promise<{ serialHex: string; reason: string | null; at: string }[]> {
    return (await this.creds.store.listRevoked()).map((r) => ({ serialHex: r.serialHex, reason: r.reason ?? null, at: new Date(r.at).toISOString() }));
  }

  /** The newest `limit` audit events (1..1000), newest first. */
  async audit(limit = 50): Promise<(Omit<AuditEvent, 'at'> & { at: string })[]> {
    const n = Math.min(Math.max(Math.trunc(limit) || 50, 1), 1000);
    return (await this.creds.store.readAudit(n)).map((e) => ({ ...e, at: new Date(e.at).toISOString() }));
  }

  private async get(identity: string): Promise<ChargerRecord> {
    const rec = await this.creds.store.getCharger(identity);
    if (!rec) throw notFound(identity);
    return rec;
  }

  private async update(identity: string, patch: ChargerPatch): Promise<ChargerRecord> {
    const saved = await this.creds.store.updateCharger(identity, patch);
    if (!saved) throw notFound(identity);
    this.creds.cache.invalidate(identity);
    return saved;
  }

  /** Validates and writes the secret-bearing and optional fields of `input` onto `rec`. */
  private async applyFields(rec: NewChargerRecord, input: ChargerInput, warnings: string[], current?: ChargerRecord): Promise<void> {
    if (input.profile !== undefined) rec.minProfile = parseProfile(input.profile);
    if (input.password !== undefined) {
      checkPassword(input.password, input.allowShortPassword === true, warnings);
      rec.password = await this.creds.hasher.hashOperator(input.password);
      rec.passwordSource = 'operator';
      rec.passwordSetAt = Date.now();
    }
    if (input.serial !== undefined) rec.certificate = { ...current?.certificate, serialNumber: checkText(input.serial, 'serial') };
    if (input.organization !== undefined) rec.organization = checkText(input.organization, 'organization');
    if (input.reportOnly !== undefined) rec.reportOnly = input.reportOnly;
    const username = input.backendUsername !== undefined ? checkText(input.backendUsername, 'backend username') : undefined;
    if (username?.includes(':')) throw new ChargerAdminError('bad_input', 'the backend username must not contain ":"');
    if (input.backendPassword !== undefined) {
      if (input.backendPassword.length === 0 || input.backendPassword.length > 256) throw new ChargerAdminError('bad_input', 'the backend password must be 1..256 bytes');
      rec.backendCredentials = { username: username ?? current?.backendCredentials?.username ?? input.identity, passwordEncrypted: this.creds.sealer.seal(input.backendPassword, input.identity) };
    } else if (username !== undefined) {
      if (!current?.backendCredentials) throw new ChargerAdminError('bad_input', 'a backend username needs a backend password');
      rec.backendCredentials = { ...current.backendCredentials, username };
    }
  }

  private async audit_(type: string, identity: string | undefined, detail: Record<string, unknown> = {}): Promise<void> {
    await this.creds.store.appendAudit({ type, ...(identity !== undefined ? { identity } : {}), detail: { actor: this.opts.actor ?? 'operator', ...detail } });
  }
}

function notFound(identity: string): ChargerAdminError {
  return new ChargerAdminError('not_found', `no charger with identity ${identity}`);
}

function checkIdentity(identity: unknown): asserts identity is string {
  if (typeof identity !== 'string' || !isValidIdentity(identity)) {
    throw new ChargerAdminError('bad_identity', 'an identity is 1..48 characters of A-Z a-z 0-9 * - _ = + | @ .');
  }
}

function checkPassword(pw: Buffer, allowShort: boolean, warnings: string[]): void {
  if (!Buffer.isBuffer(pw) || pw.length === 0) throw new ChargerAdminError('bad_input', 'the password is empty');
  if (pw.length > MAX_PASSWORD_BYTES) throw new ChargerAdminError('password_too_long', `the password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  if (pw.length < MIN_PASSWORD_BYTES) {
    const msg = `the password is shorter than the OCPP minimum of ${MIN_PASSWORD_BYTES} bytes`;
    if (!allowShort) throw new ChargerAdminError('password_too_short', `${msg} (allow it explicitly for a legacy charger)`);
    warnings.push(msg);
  }
}

function checkText(value: unknown, what: string): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.trim() === '' || value.length > 255 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new ChargerAdminError('bad_input', `the ${what} must be 1..255 printable characters`);
  }
  return value.trim();
}

function stripSerial(rec: ChargerRecord): ChargerPatch['certificate'] {
  if (!rec.certificate) return null;
  const rest = { ...rec.certificate };
  delete rest.serialNumber;
  return Object.keys(rest).length > 0 ? rest : null;
}

function canonicalSerial(serial: string): string {
  try {
    return normaliseSerial(serial);
  } catch (err) {
    if (err instanceof SerialError) throw new ChargerAdminError('bad_input', err.message);
    throw err;
  }
}

/** Parses and validates every import line (no hashing yet); throws one error listing all bad lines. */
function readImportRows(text: string, allowShort: boolean): (ChargerInput & { line: number })[] {
  let rows;
  try {
    rows = parseCsv(text);
  } catch (err) {
    if (err instanceof CsvError) throw new ChargerAdminError('import_invalid', err.message, [{ line: err.line, message: err.message }]);
    throw err;
  }
  const header = rows.shift();
  const names = header?.fields.map((f) => f.trim().toLowerCase()) ?? [];
  // Unknown columns are named by position only: a missing header means line 1 may hold a password.
  const unknown = names.flatMap((n, i) => ((CSV_COLUMNS as readonly string[]).includes(n) ? [] : [String(i + 1)]));
  if (!header || !names.includes('identity') || unknown.length > 0 || new Set(names).size !== names.length) {
    const message = `the first line must be a header naming columns among ${CSV_COLUMNS.join(',')} (identity required, no repeats)` + (unknown.length ? `; unknown column(s) at position ${unknown.join(', ')}` : '');
    throw new ChargerAdminError('import_invalid', message, [{ line: header?.line ?? 1, message }]);
  }
  const errors: ImportLineError[] = [];
  const seen = new Map<string, number>();
  const out: (ChargerInput & { line: number })[] = [];
  for (const row of rows) {
    const cell = (n: string) => { const i = names.indexOf(n); return i < 0 ? '' : (row.fields[i] ?? '').trim(); };
    try {
      if (row.fields.length !== names.length) throw new ChargerAdminError('bad_input', `expected ${names.length} fields, found ${row.fields.length}`);
      const identity = cell('identity');
      checkIdentity(identity);
      const first = seen.get(identity);
      if (first !== undefined) throw new ChargerAdminError('bad_input', `identity ${identity} already appears on line ${first}`);
      seen.set(identity, row.line);
      const input: ChargerInput & { line: number } = { line: row.line, identity, allowShortPassword: allowShort };
      const pw = row.fields[names.indexOf('password')]; // passwords keep their spaces
      if (pw) { input.password = Buffer.from(pw, 'utf8'); checkPassword(input.password, allowShort, []); }
      if (cell('profile')) input.profile = parseProfile(cell('profile'));
      if (cell('serial')) input.serial = checkText(cell('serial'), 'serial');
      if (cell('organization')) input.organization = checkText(cell('organization'), 'organization');
      if (cell('backend_username')) input.backendUsername = checkText(cell('backend_username'), 'backend username');
      const bpw = row.fields[names.indexOf('backend_password')];
      if (bpw) input.backendPassword = Buffer.from(bpw, 'utf8');
      out.push(input);
    } catch (err) {
      if (!(err instanceof ChargerAdminError)) throw err;
      errors.push({ line: row.line, message: err.message });
    }
  }
  if (errors.length > 0) throw new ChargerAdminError('import_invalid', `${errors.length} bad line(s); nothing was imported`, errors);
  return out;
}
