/**
 * Test PKI for any test that needs TLS: a development PKI (CA + RSA and ECDSA server
 * certificates for localhost/127.0.0.1/::1) and a factory for charger client certificates,
 * optionally expired or issued by a second CA that the proxy does not trust.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CertificateAuthority,
  createRootCa,
  DevPkiOptions,
  DevPkiPaths,
  ensureDevPki,
  issueChargerCertificate,
  KeyType,
  loadCa,
  saveCa,
} from '../../certs';
import { writePemFile } from '../../certs/files';

/** Options for a test charger certificate. */
export interface TestChargerOptions {
  /** O of the certificate (default "Test CPO"). */
  organization?: string;
  /** Key type (default 'ec': fast to generate). */
  keyType?: KeyType;
  /** Make a certificate that expired yesterday (valid from 30 days ago). */
  expired?: boolean;
  /** Issue from a second CA that is not the PKI's CA (chains to nothing the proxy trusts). */
  untrusted?: boolean;
  /** Validity in days when neither expired nor explicit dates are given. */
  days?: number;
}

/** Files and facts of a test charger certificate. */
export interface TestChargerCertificate {
  /** PEM file with the leaf (plus intermediates, none for the dev CA). */
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
  chainPem: string;
  /** Canonical serial (see certs/revocation.ts). */
  serialHex: string;
  notAfter: Date;
}

/** A test PKI: dev PKI paths, its CA, and the charger certificate factory. */
export interface TestPki extends DevPkiPaths {
  ca: CertificateAuthority;
  /** Issues a charger certificate with CN = `serial` and writes it under `dir/chargers/`. */
  charger(serial: string, opts?: TestChargerOptions): Promise<TestChargerCertificate>;
  /** Root certificate PEM of the untrusted second CA (created on first use). */
  untrustedCaPem(): Promise<string>;
}

/**
 * Creates (or reuses) a test PKI in `dir`. The root is ECDSA P-256 by default because it is
 * fast; pass `{caKeyType: 'rsa'}` for the production default.
 */
export async function makeTestPki(dir: string, opts: DevPkiOptions = {}): Promise<TestPki> {
  const paths = await ensureDevPki(dir, { caKeyType: 'ec', ...opts });
  const ca = await loadCa(dir);
  let untrusted: Promise<CertificateAuthority> | undefined;
  let counter = 0;
  const untrustedCa = (): Promise<CertificateAuthority> => {
    untrusted ??= (async () => {
      const other = await createRootCa({ keyType: 'ec', commonName: 'Untrusted Test CA', organization: 'Elsewhere' });
      await saveCa(other, path.join(dir, 'untrusted-ca'));
      return other;
    })();
    return untrusted;
  };
  return {
    ...paths,
    ca,
    async untrustedCaPem() {
      return (await untrustedCa()).rootPem;
    },
    async charger(serial, chargerOpts = {}) {
      const issuer = chargerOpts.untrusted ? await untrustedCa() : ca;
      const now = Date.now();
      const day = 24 * 60 * 60 * 1000;
      const issued = await issueChargerCertificate(issuer, {
        commonName: serial,
        organization: chargerOpts.organization ?? 'Test CPO',
        keyType: chargerOpts.keyType ?? 'ec',
        days: chargerOpts.days,
        ...(chargerOpts.expired ? { notBefore: new Date(now - 30 * day), notAfter: new Date(now - day) } : {}),
      });
      const base = `${serial.replace(/[^A-Za-z0-9._-]/g, '_')}-${++counter}${chargerOpts.expired ? '-expired' : ''}${chargerOpts.untrusted ? '-untrusted' : ''}`;
      const certPath = path.join(dir, 'chargers', `${base}.crt`);
      const keyPath = path.join(dir, 'chargers', `${base}.key`);
      await writePemFile(keyPath, issued.keyPem, true);
      await writePemFile(certPath, issued.chainPem, false);
      return { certPath, keyPath, certPem: issued.certPem, keyPem: issued.keyPem, chainPem: issued.chainPem, serialHex: issued.serialHex, notAfter: issued.notAfter };
    },
  };
}

/** Result of an openssl CLI run. */
export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real openssl CLI (/usr/bin/openssl) without a shell; never throws on exit codes. */
export function runOpenssl(args: string[], cwd?: string): OpensslResult {
  const result = spawnSync('/usr/bin/openssl', args, { cwd, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** A fresh temp directory removed when the test ends. */
export async function tempDir(t: { teardown(fn: () => unknown): void }, prefix = 'ocpp-pki-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}
