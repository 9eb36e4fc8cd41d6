import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { isFieldText, isToken, trimOws } from '../http-syntax';
import { AnswerReader } from './answer-head';
import { FrameSocket } from './frame-socket';
import { copyRandomBytes } from './random-pool';
import { acceptKeyFor } from './server-handshake';

/** Why a WebSocket dial failed: the answer's status, a timeout, the subprotocol, a bad answer or the network. */
export class HandshakeError extends Error {
  constructor(readonly kind: 'status' | 'timeout' | 'subprotocol' | 'invalid' | 'network', message: string, readonly status?: number, readonly code?: string) {
    super(message);
    this.name = 'HandshakeError';
  }
}

export interface ConnectOptions {
  headers?: Record<string, string>;
  /** The whole handshake (connect, TLS, 101) must be done within this. */
  timeoutMs: number;
  maxPayload: number;
  /** Extra TLS options for wss:// (a CA, a client certificate). */
  tls?: tls.ConnectionOptions;
}

/** Fields the handshake itself writes: a caller's own would make a second one. */
const HANDSHAKE_FIELDS = new Set(['host', 'connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions']);

/**
 * Opens a WebSocket (ws:// or wss://) offering `protocols` and no extension, and resolves with its
 * leg, paused, once the server's 101 has been checked (Upgrade, Sec-WebSocket-Accept, a subprotocol
 * among those offered, no extension: the checks `ws` and Node's HTTP client make). Rejects with a
 * {@link HandshakeError} (a TypeError for a URL that is none); nothing stays open then.
 *
 * The request is one write on a plain socket and the answer's head is read here, not through
 * `http.request`: the HTTP client's request, agent and parser machinery cost about 55 µs of CPU per
 * dial, for a head that has one shape.
 */
export function connectWebSocket(url: string, protocols: string[], opts: ConnectOptions): Promise<FrameSocket> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const key = newKey();
    const request = requestHead(target, key, protocols, opts.headers);
    const secure = target.protocol === 'wss:';
    const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    const port = Number(target.port) || (secure ? 443 : 80);
    const socket = secure
      ? tls.connect({ ...opts.tls, host, port, servername: opts.tls?.servername ?? (net.isIP(host) ? undefined : host) })
      : net.connect({ host, port, noDelay: true });
    new Dial(socket, key, protocols, opts, resolve, reject);
    socket.write(request, 'latin1'); // held by the socket until it is connected (and, for wss://, secure)
  });
}

/**
 * The request's head. The Host field carries no port when it is the scheme's default (as `ws` and
 * browsers send it); credentials in the URL (wss://user:pass@host/…) become Basic auth unless the
 * caller gave an Authorization header. Throws a {@link HandshakeError} ('invalid') for a header or
 * subprotocol that would break the head or duplicate one of the handshake's own fields, so nothing
 * is sent then.
 */
export function requestHead(target: URL, key: string, protocols: string[], headers: Record<string, string> = {}): string {
  let head = `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n`;
  if (protocols.length > 0) {
    if (!protocols.every(isToken)) throw new HandshakeError('invalid', 'Invalid subprotocol offered');
    head += `Sec-WebSocket-Protocol: ${protocols.join(',')}\r\n`;
  }
  let authorization = false;
  for (const name of Object.keys(headers)) {
    const value = headers[name]!;
    if (!isToken(name) || !isFieldText(value) || HANDSHAKE_FIELDS.has(name.toLowerCase())) {
      throw new HandshakeError('invalid', `Invalid request header ${JSON.stringify(name)}`);
    }
    if (name.toLowerCase() === 'authorization') authorization = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!authorization && (target.username || target.password)) {
    const userPass = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
    head += `Authorization: Basic ${Buffer.from(userPass).toString('base64')}\r\n`;
  }
  return head + '\r\n';
}

/** A Sec-WebSocket-Key: 16 random bytes in base64 (RFC 6455 §4.1). */
function newKey(): string {
  const bytes = Buffer.allocUnsafe(16);
  copyRandomBytes(bytes, 0, 16);
  return bytes.toString('base64');
}

const kDial = Symbol('dial');
type DialingSocket = Duplex & { [kDial]?: Dial };

