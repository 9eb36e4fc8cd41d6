import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import https from 'node:https';
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
  /** The bundle's file as it was just before it was read: a change before `watch` starts is caught then. */
  readonly #readAt: string | null;
  #agent: https.Agent | null = null;

  /** @throws ConfigError when `caFile` cannot be read or holds no valid certificate. */
  constructor(readonly caFile: string | null) {
    this.#readAt = caFile ? fileVersion(caFile) : null;
    this.#context = backendContext(caFile);
  }

  /**
   * Options for `tls.connect` (and `ws`, which passes them on). `rejectUnauthorized` is explicit so
   * that NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot turn verification off.
   */
  connectOptions(): tls.ConnectionOptions {
    return { secureContext: this.#context, rejectUnauthorized: true };
  }

  /**
   * An HTTPS agent with the same trust, for `httpPassthrough` to an https:// origin; a new one after
   * a reload. Without keep-alive: passthrough is rare, and a reload then leaves no pooled connection
   * made under the old trust.
   */
  agent(): https.Agent {
    this.#agent ??= new https.Agent({ ...this.connectOptions(), keepAlive: false });
    return this.#agent;
  }

  /**
   * Re-reads `backendCa` when it changes, for dials from then on (open sessions keep theirs). A
   * broken new bundle is logged and the previous one stays in force. `onReload` hears each outcome.
   * Returns a function that stops.
   */
  watch(log: Logger, intervalMs = 2000, onReload?: (ok: boolean) => void): () => void {
    const file = this.caFile;
    if (!file) return () => {};
    const reload = () => {
      try {
        this.#context = backendContext(file);
        this.#agent = null;
        log.info({ event: 'backend_ca_reloaded', file }, 'CSMS CA bundle reloaded');
        onReload?.(true);
      } catch (err) {
        log.error({ event: 'backend_ca_reload_failed', file, err: (err as Error).message }, 'CSMS CA bundle reload failed; keeping the previous one');
        onReload?.(false);
      }
    };
    const stop = watchFiles([file], reload, intervalMs);
    if (fileVersion(file) !== this.#readAt) reload(); // replaced between the start's read and now
    return stop;
  }
}

/** A file's modification time and inode, or '' when it cannot be read: what the watcher compares. */
function fileVersion(file: string): string {
  try {
    const st = statSync(file);
    return `${st.mtimeMs}:${st.ino}`;
  } catch {
    return '';
  }
}

/** OpenSSL's and Node's codes for a peer certificate that does not verify (chain, dates, name). */
const UNTRUSTED_CODES = /^(UNABLE_TO_(GET_ISSUER_CERT(_LOCALLY)?|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE)|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_[A-Z_]+|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH_EXCEEDED|INVALID_PURPOSE)$/;

/** Whether a dial failed because the CSMS's certificate was not trusted (rather than the network). */
export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED_CODES.test(code);
}
