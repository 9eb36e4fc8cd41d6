/**
 * Leaf certificate issuing: TLS server certificates for the proxy and charger (client)
 * certificates following OCPP A00.FR.5xx (CN = charger serial number, O = CPO, Key Usage
 * digitalSignature + keyAgreement, no Extended Key Usage).
 */
import * as net from 'node:net';
import type * as X509 from '@peculiar/x509';
import { addDays, buildCertificate, defaultNotBefore, spkiDer, x509 } from './build';
import { CertificateAuthority } from './ca';
import { generateDefaultKeyPair, KeyType } from './keys';

/** A freshly issued certificate and its private key. */
export interface IssuedCertificate {
  certPem: string;
  /** PKCS#8 PEM private key. */
  keyPem: string;
  /** Canonical serial (lowercase hex, no leading zeros; see `normaliseSerial`). */
  serialHex: string;
  notAfter: Date;
  /** The certificate followed by the CA's intermediates (never the root). */
  chainPem: string;
}

/** Options for a TLS server certificate. */
export interface ServerCertificateOptions {
  /** DNS names and IP addresses; the first becomes the CN (OCPP: CN = FQDN). */
  hosts: string[];
  keyType: KeyType;
  /** Validity in days (default 397, the browser maximum). */
  days?: number;
  organization?: string;
}

/** Options for a charger (TLS client) certificate. */
export interface ChargerCertificateOptions {
  /** The charger's serial number (OCPP A00.FR.511). */
  commonName: string;
  /** The CPO name (OCPP A00.FR.509; chargers put CpoName / OrganizationName here). */
  organization?: string;
  keyType: KeyType;
  /** Validity in days from notBefore (default 365); ignored when notAfter is given. */
  days?: number;
  /** Explicit validity start (default: an hour ago, see defaultNotBefore). */
  notBefore?: Date;
  /** Explicit validity end, e.g. in the past to make an expired certificate for tests. */
  notAfter?: Date;
}

/** Raised for invalid issuing options (empty hosts, bad dates). */
export class IssueError extends Error {
  constructor(readonly reason: 'issue_invalid_options', message: string) {
    super(message);
    this.name = 'IssueError';
  }
}

/**
 * Key Usage for a charger certificate (OCPP 2.0.1 A00.FR.514 forbids Extended Key Usage). A function,
 * not a constant: the x509 module loads on first use.
 */
export function chargerKeyUsage(): number {
  const flags = x509().KeyUsageFlags;
  return flags.digitalSignature | flags.keyAgreement;
}

/**
 * Issues a TLS server certificate: CN = first host, SAN with a DNS or IP entry per host.
 * RSA keys get keyEncipherment too, which the static-RSA OCPP suites (TLS_RSA_WITH_AES_*_GCM)
 * need. No Extended Key Usage, as OCPP recommends.
 */
export async function issueServerCertificate(ca: CertificateAuthority, opts: ServerCertificateOptions): Promise<IssuedCertificate> {
  const hosts = opts.hosts.map((h) => h.trim()).filter((h) => h !== '');
  if (hosts.length === 0) throw new IssueError('issue_invalid_options', 'a server certificate needs at least one host');
  const keys = await generateDefaultKeyPair(opts.keyType);
  const flags = x509().KeyUsageFlags;
  const usage = opts.keyType === 'rsa'
    ? flags.digitalSignature | flags.keyEncipherment
    : flags.digitalSignature | flags.keyAgreement;
  const notBefore = defaultNotBefore();
  const notAfter = addDays(notBefore, positiveDays(opts.days ?? 397));
  const san = hosts.map((h) => (net.isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
  const built = await buildCertificate({
    subject: { O: opts.organization, CN: hosts[0] },
    issuerCertPem: ca.certPem,
    signingKeyPem: ca.keyPem,
    subjectSpki: spkiDer(keys.publicKeyPem),
    notBefore,
    notAfter,
    extensions: [
      new (x509().BasicConstraintsExtension)(false, undefined, true),
      new (x509().KeyUsagesExtension)(usage, true),
      new (x509().SubjectAlternativeNameExtension)(san, false),
    ],
  });
  return { ...built, keyPem: keys.privateKeyPem, notAfter: certNotAfter(built.certPem), chainPem: built.certPem + ca.chainPem };
}

/**
 * Issues a charger certificate: CN = serial number, O = organization, Key Usage
 * digitalSignature + keyAgreement (critical), CA:false, no EKU, no SAN.
 * Explicit notBefore/notAfter are honoured exactly, so tests can make expired certificates.
 */
export async function issueChargerCertificate(ca: CertificateAuthority, opts: ChargerCertificateOptions): Promise<IssuedCertificate> {
  if (!opts.commonName) throw new IssueError('issue_invalid_options', 'a charger certificate needs a commonName (serial number)');
  const keys = await generateDefaultKeyPair(opts.keyType);
  const notBefore = opts.notBefore ?? defaultNotBefore();
  const notAfter = opts.notAfter ?? addDays(notBefore, positiveDays(opts.days ?? 365));
  if (notAfter.getTime() <= notBefore.getTime()) throw new IssueError('issue_invalid_options', 'notAfter must be after notBefore');
  const built = await buildCertificate({
    subject: { O: opts.organization, CN: opts.commonName },
    issuerCertPem: ca.certPem,
    signingKeyPem: ca.keyPem,
    subjectSpki: spkiDer(keys.publicKeyPem),
    notBefore,
    notAfter,
    extensions: chargerExtensions(),
  });
  return { ...built, keyPem: keys.privateKeyPem, notAfter: certNotAfter(built.certPem), chainPem: built.certPem + ca.chainPem };
}

/** The extensions every charger certificate gets (also used when signing a charger's CSR). */
export function chargerExtensions(): X509.Extension[] {
  const X = x509();
  return [new X.BasicConstraintsExtension(false, undefined, true), new X.KeyUsagesExtension(chargerKeyUsage(), true)];
}

/** Validates a day count, so `--days 0` or NaN fail loudly instead of making odd certificates. */
export function positiveDays(days: number): number {
  if (!Number.isFinite(days) || days <= 0) throw new IssueError('issue_invalid_options', `days must be a positive number, got ${days}`);
  return days;
}

/** notAfter as encoded (X.509 times have one-second precision). */
function certNotAfter(certPem: string): Date {
  return new (x509().X509Certificate)(certPem).notAfter;
}
