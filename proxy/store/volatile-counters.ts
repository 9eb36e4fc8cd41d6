/**
 * In-memory brute-force counters and lockouts for the embedded (single-node) store. They are not
 * persisted on purpose: writing the store file on every failed login would let an attacker turn
 * password guessing into disk load, and a restart clearing lockouts only helps good chargers.
 */

interface Counter {
  count: number;
  expiresAt: number;
}

/** Fixed-window failure counters and lockouts with expiry. */
export class VolatileCounters {
  readonly #failures = new Map<string, Counter>();
  readonly #lockouts = new Map<string, number>();
  readonly #now: () => number;
  #ops = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Increment and return the failure count of `key` in its current window. */
  recordFailure(key: string, windowMs: number): number {
    const now = this.#now();
    this.#sweep(now);
    const c = this.#failures.get(key);
    if (!c || c.expiresAt <= now) {
      this.#failures.set(key, { count: 1, expiresAt: now + windowMs });
      return 1;
    }
    c.count++;
    return c.count;
  }

  /** The failure count of `key` in its current window, 0 when none. */
  failures(key: string): number {
    const c = this.#failures.get(key);
    return c && c.expiresAt > this.#now() ? c.count : 0;
  }

  resetFailures(key: string): void {
    this.#failures.delete(key);
  }

  setLockout(key: string, untilMs: number): void {
    if (untilMs <= this.#now()) this.#lockouts.delete(key);
    else this.#lockouts.set(key, untilMs);
  }

  /** ms epoch until which `key` is locked, 0 when not. */
  getLockout(key: string): number {
    const until = this.#lockouts.get(key);
    if (until === undefined) return 0;
    if (until <= this.#now()) {
      this.#lockouts.delete(key);
      return 0;
    }
    return until;
  }

  /** Occasionally drop expired entries so memory stays bounded under a scan of many keys. */
  #sweep(now: number): void {
    if (++this.#ops % 1024 !== 0) return;
    for (const [k, c] of this.#failures) if (c.expiresAt <= now) this.#failures.delete(k);
    for (const [k, u] of this.#lockouts) if (u <= now) this.#lockouts.delete(k);
  }
}
