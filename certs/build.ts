/**
 * Internal certificate builder shared by the CA, issuing and CSR-signing code: one place that
 * knows how a certificate is assembled (serial, validity, key identifiers, signature) with
 * `@peculiar/x509` over Node's WebCrypto. Not part of the public API.
 */
import * as crypto from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { bitStringBytes, readDerChildren, readDerElement } from './der';
import { importSigningKey, spkiDer } from './keys';

let loaded: typeof X509 | undefined;

/**
 * `@peculiar/x509`, loaded on first use. Loading it adds about 9 MiB to a bare Node process (6–7 MiB
 * to the proxy's resident memory at start) and reflect-metadata's globals, and a running proxy needs
 * it only to sign a charger's CSR or to generate a development PKI; CA files and certificates are
 * read with Node's crypto. The price: the first CSR after a start waits for the load (0.15–0.2 s,
 * during which the event loop is blocked once).
 */
export function x509(): typeof X509 {
  if (loaded === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const module = require('@peculiar/x509') as typeof X509;
    module.cryptoProvider.set(crypto.webcrypto as unknown as Parameters<typeof module.cryptoProvider.set>[0]);
    loaded = module;
  }
  return loaded;
}

/** Subject attributes the module writes (in this order): C, O, CN. */
export interface SubjectFields {
  CN?: string;
  O?: string;
  C?: string;
}

/** Everything needed to sign one certificate. */
export interface BuildParams {
  subject: SubjectFields;
  /** Issuer certificate PEM; omit for a self-signed certificate. */
  issuerCertPem?: string;
  /** Signing private key (PKCS#8 PEM) of the issuer (or of the subject when self-signed). */
  signingKeyPem: string;
  /** Subject public key as SPKI DER. */
  subjectSpki: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Extensions other than the key identifiers, which are always added. */
  extensions: X509.Extension[];
}

/** A built certificate. */
export interface BuiltCertificate {
  certPem: string;
  /** Canonical serial (see `normaliseSerial`). */
  serialHex: string;
}

/**
 * Returns a positive random 16-byte serial as hex. The top bit is cleared so DER needs no sign
 * byte, and the first byte is kept non-zero so the encoding is always exactly 16 bytes.
 */
export function randomSerialHex(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) || 0x01;
  return bytes.toString('hex');
}

/** Converts subject fields to an x509 name, C first (the conventional order). */
export function toName(subject: SubjectFields): X509.Name {
  const parts: Array<Record<string, string[]>> = [];
  if (subject.C !== undefined) parts.push({ C: [subject.C] });
  if (subject.O !== undefined) parts.push({ O: [subject.O] });
  if (subject.CN !== undefined) parts.push({ CN: [subject.CN] });
  return new (x509().Name)(parts);
}

/** Signs a certificate with SHA-256 (RSASSA-PKCS1-v1_5 or ECDSA, following the signing key). */
export async function buildCertificate(params: BuildParams): Promise<BuiltCertificate> {
  const signingKey = await importSigningKey(params.signingKeyPem);
  const subjectName = toName(params.subject);
  const X = x509();
  const issuer = params.issuerCertPem ? new X.X509Certificate(params.issuerCertPem) : undefined;
  const issuerSpki = issuer ? Buffer.from(issuer.publicKey.rawData) : params.subjectSpki;
  const serialHex = randomSerialHex();
  const extensions: X509.Extension[] = [
    ...params.extensions,
    subjectKeyId(keyIdentifier(params.subjectSpki)),
    authorityKeyId(keyIdentifier(issuerSpki)),
  ];
  const cert = await X.X509CertificateGenerator.create({
    serialNumber: serialHex,
    subject: subjectName,
    issuer: issuer ? issuer.subjectName : subjectName,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: params.subjectSpki,
    signingKey,
    signingAlgorithm: signingKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', serialHex: serialHex.replace(/^0+/, '') };
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(spki: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }
  const [, subjectPublicKey] = readDerChildren(spki, readDerElement(spki, 0));
  const bits = bitStringBytes(spki, subjectPublicKey);
  return crypto.createHash('sha1').update(bits).digest();
}

/** Subject key identifier built from raw bytes (avoids an async WebCrypto import of the key). */
function subjectKeyId(id: Buffer): X509.Extension {
  return new (x509().Extension)('2.5.29.14', false, derOctetString(id));
}

/** Authority key identifier with only the keyIdentifier [0] field. */
function authorityKeyId(id: Buffer): X509.Extension {
  const inner = Buffer.concat([Buffer.from([0x80, id.length]), id]);
  return new (x509().Extension)('2.5.29.35', false, Buffer.concat([Buffer.from([0x30, inner.length]), inner]));
}

function derOctetString(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x04, bytes.length]), bytes]);
}

/**
 * Leaf validity start: an hour ago, as public CAs backdate, so a charger whose clock runs behind
 * (it sets it from the CSMS's answers, which may not have come yet) does not refuse a new certificate
 * as not yet valid.
 */
export const NOT_BEFORE_BACKDATE_MS = 60 * 60 * 1000;
export function defaultNotBefore(): Date {
  return new Date(Date.now() - NOT_BEFORE_BACKDATE_MS);
}

/** `from` plus a number of days. */
export function addDays(from: Date, days: number): Date {
  return new Date(from.getTime() + days * 24 * 60 * 60 * 1000);
}

/** Splits a PEM bundle into its `CERTIFICATE` blocks (each with a trailing newline). */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.map((b) => b + '\n') ?? [];
}

export { spkiDer };
