/**
 * Certificate authorities: create a self-signed root (optionally with an intermediate signed by
 * it), and save/load them as a directory of PEM files:
 *
 *   ca.crt            root certificate
 *   ca.key            root private key (may be absent when an intermediate issues and the root
 *                     key is kept offline)
 *   intermediate.crt  issuing intermediate (optionally followed by higher intermediates)
 *   intermediate.key  issuing intermediate's private key
 *
 * Key files are written with mode 0600.
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import type * as X509 from '@peculiar/x509';
import { addDays, buildCertificate, splitPemCertificates, spkiDer, x509 } from './build';
import { generateKeyPair, KeySpec, KeyType } from './keys';
import { readOptional, writePemFile } from './files';

/** A CA able to issue certificates. */
export interface CertificateAuthority {
  /** The issuing CA certificate (the root itself, or the issuing intermediate). */
  certPem: string;
  /** The issuing CA's private key (PKCS#8 PEM). */
  keyPem: string;
  /**
   * The issuing certificate plus any intermediates up to, but not including, the root. Empty
   * string when the root issues directly (a leaf's chain is then the leaf alone).
   */
  chainPem: string;
  /** The self-signed root certificate (the trust anchor peers install). */
  rootPem: string;
  /** The root's private key, when known (needed to save a root+intermediate CA in full). */
  rootKeyPem?: string;
}

/** Why a CA could not be loaded. */
export type CaErrorReason = 'ca_missing' | 'ca_unparsable' | 'ca_key_mismatch';

/** Error raised while loading a CA; `reason` is a short label, the message names the file. */
export class CaError extends Error {
  constructor(readonly reason: CaErrorReason, message: string) {
    super(message);
    this.name = 'CaError';
  }
}

/** Options for a new CA certificate. */
export interface CaOptions {
  /** Subject CN; defaults to "OCPP Security Proxy Root CA" / "... Intermediate CA". */
  commonName?: string;
  organization?: string;
  /** 'rsa' (3072 bits unless `key` says otherwise) or 'ec' (P-256 unless `key` says otherwise). */
  keyType?: KeyType;
  /** Exact key to generate; overrides keyType. */
  key?: KeySpec;
  /** Validity in days: 3650 for a root, 1825 for an intermediate. */
  days?: number;
}

/** Basic constraints and key usages of a CA certificate (a function: the x509 module loads on first use). */
function caExtensions(pathLength: number | undefined): X509.Extension[] {
  const X = x509();
  const usages = X.KeyUsageFlags.keyCertSign | X.KeyUsageFlags.cRLSign | X.KeyUsageFlags.digitalSignature;
  return [new X.BasicConstraintsExtension(true, pathLength, true), new X.KeyUsagesExtension(usages, true)];
}

function caKeySpec(opts: CaOptions): KeySpec {
  if (opts.key) return opts.key;
  return opts.keyType === 'ec' ? { type: 'ec', curve: 'P-256' } : { type: 'rsa', bits: 3072 };
}

/** Creates a self-signed root CA (CA:true, keyCertSign+cRLSign, SHA-256). */
export async function createRootCa(opts: CaOptions = {}): Promise<CertificateAuthority> {
  const keys = await generateKeyPair(caKeySpec(opts));
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const { certPem } = await buildCertificate({
    subject: { O: opts.organization, CN: opts.commonName ?? 'OCPP Security Proxy Root CA' },
    signingKeyPem: keys.privateKeyPem,
    subjectSpki: spkiDer(keys.publicKeyPem),
    notBefore,
    notAfter: addDays(notBefore, opts.days ?? 3650),
    extensions: caExtensions(undefined),
  });
  return { certPem, keyPem: keys.privateKeyPem, chainPem: '', rootPem: certPem, rootKeyPem: keys.privateKeyPem };
}

/**
 * Creates an intermediate CA (pathLen 0) signed by `parent`, which may itself be an intermediate.
 * The returned CA issues with the new intermediate; its chain is the intermediate plus the
 * parent's chain.
 */
