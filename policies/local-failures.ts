/**
 * Failure counts and lockouts kept in this process, for when the store cannot be written (a
 * read-only replica after a failover, a full Redis refusing writes): the brute-force guard keeps
 * its limits meanwhile, per process, instead of letting every guess through unlimited. Bounded:
 * past `maxKeys` the least recently counted key is forgotten. Its lockouts end on their own (an
 * operator's unlock writes to the same store that refuses writes).
 */
export class LocalFailures {
  private readonly entries = new Map<string, { count: number; windowEnds: number; lockedUntil: number }>();

  constructor(private readonly maxKeys = 10_000) {}

  /** Counts one failure of `key`; returns its count in the current window of `windowMs`. */
  record(key: string, windowMs: number, now: number): number {
    const old = this.entries.get(key);
    const entry = old && old.windowEnds > now ? old : { count: 0, windowEnds: now + windowMs, lockedUntil: old?.lockedUntil ?? 0 };
    entry.count++;
    this.entries.delete(key); // re-inserted last: the map's order is least recently counted first
    this.entries.set(key, entry);
    if (this.entries.size > this.maxKeys) this.entries.delete(this.entries.keys().next().value as string);
    return entry.count;
  }

  /** Locks `key` out until `until` (ms epoch); a key never counted here is not kept. */
  lock(key: string, until: number): void {
    const entry = this.entries.get(key);
    if (entry) entry.lockedUntil = Math.max(entry.lockedUntil, until);
  }

  /** Lockout end (ms epoch) of `key` here, or 0. */
  lockedUntil(key: string, now: number): number {
    const until = this.entries.get(key)?.lockedUntil ?? 0;
    return until > now ? until : 0;
  }
}
