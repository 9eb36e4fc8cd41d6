import type { ChargerRecord } from '../../proxy/store/types';
import { parseBasic } from './basic-credentials';
import { CHALLENGE, passwordJudge, type BasicAuthDeps } from './password-judge';
import { prefetched } from './prefetch';
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
