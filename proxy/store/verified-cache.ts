/**
 * A small in-memory cache of recent successful password checks, so a reconnect storm of chargers with
 * scrypt-hashed passwords costs one scrypt per charger, not one per attempt.
 *
 * Entries are keyed by (identity, stored hash) and hold only HMAC(cacheKey, candidate), never the
 * password. Because the stored hash is part of the key, a password changed by another replica misses
 * the cache even without `invalidate`. Only successes are cached.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { PasswordHasher } from './hashing';
import type { PasswordHash } from './types';

/** Options of `VerifiedCache`. */
export interface VerifiedCacheOptions {
  /** 32-byte key (usually `ServerSecret.cacheKey`). */
  key: Buffer;
  /** Most identities remembered; least recently used are evicted. Default 10,000. */
  maxEntries?: number;
  /** How long a success is remembered, ms. Default 5 minutes. */
  ttlMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Entry {
  storedHash: string;
  digest: Buffer;
  expiresAt: number;
}

/** Bounded, short-lived cache of (identity, candidate) -> verified. */
export class VerifiedCache {
  readonly #key: Buffer;
  readonly #max: number;
  readonly #ttl: number;
  readonly #now: () => number;
  /** Insertion order of a Map gives LRU order: a hit is re-inserted at the end. */
  readonly #entries = new Map<string, Entry[]>();

  constructor(opts: VerifiedCacheOptions) {
    this.#key = Buffer.from(opts.key);
    this.#max = Math.max(1, opts.maxEntries ?? 10_000);
    this.#ttl = Math.max(0, opts.ttlMs ?? 5 * 60_000);
    this.#now = opts.now ?? Date.now;
  }

  /** Number of identities currently cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** True when `candidate` recently verified against exactly this stored hash for this identity. */
  has(identity: string, candidate: Buffer, stored: PasswordHash): boolean {
    const list = this.#entries.get(identity);
    if (!list) return false;
    const now = this.#now();
    const digest = this.#digest(identity, candidate);
    let hit = false;
    for (const e of list) {
      // Compare every live entry so timing does not reveal which one matched.
      if (e.expiresAt > now && e.storedHash === stored.hash && timingSafeEqual(e.digest, digest)) hit = true;
    }
    if (hit) {
      this.#entries.delete(identity);
      this.#entries.set(identity, list);
    }
    return hit;
  }

  /** Remember a successful verification. */
  remember(identity: string, candidate: Buffer, stored: PasswordHash): void {
    const now = this.#now();
    // Keep at most two live entries per identity: current and pending password during a rotation.
    const list = (this.#entries.get(identity) ?? []).filter((e) => e.expiresAt > now && e.storedHash !== stored.hash);
    list.push({ storedHash: stored.hash, digest: this.#digest(identity, candidate), expiresAt: now + this.#ttl });
    while (list.length > 2) list.shift();
    this.#entries.delete(identity);
    this.#entries.set(identity, list);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  /** Forget everything about one charger (call whenever its record changes). */
  invalidate(identity: string): void {
    this.#entries.delete(identity);
  }

  /** Forget everything. */
  clear(): void {
    this.#entries.clear();
  }

  #digest(identity: string, candidate: Buffer): Buffer {
    return createHmac('sha256', this.#key).update(identity).update('\0').update(candidate).digest();
  }
}

/**
 * Verify through the cache: a cached success answers at once; otherwise run the real check and
 * remember a success. A generated password's HMAC hash is checked directly: the check is one HMAC,
 * as cheap as the cache's own digest, so caching it would only add two HMACs to a miss and an entry
 * per charger.
 */
export async function verifyWithCache(
  hasher: PasswordHasher,
  cache: VerifiedCache,
  identity: string,
  candidate: Buffer,
  stored: PasswordHash,
): Promise<boolean> {
  if (stored?.scheme === 'hmac-sha256') return hasher.verify(candidate, stored);
  if (cache.has(identity, candidate, stored)) return true;
  const ok = await hasher.verify(candidate, stored);
  if (ok) cache.remember(identity, candidate, stored);
  return ok;
}
