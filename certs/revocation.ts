/**
 * Certificate facts used for identity binding and revocation, with one canonical serial form.
 *
 * Canonical serial: lowercase hex digits, no separators, no leading zeros ("0" for zero). It is
 * the integer's value, so every spelling of the same serial (OpenSSL's "0A:1B", Node's TLS
 * `getPeerCertificate().serialNumber` "0A1B", a user's "a1b") maps to the same string ("a1b").
 */
import * as crypto from 'node:crypto';

/** Raised by `normaliseSerial` for input that is not a hex serial. */
export class SerialError extends Error {
  readonly reason = 'serial_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'SerialError';
  }
}

/** The subject or issuer attributes we bind identities to (first value of each). */
export interface NameFields {
  CN?: string;
  O?: string;
  C?: string;
}

/** Facts about one certificate. */
export interface CertificateInfo {
  /** Canonical serial (see module comment). */
  serialHex: string;
  subject: NameFields;
  issuer: NameFields;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint as Node prints it ("AB:CD:..."). */
  fingerprint256: string;
}

/**
 * Maps a serial in any common spelling (any case, ':' ' ' '-' separators, "0x" prefix, leading
 * zeros) to the canonical form.
 * @throws SerialError when anything but hex digits and separators remains.
 */
export function normaliseSerial(input: string): string {
  const compact = String(input).trim().replace(/^0x/i, '').replace(/[\s:.-]/g, '').toLowerCase();
  if (compact === '' || !/^[0-9a-f]+$/.test(compact)) throw new SerialError('a certificate serial must be hexadecimal');
  return compact.replace(/^0+/, '') || '0';
}

/** Reads the first certificate of a PEM text with Node's X509Certificate. */
export function certificateInfo(pem: string | crypto.X509Certificate): CertificateInfo {
  const cert = typeof pem === 'string' ? new crypto.X509Certificate(pem) : pem;
  return {
    serialHex: normaliseSerial(cert.serialNumber),
    subject: parseNodeName(cert.subject),
    issuer: parseNodeName(cert.issuer),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    fingerprint256: cert.fingerprint256,
  };
}

/**
 * Parses Node's distinguished-name text ("C=DE\nO=Acme\nCN=SER1"; multi-valued RDNs joined
 * with "+") into the fields we use; the first value of each wins.
 */
export function parseNodeName(text: string): NameFields {
  const fields: NameFields = {};
  for (const line of text.split('\n')) {
    for (const part of line.split('+')) {
      const eq = part.indexOf('=');
      if (eq <= 0) continue;
      const key = part.slice(0, eq).trim();
      if ((key === 'CN' || key === 'O' || key === 'C') && fields[key] === undefined) fields[key] = part.slice(eq + 1);
    }
  }
  return fields;
}
