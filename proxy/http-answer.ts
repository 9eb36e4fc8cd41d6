import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** Seconds a 503 asks the charger to wait before it retries. */
const RETRY_AFTER_S = '10';

/**
 * Answers a WebSocket upgrade request with a plain HTTP error and closes the socket. The body is
 * the reason label only: the same word the log line and the metric carry, never a secret.
 */
export function answerUpgradeWithStatus(socket: Duplex, status: number, reason: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  // Every 503 is worth a retry (capacity, the CSMS or the store away): say when.
  if (status === 503 && !Object.keys(headers).some((k) => k.toLowerCase() === 'retry-after')) headers = { ...headers, 'Retry-After': RETRY_AFTER_S };
  const body = reason + '\n';
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(lines.join('\r\n') + '\r\n\r\n' + body);
  // A peer that never reads must not keep the socket alive.
  setTimeout(() => socket.destroy(), 2000).unref();
}
