/**
 * Key pair generation and key inspection for the PKI module.
 *
 * Keys are produced by Node's `crypto.generateKeyPair` (which runs in the libuv thread pool, so
 * slow RSA generation does not block the event loop) and exported as PEM: private keys as
 * unencrypted PKCS#8, public keys as SPKI.
 */
import * as crypto from 'node:crypto';

type WebCryptoKey = crypto.webcrypto.CryptoKey;

/** Promise wrapper: `util.promisify` loses the PEM-string overload of generateKeyPair. */
function generatePem(type: 'rsa' | 'ec', options: crypto.RSAKeyPairOptions<'pem', 'pem'> | crypto.ECKeyPairOptions<'pem', 'pem'>): Promise<{ publicKey: string; privateKey: string }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: string, privateKey: string): void => {
      if (err) reject(err);
      else resolve({ publicKey, privateKey });
    };
    if (type === 'rsa') crypto.generateKeyPair('rsa', options as crypto.RSAKeyPairOptions<'pem', 'pem'>, done);
    else crypto.generateKeyPair('ec', options as crypto.ECKeyPairOptions<'pem', 'pem'>, done);
  });
}

/** Key algorithms the module issues. */
export type KeyType = 'rsa' | 'ec';
/** RSA modulus sizes we generate. */
export type RsaBits = 2048 | 3072 | 4096;
/** EC curves we generate (WebCrypto names). */
export type EcCurve = 'P-256' | 'P-384';

/** What to generate: `{type:'rsa', bits}` or `{type:'ec', curve}`. */
export type KeySpec = { type: 'rsa'; bits?: RsaBits } | { type: 'ec'; curve?: EcCurve };

/** A generated key pair as PEM text. */
export interface KeyPairPem {
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"). */
  privateKeyPem: string;
  /** SPKI PEM ("BEGIN PUBLIC KEY"). */
  publicKeyPem: string;
}

/** Facts about a public or private key, as needed for policy checks and WebCrypto import. */
export interface KeyDescription {
  keyType: 'rsa' | 'ec' | string;
  /** RSA modulus length in bits; for EC the curve's field size (256, 384, ...) when known. */
  keyBits: number;
  /** WebCrypto curve name (`P-256`, `P-384`, `P-521`) or OpenSSL's name for other curves. */
  curve?: string;
}

const OPENSSL_TO_WEBCRYPTO_CURVE: Record<string, string> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};
const WEBCRYPTO_TO_OPENSSL_CURVE: Record<string, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
};
const CURVE_BITS: Record<string, number> = { 'P-256': 256, 'P-384': 384, 'P-521': 521 };

/**
 * Generates a key pair.
 * @param spec RSA (default 2048 bits) or EC (default P-256).
 * @throws RangeError for sizes/curves outside the supported sets.
 */
export async function generateKeyPair(spec: KeySpec): Promise<KeyPairPem> {
  const encoding = {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  } as const;
  if (spec.type === 'rsa') {
    const bits = spec.bits ?? 2048;
    if (![2048, 3072, 4096].includes(bits)) throw new RangeError(`unsupported RSA size ${bits}`);
    const { privateKey, publicKey } = await generatePem('rsa', { modulusLength: bits, publicExponent: 0x10001, ...encoding });
    return { privateKeyPem: privateKey, publicKeyPem: publicKey };
  }
  if (spec.type === 'ec') {
    const curve = spec.curve ?? 'P-256';
    const namedCurve = WEBCRYPTO_TO_OPENSSL_CURVE[curve];
    if (!namedCurve) throw new RangeError(`unsupported EC curve ${String(curve)}`);
    const { privateKey, publicKey } = await generatePem('ec', { namedCurve, ...encoding });
    return { privateKeyPem: privateKey, publicKeyPem: publicKey };
  }
  throw new RangeError(`unsupported key type ${(spec as { type: unknown }).type as string}`);
}

/** Generates the default key for a key type: RSA 2048 or EC P-256. */
export function generateDefaultKeyPair(keyType: KeyType): Promise<KeyPairPem> {
  return generateKeyPair(keyType === 'rsa' ? { type: 'rsa', bits: 2048 } : { type: 'ec', curve: 'P-256' });
}

/**
 * Describes a Node KeyObject (public or private): type, size and curve.
 * Curves are reported by their WebCrypto names where one exists, else by OpenSSL's name.
 */
export function describeKey(key: crypto.KeyObject): KeyDescription {
  const details = key.asymmetricKeyDetails ?? {};
  const type = key.asymmetricKeyType ?? 'unknown';
  if (type === 'rsa' || type === 'rsa-pss') {
    return { keyType: type === 'rsa' ? 'rsa' : 'rsa-pss', keyBits: details.modulusLength ?? 0 };
  }
  if (type === 'ec') {
    const raw = details.namedCurve ?? 'unknown';
    const curve = OPENSSL_TO_WEBCRYPTO_CURVE[raw] ?? raw;
    return { keyType: 'ec', keyBits: CURVE_BITS[curve] ?? 0, curve };
  }
  return { keyType: type, keyBits: 0 };
}

/**
 * Imports a PKCS#8 PEM private key into WebCrypto for certificate signing with SHA-256
 * (RSASSA-PKCS1-v1_5 for RSA, ECDSA for P-256/P-384).
 * @throws Error when the key is neither RSA nor a WebCrypto-supported EC curve.
 */
export async function importSigningKey(privateKeyPem: string): Promise<WebCryptoKey> {
  const keyObject = crypto.createPrivateKey(privateKeyPem);
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  return crypto.webcrypto.subtle.importKey('pkcs8', der, webCryptoAlgorithm(describeKey(keyObject)), false, ['sign']);
}

/**
 * Returns the SPKI DER of a public key given as PEM (public key, private key or certificate
 * all work, since Node derives the public half).
 */
export function spkiDer(pem: string): Buffer {
  return crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' });
}

function webCryptoAlgorithm(desc: KeyDescription): crypto.webcrypto.RsaHashedImportParams | crypto.webcrypto.EcKeyImportParams {
  if (desc.keyType === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  if (desc.keyType === 'ec' && desc.curve && desc.curve in CURVE_BITS) return { name: 'ECDSA', namedCurve: desc.curve };
  throw new Error(`cannot sign with a ${desc.keyType}${desc.curve ? ` ${desc.curve}` : ''} key`);
}
