/**
 * The charger's real address for logs, rate limits and `Forwarded`: the one a trusted PROXY-protocol
 * header announced for the connection, else the socket's peer.
 *
 * The PROXY listener records the address on the raw TCP socket it hands to the http/https server.
 * The https server wraps that socket in a TLSSocket, which keeps the raw socket as `_parent` (Node
 * has done so since v0.11; verified by test/integration/proxy-protocol.test.ts), so a lookup walks
 * that link. For plain http, `req.socket` is the raw socket itself.
 */
import type net from 'node:net';

/** An endpoint announced by a PROXY-protocol header. */
export interface ClientEndpoint {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** Keyed by the raw socket, so the entry goes when the connection does. */
const announced = new WeakMap<object, ClientEndpoint>();

/** How deep to follow `_parent` (TLSSocket → raw socket is one step; a wrapped wrapper two). */
const MAX_PARENT_HOPS = 3;

type MaybeWrapped = { remoteAddress?: string; _parent?: unknown };

/** Records the announced client endpoint of a raw socket (called by the PROXY-protocol listener). */
export function recordClientEndpoint(socket: net.Socket, endpoint: ClientEndpoint): void {
  announced.set(socket, endpoint);
}

/**
 * The announced endpoint for this connection, given the raw socket, the TLSSocket on top of it, or
 * `req.socket`; null when no PROXY header announced one (no PROXY listener, LOCAL, UNKNOWN).
 */
export function announcedEndpointOf(socket: object | null | undefined): ClientEndpoint | null {
  let current: unknown = socket;
  for (let hop = 0; hop <= MAX_PARENT_HOPS && current && typeof current === 'object'; hop++) {
    const found = announced.get(current);
    if (found) return found;
    current = (current as MaybeWrapped)._parent;
  }
  return null;
}

/** The client's address: the PROXY-announced one if any, else `socket.remoteAddress` ('' if gone). */
export function clientAddressOf(socket: MaybeWrapped | null | undefined): string {
  return announcedEndpointOf(socket)?.address ?? socket?.remoteAddress ?? '';
}
