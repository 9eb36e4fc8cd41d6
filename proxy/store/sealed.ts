/**
 * AES-256-GCM sealing for values the proxy must be able to read back (pending rotation passwords,
 * back-end credentials). Format: `v1.` + base64url(iv[12] | tag[16] | ciphertext).
 * Optional associated data (e.g. the charger identity) binds a sealed value to its owner so it cannot
 * be moved to another record.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { StoreError } from './errors';

const VERSION = 'v1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Seals and opens values with one 32-byte key (usually `ServerSecret.sealKey`). */
export class Sealer {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new StoreError('secret_invalid', 'seal key must be 32 bytes');
    this.#key = Buffer.from(key);
  }

  /** Encrypt and authenticate `plaintext` (strings are UTF-8 encoded). */
  seal(plaintext: Buffer | string, associatedData?: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    if (associatedData !== undefined) cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return VERSION + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /**
   * Decrypt a sealed value. Fails closed.
   * @throws StoreError `seal_invalid` when malformed, tampered with, sealed with another key or with
   *   different associated data. The message never contains the value.
   */
  open(sealed: string, associatedData?: string): Buffer {
    if (typeof sealed !== 'string' || !sealed.startsWith(VERSION)) {
      throw new StoreError('seal_invalid', 'sealed value has an unknown format');
    }
    const raw = Buffer.from(sealed.slice(VERSION.length), 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new StoreError('seal_invalid', 'sealed value is truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    if (associatedData !== undefined) decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch {
      throw new StoreError(
        'seal_invalid',
        'sealed value failed authentication (tampered with, or sealed with a different server secret)',
      );
    }
  }
}
