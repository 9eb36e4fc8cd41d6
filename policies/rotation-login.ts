import type { ChargerRecord } from '../proxy/store/types';

/** Which stored password a login matched. */
export type PasswordMatch = 'current' | 'pending' | 'factory';

/** What a successful password login means for an in-flight rotation. */
export type RotationSettlement =
  | { admit: true; action: 'none' | 'commit' | 'drop_pending' }
  | { admit: false; reason: 'password_superseded' };

/**
 * DESIGN.md "Rotation: never lock a charger out": at every moment the password the charger holds
 * must be accepted.
 * - Pending password used → the charger applied it: commit (pending becomes current, old is gone).
 * - Current password (or the factory password that is current) used while a pending one exists:
 *   - the charger answered RebootRequired → it uses the old one until it reboots: both stay valid
 *     (A01.FR.04: only Accepted retires the old one);
 *   - the pending one was never sent (a crash before the send) → the charger never saw it: drop it;
 *   - it was sent and never answered (no answer, dropped link) → keep both, it is resent: the
 *     charger may have staged it for its next reboot and answered RebootRequired into a lost link,
 *     so "logged in with the old one" does not prove it did not take it (DESIGN.md step 6 drops it;
 *     that locked out a charger that then rebooted);
 *   - it said Accepted → the old one stays valid for `graceMs` after that answer (libocpp#662/#826:
 *     chargers that accept and then reconnect with the old key exist); after that it is refused
 *     (A01.FR.03), a factory password as much as any other. `graceMs` 0 is the spec's strict mode.
 */
export function settleRotation(record: ChargerRecord, matched: PasswordMatch, now: number, graceMs: number): RotationSettlement {
  if (matched === 'pending') return { admit: true, action: 'commit' };
  const pending = record.pending;
  if (!pending) return { admit: true, action: 'none' };
  if (pending.rebootRequiredAt !== undefined) return { admit: true, action: 'none' };
  if (pending.acceptedAt === undefined) return pending.sentAt === undefined ? { admit: true, action: 'drop_pending' } : { admit: true, action: 'none' };
  if (now - pending.acceptedAt <= graceMs) return { admit: true, action: 'none' };
  return { admit: false, reason: 'password_superseded' };
}
