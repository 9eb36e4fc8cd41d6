import { applyMask } from './mask';
import { copyRandomBytes } from './random-pool';

/** Opcodes the proxy sends (RFC 6455 §5.2). */
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/**
 * One whole frame (FIN set) in a single buffer, ready for one socket write. A client (`mask`) masks
 * with a fresh random key as RFC 6455 requires: a charger's own key is never reused towards the CSMS,
 * so a charger cannot choose the bytes that cross the proxy's TCP connection.
 */
export function encodeFrame(opcode: number, payload: Buffer | string, mask: boolean): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const headerLength = 2 + lengthBytes + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(headerLength + length);
  out[0] = 0x80 | opcode;
  const maskBit = mask ? 0x80 : 0;
  if (lengthBytes === 0) out[1] = maskBit | length;
  else if (lengthBytes === 2) {
    out[1] = maskBit | 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = maskBit | 127;
    out.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    out.writeUInt32BE(length >>> 0, 6);
  }
  if (typeof payload === 'string') out.write(payload, headerLength);
  else payload.copy(out, headerLength);
  if (mask) {
    const at = headerLength - 4;
    copyRandomBytes(out, at, 4); // from a pool: one system call per 2,048 frames, not per frame
    applyMask(out, headerLength, out.length, out, at);
  }
  return out;
}

/** A close frame's payload: the code, then the reason (already at most 123 bytes). */
export function closePayload(code: number | undefined, reason: string | Buffer | undefined): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const text = typeof reason === 'string' ? Buffer.from(reason) : reason ?? Buffer.alloc(0);
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}
