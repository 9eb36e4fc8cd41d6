/** Test helpers for proxy/wire/: frames built and parsed by hand, a raw peer, a recorder of FrameSocket events. */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Test } from 'tap';
import { FrameSocket } from '../../proxy/wire/frame-socket';
import { waitFor } from './net';
// Helpers: frames built and parsed by hand, a raw peer, a recorder for FrameSocket events.

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const noop = () => undefined;

/** One frame as the raw peer writes it. */
export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** FIN bit; default true. */
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** true: masked with a random key; a Buffer: masked with that key; default: the peer's role. */
  mask?: boolean | Buffer;
  /** Forces the length encoding: 0 = 7-bit, 2 = 16-bit, 8 = 64-bit; default the minimal one. */
  lengthBytes?: 0 | 2 | 8;
  /** Length written in the header instead of the payload's (the payload is still appended). */
  declaredLength?: bigint;
}

export function xor(data: Buffer, key: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ key[i & 3]!;
  return out;
}

/** The bytes of one frame (RFC 6455 5.2). */
export function frame(f: FrameSpec): Buffer {
  const payload = typeof f.payload === 'string' ? Buffer.from(f.payload) : (f.payload ?? Buffer.alloc(0));
  const len = f.declaredLength ?? BigInt(payload.length);
  const enc = f.lengthBytes ?? (len < 126n ? 0 : len < 65536n ? 2 : 8);
  const head = Buffer.alloc(2 + enc);
  head[0] = (f.fin === false ? 0 : 0x80) | (f.rsv1 ? 0x40 : 0) | (f.rsv2 ? 0x20 : 0) | (f.rsv3 ? 0x10 : 0) | (f.opcode & 0x0f);
  if (enc === 0) head[1] = Number(len);
  else if (enc === 2) {
    head[1] = 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(len, 2);
  }
  if (!f.mask) return Buffer.concat([head, payload]);
  head[1]! |= 0x80;
  const key = Buffer.isBuffer(f.mask) ? f.mask : randomBytes(4);
  return Buffer.concat([head, key, xor(payload, key)]);
}

/** A close frame's payload: code (when given) then reason. */
export function closePayload(code?: number, reason: Buffer | string = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const c = Buffer.alloc(2);
  c.writeUInt16BE(code);
  return Buffer.concat([c, Buffer.from(reason)]);
}

/** One frame as our side wrote it, payload unmasked. */
export interface Parsed {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  key: Buffer | null;
  lengthBytes: 0 | 2 | 8;
  payload: Buffer;
}

export function parseFrame(buf: Buffer): { frame: Parsed; size: number } | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let off = 2;
  let lengthBytes: 0 | 2 | 8 = 0;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
    lengthBytes = 2;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
    lengthBytes = 8;
  }
  const key = masked ? buf.subarray(off, off + 4) : null;
  if (masked) off += 4;
  if (buf.length < off + len) return null;
  const raw = buf.subarray(off, off + len);
  return {
    frame: { fin: (buf[0]! & 0x80) !== 0, rsv: (buf[0]! >> 4) & 7, opcode: buf[0]! & 0x0f, masked, key: key && Buffer.from(key), lengthBytes, payload: key ? xor(raw, key) : Buffer.from(raw) },
    size: off + len,
  };
}

/** The other end of a FrameSocket: writes hand-built frames, parses what it receives. */
export class RawPeer {
  readonly frames: Parsed[] = [];
  ended = false;
  closed = false;
  private read = 0;
  private buf: Buffer;

