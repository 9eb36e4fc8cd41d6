import type { Duplex } from 'node:stream';
import { kLegOwner, socketFlushed, type Leg } from '../leg';
import { PONG_HIGH_WATER } from '../pongs';
import { FrameReader, WireError, type WireEvent } from './frame-reader';
import { closePayload, encodeFrame, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT } from './frame-writer';
import { addListener, callListeners, onceWrapper, removeListener, type Listener, type Listeners } from '../listeners';

/** The events a leg emits (those of ws's WebSocket the proxy listens to). */
type LegEvent = 'message' | 'close' | 'error' | 'pong';

export interface FrameSocketOptions {
  /** The server side of the connection (the charger's leg); false for the proxy's own dial to the CSMS. */
  isServer: boolean;
  /** The negotiated subprotocol ('' for none). */
  protocol: string;
  /** Largest message accepted, in bytes; larger ones close the connection with 1009. */
  maxPayload: number;
  /** Bytes that arrived with the handshake (the first frames). */
  head?: Buffer;
  /** How long a close handshake may take before the socket is cut (ws's default, 30 s). */
  closeTimeoutMs?: number;
}

/** What a socket may be: a TCP or TLS socket. */
type Socket = Duplex & { setNoDelay?(noDelay?: boolean): unknown; setTimeout?(ms: number): unknown; writableLength: number };

const kLeg = Symbol('frameSocket');
const EMPTY = Buffer.alloc(0);
const NOT_OPEN = 'WebSocket is not open';

/**
 * An established WebSocket (RFC 6455, no extensions) over a socket whose handshake is done: the
 * relay's hot path, in place of `ws` for sessions that negotiated no permessage-deflate. It has
 * the members of `ws`'s WebSocket the session uses ({@link Leg}) and behaves the same: the same
 * events, close codes, close handshake and WS_ERR_* error codes. It differs where that helps a
 * proxy:
 * - it starts paused, and delivers nothing (not even the bytes that came with the handshake) until
 *   `resume()`, so nothing is emitted before the session listens;
 * - while paused it emits nothing, not even what it already read (back-pressure holds), except when
 *   the peer goes away: whole messages it sent before are emitted before 'close', not lost (as with
 *   ws); after `terminate()` nothing more is emitted;
 * - once it has sent its close frame it emits no more messages, and reads again (paused or not) so
 *   that the peer's close frame is seen at once.
 * A frame costs one parse of its header, an in-place unmask, one UTF-8 check, and on the way out one
 * buffer and one socket write: no stream of its own between the socket and the session. Its events
 * are plain fields, not an EventEmitter (whose listener dictionary would cost each leg a few hundred
 * bytes), with EventEmitter's semantics for on/once/removeListener and an 'error' nobody listens to.
 */
export class FrameSocket implements Leg {
  /** ws's readyState: 1 open, 2 closing, 3 closed. */
  private state = 1;
  readonly protocol: string;
  /** The session reading this leg (see kLegOwner). */
  [kLegOwner]: unknown = null;
  private paused = true;
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  private readonly mask: boolean;
  private readonly closeTimeoutMs: number;
  private closeFrameSent = false;
  /** A close frame came, or the peer broke the protocol: nothing more is read. */
  private doneReading = false;
  private closeCode = 1006;
  private closeReason: Buffer = EMPTY;
  private closeTimer: NodeJS.Timeout | null = null;
  private drainQueued = false;
  private messageListeners: Listeners = null;
  private closeListeners: Listeners = null;
  private errorListeners: Listeners = null;
  private pongListeners: Listeners = null;

  constructor(socket: Duplex, opts: FrameSocketOptions) {
    this.socket = socket as Socket;
    this.protocol = opts.protocol;
    this.mask = !opts.isServer;
    this.reader = new FrameReader(opts.isServer, opts.maxPayload);
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 30_000;
    if (opts.head && opts.head.length > 0) this.reader.push(opts.head);
    this.socket.setTimeout?.(0);
    this.socket.setNoDelay?.(true);
    (this.socket as unknown as Record<symbol, FrameSocket>)[kLeg] = this;
    this.socket.pause();
    // Named module functions, not closures: nothing per connection but the back-reference above.
    this.socket.on('data', socketOnData);
    this.socket.on('end', socketOnEnd);
    this.socket.on('close', socketOnClose);
    this.socket.on('error', socketOnError);
  }

  on(event: LegEvent, listener: Listener): this {
    this.setListeners(event, addListener(this.listenersOf(event), listener));
    return this;
  }

  once(event: LegEvent, listener: Listener): this {
    return this.on(event, onceWrapper(listener, (w) => this.removeListener(event, w)));
  }

  removeListener(event: LegEvent, listener: Listener): this {
    this.setListeners(event, removeListener(this.listenersOf(event), listener));
    return this;
  }

  off(event: LegEvent, listener: Listener): this {
    return this.removeListener(event, listener);
  }

