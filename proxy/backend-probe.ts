import net from 'node:net';
import tls from 'node:tls';
import { isUntrustedCertificate } from './backend-trust';

/**
 * Why the CSMS probe failed: nothing answered in time or at all; or, for wss://, its certificate did
 * not verify (`untrusted`), or the TLS handshake failed otherwise (`tls`: a plain server, no common
 * protocol version or suite).
 */
export class ProbeError extends Error {
  constructor(readonly kind: 'unreachable' | 'untrusted' | 'tls', message: string) {
    super(message);
    this.name = 'ProbeError';
  }
}

/**
 * Readiness probe for the CSMS: can a connection to its host and port be opened within the timeout,
 * and, for wss:// (given `trust`), does its certificate verify as a dial's would? (A full WebSocket
 * handshake would need an identity and could show up in CSMS logs.) Rejects with a {@link ProbeError}.
 */
export function probeBackend(backendUrl: string, timeoutMs = 1000, trust?: tls.ConnectionOptions): Promise<void> {
  const url = new URL(backendUrl);
  const secure = url.protocol === 'wss:' && trust !== undefined;
  const port = Number(url.port) || (url.protocol === 'wss:' ? 443 : 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = secure ? tls.connect({ ...trust, host, port, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port });
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(connected ? new ProbeError('tls', 'CSMS TLS handshake timed out') : new ProbeError('unreachable', 'CSMS probe timed out'));
    }, timeoutMs);
    socket.once('connect', () => { connected = true; });
    socket.once(secure ? 'secureConnect' : 'connect', () => { clearTimeout(timer); socket.end(); socket.destroy(); resolve(); });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      if (isUntrustedCertificate(err.code)) reject(new ProbeError('untrusted', `CSMS certificate not trusted (${err.code}: ${err.message})`));
      else if (connected && secure) reject(new ProbeError('tls', `CSMS TLS handshake failed (${err.code ?? 'error'}: ${err.message})`));
      else reject(new ProbeError('unreachable', `CSMS unreachable (${err.code ?? err.message})`));
    });
  });
}
