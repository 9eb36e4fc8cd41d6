import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { WebSocketServer } from 'ws';
import type { Gate, ListenerKind, Rejection, UpgradeContext } from '../policies/gates/types';
import { BackendError, ignoreSocketError } from './backend';
import { announcedEndpointOf, clientAddressOf } from './client-address';
import type { EdgeFacts, EdgeReader } from './edge';
import { answerUpgradeWithStatus } from './http-answer';
import type { Framing } from './config';
import type { Leg } from './leg';
import type { Logger } from './log';
import { answerPing } from './pongs';
import { acceptWebSocket } from './wire/server-handshake';

/** The negotiated subprotocol travels from the pipeline to `handleProtocols` on the request object. */
const CHOSEN = Symbol('ocpp.chosenSubprotocol');
type RequestWithChoice = IncomingMessage & { [CHOSEN]?: string | false };

/** For the WebSocketServer's `handleProtocols`: answer with exactly what the CSMS chose. */
export function chosenProtocol(_offered: Set<string>, req: IncomingMessage): string | false {
  return (req as RequestWithChoice)[CHOSEN] ?? false;
}

/** What the upgrade pipeline needs from the server. */
export interface UpgradeDeps {
  /** Admission gates, in order. */
  gates: readonly Gate[];
  /** The `noServer` WebSocketServer that completes handshakes with permessage-deflate (and all of them with `framing: ws`). */
  wss: WebSocketServer;
  /** Which framing a charger's session runs on: the proxy's own, or `ws` (permessage-deflate offered, or configured). */
  framingFor(req: IncomingMessage): Framing;
  /** Largest frame accepted (maxFrameBytes). */
  maxPayload: number;
  /** An upgrade's context was made, before any gate ran (the coordinator marks it: coordination.ts). */
  upgradeStarted?(ctx: UpgradeContext): void;
  /** Every gate passed (for admission latency). */
  gatesPassed?(ctx: UpgradeContext): void;
  /** Opens the CSMS leg for an admitted charger, on the session's framing (rejects with BackendError). */
  dialBackend(ctx: UpgradeContext, framing: Framing): Promise<Leg>;
  /** Both legs are open: start the session. */
  admitted(ctx: UpgradeContext, charger: Leg, csms: Leg): void;
  /** One call per refused upgrade (log line, metric). */
  rejected(ctx: UpgradeContext, rejection: Rejection): void;
  /** A refusal that report-only mode waved through (log line, metric). */
  reportOnly(ctx: UpgradeContext, rejection: Rejection): void;
  /** Global report-only setting (a charger's own flag is read by its record gate). */
  reportOnlyDefault: boolean;
  /** What a trusted TLS-terminating front vouches for (forwarded certificate, TLS at the edge). */
  edge?: EdgeReader | null;
  /**
   * The per-address connection cap for a charger address a front named (its connections to us are
   * not counted by their TCP peer, the front): false when the address is over it. Counted while the
   * socket lives.
   */
  admitForwardedAddress?(address: string, socket: Duplex): boolean;
  log: Logger;
}

/**
 * Runs one WebSocket upgrade through the pipeline: gates in order → CSMS dialled → charger
 * answered 101 with the CSMS's subprotocol. The charger's socket is answered exactly once; on any
 * failure nothing is left half open.
 */
