/**
 * One WebSocket of a session, as the session sees it: the few members of `ws`'s WebSocket it uses.
 * Both `ws` (sessions with permessage-deflate) and our own {@link import('./wire/frame-socket').FrameSocket}
 * (every other session) provide them.
 */
/**
 * Where the object that reads a leg (its session) keeps itself on the leg, so the leg's listeners can
 * be shared functions rather than closures per session. FrameSocket declares the slot (in-object).
 */
export const kLegOwner = Symbol('legOwner');

export interface Leg {
  /** 0 connecting, 1 open, 2 closing, 3 closed (as `ws`). */
  readonly readyState: number;
  /** The negotiated subprotocol ('' when none). */
  readonly protocol: string;
  /** True while the leg is not read (back-pressure). */
  readonly isPaused: boolean;
  /** Bytes written but not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /** Bytes the kernel has taken so far (FrameSocket; for `ws` legs see {@link bytesFlushed}). */
  readonly bytesFlushed?: number;
  send(data: Buffer | string, options: { binary: boolean }, cb?: (err?: Error | null) => void): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'pong', listener: () => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  removeListener(event: 'error', listener: (err: Error) => void): this;
}

/**
 * Bytes of a leg's output the kernel has taken so far (whole writes: a batch of queued frames counts
 * once it is all taken). While bytes wait in our queue the kernel's buffers are full, and then it
 * moves only as the peer reads: the ping round's sign of a slow but live reader (see Session.ping). A
 * `ws` leg (permessage-deflate sessions) has no such member; its socket is read instead.
 */
export function bytesFlushed(leg: Leg): number {
  return leg.bytesFlushed ?? socketFlushed((leg as { _socket?: FlushCounting })._socket);
}

type FlushCounting = { bytesWritten?: number; writableLength: number };

/** A socket's share: net.Socket's `bytesWritten` counts queued bytes too, so they are taken off. */
export function socketFlushed(socket: FlushCounting | undefined): number {
  return socket?.bytesWritten === undefined ? 0 : socket.bytesWritten - socket.writableLength;
}
