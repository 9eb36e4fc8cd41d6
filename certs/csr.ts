/**
 * PKCS#10 certificate signing requests: inspection and policy-checked signing of the CSRs that
 * chargers send in SignCertificate (EVerest sends EC P-256; RSA is accepted too).
 *
 * Parsing uses `@peculiar/x509`; the CSR signature is verified with Node's crypto (OpenSSL), which
 * knows every curve OpenSSL does, so an unusual curve is reported as `csr_key_type` rather than
 * as unparsable.
 */
import * as crypto from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { addDays, buildCertificate, defaultNotBefore, x509 } from './build';
import { CertificateAuthority } from './ca';
import { chargerExtensions, positiveDays } from './issue';
import { identityUri } from './identity-name';
import { bitStringBytes, decodeOid, readDerChildren, readDerElement } from './der';
import { describeKey } from './keys';

/** Failure labels of CSR handling (used verbatim in logs, metrics and audit events). */
export type CsrFailureReason =
  | 'csr_unparsable'
  | 'csr_bad_signature'
  | 'csr_weak_key'
  | 'csr_key_type'
  | 'csr_cn_mismatch'
  | 'csr_o_mismatch';

/** Raised by `inspectCsr` for input that is not a PKCS#10 request. */
export class CsrError extends Error {
  constructor(readonly reason: 'csr_unparsable', message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

/** What a CSR asks for. */
export interface CsrInfo {
  /** First value of each attribute; others in the subject are ignored. */
  subject: { CN?: string; O?: string; C?: string };
  /** 'rsa' or 'ec'; anything else (e.g. 'ed25519', 'rsa-pss') as Node names it. */
  keyType: 'rsa' | 'ec' | string;
  /** RSA modulus bits; for EC the curve size (256/384) when known, else 0. */
  keyBits: number;
  /** EC curve: 'P-256', 'P-384', 'P-521' or OpenSSL's name (e.g. 'prime192v1'). */
  curve?: 'P-256' | 'P-384' | string;
  /** Whether the request is signed by the key it contains (proof of possession). */
  signatureValid: boolean;
}

/** Rules applied by `signCsr`. */
export interface CsrPolicy {
  /** Required exact CN (the charger's serial number). */
  expectedCommonName?: string;
  /** Required exact O (the CPO / OrganizationName). */
  expectedOrganization?: string;
  /** Validity of the issued certificate in days (default 365). */
  days?: number;
  /** The charger identity the certificate is issued to, named in its subjectAltName (see identity-name.ts). */
  identity?: string;
  /** Smallest accepted RSA modulus (default 2048, OCPP A00.FR.501). */
  minRsaBits?: number;
  /** Accepted EC curves (default P-256 and P-384). */
  allowedCurves?: string[];
}

/** Outcome of `signCsr`. */
export type SignCsrResult =
  | { ok: true; certPem: string; chainPem: string; serialHex: string; notAfter: Date }
  | { ok: false; reason: CsrFailureReason };

/** Signature algorithm OIDs whose hash Node's `crypto.verify` needs named. */
const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/**
 * Parses and inspects a PEM (or base64 DER) PKCS#10 request.
 * @throws CsrError (`csr_unparsable`) when the input is not a CSR.
 */
export async function inspectCsr(pem: string): Promise<CsrInfo> {
  const csr = parseCsr(pem);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    throw new CsrError('csr_unparsable', 'the CSR public key cannot be read');
  }
  const desc = describeKey(key);
  const info: CsrInfo = {
    subject: firstFields(csr.subjectName),
    keyType: desc.keyType,
    keyBits: desc.keyBits,
    signatureValid: await verifySignature(csr, key),
  };
  if (desc.curve !== undefined) info.curve = desc.curve;
  return info;
}

/**
 * Checks a charger's CSR against `policy` and, if it passes, issues a charger certificate:
 * subject = the CSR's C/O/CN only, extensions our own (requested extensions are ignored).
 * Checks run in this order, the first failure wins: parse, key type/curve, key size, signature,
 * CN, O. Never throws for a bad CSR; CA problems (unusable CA key) do throw.
 */
export async function signCsr(ca: CertificateAuthority, csrPem: string, policy: CsrPolicy = {}): Promise<SignCsrResult> {
  let info: CsrInfo;
  try {
    info = await inspectCsr(csrPem);
  } catch (err) {
    if (err instanceof CsrError) return { ok: false, reason: err.reason };
    throw err;
  }
  const failure = policyFailure(info, policy);
  if (failure) return { ok: false, reason: failure };
  const csr = parseCsr(csrPem);
  const notBefore = defaultNotBefore();
  const built = await buildCertificate({
    subject: info.subject,
    issuerCertPem: ca.certPem,
    signingKeyPem: ca.keyPem,
    subjectSpki: Buffer.from(csr.publicKey.rawData),
    notBefore,
    notAfter: addDays(notBefore, positiveDays(policy.days ?? 365)),
    extensions: policy.identity === undefined ? chargerExtensions() : [...chargerExtensions(), identityAltName(policy.identity)],
  });
  const notAfter = new (x509().X509Certificate)(built.certPem).notAfter;
  return { ok: true, certPem: built.certPem, chainPem: built.certPem + ca.chainPem, serialHex: built.serialHex, notAfter };
}

/** Returns the first policy rule `info` breaks, or undefined when it passes. */
export function policyFailure(info: CsrInfo, policy: CsrPolicy): CsrFailureReason | undefined {
  const allowedCurves = policy.allowedCurves ?? ['P-256', 'P-384'];
  if (info.keyType === 'ec') {
    if (!info.curve || !allowedCurves.includes(info.curve)) return 'csr_key_type';
  } else if (info.keyType === 'rsa') {
    if (info.keyBits < (policy.minRsaBits ?? 2048)) return 'csr_weak_key';
  } else {
    return 'csr_key_type';
  }
  if (!info.signatureValid) return 'csr_bad_signature';
  if (policy.expectedCommonName !== undefined && info.subject.CN !== policy.expectedCommonName) return 'csr_cn_mismatch';
  if (policy.expectedOrganization !== undefined && info.subject.O !== policy.expectedOrganization) return 'csr_o_mismatch';
  return undefined;
}

function parseCsr(pem: string): X509.Pkcs10CertificateRequest {
  if (typeof pem !== 'string' || pem.trim() === '') throw new CsrError('csr_unparsable', 'the CSR is empty');
  // Outside the try: a library that fails to load is our error, not a bad CSR from the charger.
  const Request = x509().Pkcs10CertificateRequest;
  try {
    return new Request(pem.trim());
  } catch {
    throw new CsrError('csr_unparsable', 'the input is not a PEM PKCS#10 certificate request');
  }
}

function firstFields(name: X509.Name): CsrInfo['subject'] {
  const subject: CsrInfo['subject'] = {};
  for (const field of ['CN', 'O', 'C'] as const) {
    const value = name.getField(field)[0];
    if (value !== undefined) subject[field] = value;
  }
  return subject;
}

/** Verifies the CSR's self-signature; false (not an exception) for any failure. */
async function verifySignature(csr: X509.Pkcs10CertificateRequest, key: crypto.KeyObject): Promise<boolean> {
  try {
    // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
    const der = new Uint8Array(csr.rawData);
    const [info, algorithm, signature] = readDerChildren(der, readDerElement(der, 0));
    const hash = SIGNATURE_HASHES[decodeOid(der, readDerChildren(der, algorithm)[0])];
    if (hash) return crypto.verify(hash, der.subarray(info.start, info.end), key, bitStringBytes(der, signature));
    return await csr.verify(); // e.g. RSA-PSS: WebCrypto reads the parameters
  } catch {
    return false;
  }
}

/** A non-critical subjectAltName with the one URI naming the charger identity (no dNSName: A00.FR.511's note). */
function identityAltName(identity: string): X509.Extension {
  return new (x509().SubjectAlternativeNameExtension)([{ type: 'url', value: identityUri(identity) }], false);
}
