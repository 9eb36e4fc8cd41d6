import { handshakeGate } from './handshake';
import { identityGate } from './identity';
import { subprotocolGate } from './subprotocol';
import type { Gate } from './types';

/** What the default gate list is built from. */
export interface GateSettings {
  pathPrefix: string;
  subprotocols: readonly string[];
}

/**
 * The admission pipeline, in order. Every upgrade passes each gate or is refused by the first that
 * objects; the list itself documents what a charger must get through before the CSMS sees it.
 */
export function defaultGates(s: GateSettings): Gate[] {
  return [
    handshakeGate, //            a well-formed WebSocket handshake
    identityGate(s.pathPrefix), // the identity from the URL, by the OCPP rules
    subprotocolGate(s.subprotocols), // an OCPP subprotocol we relay
  ];
}
