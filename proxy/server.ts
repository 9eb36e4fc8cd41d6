import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import type { BackendTrust } from './backend-trust';
import type { Leg } from './leg';
import { listenAt } from './listen-at';
import { structuralGates } from '../policies/gates';
import { presentedProfile } from '../policies/gates/profile';
import { dropPrefetched } from '../policies/gates/prefetch';
import type { Gate, ListenerKind, Rejection, UpgradeContext } from '../policies/gates/types';
import type { InterceptorFactory } from '../policies/interceptors/types';
import { dialBackend, offersDeflate, type BackendCredentials } from './backend';
import type { Framing, ProxyConfig } from './config';
import type { Logger } from './log';
import { plainPortWithTls } from './plain-port-tls';
import { httpPassthrough } from './passthrough';
import { isInNetworks, parseNetworks } from './cidr';
import { announcedEndpointOf, clientAddressOf } from './client-address';
import { edgeReader, type EdgeReader } from './edge';
import { answerUpgradeWithStatus } from './http-answer';
import { NO_AUTO_PONG } from './pongs';
import { acceptProxyProtocol } from './proxy-protocol';
import { applyTicketKeys, rotateTicketKeys } from './ticket-keys';
import { AddressCounter } from './address-counter';
import { LogBudget } from './log-budget';
import { SessionRegistry } from './registry';
import { Session, type SessionObserver, type SessionSettings } from './session';
import type { SessionEnd } from '../policies/interceptors/types';
import { connectionsCheckingInterval, createTlsServer, serverTlsOptions, watchTlsFiles, type TlsFiles } from './tls';
import { chosenProtocol, handleUpgrade, type UpgradeDeps } from './upgrade';

/** Longest a drain waits for the last chargers to complete their close handshakes. */
const DRAIN_CLOSE_WAIT_MS = 2000;

/** Collaborators of the server; everything but the logger and TLS files has a default. */
export interface ProxyDeps {
  log: Logger;
  tls: TlsFiles;
  /** Admission pipeline; defaults to the structural gates only (every well-formed charger admitted). */
  gates?: Gate[];
  interceptors?: InterceptorFactory[];
  /** What a wss:// CSMS must present (see backend-trust.ts), asked at each dial; absent for ws://. */
  backendTrust?: BackendTrust | null;
  /** Credentials for the CSMS leg of one charger (default: the global backend credentials, if any). */
  backendCredentials?: (ctx: UpgradeContext) => BackendCredentials | null | Promise<BackendCredentials | null>;
  observer?: SessionObserver;
  /** Called once per refused upgrade, after the built-in log line. */
  onRejected?: (ctx: UpgradeContext, rejection: Rejection) => void;
  /** Called for a refusal that report-only mode turned into a finding. */
  onReportOnly?: (ctx: UpgradeContext, rejection: Rejection) => void;
  /** Every gate passed for this upgrade (before the CSMS is dialled). */
  onGatesPassed?: (ctx: UpgradeContext) => void;
  /** The CSMS could not be reached for an admitted charger. */
  onBackendFailure?: (ctx: UpgradeContext, reason: string) => void;
  /** An upgrade began, before any gate ran. */
  onUpgradeStarted?: (ctx: UpgradeContext) => void;
  /** Called for every admitted session. */
  onSession?: (session: Session) => void;
  /** A connection or upgrade refused for capacity reasons (label). */
  onConnectionRefused?: (reason: string) => void;
  /** A graceful drain started with this many live sessions. */
  onDrain?: (sessions: number) => void;
  /** Certificates were re-read from disk (true) or a reload failed (false). */
  onTlsReload?: (ok: boolean) => void;
  /** Called on TLS handshake failures with a short reason. */
  onTlsError?: (reason: string) => void;
}

/**
 * The charger-facing side of the proxy: the TLS listener (and the optional plain Profile 1 one), the
 * upgrade pipeline, the live sessions, and the drain on shutdown. The admin listener lives in admin.ts.
 */
