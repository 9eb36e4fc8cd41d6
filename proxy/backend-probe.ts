import net from 'node:net';

/**
 * Readiness probe for the CSMS: can a TCP connection to its host and port be opened within the
 * timeout? (A full WebSocket handshake would need an identity and could show up in CSMS logs.)
 */
export function probeBackend(backendUrl: string, timeoutMs = 1000): Promise<void> {
  const url = new URL(backendUrl);
  const port = Number(url.port) || (url.protocol === 'wss:' ? 443 : 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('CSMS probe timed out')); }, timeoutMs);
    socket.once('connect', () => { clearTimeout(timer); socket.end(); socket.destroy(); resolve(); });
    socket.once('error', (err: NodeJS.ErrnoException) => { clearTimeout(timer); reject(new Error(`CSMS unreachable (${err.code ?? err.message})`)); });
  });
}
