import type { ChargerRecord, CredentialStore, FactoryDefault, PasswordHash } from '../../proxy/store/types';
import type { BruteForceGuard } from '../brute-force';
import { settleRotation, type PasswordMatch } from '../rotation-login';
import { parseBasic, passwordVariants } from './basic-credentials';
import { prefetched } from './prefetch';
import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';

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
  /** Factory defaults, cached briefly by the caller (they are read on every factory-password login). */
  factoryDefaults(): Promise<FactoryDefault[]>;
  now?: () => number;
}

const CHALLENGE = { 'WWW-Authenticate': 'Basic realm="OCPP", charset="UTF-8"' };

/**
 * Profiles 1 and 2: HTTP Basic, username = identity, password = the charger's current password,
 * its pending one (an in-flight rotation), or a factory default that matches it. Failures are 401
 * with `WWW-Authenticate: Basic` (chargers log FailedToAuthenticateAtCsms only on 401) and count
 * towards lockout. A match that settles a rotation (see settleRotation) is only noted here: the
 * settlement gate writes it once the CSMS leg is open (see {@link rotationSettlementGate}).
 */
export function basicAuthGate(deps: BasicAuthDeps): Gate {
  const judge = passwordJudge(deps);
  return {
    name: 'basic-auth',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      if (ctx.facts.profile === 3) return undefined;
      const creds = parseBasic(ctx.req.headers.authorization);
      if (!creds) return reject(401, 'missing_credentials', CHALLENGE);
      if (creds.username !== ctx.identity) return judge.fail(ctx, 'username_mismatch');
      const record = ctx.facts.charger as ChargerRecord | undefined;
      if (!record) return judge.enrol(ctx, creds.password);
      const verdict = await judge.judge(ctx, record, creds.password);
      if (verdict) return verdict;
      // Not known (no prefetch, or its read failed): cleared anyway.
      const failuresSeen = await prefetched(ctx)?.identityFailures.catch(() => undefined);
      await deps.guard.recordSuccess(ctx.identity, failuresSeen);
      return undefined;
    },
  };
}

/**
 * Writes what the password login decided for a rotation: commit the pending password (the charger
 * logged in with it) or drop it (the charger logged in with its old one, having never accepted the
 * new). Runs after the CSMS leg opened, just before the charger's 101: a login that ends in a 503
 * because the CSMS is down settles nothing, so a charger that then falls back to its old password
 * still gets in. The login is judged again on a fresh read first, and again after a race lost to a
 * concurrent login of the same charger (its other password settled the rotation first).
 */
export function rotationSettlementGate(deps: BasicAuthDeps): Gate {
  const judge = passwordJudge(deps);
  return {
    name: 'rotation-settlement',
    reportOnlyCapable: true,
    afterBackend: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      for (let round = 0; ctx.facts.rotationSettlement; round++) {
        // Judged again on a fresh read: the record may have changed while the CSMS was dialled
        // (the charger's live session recording its Accepted, say), or a race was lost below.
        const record = await deps.store.getCharger(ctx.identity);
        if (!record || round >= 3) return reject(503, 'store_conflict');
        ctx.facts.charger = record;
        const verdict = await judge.judge(ctx, record, parseBasic(ctx.req.headers.authorization)!.password);
        if (verdict || !ctx.facts.rotationSettlement) return verdict;
        const pending = record.pending!;
        const commit = ctx.facts.rotationSettlement === 'commit';
        const settled = commit
          ? await deps.store.commitPending(record.identity, pending.hash!, pending.createdAt, judge.now())
          : await deps.store.dropPending(record.identity, pending.createdAt);
        if (settled) {
          ctx.facts[commit ? 'rotationCommitted' : 'rotationDropped'] = true;
          return undefined;
        }
      }
      return undefined;
    },
  };
}

/** The password checks both gates share. */
function passwordJudge(deps: BasicAuthDeps) {
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
    if (settlement.action === 'none') delete ctx.facts.rotationSettlement;
    else ctx.facts.rotationSettlement = settlement.action;
    return undefined;
  }

  async function fail(ctx: UpgradeContext, reason: string): Promise<GateVerdict> {
    const out = await deps.guard.recordFailure(ctx.identity, ctx.remoteAddress);
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
      const record = await deps.store.putCharger({
        identity: ctx.identity,
        minProfile: ctx.listener === 'plain' ? 1 : 2,
        status: 'active',
        password: d.hash,
        passwordSetAt: now(),
        passwordSource: 'factory',
      });
      await deps.store.appendAudit({ type: 'charger_enrolled', identity: ctx.identity, detail: { factoryDefault: d.id } });
      ctx.facts.charger = record;
      ctx.facts.passwordMatched = 'factory';
      return undefined;
    }
    return fail(ctx, 'bad_password');
  }

  return { judge, fail, enrol, now };
}