  get readyState(): number {
    return this.state;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Bytes written and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /** Bytes the kernel has taken so far (see bytesFlushed in leg.ts). */
  get bytesFlushed(): number {
    return socketFlushed(this.socket);
  }

  send(data: Buffer | string, options: { binary: boolean }, cb?: (err?: Error | null) => void): void {
    if (this.state !== 1) {
      if (cb) process.nextTick(cb, new Error(NOT_OPEN));
      return;
    }
    this.socket.write(encodeFrame(options.binary ? OP_BINARY : OP_TEXT, data, this.mask), cb);
  }

  ping(): void {
    if (this.state === 1) this.socket.write(encodeFrame(OP_PING, EMPTY, this.mask));
  }

  pause(): void {
    if (this.state === 3) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (this.state === 3) return;
    this.paused = false;
    this.socket.resume();
    // What was read while paused is delivered on the next tick, never from inside the caller.
    if (this.reader.pending > 0 && !this.drainQueued) {
      this.drainQueued = true;
      process.nextTick(drainLater, this);
    }
  }

  /** Starts the close handshake; the socket is cut if the peer has not closed within the close timeout. */
  close(code?: number, reason?: string): void {
    if (this.state === 3) return;
    if (this.state === 2) {
      if (this.closeFrameSent && this.doneReading) this.socket.end();
      return;
    }
    this.state = 2;
    this.sendClose(code, reason);
    if (this.doneReading) {
      this.socket.end();
      return;
    }
    // Read again, even if held back: the peer's close frame is the next thing that matters.
    this.resume();
  }

  /** Cuts the connection at once (no close handshake). */
  terminate(): void {
    if (this.state === 3) return;
    this.state = 2;
    // Cut by us: what it sent and we did not take yet is not wanted (unlike a peer that went away).
    this.doneReading = true;
    this.reader.discard();
    this.socket.destroy();
  }

  /** @internal socket 'data' */
  onData(chunk: Buffer): void {
    if (this.doneReading) return;
    this.reader.push(chunk);
    if (!this.paused) this.drain();
  }

  /** @internal runs queued by resume() */
  drainQueuedNow(): void {
    this.drainQueued = false;
    if (!this.paused) this.drain();
  }

  /** @internal socket 'end': the peer will send nothing more; answer in kind (ws does the same). */
  onEnd(): void {
    if (this.state === 1) this.state = 2;
    this.socket.end();
  }

  /** @internal socket 'close' */
  onClose(): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    // Closed first: a close frame or a bad frame among the held ones must not write or arm a timer.
    this.state = 3;
    // Messages read but held back (paused) still reach the session before 'close', as with ws.
    if (!this.doneReading && this.reader.pending > 0) this.drain(true);
    this.reader.discard();
    this.emit('close', this.closeCode, this.closeReason);
  }

  /** @internal socket 'error': the connection is gone; 'close' follows (ws reports no 'error' either). */
  onSocketError(): void {
    if (this.state === 1) this.state = 2;
    this.socket.destroy();
  }

  /** Calls an event's listeners; an 'error' nobody listens to is thrown, as EventEmitter does. */
  private emit(event: LegEvent, a?: unknown, b?: unknown): boolean {
    const called = callListeners(this.listenersOf(event), this, a, b);
    if (!called && event === 'error') throw a;
    return called;
  }

  private listenersOf(event: LegEvent): Listeners {
    switch (event) {
      case 'message': return this.messageListeners;
      case 'close': return this.closeListeners;
      case 'error': return this.errorListeners;
      case 'pong': return this.pongListeners;
    }
  }

  private setListeners(event: LegEvent, slot: Listeners): void {
    switch (event) {
      case 'message': this.messageListeners = slot; break;
      case 'close': this.closeListeners = slot; break;
      case 'error': this.errorListeners = slot; break;
      case 'pong': this.pongListeners = slot; break;
    }
  }

  /** Turns buffered bytes into events until paused (unless `all`), done, or out of whole frames. */
  private drain(all = false): void {
    while ((all || !this.paused) && !this.doneReading) {
      let event: WireEvent | null;
      try {
        event = this.reader.next();
      } catch (err) {
        this.fail(err as WireError);
        return;
      }
      if (event === null) return;
      switch (event.kind) {
        case 'message':
          if (!this.closeFrameSent) this.emit('message', event.data, event.isBinary);
          break;
        case 'ping': // as ws legs answer them (see pongs.ts)
          if (this.state === 1 && this.socket.writableLength <= PONG_HIGH_WATER) this.socket.write(encodeFrame(OP_PONG, event.data, this.mask));
          break;
        case 'pong':
          this.emit('pong', event.data);
          break;
        case 'close':
          this.onCloseFrame(event.code, event.reason);
          return;
      }
    }
  }

  private onCloseFrame(code: number, reason: Buffer): void {
    this.doneReading = true;
    this.closeCode = code;
    this.closeReason = Buffer.from(reason);
    this.reader.discard();
    this.socket.resume(); // let 'end' and 'close' through
    if (this.state === 1) {
      this.state = 2;
      this.sendClose(code === 1005 ? undefined : code, this.closeReason);
    }
    if (this.closeFrameSent) this.socket.end();
  }

  /** A protocol violation: close with its status code, then report it (ws's order). */
  private fail(err: WireError): void {
    this.doneReading = true;
    this.reader.discard();
    this.socket.resume();
    this.close(err.status);
    this.emit('error', err); // once: nothing is read after a fault
  }

  private sendClose(code: number | undefined, reason: string | Buffer | undefined): void {
    this.closeFrameSent = true;
    if (this.state === 3) return;
    this.socket.write(encodeFrame(OP_CLOSE, closePayload(code, reason), this.mask));
    this.closeTimer = setTimeout(destroySocket, this.closeTimeoutMs, this.socket);
    this.closeTimer.unref?.();
  }
}

function legOf(socket: Duplex): FrameSocket {
  return (socket as unknown as Record<symbol, FrameSocket>)[kLeg]!;
}

function socketOnData(this: Duplex, chunk: Buffer): void {
  legOf(this).onData(chunk);
}

function socketOnEnd(this: Duplex): void {
  legOf(this).onEnd();
}

function socketOnClose(this: Duplex): void {
  legOf(this).onClose();
}

function socketOnError(this: Duplex): void {
  legOf(this).onSocketError();
}

function drainLater(leg: FrameSocket): void {
  leg.drainQueuedNow();
}

function destroySocket(socket: Duplex): void {
  socket.destroy();
}