export async function createIntermediateCa(parent: CertificateAuthority, opts: CaOptions = {}): Promise<CertificateAuthority> {
  const keys = await generateKeyPair(caKeySpec(opts));
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const { certPem } = await buildCertificate({
    subject: { O: opts.organization, CN: opts.commonName ?? 'OCPP Security Proxy Intermediate CA' },
    issuerCertPem: parent.certPem,
    signingKeyPem: parent.keyPem,
    subjectSpki: spkiDer(keys.publicKeyPem),
    notBefore,
    notAfter: addDays(notBefore, opts.days ?? 1825),
    extensions: caExtensions(0),
  });
  return {
    certPem,
    keyPem: keys.privateKeyPem,
    chainPem: certPem + parent.chainPem,
    rootPem: parent.rootPem,
    rootKeyPem: parent.rootKeyPem,
  };
}

/** Writes a CA to `dir` (see the module comment for the file names). */
export async function saveCa(ca: CertificateAuthority, dir: string): Promise<void> {
  const hasIntermediate = ca.chainPem.trim() !== '';
  await writePemFile(path.join(dir, 'ca.crt'), ca.rootPem, false);
  if (hasIntermediate) {
    await writePemFile(path.join(dir, 'intermediate.crt'), ca.chainPem, false);
    await writePemFile(path.join(dir, 'intermediate.key'), ca.keyPem, true);
    if (ca.rootKeyPem) await writePemFile(path.join(dir, 'ca.key'), ca.rootKeyPem, true);
  } else {
    await writePemFile(path.join(dir, 'ca.key'), ca.keyPem, true);
  }
}

/**
 * Loads a CA from `dir`. With `intermediate.crt` + `intermediate.key` present the intermediate
 * issues (and `ca.key` is optional); otherwise the root issues and `ca.key` is required.
 * @throws CaError `ca_missing`, `ca_unparsable` (including a chain that does not lead to the
 *   root) or `ca_key_mismatch`.
 */
export async function loadCa(dir: string): Promise<CertificateAuthority> {
  const rootPem = await readRequired(dir, 'ca.crt');
  const root = parseCert(rootPem, 'ca.crt');
  const rootKeyPem = await readOptional(path.join(dir, 'ca.key'));
  if (rootKeyPem !== undefined) checkKeyPair(root, rootKeyPem, 'ca.key');
  const interPem = await readOptional(path.join(dir, 'intermediate.crt'));
  if (interPem === undefined) {
    if (rootKeyPem === undefined) throw new CaError('ca_missing', `missing ${path.join(dir, 'ca.key')}`);
    return { certPem: normalisePem(rootPem), keyPem: rootKeyPem, chainPem: '', rootPem: normalisePem(rootPem), rootKeyPem };
  }
  const interKeyPem = await readRequired(dir, 'intermediate.key');
  const blocks = splitPemCertificates(interPem);
  if (blocks.length === 0) throw new CaError('ca_unparsable', `no certificate in ${path.join(dir, 'intermediate.crt')}`);
  const chain = blocks.map((b) => parseCert(b, 'intermediate.crt'));
  checkKeyPair(chain[0], interKeyPem, 'intermediate.key');
  [...chain, root].reduce((child, parent) => {
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new CaError('ca_unparsable', `intermediate.crt does not chain to ca.crt in ${dir}`);
    }
    return parent;
  });
  return { certPem: blocks[0], keyPem: interKeyPem, chainPem: blocks.join(''), rootPem: normalisePem(rootPem), rootKeyPem };
}

async function readRequired(dir: string, name: string): Promise<string> {
  const text = await readOptional(path.join(dir, name));
  if (text === undefined) throw new CaError('ca_missing', `missing ${path.join(dir, name)}`);
  return text;
}

function parseCert(pem: string, name: string): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(pem);
  } catch {
    throw new CaError('ca_unparsable', `${name} is not a PEM certificate`);
  }
}

function checkKeyPair(cert: crypto.X509Certificate, keyPem: string, name: string): void {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch {
    throw new CaError('ca_unparsable', `${name} is not a PEM private key`);
  }
  if (!cert.checkPrivateKey(key)) throw new CaError('ca_key_mismatch', `${name} does not match its certificate`);
}

function normalisePem(pem: string): string {
  return splitPemCertificates(pem)[0] ?? pem;
}

export type { KeyType };
