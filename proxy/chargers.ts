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
import { addressSpellings } from '../policies/brute-force';
import { addressKey, identityKey } from './store/counter-keys';
import type { AuditEvent, ChargerPatch, ChargerRecord, NewChargerRecord, OcppInterface, PendingPassword, ProfileUpgradeState, SecurityProfile } from './store/types';

import {
  ChargerAdminError, MAX_PASSWORD_BYTES, canonicalSerial, checkBackendPassword, checkBackendUsername, checkIdentity, checkPassword, checkText, notFound, parseProfile, viewCharger, viewLockout,
  type ImportLineError,
  type ChargerChanges, type ChargerInput, type ChargerView, type FactoryDefaultView, type ImportResult, type Mutation,
} from './chargers-model';
import { importText, readImportRows } from './chargers-import';

export * from './chargers-model';

/** Warned when `set --profile` raises the minimum: nothing checks that the charger can present it. */
const PROFILE_RAISED = 'the minimum profile is raised at once: this charger is refused on lower profiles from its next connection, configured for them or not; `chargers upgrade` moves a charger there first and raises the minimum once it arrives';

/** Warned when a password change drops a rotated value that had gone out to the charger. */
const ROTATED_VALUE_DROPPED = 'a rotated password had been sent to this charger and is now dropped: if the charger applied it, it is refused until it is configured with the password set here';

/** Warned when an import leaves a password cell unused (see `importCsv`). */
const ROTATED_PASSWORD_KEPT = 'password cell not used: the proxy has rotated this charger\'s password since (or is rotating it), and the charger holds that one; use `chargers set --password` to replace it';

/** A factory default's prefix or batch: printable, and without spaces around it (" ACME-" would match nothing). */
function matchText(value: string, what: string): string {
  const text = checkText(value, what);
  if (text !== value) throw new ChargerAdminError('bad_input', `the ${what} must not start or end with spaces`);
  return text;
}

/** Whether the charger's password is one the proxy generated, or one it is rotating to. */
function rotatedSince(rec: ChargerRecord | null): boolean {
  return !!rec && (rec.passwordSource === 'generated' || rec.pending !== undefined);
}

/** How far a dropped pending password had got, for the audit log. */
function pendingState(p: PendingPassword): string {
  if (p.acceptedAt !== undefined) return 'accepted';
  if (p.rebootRequiredAt !== undefined) return 'reboot_required';
  return p.sentAt !== undefined ? 'sent' : 'not_sent';
}

/** Warned when a charger that logs in with a password (Profile 1/2) is added without one. */
const NO_PASSWORD = 'no password: the charger cannot log in with Basic auth until one is set (set --password…, or PATCH password)';

/** Operator actions on chargers, factory defaults, revocations and the audit stream. */
export class ChargerAdmin {
  /**
   * @param creds the opened store and keys (`openCredentials`)
   * @param opts.actor recorded in audit events (`cli`, `admin-api`)
   * @param opts.servingProcess true when this runs inside the one process that admits chargers (the
   *   admin API of a proxy without workers: each worker has lockouts of its own with the embedded store)
   * @param opts.forgetLocalLockouts lifts the lockouts the serving process kept itself while the store refused writes
   */
  constructor(
    private readonly creds: Credentials,
    private readonly opts: { actor?: string; servingProcess?: boolean; forgetLocalLockouts?: (keys: readonly string[]) => void } = {},
  ) {}

  /**
   * Whether this process sees the brute-force lockouts the proxy acts on: always with Redis; with the
   * embedded store only inside the serving proxy, which keeps them in its own memory.
   */
  get lockoutsVisible(): boolean {
    return this.creds.store.kind === 'redis' || this.opts.servingProcess === true;
  }

  /** Registers a new charger. @throws ChargerAdminError (`already_exists`, `bad_identity`, password rules) */
  async add(input: ChargerInput): Promise<Mutation> {
    checkIdentity(input.identity);
    const warnings: string[] = [];
    const rec: NewChargerRecord = { identity: input.identity, minProfile: input.profile ?? 2, status: 'active' };
    await this.applyFields(rec, input, warnings);
    if (input.rotationDisabled === true) rec.rotation = { disabled: true };
    if (rec.password === undefined && rec.minProfile < 3) warnings.push(NO_PASSWORD);
    if (await this.creds.store.getCharger(input.identity)) throw new ChargerAdminError('already_exists', `charger ${input.identity} already exists`);
    // Create-only: one added (or enrolled) since the check above is not replaced.
    const saved = await this.creds.store.createCharger(rec);
    if (!saved) throw new ChargerAdminError('already_exists', `charger ${input.identity} already exists`);
    await this.audit_('charger_added', input.identity, { profile: saved.minProfile, password: saved.password !== undefined });
    return { charger: viewCharger(saved), warnings };
  }

