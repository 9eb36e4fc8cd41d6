import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { answerUpgradeWithStatus } from '../http-answer';
import { FrameSocket } from './frame-socket';

/** RFC 6455 §1.3: the GUID every Sec-WebSocket-Accept is derived with. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** A Sec-WebSocket-Key is 16 bytes in base64. */
const KEY_PATTERN = /^[+/0-9A-Za-z]{22}==$/;

/** Whether a Sec-WebSocket-Key header is one: 16 bytes in base64 (RFC 6455 §4.1). */
export function isWebSocketKey(key: string | undefined): key is string {
  return key !== undefined && KEY_PATTERN.test(key);
}

/** Sec-WebSocket-Accept for a key. */
export function acceptKeyFor(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/**
 * Why an upgrade request is not a WebSocket handshake we can complete, or null when it is. The same
 * checks, statuses and version header as `ws`'s WebSocketServer, so a charger sees the same answer
 * whichever completes its handshake.
 */
export function handshakeProblem(req: IncomingMessage): { status: number; headers?: Record<string, string> } | null {
  if (req.method !== 'GET') return { status: 405 };
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return { status: 400 };
  if (!isWebSocketKey(req.headers['sec-websocket-key'])) return { status: 400 };
  const version = Number(req.headers['sec-websocket-version']);
  if (version !== 13 && version !== 8) return { status: 400, headers: { 'Sec-WebSocket-Version': '13, 8' } };
  return null;
}

/**
 * Completes a charger's WebSocket handshake with `protocol` (false: none) and no extension, and
 * returns its leg, paused. A request that is no valid handshake is answered (400/405, reason
 * `bad_handshake`) and null returned; so is a socket already gone.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, opts: { protocol: string | false; maxPayload: number }): FrameSocket | null {
  const problem = handshakeProblem(req);
  if (problem) {
    answerUpgradeWithStatus(socket, problem.status, 'bad_handshake', problem.headers);
    return null;
  }
  if (socket.destroyed || !socket.readable || !socket.writable) {
    socket.destroy();
    return null;
  }
  const lines = [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${acceptKeyFor(req.headers['sec-websocket-key']!)}`,
  ];
  if (opts.protocol) lines.push(`Sec-WebSocket-Protocol: ${opts.protocol}`);
  socket.write(lines.join('\r\n') + '\r\n\r\n');
  return new FrameSocket(socket, { isServer: true, protocol: opts.protocol || '', maxPayload: opts.maxPayload, head });
}