  /** `masks`: frames are masked by default (the peer plays the client). */
  constructor(readonly socket: net.Socket, readonly masks: boolean, already: Buffer = Buffer.alloc(0)) {
    this.buf = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.take(d));
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', noop);
    if (already.length > 0) this.take(already);
    socket.resume();
  }

  private take(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (let f = parseFrame(this.buf); f; f = parseFrame(this.buf)) {
      this.frames.push(f.frame);
      this.buf = this.buf.subarray(f.size);
    }
  }

  /** The bytes of `specs`, masked per the peer's role unless a spec says otherwise. */
  bytes(...specs: FrameSpec[]): Buffer {
    return Buffer.concat(specs.map((s) => frame({ ...s, mask: s.mask ?? this.masks })));
  }

  /** Writes all `specs` in one write. */
  send(...specs: FrameSpec[]): void {
    this.socket.write(this.bytes(...specs));
  }

  /** The next frame not yet returned. */
  next(what = 'a frame from our side', ms = 3000): Promise<Parsed> {
    return waitFor(() => (this.read < this.frames.length ? this.frames[this.read++] : undefined), what, ms, 5) as Promise<Parsed>;
  }

  /** Frames received but not yet returned by next(). */
  unread(): Parsed[] {
    return this.frames.slice(this.read);
  }

  /**
   * Stops reading and sends 100,000 pings of 125 bytes (12.7 MB of pongs owed), as a peer that pings
   * and never reads; resolves once the kernel has taken them all, and a moment later.
   */
  async floodPingsUnread(): Promise<void> {
    this.socket.pause();
    const ping = this.bytes({ opcode: OP.ping, payload: Buffer.alloc(125, 7) });
    const pings = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    for (let i = 0; i < 100; i++) this.socket.write(pings);
    await waitFor(() => this.socket.writableLength === 0, 'all pings sent', 8000);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export type WireError = Error & { code: string };

/** Everything a FrameSocket emitted. */
export interface Seen {
  messages: { data: Buffer; isBinary: boolean }[];
  pongs: Buffer[];
  errors: WireError[];
  closes: { code: number; reason: string; rawReason: unknown }[];
}

export function record(ws: FrameSocket): Seen {
  const seen: Seen = { messages: [], pongs: [], errors: [], closes: [] };
  ws.on('message', (data: Buffer, isBinary: boolean) => seen.messages.push({ data, isBinary }));
  ws.on('pong', (p: Buffer) => seen.pongs.push(p));
  ws.on('error', (e: Error) => seen.errors.push(e as WireError));
  ws.on('close', (code: number, reason: Buffer) => seen.closes.push({ code, reason: String(reason), rawReason: reason }));
  return seen;
}

export const texts = (seen: Seen) => seen.messages.map((m) => m.data.toString());

/**
 * Two connected TCP sockets on loopback: [ours (half-open allowed, as an http.Server's), the peer's].
 * The peer answers our FIN with its own unless `peerHalfOpen` (a peer that keeps its side open).
 */
export async function socketPair(peerHalfOpen = false): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const peer = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: peerHalfOpen });
  const ours = await accepted;
  server.close();
  ours.setNoDelay(true);
  return [ours, peer];
}

export interface Wired {
  ws: FrameSocket;
  peer: RawPeer;
  seen: Seen;
}

/**
 * A FrameSocket on one end of a loopback TCP connection and a RawPeer on the other. The peer masks
 * when our side is the server. Resumed unless `resume: false`.
 */
export async function wired(t: Test, opts: { isServer?: boolean; maxPayload?: number; head?: Buffer; closeTimeoutMs?: number; resume?: boolean; peerHalfOpen?: boolean } = {}): Promise<Wired> {
  const [ours, theirs] = await socketPair(opts.peerHalfOpen);
  const isServer = opts.isServer ?? true;
  const ws = new FrameSocket(ours, {
    isServer,
    protocol: 'ocpp1.6',
    maxPayload: opts.maxPayload ?? 1 << 20,
    ...(opts.head ? { head: opts.head } : {}),
    closeTimeoutMs: opts.closeTimeoutMs ?? 10_000,
  });
  const seen = record(ws);
  const peer = new RawPeer(theirs, isServer);
  t.teardown(() => {
    ws.terminate();
    theirs.destroy();
    ours.destroy();
  });
  if (opts.resume !== false) ws.resume();
  return { ws, peer, seen };
}

/** t.test with a time bound, so a hang fails one test rather than the file. */
export function bounded(t: Test, name: string, fn: (t: Test) => Promise<void>, ms = 10_000): void {
  t.test(name, async (t) => {
    t.setTimeout(ms);
    await fn(t);
  });
}

export const acceptFor = (key: string) => createHash('sha1').update(key + GUID).digest('base64');
