import type { BruteForceGuard } from '../brute-force';
import type { Gate, GateVerdict, UpgradeContext } from './types';

/** Status for a locked-out charger: 401 like any auth failure, so chargers back off and log it. */
const LOCKED = { status: 401, reason: 'locked_out', headers: { 'WWW-Authenticate': 'Basic realm="OCPP", charset="UTF-8"' } };

/** Refuses a source address that is locked out, before any other work is spent on it. */
export function addressLockoutGate(guard: BruteForceGuard): Gate {
  return {
    name: 'address-lockout',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      return (await guard.addressLockedUntil(ctx.remoteAddress)) > 0 ? LOCKED : undefined;
    },
  };
}

/** Refuses a locked-out identity without checking its password (a guess must not even be tried). */
export function identityLockoutGate(guard: BruteForceGuard): Gate {
  return {
    name: 'identity-lockout',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      return (await guard.identityLockedUntil(ctx.identity)) > 0 ? LOCKED : undefined;
    },
  };
}
