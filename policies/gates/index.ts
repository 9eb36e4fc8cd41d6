import type { CredentialStore, FactoryDefault } from '../../proxy/store/types';
import type { BruteForceGuard } from '../brute-force';
import { basicAuthGate, type PasswordVerifier } from './basic-auth';
import { chargerRecordGate } from './charger-record';
import { clientCertificateGate } from './client-certificate';
import { handshakeGate } from './handshake';
import { identityGate } from './identity';
import { addressLockoutGate, identityLockoutGate } from './lockout';
import { prefetchGate } from './prefetch';
import { profileGate } from './profile';
import { rotationSettlementGate } from './rotation-settlement';
import { subprotocolGate } from './subprotocol';
import type { Gate } from './types';

/** What the structural gates are built from. */
export interface GateSettings {
  pathPrefix: string;
  subprotocols: readonly string[];
}

/** What the authentication gates need on top. */
export interface AuthGateDeps {
  store: CredentialStore;
  guard: BruteForceGuard;
  verifier: PasswordVerifier;
  autoEnrol: boolean;
  organization: string | null;
  rotationGraceMs: number;
  /** See the identity lockout gate (lockout.ts). */
  lockoutSparesFamiliarAddress?: boolean;
  factoryDefaults(): Promise<FactoryDefault[]>;
}

/** Structural checks only: a well-formed handshake, an OCPP identity, a relayed subprotocol. */
export function structuralGates(s: GateSettings): Gate[] {
  return [
    handshakeGate, //                  a well-formed WebSocket handshake
    identityGate(s.pathPrefix), //     the identity from the URL, by the OCPP rules
    subprotocolGate(s.subprotocols), // an OCPP subprotocol we relay
  ];
}

/**
 * The admission pipeline, in order. Every upgrade passes each gate or is refused by the first that
 * objects; the list itself documents what a charger must get through before the CSMS sees a byte.
 */
export function admissionGates(s: GateSettings, d: AuthGateDeps): Gate[] {
  return [
    ...structuralGates(s),
    prefetchGate(d.store, d.guard), //   start the store reads below at once (one round trip)
    addressLockoutGate(d.guard), //      source address not locked out
    chargerRecordGate(d.store, d), //    known (404) and not blocked (403)
    identityLockoutGate(d.guard, d), //  identity not locked out (no password tried), unless from its familiar address
    profileGate, //                      presented profile >= the charger's minimum
    clientCertificateGate(d), //         Profile 3: chain, validity, revocation, O, CN binding
    basicAuthGate(d), //                 Profiles 1/2: username and password
    // ---- the CSMS is dialled here; the gates below run once its leg is open ----
    rotationSettlementGate(d), //        a rotation the login settled is written (commit or drop)
  ];
}