export class ProxyServer {
  readonly sessions = new SessionRegistry();
  private readonly wss: WebSocketServer;
  private tlsServer: https.Server | null = null;
  private plainServer: http.Server | null = null;
  private stopWatching: (() => void) | null = null;
  private stopTicketKeys: (() => void) | null = null;
  /** What actually listens: the server itself, or its PROXY-protocol front. */
  private tlsFront: net.Server | null = null;
  private plainFront: net.Server | null = null;
  private draining = false;
  /** Upgrades between arrival and 101/refusal (bounded by maxPendingUpgrades). */
  private pendingUpgrades = 0;
  private readonly perAddress = new AddressCounter();
  /** Sockets already counted against the per-address cap (the plain port counts before it knows where one goes). */
  private readonly counted = new WeakSet<net.Socket>();
  /** trustedForwarderCidrs: TLS-terminating fronts, whose connections carry many chargers each. */
  private readonly fronts: net.BlockList;
  private readonly log: Logger;
  private readonly upgradeDeps: UpgradeDeps;
  /** What a trusted front vouches for about a request (null without trustedForwarderCidrs). */
  private readonly readEdge: EdgeReader | null;

  /**
   * Every session's 'close' listener (the session is `this`): one function, not a closure per
   * session, and it reads the session only, never the upgrade that admitted it.
   */
  private readonly logSessionEnded: (this: Session, end: SessionEnd) => void;
  /** One settings object for every session (see SessionSettings). */
  private readonly sessionSettings: SessionSettings;
  /** Ended sessions whose CSMS leg still carries the charger's last frames, by identity (see Session.endFlush). */
  private readonly flushing = new Map<string, Session>();
  private readonly flushEnded = (s: Session): void => {
    if (this.flushing.get(s.identity) === s) this.flushing.delete(s.identity);
  };

