import { isUtf8 } from 'node:buffer';
import { applyMask } from './mask';

/**
 * A peer broke RFC 6455. `code` is the name `ws` gives the same fault (WS_ERR_*), so logs read the
 * same whichever implementation a session runs on; `status` is the close code to answer with.
 */
export class WireError extends Error {
  constructor(readonly code: string, readonly status: number, message: string) {
    super(`Invalid WebSocket frame: ${message}`);
    this.name = 'WireError';
  }
}

/** What the reader hands out: a whole data message, or one control frame. */
export type WireEvent =
  | { kind: 'message'; data: Buffer; isBinary: boolean }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'close'; code: number; reason: Buffer };

const EMPTY = Buffer.alloc(0);
/** 2^53 − 1: the largest length a JavaScript number holds exactly (ws's limit too). */
const MAX_HIGH_WORD = 0x1fffff;
/**
 * Chunks (or fragments) held at once before they are merged into one buffer: a peer sending a
 * message one byte per TLS record or per fragment would otherwise cost a Buffer object (about a
 * hundred bytes of heap) per byte. Merging keeps memory near the bytes held, at a bounded copying cost.
 */
const MAX_PIECES = 32;

/**
 * The receiving half of RFC 6455 for a connection without extensions: bytes in (as the socket
 * reads them), whole messages and control frames out. Every rule the RFC gives a receiver is
 * checked here, each failing with a {@link WireError}; a frame header is judged before its payload
 * is buffered, so an oversized frame costs no memory. Payloads are unmasked in place: a message is a
 * view into the chunk it arrived in, copied only when its fragments or its bytes span chunks.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private offset = 0;
  private buffered = 0;
  /** The open fragmented message: its first opcode, fragments and length so far. */
  private fragmentOpcode = 0;
  private fragments: Buffer[] | null = null;
  private fragmentsLength = 0;

  /**
   * @param expectMasked true on the server side: every client frame must be masked (and no server
   *   frame may be).
   * @param maxPayload largest message accepted, in bytes (all its fragments together).
   */
  constructor(private readonly expectMasked: boolean, private readonly maxPayload: number) {}

  /** Bytes not yet turned into events. */
  get pending(): number {
    return this.buffered;
  }

  /** Buffers held for unfinished frames and messages (bounded: see MAX_PIECES). */
  get heldPieces(): number {
    return this.chunks.length + (this.fragments?.length ?? 0);
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.chunks.length > MAX_PIECES) {
      const merged = Buffer.concat([this.chunks[0]!.subarray(this.offset), ...this.chunks.slice(1)], this.buffered);
      this.chunks = [merged];
      this.offset = 0;
    }
  }

  /** Forgets whatever is buffered (the connection is being torn down). */
  discard(): void {
    this.chunks = [];
    this.offset = 0;
    this.buffered = 0;
    this.fragments = null;
    this.fragmentsLength = 0;
  }

  /** The next message or control frame, or null until more bytes arrive. Throws {@link WireError}. */
  next(): WireEvent | null {
    for (;;) {
      if (this.buffered < 2) return null;
      this.gatherHeader();
      const buf = this.chunks[0]!;
      const at = this.offset;
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let length = b1 & 0x7f;
      this.checkHeader(b0, opcode, fin, masked, length);
      const lengthBytes = length === 126 ? 2 : length === 127 ? 8 : 0;
      const headerLength = 2 + lengthBytes + (masked ? 4 : 0);
      if (this.buffered < headerLength) return null;
      if (length === 126) length = buf.readUInt16BE(at + 2);
      else if (length === 127) {
        const high = buf.readUInt32BE(at + 2);
        if (high > MAX_HIGH_WORD) throw new WireError('WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', 1009, 'unsupported payload length');
        length = high * 2 ** 32 + buf.readUInt32BE(at + 6);
      }
      if (opcode < 8 && this.maxPayload > 0 && this.fragmentsLength + length > this.maxPayload) {
        throw new WireError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009, 'message too big');
      }
      if (this.buffered < headerLength + length) return null;
      const frame = this.take(headerLength + length);
      const payload = frame.subarray(headerLength);
      if (masked) applyMask(frame, headerLength, frame.length, frame, headerLength - 4);
      if (opcode >= 8) return control(opcode, payload);
      const event = this.dataFrame(opcode, fin, payload);
      if (event) return event;
    }
  }

  /** Frame-level rules that need only the first two bytes. */
  private checkHeader(b0: number, opcode: number, fin: boolean, masked: boolean, length: number): void {
    if ((b0 & 0x40) !== 0) throw new WireError('WS_ERR_UNEXPECTED_RSV_1', 1002, 'RSV1 must be clear');
    if ((b0 & 0x30) !== 0) throw new WireError('WS_ERR_UNEXPECTED_RSV_2_3', 1002, 'RSV2 and RSV3 must be clear');
    if (opcode >= 8) {
      if (opcode > 10) throw new WireError('WS_ERR_INVALID_OPCODE', 1002, `invalid opcode ${opcode}`);
      if (!fin) throw new WireError('WS_ERR_EXPECTED_FIN', 1002, 'FIN must be set');
      if (length > 125 || (opcode === 8 && length === 1)) throw new WireError('WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002, `invalid payload length ${length}`);
    } else if (opcode > 2) {
      throw new WireError('WS_ERR_INVALID_OPCODE', 1002, `invalid opcode ${opcode}`);
    } else if (opcode === 0 && this.fragments === null) {
      throw new WireError('WS_ERR_INVALID_OPCODE', 1002, 'invalid opcode 0');
    } else if (opcode !== 0 && this.fragments !== null) {
      throw new WireError('WS_ERR_INVALID_OPCODE', 1002, `invalid opcode ${opcode}`);
    }
    if (masked !== this.expectMasked) {
      throw this.expectMasked ? new WireError('WS_ERR_EXPECTED_MASK', 1002, 'MASK must be set') : new WireError('WS_ERR_UNEXPECTED_MASK', 1002, 'MASK must be clear');
    }
  }

  /** A data frame: the message it completes, or null while fragments are still to come. */
  private dataFrame(opcode: number, fin: boolean, payload: Buffer): WireEvent | null {
    if (!fin || this.fragments !== null) {
      if (this.fragments === null) {
        this.fragments = [];
        this.fragmentOpcode = opcode;
      }
      // A copy: the fragment outlives this turn, and must not pin the chunk it came in.
      if (payload.length > 0) this.fragments.push(Buffer.from(payload));
      this.fragmentsLength += payload.length;
      if (this.fragments.length > MAX_PIECES) this.fragments = [Buffer.concat(this.fragments, this.fragmentsLength)];
      if (!fin) return null;
      payload = Buffer.concat(this.fragments, this.fragmentsLength);
      opcode = this.fragmentOpcode;
      this.fragments = null;
      this.fragmentsLength = 0;
    }
    const isBinary = opcode === 2;
    if (!isBinary && !isUtf8(payload)) throw new WireError('WS_ERR_INVALID_UTF8', 1007, 'invalid UTF-8 sequence');
    return { kind: 'message', data: payload, isBinary };
  }

  /** Makes chunks[0] hold the whole header (at most 14 bytes) when it is split over chunks. */
  private gatherHeader(): void {
    const first = this.chunks[0]!;
    if (first.length - this.offset >= 14 || this.chunks.length === 1) return;
    const want = Math.min(14, this.buffered);
    const parts: Buffer[] = [first.subarray(this.offset)];
    let have = parts[0]!.length;
    let i = 1;
    while (have < want) {
      parts.push(this.chunks[i]!);
      have += this.chunks[i]!.length;
      i++;
    }
    this.chunks.splice(0, i, Buffer.concat(parts, have));
    this.offset = 0;
  }

  /** Consumes `n` bytes: a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    this.buffered -= n;
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) this.dropFirst();
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length - this.offset, n - written);
      chunk.copy(out, written, this.offset, this.offset + part);
      written += part;
      this.offset += part;
      if (this.offset === chunk.length) this.dropFirst();
    }
    return out;
  }

  /**
   * Forgets chunks[0], read to its end. The usual case, the only chunk read whole, gets a new empty
   * array rather than shift(), after which V8 keeps the room push made (17 slots, 150 bytes for
   * every idle reader).
   */
  private dropFirst(): void {
    if (this.chunks.length === 1) this.chunks = [];
    else this.chunks.shift();
    this.offset = 0;
  }
}

function control(opcode: number, payload: Buffer): WireEvent {
  if (opcode === 9) return { kind: 'ping', data: payload };
  if (opcode === 10) return { kind: 'pong', data: payload };
  if (payload.length === 0) return { kind: 'close', code: 1005, reason: EMPTY };
  const code = payload.readUInt16BE(0);
  if (!isValidCloseCode(code)) throw new WireError('WS_ERR_INVALID_CLOSE_CODE', 1002, `invalid status code ${code}`);
  const reason = payload.subarray(2);
  if (!isUtf8(reason)) throw new WireError('WS_ERR_INVALID_UTF8', 1007, 'invalid UTF-8 sequence');
  return { kind: 'close', code, reason };
}

/** Codes a close frame may carry (RFC 6455 §7.4). */
function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}
