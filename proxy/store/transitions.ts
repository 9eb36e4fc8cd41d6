/**
 * Pure state transitions on charger records, shared by both store implementations so they behave
 * identically. Each returns the new record, or null when the transition does not apply (the caller
 * then changes nothing). Inputs are never mutated.
 */
import { StoreError } from './errors';
import type { ChargerPatch, ChargerRecord, NewChargerRecord, PasswordHash, PendingPassword, PendingPatch, RotationPatch, RotationState } from './types';

/** Longest identity accepted (OCPP 2.x: 48; leave headroom for 1.6 deployments). */
export const MAX_IDENTITY_LENGTH = 255;

/** Reject identities that cannot be valid OCPP identities or would break storage keys. */
export function checkIdentity(identity: unknown): asserts identity is string {
  if (typeof identity !== 'string' || identity.length === 0 || identity.length > MAX_IDENTITY_LENGTH) {
    throw new StoreError('store_invalid_input', 'charger identity must be a non-empty string of at most 255 characters');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(identity)) {
    throw new StoreError('store_invalid_input', 'charger identity must not contain control characters');
  }
}

/** Build the stored form of a put: keeps an existing `createdAt`, stamps `updatedAt`. */
export function applyPut(existing: ChargerRecord | null, input: NewChargerRecord, now: number): ChargerRecord {
  checkIdentity(input.identity);
  if (input.minProfile !== 1 && input.minProfile !== 2 && input.minProfile !== 3) {
    throw new StoreError('store_invalid_input', 'minProfile must be 1, 2 or 3');
  }
  if (input.status !== 'active' && input.status !== 'blocked') {
    throw new StoreError('store_invalid_input', "status must be 'active' or 'blocked'");
  }
  const rec = clean({ ...input }) as ChargerRecord;
  rec.createdAt = existing?.createdAt ?? input.createdAt ?? now;
  rec.updatedAt = now;
  return rec;
}

/** Apply a patch: `null` removes a field, `undefined` leaves it. */
export function applyPatch(rec: ChargerRecord, patch: ChargerPatch, now: number): ChargerRecord {
  const next: Record<string, unknown> = { ...rec };
  for (const [k, v] of Object.entries(patch)) {
    if (k === 'identity' || k === 'createdAt' || k === 'updatedAt' || v === undefined) continue;
    if (v === null) delete next[k];
    else if (k === 'rotation' || k === 'certificate') next[k] = mergeFields(rec[k], v as Record<string, unknown>);
    else next[k] = v;
  }
  const out = clean(next) as unknown as ChargerRecord;
  if (out.minProfile !== 1 && out.minProfile !== 2 && out.minProfile !== 3) {
    throw new StoreError('store_invalid_input', 'minProfile must be 1, 2 or 3');
  }
  out.updatedAt = now;
  return out;
}

/** `rotation` or `certificate` patched field by field (see ChargerPatch); undefined (dropped by clean) when nothing is left. */
function mergeFields<T extends object>(current: T | undefined, patch: Record<string, unknown>): T | undefined {
  const next: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  return Object.keys(next).length > 0 ? (next as T) : undefined;
}

/**
 * Rotation write-ahead: store a pending entry where there is none; null (nothing written) when one
 * is there. Whoever wrote that one may have sent it already (another session of the same charger
 * that read the record at the same moment), so the charger may hold it: a new value would leave it
 * with a password the store no longer knows. A pending entry is resent, never replaced.
 */
export function applySetPending(rec: ChargerRecord, pending: PendingPassword, now: number): ChargerRecord | null {
  if (!pending || typeof pending.encrypted !== 'string' || !Number.isFinite(pending.createdAt)) {
    throw new StoreError('store_invalid_input', 'pending password needs `encrypted` and a numeric `createdAt`');
  }
  if (rec.pending) return null;
  return { ...rec, pending: clean({ ...pending }) as PendingPassword, updatedAt: now };
}

