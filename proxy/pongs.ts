import type WebSocket from 'ws';

/**
 * How the proxy answers pings, on both kinds of leg: with a pong carrying the ping's payload, unless
 * this much is already queued on the socket. A peer that pings and never reads cannot grow our
 * memory, and RFC 6455 §5.5.3 allows answering only some of a burst of pings.
 */
export const PONG_HIGH_WATER = 1 << 20;

/**
 * `ws` options for its legs: the proxy answers their pings itself ({@link answerPing}). `ws`'s own
 * answering terminates a connection once 60 of its pongs are unwritten (`maxPendingAutoPongs`), so a
 * CSMS or charger that sends a burst of pings (a keep-alive misconfigured, a health check gone
 * wild) lost its session, with nothing logged but code 1006.
 */
export const NO_AUTO_PONG = { autoPong: false } as const;

/** The 'ping' listener of a `ws` leg (one function for all of them). */
export function answerPing(this: WebSocket, data: Buffer): void {
  if (this.readyState === 1 && this.bufferedAmount <= PONG_HIGH_WATER) this.pong(data);
}