/** One dial in progress: reads the answer off the socket, then hands the socket to a FrameSocket. */
class Dial {
  private readonly answer = new AnswerReader();
  private settled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: DialingSocket,
    private readonly key: string,
    private readonly protocols: string[],
    private readonly opts: ConnectOptions,
    private readonly resolve: (leg: FrameSocket) => void,
    private readonly reject: (err: HandshakeError) => void,
  ) {
    socket[kDial] = this;
    socket.on('data', dialOnData);
    socket.on('error', dialOnError);
    socket.on('end', dialOnEnd);
    socket.on('close', dialOnEnd);
    this.timer = setTimeout(dialTimedOut, opts.timeoutMs, this);
  }

  read(chunk: Buffer): void {
    const outcome = this.answer.push(chunk);
    switch (outcome.kind) {
      case 'more': return;
      case 'refused': return this.fail(new HandshakeError('status', `Unexpected server response: ${outcome.status}`, outcome.status));
      case 'malformed': return this.fail(new HandshakeError('invalid', outcome.reason));
      case 'switching': {
        const problem = answerProblem(outcome.fields, this.key, this.protocols);
        if (problem) return this.fail(problem);
        this.settle();
        const protocol = outcome.fields.get('sec-websocket-protocol') ?? '';
        this.resolve(new FrameSocket(this.socket, { isServer: false, protocol, maxPayload: this.opts.maxPayload, head: outcome.rest }));
      }
    }
  }

  fail(err: HandshakeError): void {
    if (this.settled) return;
    this.settle();
    this.socket.on('error', ignoreLateError);
    this.socket.destroy();
    this.reject(err);
  }

  /** Ends the dial's reading: from here the socket is the leg's (which pauses it at once), or destroyed. */
  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    socket.removeListener('data', dialOnData);
    socket.removeListener('error', dialOnError);
    socket.removeListener('end', dialOnEnd);
    socket.removeListener('close', dialOnEnd);
    socket[kDial] = undefined;
  }
}

// Named module functions rather than closures: a dial keeps nothing but its back-reference.
function dialOnData(this: DialingSocket, chunk: Buffer): void {
  this[kDial]?.read(chunk);
}

function dialOnError(this: DialingSocket, err: NodeJS.ErrnoException): void {
  this[kDial]?.fail(new HandshakeError('network', err.message, undefined, err.code));
}

/** The server went away before its answer was whole (what Node's HTTP client calls a hang-up). */
function dialOnEnd(this: DialingSocket): void {
  this[kDial]?.fail(new HandshakeError('network', 'socket hang up', undefined, 'ECONNRESET'));
}

function dialTimedOut(dial: Dial): void {
  dial.fail(new HandshakeError('timeout', 'Opening handshake has timed out'));
}

function ignoreLateError(): void {}

/** Whether a comma-separated field value lists `token` (case-insensitive), as `Connection: keep-alive, Upgrade` does. */
function hasToken(value: string | undefined, token: string): boolean {
  return value !== undefined && value.split(',').some((t) => trimOws(t).toLowerCase() === token);
}

/** What is wrong with a 101 answer, or null (RFC 6455 §4.1: the checks `ws` and Node's HTTP client make). */
function answerProblem(fields: Map<string, string>, key: string, protocols: string[]): HandshakeError | null {
  if (fields.get('upgrade')?.toLowerCase() !== 'websocket') return new HandshakeError('invalid', 'Invalid Upgrade header');
  if (!hasToken(fields.get('connection'), 'upgrade')) return new HandshakeError('invalid', 'Invalid Connection header');
  if (fields.get('sec-websocket-accept') !== acceptKeyFor(key)) return new HandshakeError('invalid', 'Invalid Sec-WebSocket-Accept header');
  const chosen = fields.get('sec-websocket-protocol');
  if (chosen !== undefined && protocols.length === 0) return new HandshakeError('invalid', 'Server sent a subprotocol but none was requested');
  if (chosen !== undefined && !protocols.includes(chosen)) return new HandshakeError('subprotocol', 'Server sent an invalid subprotocol');
  if (chosen === undefined && protocols.length > 0) return new HandshakeError('subprotocol', 'Server sent no subprotocol');
  if (fields.has('sec-websocket-extensions')) return new HandshakeError('invalid', 'Server sent a Sec-WebSocket-Extensions header but no extension was requested');
  return null;
}