export async function handleUpgrade(deps: UpgradeDeps, listener: ListenerKind, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  // A peer reset while we think is not an error of ours. A named function, not a closure: the
  // listener lives as long as the socket, and a closure here would keep this scope (request and
  // upgrade context, a few KiB) alive for the whole session.
  socket.on('error', destroySocket);
  const ctx = newContext(req, socket, listener, deps.reportOnlyDefault);
  deps.upgradeStarted?.(ctx);
  // Fronts that terminate TLS reach the plain listener; on the TLS listener we terminated it ourselves,
  // so a forwarded certificate there can only be the client's own claim (or a layer-4 balancer's relay of it).
  if (applyEdge(ctx, listener === 'plain' ? deps.edge?.(req, socket) ?? null : null, socket) && deps.admitForwardedAddress && !deps.admitForwardedAddress(ctx.remoteAddress, socket)) {
    return refuse(deps, ctx, TOO_MANY_FROM_ADDRESS, socket, head);
  }
  const split = splitGates(deps.gates);
  const refusal = await runGates(deps, ctx, split.early, socket);
  if (refusal) return refusal === CLIENT_GONE ? clientGone(deps, ctx, socket) : refuse(deps, ctx, refusal, socket, head);
  deps.gatesPassed?.(ctx);
  // Decided once: both legs of a session run on the same framing.
  const framing = deps.framingFor(req);

  let csms: Leg;
  try {
    csms = await deps.dialBackend(ctx, framing);
  } catch (err) {
    const e = err instanceof BackendError ? err : new BackendError('backend_error', 502, String(err));
    deps.log.warn({ event: 'backend_connect_failed', identity: ctx.identity, reason: e.reason, err: e.message });
    const completeThenClose = e.reason === 'backend_no_subprotocol';
    return refuse(deps, ctx, { status: e.status, reason: e.reason, completeThenClose }, socket, head);
  }

  const lateRefusal = await runGates(deps, ctx, split.late, socket);
  if (lateRefusal && lateRefusal !== CLIENT_GONE) {
    closeUnused(csms, 'charger refused');
    return refuse(deps, ctx, lateRefusal, socket, head);
  }
  if (lateRefusal || gone(socket)) {
    clientGone(deps, ctx, socket);
    closeUnused(csms, 'charger went away during handshake');
    return;
  }
  let completed = false;
  if (framing === 'builtin') {
    const charger = acceptWebSocket(req, socket, head, { protocol: csms.protocol || false, maxPayload: deps.maxPayload });
    if (charger) {
      completed = true;
      deps.admitted(ctx, charger, csms);
    }
  } else {
    (req as RequestWithChoice)[CHOSEN] = csms.protocol || false;
    deps.wss.handleUpgrade(req, socket, head, (charger) => {
      completed = true;
      charger.on('ping', answerPing);
      deps.admitted(ctx, charger as unknown as Leg, csms);
    });
  }
  if (completed) return;
  // The request was no valid handshake (a bad key or version; with ws, permessage-deflate parameters
  // it cannot accept), answered 400 already: logged and counted as the gates' refusals are, and the
  // CSMS leg just opened is closed.
  deps.rejected(ctx, { status: 400, reason: 'bad_handshake' });
  closeUnused(csms, 'charger handshake failed');
}

/** Closes a CSMS leg no session took: read again (dialBackend paused it), so its close frame is seen. */
function closeUnused(csms: Leg, reason: string): void {
  csms.resume();
  csms.close(1001, reason);
}

/** Gone, or half gone: ws would drop it unanswered. */
function gone(socket: Duplex): boolean {
  return socket.destroyed || !socket.readable || !socket.writable;
}

/** The gate list split around the CSMS dial, once per list (an upgrade allocates none). */
const splits = new WeakMap<readonly Gate[], { early: readonly Gate[]; late: readonly Gate[] }>();
function splitGates(gates: readonly Gate[]): { early: readonly Gate[]; late: readonly Gate[] } {
  let split = splits.get(gates);
  if (!split) splits.set(gates, (split = { early: gates.filter((g) => !g.afterBackend), late: gates.filter((g) => g.afterBackend) }));
  return split;
}

/** A front named a charger address that already has maxConnectionsPerAddress connections open. */
const TOO_MANY_FROM_ADDRESS: Rejection = { status: 503, reason: 'too_many_connections_from_address' };

/** The charger closed its connection while the gates or the CSMS dial ran: nobody to answer (499, as nginx logs it). */
const CLIENT_GONE: Rejection = { status: 499, reason: 'client_gone' };

/**
 * Logs and counts a charger that left, and closes what is left of its socket: one half-closed
 * (FIN) stays open for good on a server allowing half-open sockets, holding its descriptor and its
 * per-address count.
 */
function clientGone(deps: UpgradeDeps, ctx: UpgradeContext, socket: Duplex): void {
  deps.rejected(ctx, CLIENT_GONE);
  socket.destroy();
}

