import type { BruteForceGuard } from '../brute-force';
import { prefetched } from './prefetch';
import type { Gate, GateVerdict, UpgradeContext } from './types';

/** Status for a locked-out charger: 401 like any auth failure, so chargers back off and log it. */
const LOCKED = { status: 401, reason: 'locked_out', headers: { 'WWW-Authenticate': 'Basic realm="OCPP", charset="UTF-8"' } };

/** Refuses a source address that is locked out, before any other work is spent on it. */
export function addressLockoutGate(guard: BruteForceGuard): Gate {
  return {
    name: 'address-lockout',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      const until = await (prefetched(ctx)?.addressLockedUntil ?? guard.addressLockedUntil(ctx.remoteAddress));
      return until > 0 ? LOCKED : undefined;
    },
  };
}

/** Refuses a locked-out identity without checking its password (a guess must not even be tried). */
export function identityLockoutGate(guard: BruteForceGuard): Gate {
  return {
    name: 'identity-lockout',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      const until = await (prefetched(ctx)?.identityLockedUntil ?? guard.identityLockedUntil(ctx.identity));
      return until > 0 ? LOCKED : undefined;
    },
  };
}
