import { isIP, isIPv4, SocketAddress } from 'node:net';
import type { CredentialStore } from '../proxy/store/types';
import { addressKey, identityKey } from '../proxy/store/counter-keys';
import { LocalFailures } from './local-failures';

/**
 * Every spelling under which the proxy may have counted an address given by an operator: Node
 * reports an IPv4 client as `10.0.0.5` on an IPv4 listener and as `::ffff:10.0.0.5` on a dual-stack
 * one. IPv6 is written as Node writes a peer's address (compressed, lower case, IPv4-mapped dotted).
 * Returns null for text that is not an IP address.
 */
export function addressSpellings(address: string): string[] | null {
  const text = address.trim();
  if (isIPv4(text)) return [text, `::ffff:${text}`];
  if (isIP(text) !== 6) return null;
  if (text.includes('%')) return [text.toLowerCase()]; // a zone index, which SocketAddress drops
  const canonical = new SocketAddress({ address: text, family: 'ipv6' }).address; // Node's own spelling (::ffff:a00:5 → ::ffff:10.0.0.5)
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(canonical);
  return mapped ? [mapped[1]!, canonical] : [canonical];
}

/** Limits of the brute-force guard. */
export interface BruteForceSettings {
  /** Failures of one identity within the window before it is locked out. */
  identityThreshold: number;
  /** Failures from one source address within the window before it is locked out. */
  addressThreshold: number;
  windowMs: number;
  /** First lockout; each further lockout in the window doubles it, up to maxMs. */
  baseMs: number;
  maxMs: number;
}

/** What happened when a failure was recorded. */
export interface FailureOutcome {
  identityLockedUntil: number;
  addressLockedUntil: number;
}

/**
 * Counts failed logins per identity and per source address in the store and locks either out with
 * exponential back-off. Addresses get a much higher threshold: chargers behind mobile NAT share one.
 */
export class BruteForceGuard {
  /** Counts and lockouts made while the store could not be written (see LocalFailures). */
  private readonly local = new LocalFailures();
  private storeErrorReportedAt = -Infinity;

  /** `onStoreError` hears, at most once a minute, that failures are being counted in this process only. */
  constructor(
    private readonly store: CredentialStore,
    private readonly s: BruteForceSettings,
    private readonly now: () => number = Date.now,
    private readonly onStoreError?: (err: Error) => void,
  ) {}

  /** Lockout end (ms epoch) for an identity, or 0. */
  async identityLockedUntil(identity: string): Promise<number> {
    return Math.max(await this.lockedUntil(identityKey(identity)), this.identityLockedHere(identity));
  }

  /** Lockout end (ms epoch) for a source address, or 0 (always for null: no address of the charger's own is known). */
  async addressLockedUntil(address: string | null): Promise<number> {
    if (address === null) return 0;
    return Math.max(await this.lockedUntil(addressKey(address)), this.addressLockedHere(address));
  }

  /** A lockout made in this process while the store could not be written, or 0 (the identity gate adds it to the store's). */
  identityLockedHere(identity: string): number {
    return this.local.lockedUntil(identityKey(identity), this.now());
  }

  private addressLockedHere(address: string): number {
    return this.local.lockedUntil(addressKey(address), this.now());
  }

  /** An operator's unlock: forgets what this process counted for these keys. */
  forgetHere(keys: readonly string[]): void {
    this.local.forget(keys);
  }

  /**
   * Records one failed login; locks out when a threshold is reached. When the store cannot count
   * (it refuses writes), the failure is counted in this process instead, so the limits still hold.
   * A null address (a front's own, shared by every charger behind it) counts the identity only.
   */
  async recordFailure(identity: string | null, address: string | null): Promise<FailureOutcome> {
    const keys = { identity: identity ? identityKey(identity) : null, address: address === null ? null : addressKey(address) };
    let counts: [number, number];
    let here = false;
    try {
      counts = await Promise.all([
        keys.identity ? this.store.recordFailure(keys.identity, this.s.windowMs) : Promise.resolve(0),
        keys.address ? this.store.recordFailure(keys.address, this.s.windowMs) : Promise.resolve(0),
      ]);
      if (this.local.size > 0) this.local.forget(); // the store counts again: it alone decides
    } catch (err) {
      here = true;
      this.storeFailed(err as Error);
      const now = this.now();
      counts = [keys.identity ? this.local.record(keys.identity, this.s.windowMs, now) : 0, keys.address ? this.local.record(keys.address, this.s.windowMs, now) : 0];
    }
    const out: FailureOutcome = { identityLockedUntil: 0, addressLockedUntil: 0 };
    if (keys.identity && counts[0] >= this.s.identityThreshold && counts[0] % this.s.identityThreshold === 0) {
      out.identityLockedUntil = this.now() + this.duration(counts[0] / this.s.identityThreshold);
      await this.lock(keys.identity, out.identityLockedUntil, here);
    }
    if (keys.address && counts[1] >= this.s.addressThreshold && counts[1] % this.s.addressThreshold === 0) {
      out.addressLockedUntil = this.now() + this.duration(counts[1] / this.s.addressThreshold);
      await this.lock(keys.address, out.addressLockedUntil, here);
    }
    return out;
  }

  /**
   * A successful login clears the identity's count (never the address's: others may share it).
   * `failuresSeen` is the count read when this login started: when it was 0 there is nothing to
   * clear and no store request is made. Failures recorded since that read then stay and expire
   * with their window, the safe side of the race.
   */
  async recordSuccess(identity: string, failuresSeen?: number): Promise<void> {
    const key = identityKey(identity);
    if (this.local.size > 0) this.local.forget([key]);
    if (failuresSeen === 0) return;
    try {
      await this.store.resetFailures(key);
    } catch (err) {
      // Best effort: a store refusing writes (a read-only replica after a failover) must not turn
      // the right password into a 503. The count stays and expires with its window.
      this.storeFailed(err as Error);
    }
  }

  /** `until` if that lockout end (ms epoch) still lies ahead, else 0. */
  stillLocked(until: number): number {
    return until > this.now() ? until : 0;
  }

  /** The n-th lockout in a window lasts base × 2^(n−1), capped. */
  private duration(nth: number): number {
    return Math.min(this.s.maxMs, this.s.baseMs * 2 ** Math.max(0, nth - 1));
  }

  private async lockedUntil(key: string): Promise<number> {
    return this.stillLocked(await this.store.getLockout(key));
  }

  private async lock(key: string, until: number, here: boolean): Promise<void> {
    if (!here) {
      try {
        await this.store.setLockout(key, until);
        return;
      } catch (err) {
        this.storeFailed(err as Error);
      }
    }
    this.local.lock(key, until);
  }

  private storeFailed(err: Error): void {
    if (this.now() - this.storeErrorReportedAt < 60_000) return;
    this.storeErrorReportedAt = this.now();
    this.onStoreError?.(err);
  }
}
