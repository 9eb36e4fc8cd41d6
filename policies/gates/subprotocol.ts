import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';
import { parseSubprotocols } from './header-lists';

/**
 * Reads the charger's offered OCPP subprotocols and keeps those the proxy relays, in the charger's
 * order. With none in common OCPP-J says: complete the handshake without a subprotocol, then close;
 * the CSMS is never dialled. A malformed list (see header-lists.ts) is a bad handshake.
 */
export function subprotocolGate(supported: readonly string[]): Gate {
  const allowed = new Set(supported);
  return {
    name: 'subprotocol',
    check(ctx: UpgradeContext): GateVerdict {
      const header = ctx.req.headers['sec-websocket-protocol'];
      const offered = header === undefined ? [] : parseSubprotocols(header); // present but empty: ws refuses it too
      if (!offered) return reject(400, 'bad_handshake');
      ctx.offeredProtocols = offered;
      ctx.acceptableProtocols = ctx.offeredProtocols.filter((p) => allowed.has(p));
      if (ctx.acceptableProtocols.length === 0) return { status: 400, reason: 'no_common_subprotocol', completeThenClose: true };
      return undefined;
    },
  };
}
