import { randomInt } from 'node:crypto';

/** OCPP 2.0.1 passwordString characters (a-z A-Z 0-9 and `*-_=:+|@.`). */
export const PASSWORD_ALPHABET_201 = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-_=:+|@.';
/** Printable characters for OCPP 1.6 keys: letters and digits only, so no charger mangles them. */
export const PASSWORD_ALPHABET_16 = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * A new charger password: 20 printable characters for OCPP 1.6 (AuthorizationKey is 16–20 bytes;
 * ~119 bits), 40 characters of the 2.0.1 alphabet for 2.x (~247 bits). Uniform (rejection-free
 * `randomInt`), from the CSPRNG.
 */
export function generatePassword(subprotocol: string): Buffer {
  const [alphabet, length] = subprotocol === 'ocpp1.6' ? [PASSWORD_ALPHABET_16, 20] : [PASSWORD_ALPHABET_201, 40];
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return Buffer.from(out, 'ascii');
}
