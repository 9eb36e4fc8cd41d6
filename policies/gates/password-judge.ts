import type { ChargerRecord, CredentialStore, FactoryDefault, PasswordHash } from '../../proxy/store/types';
import type { BruteForceGuard } from '../brute-force';
import { settleRotation, type PasswordMatch } from '../rotation-login';
import { passwordVariants } from './basic-credentials';
import type { GateVerdict, UpgradeContext } from './types';
import { lockoutAddressOf, reject } from './types';

/** Verifies a candidate against a stored hash (constant-time, cached); implemented in proxy/. */
export interface PasswordVerifier {
  verify(identity: string, candidate: Buffer, stored: PasswordHash): Promise<boolean>;
}

/** What the password gate needs. */
export interface BasicAuthDeps {
  store: CredentialStore;
  verifier: PasswordVerifier;
  guard: BruteForceGuard;
  /** After a charger accepted a new password, how long its old one stays valid (0 = strict, per spec). */
  rotationGraceMs: number;
  /** A locked-out identity is still checked from its familiar address (see lockout.ts). */
  lockoutSparesFamiliarAddress?: boolean;
  /** Factory defaults, cached briefly by the caller (they are read on every factory-password login). */
  factoryDefaults(): Promise<FactoryDefault[]>;
  now?: () => number;
}

export const CHALLENGE = { 'WWW-Authenticate': 'Basic realm="OCPP", charset="UTF-8"' };

/** The password checks the basic-auth and rotation-settlement gates share. */
export function passwordJudge(deps: BasicAuthDeps) {
  const now = deps.now ?? Date.now;

  /**
   * Which password matched and what that means for a rotation: notes both in `ctx.facts`
   * (`passwordMatched`, and `rotationSettlement` when one is to be written), or refuses.
   */
  async function judge(ctx: UpgradeContext, record: ChargerRecord, candidate: Buffer): Promise<GateVerdict> {
    const matched = await matchPassword(record, candidate, ctx.acceptableProtocols.includes('ocpp1.6'));
    if (!matched) return fail(ctx, 'bad_password');
    const settlement = settleRotation(record, matched, now(), deps.rotationGraceMs);
    if (!settlement.admit) return fail(ctx, settlement.reason);
    ctx.facts.passwordMatched = matched;
    if (settlement.action === 'none') ctx.facts.rotationSettlement = undefined; // not delete: facts live as long as the session, and a delete turns an object into a dictionary
    else ctx.facts.rotationSettlement = settlement.action;
    return undefined;
  }

  async function fail(ctx: UpgradeContext, reason: string): Promise<GateVerdict> {
    const out = await deps.guard.recordFailure(ctx.identity, lockoutAddressOf(ctx));
    if (out.identityLockedUntil) ctx.facts.lockedOut = 'identity';
    if (out.addressLockedUntil) ctx.facts.lockedOut = 'address';
    return reject(401, reason, CHALLENGE);
  }

  /** Which stored password the candidate (in any accepted form) matches. Every form is tried: no early exit leaks which. */
  async function matchPassword(record: ChargerRecord, candidate: Buffer, ocpp16: boolean): Promise<PasswordMatch | null> {
    const forms = passwordVariants(candidate, ocpp16);
    if (record.password && (await anyMatches(record.identity, forms, record.password))) {
      return record.passwordSource === 'factory' ? 'factory' : 'current';
    }
    if (record.pending?.hash && (await anyMatches(record.identity, forms, record.pending.hash))) return 'pending';
    return null;
  }

  async function anyMatches(identity: string, forms: Buffer[], stored: PasswordHash): Promise<boolean> {
    let ok = false;
    for (const f of forms) if (await deps.verifier.verify(identity, f, stored)) ok = true;
    return ok;
  }

  /** Auto-enrolment: an unknown identity with a factory default password that applies to it. */
  async function enrol(ctx: UpgradeContext, candidate: Buffer): Promise<GateVerdict> {
    if (!ctx.facts.enrolCandidate) return reject(404, 'unknown_identity');
    const forms = passwordVariants(candidate, ctx.acceptableProtocols.includes('ocpp1.6'));
    for (const d of await deps.factoryDefaults()) {
      if (!d.match.prefix || !ctx.identity.startsWith(d.match.prefix)) continue;
      if (!(await anyMatches(ctx.identity, forms, d.hash))) continue;
      // Create-only: an operator's record added meanwhile is not replaced (the charger tries again: 503).
      const record = await deps.store.createCharger({
        identity: ctx.identity,
        minProfile: ctx.listener === 'plain' ? 1 : 2,
        status: 'active',
        password: d.hash,
        passwordSetAt: now(),
        passwordSource: 'factory',
      });
      if (!record) throw new Error(`charger ${ctx.identity} was created while it enrolled`);
      await deps.store.appendAudit({ type: 'charger_enrolled', identity: ctx.identity, detail: { factoryDefault: d.id } });
      ctx.facts.charger = record;
      ctx.facts.passwordMatched = 'factory';
      return undefined;
    }
    return fail(ctx, 'bad_password');
  }

  return { judge, fail, enrol, now };
}