  /** Changes fields of an existing charger. @throws ChargerAdminError `not_found` and input rules */
  async set(identity: string, changes: ChargerChanges): Promise<Mutation> {
    const current = await this.get(identity);
    const warnings: string[] = [];
    const patch: ChargerPatch = {};
    if (changes.password === null) Object.assign(patch, { password: null, passwordSource: null, passwordSetAt: null });
    if (changes.serial === null) patch.certificate = { serialNumber: null };
    if (changes.organization === null) patch.organization = null;
    if (changes.backendPassword === null) patch.backendCredentials = null;
    const fields: Partial<NewChargerRecord> = {};
    await this.applyFields(fields as NewChargerRecord, { ...changes, identity, password: changes.password ?? undefined, serial: changes.serial ?? undefined,
      organization: changes.organization ?? undefined, backendPassword: changes.backendPassword ?? undefined, backendUsername: changes.backendUsername ?? undefined }, warnings, current);
    Object.assign(patch, fields);
    if (changes.profile !== undefined) {
      patch.minProfile = parseProfile(changes.profile);
      if (patch.minProfile > current.minProfile) warnings.push(PROFILE_RAISED);
    }
    if (changes.rotationDisabled !== undefined) patch.rotation = { disabled: changes.rotationDisabled };
    // Setting or clearing the password ends a rotation in progress: a leaked password may be why, and
    // the pending value left behind would still admit the charger (and commit over the operator's).
    // Read again after the hashing above (tens of ms): a rotation may have started meanwhile.
    const dropped = changes.password !== undefined ? (await this.creds.store.getCharger(identity))?.pending ?? current.pending : undefined;
    if (dropped) {
      patch.pending = null;
      if (dropped.sentAt !== undefined) warnings.push(ROTATED_VALUE_DROPPED);
    }
    const saved = await this.update(identity, patch);
    const changed = Object.keys(changes).filter((k) => k !== 'allowShortPassword' && (changes as Record<string, unknown>)[k] !== undefined);
    await this.audit_('charger_updated', identity, { fields: changed, ...(dropped ? { pendingDropped: pendingState(dropped) } : {}) });
    return { charger: viewCharger(saved), warnings };
  }

  /** The redacted view of one charger, with its lockout where visible. @throws ChargerAdminError `not_found` */
  async show(identity: string): Promise<ChargerView> {
    if (!this.lockoutsVisible) return viewCharger(await this.get(identity));
    const read = await this.creds.store.readAdmission(identity);
    if (!read.record) throw notFound(identity);
    return { ...viewCharger(read.record), lockout: viewLockout(read.lockedUntil, read.failures) };
  }

  /**
   * Lifts the identity's brute-force lockout and clears its failed-login count, so the charger's next
   * login with the right password is admitted at once (its source address may still be locked: see
   * `unlockAddress`). @throws ChargerAdminError `not_found`, `lockouts_elsewhere`
   */
  async unlock(identity: string): Promise<ChargerView> {
    this.needLockouts(`POST /api/v1/chargers/${encodeURIComponent(identity)}/unlock`);
    const before = await this.show(identity);
    const key = identityKey(identity);
    await Promise.all([this.creds.store.setLockout(key, 0), this.creds.store.resetFailures(key)]);
    this.opts.forgetLocalLockouts?.([key]);
    await this.audit_('identity_unlocked', identity, { wasLockedUntil: before.lockout?.lockedUntil ?? null });
    return { ...before, lockout: viewLockout(0, 0) };
  }

  /**
   * Lifts a source address's brute-force lockout and clears its failed-login count (chargers behind
   * one NAT share an address). @throws ChargerAdminError `bad_input`, `lockouts_elsewhere`
   */
  async unlockAddress(address: string): Promise<{ address: string; wasLockedUntil: string | null }> {
    const spellings = addressSpellings(address);
    if (!spellings) throw new ChargerAdminError('bad_input', 'the address must be an IPv4 or IPv6 address');
    this.needLockouts(`POST /api/v1/addresses/${encodeURIComponent(spellings[0]!)}/unlock`);
    const keys = spellings.map(addressKey);
    const until = Math.max(...(await Promise.all(keys.map((k) => this.creds.store.getLockout(k)))));
    await Promise.all(keys.flatMap((k) => [this.creds.store.setLockout(k, 0), this.creds.store.resetFailures(k)]));
    this.opts.forgetLocalLockouts?.(keys);
    const wasLockedUntil = viewLockout(until, 0).lockedUntil;
    await this.audit_('address_unlocked', undefined, { address: spellings[0], wasLockedUntil });
    return { address: spellings[0]!, wasLockedUntil };
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
    // Field by field (see ChargerPatch); an operator request skips any back-off.
    const saved = await this.update(identity, { rotation: { requestedAt: Date.now(), nextAttemptAt: null } });
    await this.audit_('rotation_requested', identity);
    return viewCharger(saved);
  }

