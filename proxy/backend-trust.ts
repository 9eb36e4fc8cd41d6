import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { ConfigError } from './config';
import { watchFiles } from './file-watch';
import type { Logger } from './log';
import { readSettingFile } from './setting-file';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * Reads the `backendCa` bundle: every PEM certificate in it must parse, and there must be one.
 * Throws a {@link ConfigError} naming the setting and the file, so a replica with a broken bundle
 * stops at start instead of refusing every charger.
 */
export function readBackendCa(file: string): Buffer {
  const pem = readSettingFile('backendCa', file);
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError(`"backendCa" file ${file} holds no PEM certificate`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      throw new ConfigError(`"backendCa" file ${file}: certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate`);
    }
  });
  return pem;
}

/** The TLS client context for a wss:// CSMS: only the `backendCa` bundle when given, else Node's root CAs. */
function backendContext(caFile: string | null): tls.SecureContext {
  return tls.createSecureContext({ minVersion: 'TLSv1.2', ...(caFile ? { ca: readBackendCa(caFile) } : {}) });
}

/**
 * What the proxy trusts when it dials a wss:// CSMS. One client context for every dial (Node
 * would otherwise build a new one, root store included, per connection). With `backendCa` only
 * that bundle is trusted, the way to reach a CSMS with a private CA or to pin its own self-signed
 * certificate; without it, Node's built-in roots (plus NODE_EXTRA_CA_CERTS). The CSMS's name is
 * checked against its certificate either way.
 */
export class BackendTrust {
  #context: tls.SecureContext;

  /** @throws ConfigError when `caFile` cannot be read or holds no valid certificate. */
  constructor(readonly caFile: string | null) {
    this.#context = backendContext(caFile);
  }

  /** Options for `tls.connect` (and `ws`, which passes them on). */
  connectOptions(): tls.ConnectionOptions {
    return { secureContext: this.#context };
  }

  /**
   * Re-reads `backendCa` when it changes, for dials from then on (open sessions keep theirs). A
   * broken new bundle is logged and the previous one stays in force. Returns a function that stops.
   */
  watch(log: Logger, intervalMs = 2000): () => void {
    const file = this.caFile;
    if (!file) return () => {};
    return watchFiles([file], () => {
      try {
        this.#context = backendContext(file);
        log.info({ event: 'backend_ca_reloaded', file }, 'CSMS CA bundle reloaded');
      } catch (err) {
        log.error({ event: 'backend_ca_reload_failed', file, err: (err as Error).message }, 'CSMS CA bundle reload failed; keeping the previous one');
      }
    }, intervalMs);
  }
}

/** OpenSSL's and Node's codes for a peer certificate that does not verify (chain, dates, name). */
const UNTRUSTED_CODES = /^(UNABLE_TO_(GET_ISSUER_CERT(_LOCALLY)?|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE)|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_[A-Z_]+|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH_EXCEEDED|INVALID_PURPOSE)$/;

/** Whether a dial failed because the CSMS's certificate was not trusted (rather than the network). */
export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED_CODES.test(code);
}
