import { constants as cryptoConstants, createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { RequestListener, ServerOptions } from 'node:http';
import https from 'node:https';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { ConfigError } from './config';
import { watchFiles } from './file-watch';
import type { Logger } from './log';
import { readSettingFile } from './setting-file';

/**
 * TLS 1.2 suites: the four OCPP requires (A00.FR.318/421) plus ECDHE-RSA with AES-GCM for
 * forward secrecy with an RSA certificate. Nothing with CBC, RC4, 3DES or SHA-1 MACs.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
] as const;

/** TLS 1.3 suites (named explicitly so the list above does not silently disable them). */
export const TLS13_CIPHERS = ['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'] as const;

/** Files that make up the server's TLS identity. */
export interface TlsFiles {
  /** One or two (RSA + ECDSA) certificate chain files. */
  certs: string[];
  /** Keys in the same order. */
  keys: string[];
  /** Client CA bundle for Profile 3; when absent no client certificate is requested. */
  clientCa: string | null;
}

/**
 * Reads the files into the secure-context part of the server options. Throws a {@link ConfigError}
 * naming the setting and the file when one is missing, unreadable, not PEM, or a key does not belong
 * to its certificate: OpenSSL would take a mismatched pair of different key types and then fail
 * every handshake, a proxy that looks healthy and admits nobody.
 */
export function readSecureContext(files: TlsFiles): SecureContextOptions {
  const ca = files.clientCa ? readSettingFile('clientCa', files.clientCa) : undefined;
  if (ca && !/-----BEGIN (TRUSTED )?CERTIFICATE-----/.test(ca.toString('latin1'))) {
    throw new ConfigError(`"clientCa" file ${files.clientCa} holds no PEM certificate`);
  }
  const cert = files.certs.map((f) => readSettingFile('tlsCert', f));
  const key = files.keys.map((f) => readSettingFile('tlsKey', f));
  checkPairs(files, cert, key);
  return {
    cert,
    key,
    ca,
    ciphers: [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':'),
    minVersion: 'TLSv1.2',
    ecdhCurve: 'X25519:P-256:P-384',
    honorCipherOrder: true,
    // Derived from the client CA bundle, not the command line: replicas with the same bundle resume
    // each other's sessions, and a changed bundle ends resumption of sessions verified under the old
    // one (a resumed session skips certificate verification: a removed CA would stay trusted for
    // the ticket's lifetime).
    sessionIdContext: sessionIdContextFor(ca),
    // No renegotiation (client-initiated renegotiation is a DoS lever) and no TLS compression (CRIME).
    secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION | cryptoConstants.SSL_OP_NO_COMPRESSION,
  };
}

/** Each key belongs to its certificate, and no two certificates have the same key type (the second would replace the first). */
function checkPairs(files: TlsFiles, certs: Buffer[], keys: Buffer[]): void {
  const types = new Set<string>();
  certs.forEach((pem, i) => {
    const certFile = files.certs[i]!;
    const keyFile = files.keys[i]!;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      throw new ConfigError(`"tlsCert" file ${certFile} is not a PEM certificate`);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(keys[i]!);
    } catch {
      throw new ConfigError(`"tlsKey" file ${keyFile} is not an unencrypted PEM private key`);
    }
    if (!cert.checkPrivateKey(key)) {
      const certType = cert.publicKey.asymmetricKeyType ?? 'unknown';
      const keyType = key.asymmetricKeyType ?? 'unknown';
      throw new ConfigError(`"tlsKey" file ${keyFile} does not belong to the certificate in ${certFile} ` +
        `(${certType === keyType ? `another ${keyType} key` : `key type ${keyType}, certificate key type ${certType}`}): ` +
        'give "tlsCert" and "tlsKey" in the same order');
    }
    const type = cert.publicKey.asymmetricKeyType ?? 'unknown';
    if (types.has(type)) throw new ConfigError(`two "tlsCert" certificates with ${type} keys: give at most one RSA and one ECDSA certificate`);
    types.add(type);
  });
}

