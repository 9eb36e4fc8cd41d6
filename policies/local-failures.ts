/**
 * Failure counts and lockouts kept in this process, for when the store cannot be written (a
 * read-only replica after a failover, a full Redis refusing writes): the brute-force guard keeps
 * its limits meanwhile, per process, instead of letting every guess through unlimited. Bounded:
 * past `maxKeys` the least recently counted key is forgotten. Everything is forgotten once the store
 * counts again, and a key when an operator unlocks it.
 */
export class LocalFailures {
  private readonly entries = new Map<string, { count: number; windowEnds: number; lockedUntil: number }>();

  constructor(private readonly maxKeys = 10_000) {}

  /** Counts one failure of `key`; returns its count in the current window of `windowMs`. */
  record(key: string, windowMs: number, now: number): number {
    const old = this.entries.get(key);
    const entry = old && old.windowEnds > now ? old : { count: 0, windowEnds: now + windowMs, lockedUntil: old?.lockedUntil ?? 0 };
    entry.count++;
    this.keep(key, entry);
    return entry.count;
  }

  /** Forgets `keys` (an operator's unlock), or everything (the store takes writes again). */
  forget(keys?: readonly string[]): void {
    if (!keys) this.entries.clear();
    else for (const k of keys) this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }

  private keep(key: string, entry: { count: number; windowEnds: number; lockedUntil: number }): void {
    this.entries.delete(key); // re-inserted last: the map's order is least recently counted first
    this.entries.set(key, entry);
    if (this.entries.size > this.maxKeys) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Locks `key` out until `until` (ms epoch), also a key counted in the store but locked only here. */
  lock(key: string, until: number): void {
    const entry = this.entries.get(key);
    if (entry) entry.lockedUntil = Math.max(entry.lockedUntil, until);
    else this.keep(key, { count: 0, windowEnds: 0, lockedUntil: until });
  }

  /** Lockout end (ms epoch) of `key` here, or 0. */
  lockedUntil(key: string, now: number): number {
    const until = this.entries.get(key)?.lockedUntil ?? 0;
    return until > now ? until : 0;
  }
}
