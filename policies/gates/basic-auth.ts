import type { ChargerRecord } from '../../proxy/store/types';
import { parseBasic } from './basic-credentials';
import { CHALLENGE, passwordJudge, type BasicAuthDeps } from './password-judge';
import { lockedOutNow } from './lockout';
import { PasswordTurns } from './password-turns';
import { prefetchedFailures } from './prefetch';
import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';

export type { BasicAuthDeps, PasswordVerifier } from './password-judge';

/**
 * Profiles 1 and 2: HTTP Basic, username = identity, password = the charger's current password,
 * its pending one (an in-flight rotation), or a factory default that matches it. Failures are 401
 * with `WWW-Authenticate: Basic` (chargers log FailedToAuthenticateAtCsms only on 401) and count
 * towards lockout. A match that settles a rotation (see settleRotation) is only noted here: the
 * settlement gate writes it once the CSMS leg is open (rotation-settlement.ts).
 */
export function basicAuthGate(deps: BasicAuthDeps): Gate {
  const judge = passwordJudge(deps);
  const turns = new PasswordTurns();
  return {
    name: 'basic-auth',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      if (ctx.facts.profile === 3) return undefined;
      const creds = parseBasic(ctx.req.headers.authorization);
      if (!creds) return reject(401, 'missing_credentials', CHALLENGE);
      if (creds.username !== ctx.identity) return judge.fail(ctx, 'username_mismatch');
      const turn = await turns.take(ctx.identity);
      try {
        // Guesses sent at once are checked one after another, each against the lockouts as they are now.
        // (Refused as locked out, not counted: `facts.lockedOut` marks a lockout imposed, for the metric.)
        const locked = turn.waited ? await lockedOutNow(deps.guard, ctx, deps) : undefined;
        if (locked) return locked;
        const record = ctx.facts.charger as ChargerRecord | undefined;
        if (!record) return await judge.enrol(ctx, creds.password);
        const verdict = await judge.judge(ctx, record, creds.password);
        if (verdict) return verdict;
        // After a wait, failures of the checks before this one may have been counted since the read.
        await deps.guard.recordSuccess(ctx.identity, turn.waited ? undefined : await prefetchedFailures(ctx));
        return undefined;
      } finally {
        turn.release();
      }
    },
  };
}
