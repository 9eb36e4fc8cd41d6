import type { ChargerRecord } from '../../proxy/store/types';
import { addressSpellings, type BruteForceGuard } from '../brute-force';
import { prefetched } from './prefetch';
import { lockoutAddressOf, type Gate, type GateVerdict, type UpgradeContext } from './types';

/** Status for a locked-out charger: 401 like any auth failure, so chargers back off and log it. */
export const LOCKED_OUT = { status: 401, reason: 'locked_out', headers: { 'WWW-Authenticate': 'Basic realm="OCPP", charset="UTF-8"' } };

/** A gate refusing while `lockedUntil` (the prefetched read when there is one) lies in the future. */
function lockoutGate(name: string, lockedUntil: (ctx: UpgradeContext) => Promise<number>): Gate {
  return {
    name,
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      return (await lockedUntil(ctx)) > 0 ? LOCKED_OUT : undefined;
    },
  };
}

/** Refuses a source address that is locked out, before any other work is spent on it. */
export function addressLockoutGate(guard: BruteForceGuard): Gate {
  // The prefetch reads guard.addressLockedUntil, which includes what this process locked itself.
  return lockoutGate('address-lockout', (ctx) => prefetched(ctx)?.addressLockedUntil ?? guard.addressLockedUntil(lockoutAddressOf(ctx)));
}

/**
 * Refuses a locked-out identity without checking its password (a guess must not even be tried),
 * except from its familiar address: the one its last admitted session came from. Without that,
 * anyone who knows a charger's identity could keep the charger itself locked out for good with a
 * few wrong guesses per lockout. From the familiar address the password is checked (and failures
 * still counted, and the address lockout still applies), as "smart lockout" schemes do.
 */
export function identityLockoutGate(guard: BruteForceGuard, opts: SparingOption = {}): Gate {
  // The prefetch reads the store's lockout with the record: what this process locked itself is added here.
  return lockoutGate('identity-lockout', async (ctx) => {
    const read = prefetched(ctx)?.identityLockedUntil;
    return applicable(read ? Math.max(await read, guard.identityLockedHere(ctx.identity)) : await guard.identityLockedUntil(ctx.identity), ctx, opts);
  });
}

/** Whether a locked-out identity is still checked from its familiar address (config lockoutSparesFamiliarAddress). */
export interface SparingOption {
  lockoutSparesFamiliarAddress?: boolean;
}

/**
 * Both lockouts as they stand now, for a password check that waited for others of the same identity
 * (see password-turns.ts): they may have locked the address or the identity meanwhile. The same
 * verdict as the two lockout gates give, read afresh.
 */
export async function lockedOutNow(guard: BruteForceGuard, ctx: UpgradeContext, opts: SparingOption): Promise<GateVerdict> {
  if ((await guard.addressLockedUntil(lockoutAddressOf(ctx))) > 0) return LOCKED_OUT;
  return applicable(await guard.identityLockedUntil(ctx.identity), ctx, opts) > 0 ? LOCKED_OUT : undefined;
}

/** An identity lockout as it applies to this connection: 0 when spared from the familiar address (noted for the log line). */
function applicable(until: number, ctx: UpgradeContext, opts: SparingOption): number {
  if (until > 0 && opts.lockoutSparesFamiliarAddress && fromFamiliarAddress(ctx)) {
    ctx.facts.lockoutSpared = true;
    return 0;
  }
  return until;
}

/**
 * The connection comes from the address the charger's last admitted session came from (any
 * spelling of it: IPv4 or IPv4-mapped IPv6), and that session began after the current password
 * was set (a password reset after a leak leaves the leaker's address unfamiliar). Never the
 * address of a TLS-terminating front that named no charger address: every charger shares it.
 */
export function fromFamiliarAddress(ctx: UpgradeContext): boolean {
  if (ctx.addressShared) return false;
  const record = ctx.facts.charger as ChargerRecord | undefined;
  const last = record?.session;
  if (!last?.address || !ctx.remoteAddress) return false;
  if (record!.passwordSetAt !== undefined && last.since < record!.passwordSetAt) return false;
  const spellings = addressSpellings(last.address);
  return spellings !== null && spellings.includes(ctx.remoteAddress);
}