/** The TLS session id context for a client CA bundle (32 characters, OpenSSL's limit). */
export function sessionIdContextFor(clientCa: Buffer | undefined): string {
  return createHash('sha256').update('ocpp-security-proxy\0').update(clientCa ?? Buffer.alloc(0)).digest('hex').slice(0, 32);
}

/**
 * Full server options: the secure context plus the socket policy. A client certificate is requested
 * but not required, so Profile 2 and 3 share one port and the decision is made per charger later.
 */
export function serverTlsOptions(files: TlsFiles, handshakeTimeoutMs: number, sessionTimeoutS = 300): TlsOptions & Pick<ServerOptions, 'connectionsCheckingInterval'> {
  return {
    ...readSecureContext(files),
    // Kept by Node across setSecureContext (the certificate reload): a server setting, not a context's.
    sessionTimeout: sessionTimeoutS,
    requestCert: files.clientCa !== null,
    rejectUnauthorized: false,
    handshakeTimeout: handshakeTimeoutMs,
    connectionsCheckingInterval: connectionsCheckingInterval(handshakeTimeoutMs),
    ALPNCallback: selectHttp11,
  };
}

/**
 * The HTTPS server for chargers. Node 20 releases from before nodejs/node#54411 add https's default
 * ALPN list beside any `ALPNCallback` and then refuse the pair (ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS):
 * there the default list stays (same negotiation, only the per-connection copy described below).
 */
export function createTlsServer(options: ReturnType<typeof serverTlsOptions>, onRequest: RequestListener): https.Server {
  try {
    return https.createServer(options, onRequest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS') throw err;
    const { ALPNCallback: _unsupported, ...withDefaultAlpn } = options;
    return https.createServer(withDefaultAlpn, onRequest);
  }
}

/**
 * ALPN: HTTP/1.1 (the WebSocket upgrade) when the client offers it; a client offering only other
 * protocols is refused with `no_application_protocol` (RFC 7301 §3.2, as nginx does), and one that
 * sends no ALPN is not asked. A callback instead of Node's default `ALPNProtocols: ['http/1.1']`
 * because Node copies that list into a new 9-byte Buffer for every connection, a slice of the shared
 * 8 KiB Buffer pool: held for the whole session, it keeps that pool alive, up to 8 KiB per charger
 * that connected on its own (the soak's slow RSS creep).
 */
export function selectHttp11({ protocols }: { protocols: string[] }): string | undefined {
  return protocols.includes('http/1.1') ? 'http/1.1' : undefined;
}

/**
 * How often the HTTP server looks for requests past headersTimeout/requestTimeout. Node checks only
 * every 30 s by default, so a client that finished TLS and then sent nothing would hold its socket
 * for up to 30 s whatever handshakeTimeoutMs says: check at a quarter of the timeout (100 ms..1 s).
 */
export function connectionsCheckingInterval(handshakeTimeoutMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(handshakeTimeoutMs / 4)));
}

/** A server whose certificates can be swapped (tls.Server and https.Server both qualify). */
export interface ContextReloadable {
  setSecureContext(options: SecureContextOptions): void;
}

/**
 * Re-reads certificates, keys and the client CA when any of their files change, and swaps them into
 * the server for new handshakes; live connections keep their session. A broken new set (e.g. key and certificate half-written) is logged and the old one stays in force.
 * Returns a function that stops watching.
 */
export function watchTlsFiles(server: ContextReloadable, files: TlsFiles, log: Logger, intervalMs = 2000, onReload?: (ok: boolean) => void): () => void {
  const paths = [...files.certs, ...files.keys, ...(files.clientCa ? [files.clientCa] : [])];
  return watchFiles(paths, () => {
    try {
      server.setSecureContext(readSecureContext(files));
      log.info({ event: 'tls_reloaded', files: paths }, 'TLS certificates reloaded');
      onReload?.(true);
    } catch (err) {
      log.error({ event: 'tls_reload_failed', err: (err as Error).message }, 'TLS reload failed; keeping the previous certificates');
      onReload?.(false);
    }
  }, intervalMs);
}