  constructor(readonly config: ProxyConfig, private readonly deps: ProxyDeps) {
    this.log = deps.log;
    this.sessionSettings = {
      log: deps.log,
      interceptors: deps.interceptors,
      observer: deps.observer,
      callTimeoutMs: config.callTimeoutMs,
      pingIntervalMs: config.pingIntervalMs,
      maxHeldFrames: config.maxHeldFrames,
      onFlushEnd: this.flushEnded,
    };
    this.fronts = parseNetworks(config.trustedForwarderCidrs);
    const log = deps.log;
    const flushing = this.flushing;
    this.logSessionEnded = function (this: Session, end: SessionEnd) {
      log.info({ identity: this.identity, event: 'session_ended', profile: this.profile, subprotocol: this.subprotocol, durationMs: Date.now() - this.startedAt, code: end.code, by: end.by, reason: end.reason, frames: this.frames });
      if (this.flushingToCsms) flushing.set(this.identity, this);
    };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: config.maxFrameBytes,
      handleProtocols: chosenProtocol,
      // OCPP: the CSMS side must support permessage-deflate; offered only to chargers that ask.
      perMessageDeflate: { threshold: 1024, serverNoContextTakeover: false, clientNoContextTakeover: false },
      ...NO_AUTO_PONG, // chargers' pings are answered by answerPing, as on the proxy's own framing
    });
    this.readEdge = edgeReader(config, deps.tls.clientCa);
    this.upgradeDeps = this.makeUpgradeDeps();
  }

  /** Opens the listeners. Resolves with their bound addresses. */
  async start(): Promise<{ tls: AddressInfo; plain: AddressInfo | null }> {
    const c = this.config;
    const onRequest = httpPassthrough(c.httpPassthrough, c.backend, this.log, { headers: c.forwardedHeaders, describe: (req) => this.describeClient(req) }, c.forwardedClientCertHeader, this.deps.backendTrust ?? null);
    this.tlsServer = createTlsServer(serverTlsOptions(this.deps.tls, c.handshakeTimeoutMs, c.tlsSessionTimeoutS), onRequest);
    this.harden(this.tlsServer, 'tls');
    this.tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const reason = tlsFailureReason(err);
      this.log.debug({ event: 'tls_handshake_failed', reason, remoteAddress: clientAddressOf(socket), err: err.message });
      this.deps.onTlsError?.(reason);
      socket.destroy();
    });
    this.stopWatching = watchTlsFiles(this.tlsServer, this.deps.tls, this.log, 2000, this.deps.onTlsReload);
    this.stopTicketKeys = c.tlsTicketKeyFile
      ? applyTicketKeys(this.tlsServer, c.tlsTicketKeyFile, this.log)
      : rotateTicketKeys(this.tlsServer, c.tlsSessionTimeoutS * 1000, this.log);
    this.tlsFront = await this.listenOn(this.tlsServer, c.listen, 'listen');
    let plain: AddressInfo | null = null;
    if (c.plainListen) {
      this.plainServer = http.createServer({ connectionsCheckingInterval: connectionsCheckingInterval(c.handshakeTimeoutMs) }, onRequest);
      this.harden(this.plainServer, 'plain');
      // TLS on the plain port too: where a 1.6 charger moved from Profile 1 to 2 comes back (see plain-port-tls.ts).
      const plainPort = plainPortWithTls(this.plainServer, this.tlsServer, c.handshakeTimeoutMs, (socket) => this.admitConnection(socket, 'plain'));
      this.plainFront = await this.listenOn(plainPort, c.plainListen, 'plainListen');
      plain = this.plainFront.address() as AddressInfo;
    }
    return { tls: this.tlsFront.address() as AddressInfo, plain };
  }

  /**
   * Listens for `server`, directly or behind a PROXY-protocol front (then the front listens and
   * hands over each connection once the header named the real client address).
   */
  private async listenOn(server: net.Server, at: { host: string; port: number }, setting: string): Promise<net.Server> {
    const c = this.config;
    const front = c.proxyProtocol
      ? acceptProxyProtocol(server, {
        trusted: parseNetworks(c.trustedProxyCidrs),
        timeoutMs: c.proxyProtocolTimeoutMs,
        onRefused: (peer, reason) => {
          // Health checks that open and close without a header are routine: debug only.
          const level = reason === 'closed_before_header' ? 'debug' : 'warn';
          this.log[level]({ event: 'proxy_protocol_refused', remoteAddress: peer, reason });
          this.deps.onConnectionRefused?.(`proxy_protocol_${reason}`);
        },
      })
      : server;
    await listenAt(front, at, setting);
    return front;
  }

  /** True while both configured listeners accept connections (for /readyz). */
  get listening(): boolean {
    return !this.draining && !!this.tlsFront?.listening && (!this.config.plainListen || !!this.plainFront?.listening);
  }

  /**
   * Graceful shutdown: stop accepting, then close each live session with 1001 after the grace,
   * spread over the jitter window so chargers do not all reconnect at once. Resolves when all are closed.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.stopWatching?.();
    this.stopTicketKeys?.();
    this.tlsFront?.close();
    this.plainFront?.close();
    const live = this.sessions.all();
    this.deps.onDrain?.(live.length);
    this.log.info({ event: 'drain_started', sessions: live.length, graceMs: this.config.drainGraceMs, jitterMs: this.config.drainJitterMs });
    await Promise.all(live.map((s) => new Promise<void>((resolve) => {
      if (s.closed) return resolve();
      s.on('close', () => resolve()); // it ends once: `on` is enough
      const delay = this.config.drainGraceMs + Math.floor(Math.random() * (this.config.drainJitterMs + 1));
      setTimeout(() => s.close(1001, 'proxy shutting down'), delay).unref();
    })));
    // Let the last close handshakes finish before cutting what is left (bounded: a charger that
    // never answers its close frame is cut anyway).
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(live.map((s) => s.chargerClosed())),
      new Promise<void>((resolve) => { bound = setTimeout(resolve, DRAIN_CLOSE_WAIT_MS); }),
    ]);
    clearTimeout(bound);
    for (const s of [...this.flushing.values()]) s.endFlush();
    this.tlsServer?.closeAllConnections();
    this.plainServer?.closeAllConnections();
    this.log.info({ event: 'drain_finished' });
  }

  /** Immediate stop (tests, fatal errors): every session closed with 1001 now. */
  async stop(): Promise<void> {
    this.draining = true;
    this.stopWatching?.();
    this.stopTicketKeys?.();
    for (const s of this.sessions.all()) s.close(1001, 'proxy stopping');
    for (const s of [...this.flushing.values()]) s.endFlush();
    for (const [srv, front] of [[this.tlsServer, this.tlsFront], [this.plainServer, this.plainFront]] as const) {
      if (!srv) continue;
      srv.closeAllConnections();
      const listening = front ?? srv;
      if (listening.listening) await new Promise<void>((r) => listening.close(() => r()));
    }
  }

  /**
   * The per-address connection cap, once per socket (one the plain port hands to the TLS server was
   * counted there already). False, with the socket destroyed, when the address is over the cap.
   * A trusted front's connections to the plain port are not counted: each carries another charger,
   * and the cap would bound the fleet behind the front (the session and handshake caps still hold).
   */
  private admitConnection(socket: net.Socket, listener: ListenerKind): boolean {
    if (this.counted.has(socket)) return true;
    if (listener === 'plain' && announcedEndpointOf(socket) === null && isInNetworks(this.fronts, socket.remoteAddress)) {
      this.counted.add(socket);
      return true;
    }
    const address = clientAddressOf(socket);
    if (!this.perAddress.acquire(address, this.config.maxConnectionsPerAddress)) {
      this.log.warn({ event: 'connection_refused', reason: 'too_many_connections_from_address', remoteAddress: address });
      this.deps.onConnectionRefused?.('too_many_connections_from_address');
      socket.destroy();
      return false;
    }
    this.counted.add(socket);
    socket.on('close', () => this.perAddress.release(address));
    return true;
  }

  private harden(server: http.Server, kind: ListenerKind): void {
    server.headersTimeout = this.config.handshakeTimeoutMs;
    server.requestTimeout = this.config.handshakeTimeoutMs;
    // Per-address connection cap, counted on the raw TCP socket before any TLS work is spent.
    server.on('connection', (socket: net.Socket) => this.admitConnection(socket, kind));
    server.on('upgrade', (req, socket, head) => {
      if (this.draining) {
        answerUpgradeWithStatus(socket, 503, 'draining');
        return;
      }
      const overloaded = this.pendingUpgrades >= this.config.maxPendingUpgrades ? 'too_many_pending_upgrades'
        : this.sessions.size >= this.config.maxSessions ? 'too_many_sessions' : null;
      if (overloaded) {
        this.log.warn({ event: 'upgrade_rejected', reason: overloaded, status: 503, remoteAddress: req.socket.remoteAddress });
        this.deps.onConnectionRefused?.(overloaded);
        answerUpgradeWithStatus(socket, 503, overloaded, { 'Retry-After': '10' });
        return;
      }
      this.pendingUpgrades++;
      handleUpgrade(this.upgradeDeps, kind, req, socket, head)
        .catch((err: unknown) => {
          // A bug of ours, not the charger's: fail closed for this connection, keep serving the rest.
          this.log.error({ event: 'upgrade_failed', err: String(err) });
          socket.destroy();
        })
        .finally(() => { this.pendingUpgrades--; });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      this.log.debug({ event: 'http_client_error', code: err.code, err: err.message });
      if (socket.writable && err.code !== 'ECONNRESET') {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      }
      socket.destroy();
    });
  }

  /** A plain HTTP request's client as an upgrade's would be judged: PROXY-announced, named by a trusted front, or the peer. */
  private describeClient(req: http.IncomingMessage): { for: string; proto: 'https' | 'http' } {
    const socket = req.socket;
    const overTls = (socket as TLSSocket).encrypted === true;
    // The plain reader: a front's health checks to a status page are no chargers to warn about.
    const edge = overTls ? null : this.readEdge?.(req, socket) ?? null;
    const address = announcedEndpointOf(socket)?.address ?? edge?.clientAddress ?? socket.remoteAddress ?? '';
    return { for: address, proto: overTls || edge?.tls === true ? 'https' : 'http' };
  }

  /**
   * The edge reader, saying (at most once a minute) when a trusted front names no charger address:
   * every charger behind it then shares the front's, and no address lockout can apply to them.
   */
  private watchedEdge(read: EdgeReader | null): EdgeReader | null {
    if (!read) return null;
    const budget = new LogBudget(1, 60_000);
    return (req, socket) => {
      const facts = read(req, socket);
      if (facts && facts.clientAddress === null && announcedEndpointOf(socket) === null) {
        const { log, suppressedBefore } = budget.take();
        const header = req.headers['x-forwarded-for'] === undefined ? 'absent' : 'unreadable';
        if (log) this.log.warn({ event: 'edge_address_missing', header, front: (socket as net.Socket).remoteAddress ?? '', suppressedBefore }, 'a trusted front sent no readable X-Forwarded-For (nor PROXY protocol): its chargers share its address, and address lockouts are off for them');
      }
      return facts;
    };
  }

  private makeUpgradeDeps(): UpgradeDeps {
    return {
    gates: this.deps.gates ?? structuralGates(this.config),
    edge: this.watchedEdge(this.readEdge),
    admitForwardedAddress: (address, socket) => {
      // Refused as an upgrade (logged and counted as one), not as a connection.
      if (!this.perAddress.acquire(address, this.config.maxConnectionsPerAddress)) return false;
      socket.once('close', () => this.perAddress.release(address));
      return true;
    },
    upgradeStarted: this.deps.onUpgradeStarted,
    reportOnlyDefault: this.config.reportOnly,
    wss: this.wss,
    log: this.deps.log,
    framingFor: (req) => this.framingFor(req),
    maxPayload: this.config.maxFrameBytes,
    dialBackend: async (ctx: UpgradeContext, framing: Framing): Promise<Leg> => {
      const credentials = this.deps.backendCredentials ? await this.deps.backendCredentials(ctx) : null;
      return dialBackend({
        baseUrl: this.config.backend,
        identity: ctx.identity,
        protocols: ctx.acceptableProtocols,
        credentials,
        forwarded: this.config.forwardedHeaders ? { for: ctx.remoteAddress, proto: ctx.listener === 'tls' || ctx.facts.edgeTls === true ? 'https' : 'http' } : null,
        timeoutMs: this.config.backendTimeoutMs,
        maxPayload: this.config.maxFrameBytes,
        deflate: offersDeflate(ctx.req),
        framing,
        tls: this.deps.backendTrust?.connectOptions(),
      });
    },
    admitted: (ctx: UpgradeContext, charger: Leg, csms: Leg) => this.admit(ctx, charger, csms),
    rejected: (ctx: UpgradeContext, r: Rejection) => {
      this.log.info({ event: 'upgrade_rejected', identity: ctx.identity || undefined, remoteAddress: ctx.remoteAddress, listener: ctx.listener, status: r.status, reason: r.reason });
      if (r.reason.startsWith('backend_')) this.deps.onBackendFailure?.(ctx, r.reason);
      this.deps.onRejected?.(ctx, r);
    },
    gatesPassed: (ctx: UpgradeContext) => this.deps.onGatesPassed?.(ctx),
    reportOnly: (ctx: UpgradeContext, r: Rejection) => {
      this.log.warn({ event: 'report_only_finding', identity: ctx.identity || undefined, remoteAddress: ctx.remoteAddress, listener: ctx.listener, status: r.status, reason: r.reason }, 'would have refused (report-only mode)');
      this.deps.onReportOnly?.(ctx, r);
    },
    };
  }

  /** Our own framing, unless the charger offers permessage-deflate (ws does that) or the config says `ws`. */
  private framingFor(req: http.IncomingMessage): Framing {
    return this.config.framing === 'ws' || offersDeflate(req) ? 'ws' : 'builtin';
  }

  private admit(ctx: UpgradeContext, charger: Leg, csms: Leg): void {
    dropPrefetched(ctx);
    if (ctx.reportOnlyFindings.length > 0) ctx.facts.reportOnlyFindings = ctx.reportOnlyFindings;
    if (ctx.addressShared) ctx.facts.addressShared = true; // a front's own address: never recorded as familiar
    // The charger is back: the CSMS leg its last session kept open for its last frames goes now.
    this.flushing.get(ctx.identity)?.endFlush();
    const profile = (ctx.facts.profile as 1 | 2 | 3 | undefined) ?? presentedProfile(ctx);
    const session = new Session({
      identity: ctx.identity,
      subprotocol: csms.protocol,
      profile,
      remoteAddress: ctx.remoteAddress,
      charger,
      csms,
      facts: ctx.facts,
      settings: this.sessionSettings,
    });
    this.sessions.add(session);
    // Through the proxy's logger: the session's own (bound to its identity) is made only if it logs.
    this.log.info({ identity: ctx.identity, event: 'session_started', profile, subprotocol: csms.protocol, remoteAddress: ctx.remoteAddress, listener: ctx.listener });
    if (ctx.facts.lockoutSpared) {
      this.log.warn({ identity: ctx.identity, event: 'lockout_spared', remoteAddress: ctx.remoteAddress }, 'admitted with the right password from its familiar address while the identity is locked out by failed logins (look for guessing, from any address, in the upgrade_rejected lines)');
    }
    session.on('close', this.logSessionEnded);
    this.deps.onSession?.(session);
    session.start();
  }
}

/** Short, bounded reason label for a failed TLS handshake. */
export function tlsFailureReason(err: NodeJS.ErrnoException): string {
  const m = `${err.code ?? ''} ${err.message ?? ''}`.toLowerCase();
  if (m.includes('timed out') || m.includes('timeout')) return 'timeout';
  if (m.includes('unsupported protocol') || m.includes('version')) return 'protocol_version';
  if (m.includes('no shared cipher') || m.includes('cipher')) return 'no_shared_cipher';
  if (m.includes('http request')) return 'plaintext_on_tls_port';
  if (m.includes('wrong version number') || m.includes('packet length') || m.includes('record')) return 'bad_record';
  if (m.includes('econnreset') || m.includes('socket hang up')) return 'connection_reset';
  return 'other';
}
