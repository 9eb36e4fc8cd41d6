import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { loadCa, signCsr, type CertificateAuthority, type SignCsrResult } from '../certs';
import type { CsrSigner, SigningPolicy } from '../policies/interceptors/certificate-signing';
import { reloadingCaBundle } from './ca-bundle-file';
import type { ProxyConfig } from './config';

/** Options of {@link CaSigner}. */
export interface CaSignerOptions {
  /** Validity of issued charger certificates in days (config `chargerCertDays`). */
  days: number;
  /** Smallest accepted RSA modulus (default 2048, OCPP A00.FR.501). */
  minRsaBits?: number;
  /** Accepted EC curves (default P-256 and P-384). */
  allowedCurves?: string[];
}

/**
 * Signs charger CSRs with one CA (root or issuing intermediate) under a fixed key/validity policy;
 * the CN and O a CSR must carry are given per call, since they depend on the charger.
 */
export class CaSigner implements CsrSigner {
  constructor(private readonly ca: CertificateAuthority, private readonly opts: CaSignerOptions) {}

  /**
   * Loads the CA from a directory (`ca.crt`/`ca.key`, optional `intermediate.crt`/`.key`).
   * @throws CaError (`ca_missing`, `ca_unparsable`, `ca_key_mismatch`) naming the file.
   */
  static async load(dir: string, opts: CaSignerOptions): Promise<CaSigner> {
    return new CaSigner(await loadCa(dir), opts);
  }

  /** The trust anchor chargers' certificates chain to (for the client CA bundle and for tests). */
  get rootPem(): string {
    return this.ca.rootPem;
  }

  /**
   * Whether certificates this signer issues pass the TLS client check against `anchors` (the client
   * CA bundle the listener trusts): its root is among them. An intermediate alone is not enough:
   * Node's listener trusts only complete chains. Otherwise a charger that installs one of its
   * certificates is refused at its next login with it.
   */
  trustedBy(anchors: readonly X509Certificate[]): boolean {
    const root = this.rootFingerprint ??= new X509Certificate(this.ca.rootPem).fingerprint256;
    return anchors.some((a) => a.fingerprint256 === root);
  }

  private rootFingerprint: string | undefined;

  /** Checks the CSR (key type and size, proof of possession, CN, O) and, if it passes, issues. */
  sign(csrPem: string, policy: SigningPolicy): Promise<SignCsrResult> {
    return signCsr(this.ca, csrPem, {
      expectedCommonName: policy.expectedCommonName,
      expectedOrganization: policy.expectedOrganization,
      identity: policy.identity,
      days: this.opts.days,
      minRsaBits: this.opts.minRsaBits,
      allowedCurves: this.opts.allowedCurves,
    });
  }
}

/**
 * Which CA directory signs charger certificates: `caDir` when configured, else the development
 * PKI (`<dataDir>/pki`) when it serves TLS (devPki on and no tlsCert), else none, in which case
 * SignCertificate is answered Rejected.
 */
export function signingCaDir(c: Pick<ProxyConfig, 'caDir' | 'devPki' | 'tlsCert' | 'dataDir'>): string | null {
  if (c.caDir) return c.caDir;
  if (c.devPki && c.tlsCert.length === 0) return path.join(c.dataDir, 'pki');
  return null;
}

/**
 * Opens the configured signer, or resolves null when no CA is configured.
 * @throws CaError when a CA directory is configured but unusable (fail at start, not per CSR).
 */
export async function openCaSigner(c: Pick<ProxyConfig, 'caDir' | 'devPki' | 'tlsCert' | 'dataDir' | 'chargerCertDays'>): Promise<CaSigner | null> {
  const dir = signingCaDir(c);
  return dir ? CaSigner.load(dir, { days: c.chargerCertDays }) : null;
}

/**
 * Whether `signer`'s certificates would be accepted by the listener, judged against the client CA
 * file as it is now (followed like the listener follows it); false without a client CA, or when the
 * file cannot be read: fail closed, nothing is signed that the proxy might refuse.
 */
export function signingTrust(signer: CaSigner, clientCaFile: string | null): () => boolean {
  if (!clientCaFile) return () => false;
  const anchors = reloadingCaBundle(clientCaFile);
  return () => {
    try {
      return signer.trustedBy(anchors());
    } catch {
      return false;
    }
  };
}
