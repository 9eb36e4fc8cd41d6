import type { ChargerRecord, CredentialStore } from '../../proxy/store/types';
import type { BruteForceGuard } from '../brute-force';
import { lockoutAddressOf, type Gate, type UpgradeContext } from './types';

/** The store reads every admission needs, started together (one round trip with Redis auto-pipelining). */
export interface Prefetched {
  addressLockedUntil: Promise<number>;
  record: Promise<ChargerRecord | null>;
  identityLockedUntil: Promise<number>;
  /** The identity's failure count when the login started (the password gate clears it only if not 0). */
  identityFailures: Promise<number>;
}

/**
 * Starts the lockout and record reads of the gates after it at once instead of one after another,
 * so a reconnect storm costs one store round trip per charger for them: two requests, pipelined, the
 * address's lockout and `readAdmission` (record, identity lockout and failure count). The gates still
 * decide in their order; a read that fails rejects where its gate awaits it (fail closed there).
 */
export function prefetchGate(store: CredentialStore, guard: BruteForceGuard): Gate {
  return {
    name: 'prefetch',
    check(ctx: UpgradeContext) {
      const settle = <T>(p: Promise<T>): Promise<T> => {
        p.catch(() => undefined); // observed later by its gate; never an unhandled rejection
        return p;
      };
      const addressLockedUntil = settle(guard.addressLockedUntil(lockoutAddressOf(ctx)));
      const admission = store.readAdmission(ctx.identity);
      const prefetched: Prefetched = {
        addressLockedUntil,
        record: settle(admission.then((a) => a.record)),
        identityLockedUntil: settle(admission.then((a) => guard.stillLocked(a.lockedUntil))),
        identityFailures: settle(admission.then((a) => a.failures)),
      };
      ctx.facts.prefetched = prefetched;
      return undefined;
    },
  };
}

/** The prefetched reads of an upgrade, if the prefetch gate ran. */
export function prefetched(ctx: UpgradeContext): Prefetched | undefined {
  return ctx.facts.prefetched as Prefetched | undefined;
}

/** The identity's failure count read when the login started; undefined when not known (no prefetch, or its read failed: then cleared anyway). */
export function prefetchedFailures(ctx: UpgradeContext): Promise<number | undefined> {
  return prefetched(ctx)?.identityFailures.catch(() => undefined) ?? Promise.resolve(undefined);
}

/** Forgets the prefetched reads once admission is decided: the session keeps its facts, not these promises. */
export function dropPrefetched(ctx: UpgradeContext): void {
  if (ctx.facts.prefetched !== undefined) ctx.facts.prefetched = undefined;
}
