/**
 * Password hashing. Generated passwords (>100 bits of entropy) get a salted HMAC-SHA-256 keyed with the
 * server secret: safe and cheap enough for a reconnect storm. Operator/factory passwords may be weak
 * and get salted scrypt. Comparison is always constant time. Passwords are Buffers because OCPP 1.6
 * AuthorizationKeys may be raw bytes.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { PasswordHash, ScryptParams } from './types';

/** Default scrypt cost: 2^15 x 8 x 1 (32 MiB, tens of ms per hash). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1 << 15, r: 8, p: 1 };
const SALT_BYTES = 16;
const SCRYPT_KEY_BYTES = 32;
/** Upper bounds on stored scrypt parameters, so a bad record cannot make verification a DoS. */
const MAX_SCRYPT = { N: 1 << 20, r: 32, p: 16 };
/** Longer candidates are rejected without hashing (OCPP passwords are at most 64 characters). */
const MAX_CANDIDATE_BYTES = 1024;

/** Hashes and verifies passwords with a given HMAC key (usually `ServerSecret.passwordKey`). */
export class PasswordHasher {
  readonly #hmacKey: Buffer;
  readonly #scrypt: ScryptParams;

  /**
   * @param hmacKey key for `hmac-sha256` hashes
   * @param scryptParams cost for new scrypt hashes (tests may lower it)
   */
  constructor(hmacKey: Buffer, scryptParams: ScryptParams = DEFAULT_SCRYPT) {
    this.#hmacKey = Buffer.from(hmacKey);
    this.#scrypt = { ...scryptParams };
  }

  /** Hash a proxy-generated (high-entropy) password: HMAC-SHA-256(key, salt || password). */
  hashGenerated(password: Buffer): PasswordHash {
    const salt = randomBytes(SALT_BYTES);
    return { scheme: 'hmac-sha256', salt: salt.toString('base64'), hash: this.#hmac(salt, password).toString('base64') };
  }

  /** Hash an operator-supplied or factory password with salted scrypt. */
  async hashOperator(password: Buffer): Promise<PasswordHash> {
    const salt = randomBytes(SALT_BYTES);
    const hash = await scryptAsync(password, salt, SCRYPT_KEY_BYTES, this.#scrypt);
    return { scheme: 'scrypt', salt: salt.toString('base64'), hash: hash.toString('base64'), params: { ...this.#scrypt } };
  }

  /**
   * Check `candidate` against a stored hash in constant time (for a given hash length).
   * Malformed or unknown hashes never verify (resolves false); nothing here throws on bad input.
   */
  async verify(candidate: Buffer, stored: PasswordHash): Promise<boolean> {
    if (!Buffer.isBuffer(candidate) || candidate.length > MAX_CANDIDATE_BYTES || !stored) return false;
    const salt = decode(stored.salt);
    const expected = decode(stored.hash);
    if (!salt || !expected || expected.length === 0) return false;
    if (stored.scheme === 'hmac-sha256') {
      const actual = this.#hmac(salt, candidate);
      return actual.length === expected.length && timingSafeEqual(actual, expected);
    }
    if (stored.scheme === 'scrypt') {
      const params = stored.params;
      if (!params || !validScrypt(params) || expected.length < 16 || expected.length > 64) return false;
      try {
        const actual = await scryptAsync(candidate, salt, expected.length, params);
        return timingSafeEqual(actual, expected);
      } catch {
        return false;
      }
    }
    return false;
  }

  #hmac(salt: Buffer, password: Buffer): Buffer {
    return createHmac('sha256', this.#hmacKey).update(salt).update(password).digest();
  }
}

function scryptAsync(password: Buffer, salt: Buffer, keylen: number, p: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must exceed 128*N*r; leave headroom.
    scrypt(password, salt, keylen, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function validScrypt(p: ScryptParams): boolean {
  const int = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  return (
    int(p.N) && int(p.r) && int(p.p) && (p.N & (p.N - 1)) === 0 && p.N > 1 &&
    p.N <= MAX_SCRYPT.N && p.r <= MAX_SCRYPT.r && p.p <= MAX_SCRYPT.p
  );
}

function decode(b64: unknown): Buffer | null {
  if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return null;
  return Buffer.from(b64, 'base64');
}