/** Patch the pending entry if it is still the one created at `expectedCreatedAt`. */
export function applyUpdatePending(
  rec: ChargerRecord,
  expectedCreatedAt: number,
  patch: PendingPatch,
  now: number,
): ChargerRecord | null {
  if (!rec.pending || rec.pending.createdAt !== expectedCreatedAt) return null;
  const pending: PendingPassword = { ...rec.pending };
  if (patch.sentAt === null) delete pending.sentAt;
  else if (patch.sentAt !== undefined) pending.sentAt = patch.sentAt;
  if (patch.acceptedAt !== undefined) pending.acceptedAt = patch.acceptedAt;
  if (patch.rebootRequiredAt !== undefined) pending.rebootRequiredAt = patch.rebootRequiredAt;
  if (patch.attempt !== undefined) pending.attempt = patch.attempt;
  return { ...rec, pending, updatedAt: now };
}

/** Drop the pending entry (only the expected one when `expectedCreatedAt` is given). */
export function applyDropPending(rec: ChargerRecord, expectedCreatedAt: number | undefined, now: number): ChargerRecord | null {
  if (!rec.pending) return null;
  if (expectedCreatedAt !== undefined && rec.pending.createdAt !== expectedCreatedAt) return null;
  const next = { ...rec, updatedAt: now };
  delete next.pending;
  return next;
}

/** Make the pending password current and drop the pending entry, if it is the expected one. */
export function applyCommitPending(
  rec: ChargerRecord,
  newHash: PasswordHash,
  expectedCreatedAt: number,
  at: number,
  now: number,
): ChargerRecord | null {
  if (!rec.pending || rec.pending.createdAt !== expectedCreatedAt) return null;
  if (!newHash || typeof newHash.hash !== 'string' || typeof newHash.salt !== 'string') {
    throw new StoreError('store_invalid_input', 'commitPending needs a password hash');
  }
  const next: ChargerRecord = { ...rec, password: newHash, passwordSource: 'generated', passwordSetAt: at, updatedAt: now };
  delete next.pending;
  return next;
}

/** The charger answered Accepted or RebootRequired to this pending password: it holds it, or will after a reboot. */
export function isTakenUp(pending: PendingPassword | undefined): boolean {
  return pending !== undefined && (pending.acceptedAt !== undefined || pending.rebootRequiredAt !== undefined);
}

/** Drop undefined-valued keys so records round-trip through JSON unchanged. */
function clean<T extends object>(obj: T): T {
  for (const k of Object.keys(obj) as (keyof T)[]) if (obj[k] === undefined) delete obj[k];
  return obj;
}

/** Default and maximum page sizes of listChargers. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return 100;
  return Math.max(1, Math.min(1000, Math.floor(limit)));
}

/** A factory default needs at least one non-empty matcher. */
export function checkMatch(match: { prefix?: string; batch?: string }): { prefix?: string; batch?: string } {
  const out: { prefix?: string; batch?: string } = {};
  if (typeof match?.prefix === 'string' && match.prefix !== '') out.prefix = match.prefix;
  if (typeof match?.batch === 'string' && match.batch !== '') out.batch = match.batch;
  if (!out.prefix && !out.batch) {
    throw new StoreError('store_invalid_input', 'factory default needs an identity prefix or a batch label');
  }
  return out;
}

/** Serials are stored as given, but must be non-empty strings. */
export function checkSerial(serialHex: string): void {
  if (typeof serialHex !== 'string' || serialHex.length === 0 || serialHex.length > 128) {
    throw new StoreError('store_invalid_input', 'certificate serial must be a non-empty string');
  }
}

/** A claim's `generation` when it is a usable one (a positive safe integer), else undefined. */
export function claimGeneration(owner: { generation?: unknown } | undefined): number | undefined {
  const g = owner?.generation;
  return typeof g === 'number' && Number.isSafeInteger(g) && g >= 1 ? g : undefined;
}
