import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { FrameSocket } from './frame-socket';
import { acceptKeyFor } from './server-handshake';

/** Why a WebSocket dial failed: the answer's status, a timeout, the subprotocol, a bad answer or the network. */
export class HandshakeError extends Error {
  constructor(readonly kind: 'status' | 'timeout' | 'subprotocol' | 'invalid' | 'network', message: string, readonly status?: number, readonly code?: string) {
    super(message);
    this.name = 'HandshakeError';
  }
}

export interface ConnectOptions {
  headers?: Record<string, string>;
  /** The whole handshake (connect, TLS, 101) must be done within this. */
  timeoutMs: number;
  maxPayload: number;
  /** Extra TLS options for wss:// (a CA, a client certificate). */
  tls?: tls.ConnectionOptions;
}

/**
 * Opens a WebSocket (ws:// or wss://) offering `protocols` and no extension, and resolves with its
 * leg, paused, once the server's 101 has been checked (Upgrade, Sec-WebSocket-Accept, a subprotocol
 * among those offered, no extension). Rejects with a {@link HandshakeError}; nothing stays open then.
 */
export function connectWebSocket(url: string, protocols: string[], opts: ConnectOptions): Promise<FrameSocket> {
  const target = new URL(url);
  const secure = target.protocol === 'wss:';
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  const port = Number(target.port) || (secure ? 443 : 80);
  const key = randomBytes(16).toString('base64');
  const headers: Record<string, string> = {
    ...opts.headers,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': key,
  };
  if (protocols.length > 0) headers['Sec-WebSocket-Protocol'] = protocols.join(',');
  // Credentials in the URL (wss://user:pass@host/…) become Basic auth unless the caller set its own, as ws does.
  if ((target.username || target.password) && !Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) {
    headers.Authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64');
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const request = http.request({
      host,
      port,
      defaultPort: secure ? 443 : 80, // so Host carries no port when it is the default one, as ws sends it
      path: target.pathname + target.search,
      headers,
      createConnection: () => (secure
        ? tls.connect({ ...opts.tls, host, port, servername: opts.tls?.servername ?? (net.isIP(host) ? undefined : host) })
        : net.connect({ host, port })),
    });
    const fail = (err: HandshakeError, socket?: Duplex) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      request.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new HandshakeError('timeout', 'Opening handshake has timed out')), opts.timeoutMs);
    request.on('error', (err: NodeJS.ErrnoException) => fail(new HandshakeError('network', err.message, undefined, err.code)));
    request.on('response', (res: IncomingMessage) => {
      res.resume();
      fail(new HandshakeError('status', `Unexpected server response: ${res.statusCode}`, res.statusCode));
    });
    request.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (settled) return void socket.destroy();
      const problem = answerProblem(res, key, protocols);
      if (problem) return fail(problem, socket);
      settled = true;
      clearTimeout(timer);
      const chosen = res.headers['sec-websocket-protocol'] ?? '';
      resolve(new FrameSocket(socket, { isServer: false, protocol: chosen, maxPayload: opts.maxPayload, head }));
    });
    request.end();
  });
}

/** What is wrong with a 101 answer, or null (the checks `ws` makes as a client). */
function answerProblem(res: IncomingMessage, key: string, protocols: string[]): HandshakeError | null {
  if (res.headers.upgrade?.toLowerCase() !== 'websocket') return new HandshakeError('invalid', 'Invalid Upgrade header');
  if (res.headers['sec-websocket-accept'] !== acceptKeyFor(key)) return new HandshakeError('invalid', 'Invalid Sec-WebSocket-Accept header');
  const chosen = res.headers['sec-websocket-protocol'];
  if (chosen !== undefined && protocols.length === 0) return new HandshakeError('invalid', 'Server sent a subprotocol but none was requested');
  if (chosen !== undefined && !protocols.includes(chosen)) return new HandshakeError('subprotocol', 'Server sent an invalid subprotocol');
  if (chosen === undefined && protocols.length > 0) return new HandshakeError('subprotocol', 'Server sent no subprotocol');
  if (res.headers['sec-websocket-extensions'] !== undefined) return new HandshakeError('invalid', 'Server sent a Sec-WebSocket-Extensions header but no extension was requested');
  return null;
}
