import type net from 'node:net';

/**
 * Makes `front` (a server that listens and hands each connection to `target` by emitting
 * 'connection' on it) stand in for `target`, which never listens itself: http(s) servers start
 * tracking connections (headersTimeout/requestTimeout, closeAllConnections) on their own
 * 'listening', so the front's is relayed; and closing the front closes the target.
 */
export function frontFor(front: net.Server, target: net.Server): net.Server {
  front.on('listening', () => target.emit('listening'));
  front.on('close', () => {
    if (!target.listening) target.close();
  });
  return front;
}
