import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for masking keys and handshake nonces, cut from a pool that one CSPRNG call refills
 * every 8 KiB: a `randomBytes(16)` per CSMS dial cost about 20 µs in a storm's profile. Every byte
 * is handed out once.
 */
const POOL_SIZE = 8192;
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let at = POOL_SIZE;

/** Copies `count` (at most 64) fresh random bytes into `target` at `offset`. */
export function copyRandomBytes(target: Buffer, offset: number, count: number): void {
  if (at + count > POOL_SIZE) {
    randomFillSync(pool);
    at = 0;
  }
  pool.copy(target, offset, at, at + count);
  at += count;
}
