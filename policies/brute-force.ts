import { isIP, isIPv4, SocketAddress } from 'node:net';
import type { CredentialStore } from '../proxy/store/types';
import { addressKey, identityKey } from '../proxy/store/counter-keys';

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
  constructor(private readonly store: CredentialStore, private readonly s: BruteForceSettings, private readonly now: () => number = Date.now) {}

  /** Lockout end (ms epoch) for an identity, or 0. */
  identityLockedUntil(identity: string): Promise<number> {
    return this.lockedUntil(identityKey(identity));
  }

  /** Lockout end (ms epoch) for a source address, or 0. */
  addressLockedUntil(address: string): Promise<number> {
    return this.lockedUntil(addressKey(address));
  }

  /** Records one failed login; locks out when a threshold is reached. */
  async recordFailure(identity: string | null, address: string): Promise<FailureOutcome> {
    const [idCount, ipCount] = await Promise.all([
      identity ? this.store.recordFailure(identityKey(identity), this.s.windowMs) : Promise.resolve(0),
      this.store.recordFailure(addressKey(address), this.s.windowMs),
    ]);
    const out: FailureOutcome = { identityLockedUntil: 0, addressLockedUntil: 0 };
    if (identity && idCount >= this.s.identityThreshold && idCount % this.s.identityThreshold === 0) {
      out.identityLockedUntil = this.now() + this.duration(idCount / this.s.identityThreshold);
      await this.store.setLockout(identityKey(identity), out.identityLockedUntil);
    }
    if (ipCount >= this.s.addressThreshold && ipCount % this.s.addressThreshold === 0) {
      out.addressLockedUntil = this.now() + this.duration(ipCount / this.s.addressThreshold);
      await this.store.setLockout(addressKey(address), out.addressLockedUntil);
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
    if (failuresSeen === 0) return;
    await this.store.resetFailures(identityKey(identity));
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
}
