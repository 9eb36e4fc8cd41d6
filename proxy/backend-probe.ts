import net from 'node:net';
import tls from 'node:tls';
import { isUntrustedCertificate } from './backend-trust';

/** Why the CSMS probe failed: nothing answered in time or at all, or (wss://) its certificate did not verify. */
export class ProbeError extends Error {
  constructor(readonly kind: 'unreachable' | 'untrusted', message: string) {
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
    const timer = setTimeout(() => { socket.destroy(); reject(new ProbeError('unreachable', 'CSMS probe timed out')); }, timeoutMs);
    socket.once(secure ? 'secureConnect' : 'connect', () => { clearTimeout(timer); socket.end(); socket.destroy(); resolve(); });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(isUntrustedCertificate(err.code)
        ? new ProbeError('untrusted', `CSMS certificate not trusted (${err.code}: ${err.message})`)
        : new ProbeError('unreachable', `CSMS unreachable (${err.code ?? err.message})`));
    });
  });
}
