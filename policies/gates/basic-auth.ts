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
 * its pending one (an in-flight rotation), or a factory default that matches it. A match also
 * settles a rotation (see settleRotation). Failures are 401 with `WWW-Authenticate: Basic`
 * (chargers log FailedToAuthenticateAtCsms only on 401) and count towards lockout.
 */
export function basicAuthGate(deps: BasicAuthDeps): Gate {
  const now = deps.now ?? Date.now;
  return {
    name: 'basic-auth',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      if (ctx.facts.profile === 3) return undefined;
      const creds = parseBasic(ctx.req.headers.authorization);
      if (!creds) return reject(401, 'missing_credentials', CHALLENGE);
      if (creds.username !== ctx.identity) return fail(ctx, 'username_mismatch');
      const ocpp16 = ctx.acceptableProtocols.includes('ocpp1.6');
      let record = ctx.facts.charger as ChargerRecord | undefined;
      if (!record) return enrol(ctx, creds.password, ocpp16);
      // A rotation transition can lose a race with a concurrent login of the same charger (its
      // other password settled the rotation first): then judge again on the fresh record.
      let matched: PasswordMatch | null = null;
      for (let round = 0; ; round++) {
        matched = await matchPassword(record, creds.password, ocpp16);
        if (!matched) return fail(ctx, 'bad_password');
        const settlement = settleRotation(record, matched, now(), deps.rotationGraceMs);
        if (!settlement.admit) return fail(ctx, settlement.reason);
        let settled = true;
        if (settlement.action === 'commit') {
          settled = await deps.store.commitPending(record.identity, record.pending!.hash!, record.pending!.createdAt, now());
          if (settled) ctx.facts.rotationCommitted = true;
        } else if (settlement.action === 'drop_pending') {
          settled = await deps.store.dropPending(record.identity, record.pending!.createdAt);
          if (settled) ctx.facts.rotationDropped = true;
        }
        if (settled) break;
        const fresh = await deps.store.getCharger(ctx.identity);
        if (!fresh || round >= 2) return reject(503, 'store_conflict');
        record = fresh;
        ctx.facts.charger = fresh;
      }
      ctx.facts.passwordMatched = matched;
      // Not known (no prefetch, or its read failed): cleared anyway.
      const failuresSeen = await prefetched(ctx)?.identityFailures.catch(() => undefined);
      await deps.guard.recordSuccess(ctx.identity, failuresSeen);
      return undefined;
    },
  };

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
  async function enrol(ctx: UpgradeContext, candidate: Buffer, ocpp16: boolean): Promise<GateVerdict> {
    if (!ctx.facts.enrolCandidate) return reject(404, 'unknown_identity');
    const forms = passwordVariants(candidate, ocpp16);
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
}