/**
 * Runs `gates` in order: the first refusal (or CLIENT_GONE once the charger left), or undefined when
 * all passed. Report-only mode turns a capable gate's refusal into a logged finding.
 */
async function runGates(deps: UpgradeDeps, ctx: UpgradeContext, gates: readonly Gate[], socket: Duplex): Promise<Rejection | undefined> {
  try {
    for (const gate of gates) {
      // Checked before each gate too: a settlement written for a charger that already left (it gave
      // up while the CSMS was dialled) would settle a rotation for a login that got no session.
      if (gone(socket)) return CLIENT_GONE;
      const verdict = await gate.check(ctx);
      if (verdict && gate.reportOnlyCapable && ctx.reportOnly) {
        ctx.reportOnlyFindings.push(verdict.reason);
        deps.reportOnly(ctx, verdict);
        continue;
      }
      if (verdict) return verdict;
    }
  } catch (err) {
    // Fail closed: a gate that cannot decide (store down, bug) refuses with 503, never admits.
    deps.log.error({ event: 'gate_failed', identity: ctx.identity || undefined, err: (err as Error).message });
    return { status: 503, reason: 'gate_error' };
  }
  return gone(socket) ? CLIENT_GONE : undefined;
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

function refuse(deps: UpgradeDeps, ctx: UpgradeContext, rejection: Rejection, socket: Duplex, head: Buffer): void {
  deps.rejected(ctx, rejection);
  if (!rejection.completeThenClose) {
    answerUpgradeWithStatus(socket, rejection.status, rejection.reason, rejection.headers);
    return;
  }
  // OCPP-J: no common subprotocol → finish the handshake without Sec-WebSocket-Protocol, then close.
  (ctx.req as RequestWithChoice)[CHOSEN] = false;
  deps.wss.handleUpgrade(ctx.req, socket, head, (ws) => {
    ws.on('error', ignoreSocketError); // a bad frame from a charger being closed must not end the process
    ws.close(1002, 'no common OCPP subprotocol');
  });
}

/**
 * A trusted front's word: TLS at the edge, the client certificate it forwarded (if the socket had
 * none), and the charger's address (unless a PROXY-protocol header announced it: that one is the
 * transport's own). A front that named no address leaves its own, shared by every charger behind it.
 * True when the address now is one the front named.
 */
function applyEdge(ctx: UpgradeContext, edge: EdgeFacts | null, socket: Duplex): boolean {
  if (!edge) return false;
  ctx.facts.edgeTls = edge.tls;
  let named = false;
  if (announcedEndpointOf(socket) === null) {
    if (edge.clientAddress !== null) {
      ctx.remoteAddress = edge.clientAddress;
      named = true;
    } else {
      ctx.addressShared = true;
    }
  }
  if (edge.certificate && !ctx.peerCertificate) {
    ctx.peerCertificate = edge.certificate.peer;
    ctx.peerAuthorized = edge.certificate.authorized;
    ctx.peerAuthorizationError = edge.certificate.error;
  }
  return named;
}

function newContext(req: IncomingMessage, socket: Duplex, listener: ListenerKind, reportOnly: boolean): UpgradeContext {
  const tlsSocket = socket instanceof TLSSocket ? socket : null;
  // The leaf only: Node has already verified the chain (peerAuthorized); the detailed chain is costly.
  const cert = tlsSocket?.getPeerCertificate(false);
  const hasCert = cert !== undefined && cert !== null && Object.keys(cert).length > 0;
  return {
    req,
    listener,
    remoteAddress: clientAddressOf(socket as unknown as Parameters<typeof clientAddressOf>[0]),
    addressShared: false,
    identity: '',
    offeredProtocols: [],
    acceptableProtocols: [],
    peerCertificate: hasCert ? cert! : null,
    peerAuthorized: hasCert && tlsSocket!.authorized,
    peerAuthorizationError: hasCert && tlsSocket!.authorizationError ? String(tlsSocket!.authorizationError) : null,
    facts: {},
    reportOnlyFindings: [],
    reportOnly,
    startedAt: performance.now(),
  };
}