  /**
   * Asks the proxy to move the charger up to `target` (2 or 3). `ocppInterface` is the network
   * interface a 2.x charger's new connection profile names (default: `Any` on 2.1, `Wired0` on
   * 2.0.1; unused for 1.6, whose switch names no interface). Parse it with `parseOcppInterface`.
   */
  async requestProfileUpgrade(identity: string, target: SecurityProfile, network?: OcppInterface): Promise<ChargerView> {
    const profile = parseProfile(target);
    const current = await this.get(identity);
    if (profile <= current.minProfile) throw new ChargerAdminError('bad_input', `charger ${identity} already requires profile ${current.minProfile}; the target must be higher`);
    const state = current.profileUpgrade;
    // The same switch already accepted and waiting for the charger's reboot: sending it again would
    // reboot the charger once more (and on 2.x write the profile again). Cancel first to resend.
    if (current.targetProfile === profile && state?.lastResult === 'accepted' && state.ocppInterface === network) {
      throw new ChargerAdminError('upgrade_already_sent', `charger ${identity} accepted the switch to profile ${profile}${state.sentAt ? ` at ${new Date(state.sentAt).toISOString()}` : ''} and has not taken it yet (a 2.x charger takes it at its next reboot); cancel the upgrade first to send it again`);
    }
    // A request starts over: failures, back-off and a given-up attempt are forgotten (and a live
    // session sees by `requestedAt` that it is a new request, even for the same target). It keeps
    // the slot an earlier attempt wrote: no slot is taken per request.
    const next: ProfileUpgradeState = { requestedAt: Date.now() };
    if (network) next.ocppInterface = network;
    if (state?.slot !== undefined) next.slot = state.slot;
    const saved = await this.update(identity, { targetProfile: profile, profileUpgrade: next });
    await this.audit_('profile_upgrade_requested', identity, { from: current.minProfile, to: profile, ...(network ? { ocppInterface: network } : {}) });
    return viewCharger(saved);
  }

  /** Withdraws a requested profile upgrade (the proxy stops asking the charger to switch). @throws ChargerAdminError `not_found` */
  async cancelProfileUpgrade(identity: string): Promise<ChargerView> {
    const current = await this.get(identity);
    if (current.targetProfile === undefined && current.profileUpgrade === undefined) return viewCharger(current); // nothing to withdraw
    const saved = await this.update(identity, { targetProfile: null, profileUpgrade: null });
    await this.audit_('profile_upgrade_cancelled', identity, { target: current.targetProfile ?? null });
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
   * cells (an empty cell leaves the field as it is), except a password cell of a charger whose
   * password the proxy has rotated since (a warning says so). A file must be UTF-8.
   */
  async importCsv(file: Buffer | string, opts: { allowShortPasswords?: boolean } = {}): Promise<ImportResult> {
    const rows = readImportRows(typeof file === 'string' ? file : importText(file), opts.allowShortPasswords === true);
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
    let withoutPassword = 0;
    for (const { line: _line, ...row } of rows) {
      const exists = existing.get(row.identity) !== null;
      // Re-running a file (as after a failure mid-way) must not undo rotations made since: the
      // charger holds the rotated password, and the file's would lock it out.
      if (exists && row.password !== undefined && rotatedSince(await this.creds.store.getCharger(row.identity))) {
        delete row.password;
        result.warnings.push(`${row.identity}: ${ROTATED_PASSWORD_KEPT}`);
      }
      const m = exists ? await this.set(row.identity, row) : await this.add(row);
      (exists ? result.updated : result.created).push(row.identity);
      result.warnings.push(...m.warnings.filter((w) => w !== NO_PASSWORD).map((w) => `${row.identity}: ${w}`));
      if (m.warnings.includes(NO_PASSWORD)) withoutPassword++;
    }
    if (withoutPassword > 0) result.warnings.push(`${withoutPassword} charger(s) added without a password: they cannot log in with Basic auth until one is set`);
    await this.audit_('chargers_imported', undefined, { created: result.created.length, updated: result.updated.length });
    return result;
  }

  /** Registers a factory default password for an identity prefix and/or a batch label; returns its id. */
  async addFactoryDefault(match: { prefix?: string; batch?: string }, password: Buffer): Promise<string> {
    const clean = { ...(match.prefix ? { prefix: matchText(match.prefix, 'prefix') } : {}), ...(match.batch ? { batch: matchText(match.batch, 'batch') } : {}) };
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

  private needLockouts(apiCall: string): void {
    if (this.lockoutsVisible) return;
    throw new ChargerAdminError('lockouts_elsewhere', 'the embedded store keeps lockouts in the memory of each proxy process that serves it, '
      + `out of reach of this command: use the admin API of a single-process proxy (${apiCall}), or restart the proxy; with workers, use Redis`);
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
    // On an existing charger only the serial changes: the store merges `certificate` field by field.
    if (input.serial !== undefined) rec.certificate = { serialNumber: checkText(input.serial, 'serial') };
    if (input.organization !== undefined) rec.organization = checkText(input.organization, 'organization');
    if (input.reportOnly !== undefined) rec.reportOnly = input.reportOnly;
    const username = input.backendUsername !== undefined ? checkBackendUsername(input.backendUsername) : undefined;
    if (input.backendPassword !== undefined) {
      checkBackendPassword(input.backendPassword);
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
