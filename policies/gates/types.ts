import type { IncomingMessage } from 'node:http';
import type { PeerCertificate } from 'node:tls';

/** Which listener a charger came in on. */
export type ListenerKind = 'tls' | 'plain';

/**
 * Everything known about one WebSocket upgrade request while the gates run. Gates read it and
 * may fill in what they establish (identity, subprotocols, credentials, the stored record) for
 * the gates after them; nothing here reaches the CSMS unless every gate passed.
 */
export interface UpgradeContext {
  readonly req: IncomingMessage;
  readonly listener: ListenerKind;
  /** Charger address as seen by the proxy (or as vouched for by a trusted front). */
  remoteAddress: string;
  /**
   * `remoteAddress` is a TLS-terminating front's own (it named no charger address): every charger
   * behind the front shares it, so it is neither locked out nor familiar.
   */
  addressShared: boolean;
  /** Percent-decoded charger identity, set by the identity gate. */
  identity: string;
  /** Subprotocols the charger offered, in its order of preference. */
  offeredProtocols: string[];
  /** The offered subprotocols the proxy relays (configured list), in the charger's order. */
  acceptableProtocols: string[];
  /** The TLS client certificate, if the charger presented one. */
  peerCertificate: PeerCertificate | null;
  /** Whether that certificate chains to the client CA (Node's verdict at the socket). */
  peerAuthorized: boolean;
  /** Node's reason when it does not (e.g. CERT_HAS_EXPIRED). */
  peerAuthorizationError: string | null;
  /** Free slots for gates to hand facts to later gates and to the session (e.g. the stored record). */
  facts: Record<string, unknown>;
  /** Labels of checks that would have refused in report-only mode (the charger was admitted anyway). */
  reportOnlyFindings: string[];
  /** performance.now() when the upgrade request arrived (for admission latency). */
  readonly startedAt: number;
  /** Report-only mode for this upgrade (global setting, or the charger's own flag once its record is read). */
  reportOnly: boolean;
}

/** A gate's refusal. The same `reason` is used in the HTTP answer, the log line and the metric label. */
export interface Rejection {
  status: number;
  reason: string;
  /** Extra response headers, e.g. `WWW-Authenticate`. */
  headers?: Record<string, string>;
  /**
   * When true the refusal is not an HTTP answer: the handshake completes without a subprotocol and
   * the socket is closed at once, as OCPP-J prescribes when no subprotocol is common.
   */
  completeThenClose?: boolean;
}

/** What a gate says: continue (undefined) or stop with a rejection. */
export type GateVerdict = Rejection | undefined;

/**
 * One admission check. Gates run in a fixed order (see policies/gates/index.ts); the first
 * rejection stops the pipeline. Adding a check is adding a file and a line in that list.
 */
export interface Gate {
  /** Stable name, for logs. */
  readonly name: string;
  /**
   * True for credential and policy checks whose refusal report-only mode may turn into a logged
   * finding. Structural checks (handshake, identity syntax, subprotocol) always refuse.
   */
  readonly reportOnlyCapable?: boolean;
  /** Runs once the CSMS leg is open, just before the charger's 101 (for writes only a session may make). */
  readonly afterBackend?: boolean;
  check(ctx: UpgradeContext): GateVerdict | Promise<GateVerdict>;
}

/** Shorthand used by gates. */
export function reject(status: number, reason: string, headers?: Record<string, string>): Rejection {
  return { status, reason, headers };
}

/**
 * The address failures are counted and locked out under: null when it is a TLS-terminating front's
 * own (every charger behind the front shares it, and locking it out would lock out the fleet;
 * identities are still counted and locked out one by one).
 */
export function lockoutAddressOf(ctx: UpgradeContext): string | null {
  return ctx.addressShared ? null : ctx.remoteAddress;
}
