/**
 * The plain listener answers TLS too. An OCPP 1.6 charger moved from Profile 1 to 2 is sent only
 * `ChangeConfiguration SecurityProfile 2`: 1.6 has no message for a new address, so it keeps the host
 * and port of its CentralSystemURI and switches `ws://` to `wss://` (libocpp builds the URL that
 * way). Its next connection is a TLS ClientHello on the plain port; refused there, it would fall back
 * to Profile 1 (a SHOULD), or stay offline.
 *
 * The first byte tells the two apart: 0x16 opens a TLS handshake record, while an HTTP request (or
 * anything else a plain client sends) starts with a printable character. A TLS connection is handed
 * to the TLS server, exactly as if it had come in on `listen` (same certificates, same profiles 2
 * and 3); everything else to the plain HTTP server.
 */
import net from 'node:net';
import type tls from 'node:tls';
import { frontFor } from './server-front';

/** TLS record type "handshake": the first byte of every ClientHello. */
const TLS_HANDSHAKE = 0x16;

/**
 * A server (not listening itself: the caller listens on it, or on a PROXY-protocol front that hands
 * it each connection) routing each connection by its first byte. `admit` sees every connection
 * first (the per-address cap: a connection waiting for its first byte counts too) and destroys
 * the ones it refuses. A connection that sends nothing within `timeoutMs` is closed.
 */
export function plainPortWithTls(plain: net.Server, tlsServer: tls.Server, timeoutMs: number, admit: (socket: net.Socket) => boolean): net.Server {
  const front = net.createServer({ noDelay: true }, (socket) => {
    if (!admit(socket)) return;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    const settle = () => {
      clearTimeout(timer);
      socket.off('data', onFirst);
      socket.off('error', onEarlyEnd);
      socket.off('end', onEarlyEnd);
    };
    const onEarlyEnd = () => {
      settle();
      socket.destroy();
    };
    const onFirst = (chunk: Buffer) => {
      settle();
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE) {
        // A TLSSocket reads the handle itself and takes what is buffered on its next tick: no resume here.
        tlsServer.emit('connection', socket);
      } else {
        // The http server reads through the stream, so it needs the flow back to see the unshifted bytes.
        plain.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onFirst);
    socket.on('error', onEarlyEnd);
    socket.on('end', onEarlyEnd);
  });
  return frontFor(front, plain);
}
