import path from 'node:path';
import { ensureDevPki } from '../certs';
import { ConfigError, type ProxyConfig } from './config';
import type { TlsFiles } from './tls';

/** The server's TLS files, and whether they are the generated development PKI. */
export interface ResolvedTls {
  files: TlsFiles;
  /** Set when the development PKI is in use: the CA file chargers must trust. */
  devCa: string | null;
}

/**
 * Uses the configured certificates, or (when none are configured and `devPki` is on) creates the
 * development PKI once under `<dataDir>/pki` and uses it, its CA doubling as the client CA.
 */
export async function resolveTls(c: ProxyConfig): Promise<ResolvedTls> {
  if (c.tlsCert.length > 0) return { files: { certs: c.tlsCert, keys: c.tlsKey, clientCa: c.clientCa }, devCa: null };
  if (!c.devPki) throw new ConfigError('no "tlsCert"/"tlsKey" configured and "devPki" is off: the TLS listener has no certificate');
  const pki = await ensureDevPki(path.join(c.dataDir, 'pki'));
  return {
    files: { certs: [pki.rsaCert, pki.ecCert], keys: [pki.rsaKey, pki.ecKey], clientCa: c.clientCa ?? pki.caCert },
    devCa: pki.caCert,
  };
}
