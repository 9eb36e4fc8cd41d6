import type { ChargerRecord, SecurityProfile } from '../../proxy/store/types';

/** The client certificate a charger was admitted with (Profile 3), in the form interceptors need. */
export interface AdmittedCertificate {
  /** Canonical serial: lowercase hex, no separators, no leading zeros (certs/revocation.ts normaliseSerial). */
  serialHex: string;
  commonName: string | null;
  organization: string | null;
  /** ms epoch. */
  notAfter: number;
  /** It names this charger's identity: the proxy issued it to this charger (certs/identity-name.ts). */
  issuedToThisCharger?: boolean;
}

/**
 * What the admission gates establish about a charger, handed to the session and its interceptors
 * as `session.facts`. Every field is set once the gates passed (certificate only on Profile 3).
 */
export interface AdmissionFacts {
  /** The stored record as read at admission (interceptors re-read the store before acting on it). */
  charger: ChargerRecord;
  /** Profile the charger was admitted on. */
  profile: SecurityProfile;
  /**
   * Profile 3 with a Basic password beside the certificate: a charger still configured for Profile 2
   * whose TLS stack sends the certificate it holds whenever asked (Profile 3 sends no password).
   */
  basicWithCertificate?: boolean;
  certificate?: AdmittedCertificate;
  /** Which stored password matched: the current one, the pending one (rotation committed), or a factory default. */
  passwordMatched?: 'current' | 'pending' | 'factory';
  /** What the password login means for a pending rotation, written once the CSMS leg is open (rotation-settlement gate). */
  rotationSettlement?: 'commit' | 'drop_pending';
  /** Set when that write happened. */
  rotationCommitted?: boolean;
  rotationDropped?: boolean;
  /** The settlement that was due but could not be written (the store refused it); a later login writes it. */
  rotationSettlementDeferred?: 'commit' | 'drop_pending';
}

/** Reads the admission facts off a session's facts bag (undefined for sessions admitted without a store). */
export function admissionFacts(facts: Readonly<Record<string, unknown>>): AdmissionFacts | undefined {
  return facts.charger ? (facts as unknown as AdmissionFacts) : undefined;
}
