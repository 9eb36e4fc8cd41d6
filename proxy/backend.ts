import type { IncomingMessage } from 'node:http';
import type { ConnectionOptions } from 'node:tls';
import WebSocket from 'ws';
import { isUntrustedCertificate } from './backend-trust';
import type { Framing } from './config';
import type { Leg } from './leg';
import { answerPing, NO_AUTO_PONG } from './pongs';
import { connectWebSocket, HandshakeError } from './wire/client-handshake';

/** Basic credentials the proxy presents to the CSMS for one charger. */
export interface BackendCredentials {
  username: string;
  password: Buffer;
}

/** What the proxy needs to dial the CSMS for one charger. */
export interface BackendDialOptions {
  /** CSMS endpoint without the identity, e.g. ws://127.0.0.1:9000/ocpp. */
  baseUrl: string;
  identity: string;
  /** Subprotocols to offer, in the charger's order of preference. */
  protocols: string[];
  credentials: BackendCredentials | null;
  /** X-Forwarded-* values, or null to send none. */
  forwarded: { for: string; proto: 'https' | 'http' } | null;
  timeoutMs: number;
  maxPayload: number;
  /**
   * Offer permessage-deflate to the CSMS: only when the charger asked for it, so a charger that
   * compresses nothing costs no zlib state on either leg.
   */
  deflate: boolean;
  /** The session's framing: the proxy's own ({@link connectWebSocket}) unless deflate or the `ws` setting asks for `ws`. */
  framing: Framing;
  /** For a wss:// CSMS: what to trust (see backend-trust.ts). */
  tls?: ConnectionOptions;
}

/** Why the CSMS could not be reached; `status` is what the charger gets. */
export class BackendError extends Error {
  constructor(readonly reason: 'backend_refused' | 'backend_unavailable' | 'backend_timeout' | 'backend_not_found' | 'backend_no_subprotocol' | 'backend_untrusted' | 'backend_error', readonly status: number, message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** Whether an upgrade request offers permessage-deflate (which our charger-side server then accepts). */
export function offersDeflate(req: IncomingMessage): boolean {
  const ext = req.headers['sec-websocket-extensions'];
  return typeof ext === 'string' && /(^|,)\s*permessage-deflate\b/i.test(ext);
}

/**
 * Opens the WebSocket to the legacy CSMS for one charger and resolves once it is open, so the
 * charger's 101 is only sent when the other leg exists. The charger's own Authorization header is
 * never forwarded: only the credentials given here are. Rejects with a {@link BackendError}; on
 * failure nothing is left open.
 */
export function dialBackend(opts: BackendDialOptions): Promise<Leg> {
  const url = `${opts.baseUrl}/${encodeURIComponent(opts.identity)}`;
  const headers = dialHeaders(opts);
  if (opts.deflate || opts.framing === 'ws') return dialWithWs(url, headers, opts);
  return connectWebSocket(url, opts.protocols, { headers, timeoutMs: opts.timeoutMs, maxPayload: opts.maxPayload, tls: opts.tls }).then(
    (leg) => leg.on('error', ignoreSocketError), // until the session adds its own (see dialWithWs)
    (err: unknown) => {
      throw err instanceof HandshakeError ? backendErrorOf(err) : new BackendError('backend_error', 502, `CSMS handshake failed: ${String(err)}`);
    },
  );
}

/** What the charger gets when the CSMS handshake fails, from our own dial's error. */
function backendErrorOf(err: HandshakeError): BackendError {
  switch (err.kind) {
    case 'status': return statusError(err.status ?? 0);
    case 'timeout': return new BackendError('backend_timeout', 503, 'CSMS did not answer the handshake in time');
    case 'subprotocol': return new BackendError('backend_no_subprotocol', 400, 'CSMS accepted none of the offered subprotocols');
    case 'network': return networkError(err.code, err.message);
    default: return new BackendError('backend_error', 502, `CSMS handshake failed: ${err.message}`);
  }
}

function statusError(status: number): BackendError {
  if (status === 404) return new BackendError('backend_not_found', 404, 'CSMS does not know this charger (404)');
  if (status === 503) return new BackendError('backend_unavailable', 503, 'CSMS answered 503 (unavailable)');
  return new BackendError('backend_refused', 502, `CSMS refused the connection with HTTP ${status}`);
}

function networkError(code: string | undefined, message: string): BackendError {
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new BackendError('backend_unavailable', 503, `CSMS unreachable (${code})`);
  }
  if (isUntrustedCertificate(code)) {
    return new BackendError('backend_untrusted', 502, `CSMS certificate not trusted (${code}: ${message}); backendCa names the CA bundle to trust`);
  }
  return new BackendError('backend_error', 502, `CSMS handshake failed: ${message}`);
}

/** The CSMS's own Basic credentials for this charger and the X-Forwarded-* headers; never the charger's. */
function dialHeaders(opts: BackendDialOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  if (opts.credentials) {
    const userPass = Buffer.concat([Buffer.from(opts.credentials.username + ':'), opts.credentials.password]);
    headers.authorization = 'Basic ' + userPass.toString('base64');
  }
  if (opts.forwarded) {
    headers['x-forwarded-for'] = opts.forwarded.for;
    headers['x-forwarded-proto'] = opts.forwarded.proto;
  }
  return headers;
}

/** The CSMS leg through `ws`: for sessions with permessage-deflate (or `framing: ws`). */
function dialWithWs(url: string, headers: Record<string, string>, opts: BackendDialOptions): Promise<Leg> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(url, opts.protocols, {
      headers,
      handshakeTimeout: opts.timeoutMs,
      maxPayload: opts.maxPayload,
      perMessageDeflate: opts.deflate,
      followRedirects: false,
      ...opts.tls,
      ...NO_AUTO_PONG, // the CSMS's pings are answered by answerPing, as on the proxy's own framing
    });
    ws.on('ping', answerPing);
    const fail = (err: BackendError) => {
      if (settled) return;
      settled = true;
      ws.removeAllListeners();
      ws.on('error', ignoreSocketError); // late errors from the aborted socket are expected
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      ws.removeAllListeners('error');
      ws.removeAllListeners('unexpected-response');
      // A CSMS may send its first frame together with its 101. ws reads it on the next tick, before
      // this promise's continuation runs, and would emit it to nobody: nothing is read until the
      // session listens (Session.start resumes the leg).
      ws.pause();
      // Until the session adds its own: an unhandled 'error' (a bad frame, a reset) would end the process.
      ws.on('error', ignoreSocketError);
      resolve(ws as unknown as Leg);
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume();
      fail(statusError(res.statusCode ?? 0));
    });
    ws.once('error', (err: NodeJS.ErrnoException) => {
      const msg = err.message ?? '';
      if (/timed out/i.test(msg)) fail(new BackendError('backend_timeout', 503, 'CSMS did not answer the handshake in time'));
      else if (/subprotocol/i.test(msg)) fail(new BackendError('backend_no_subprotocol', 400, 'CSMS accepted none of the offered subprotocols'));
      else fail(networkError(err.code, msg));
    });
  });
}

/**
 * For a WebSocket the proxy holds without a session (just dialled, or being closed after a refusal):
 * its errors end it, and are no news. A named function: a closure would keep its scope alive.
 */
export function ignoreSocketError(): void {}
