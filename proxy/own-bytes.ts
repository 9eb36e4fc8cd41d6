/**
 * A relayed frame is a view into the socket chunk it was read from (up to 16 KiB from TLS, 64 KiB
 * from TCP). Sent at once, nothing keeps it; but a frame that waits (behind a slow reader, or held
 * behind an injected call) would keep its whole chunk alive, so a queue of small frames could pin
 * far more memory than the bytes the back-pressure limit counts. Such a frame gets its own copy.
 */
export function ownBytes(data: Buffer): Buffer {
  if (data.byteLength * 2 >= data.buffer.byteLength) return data; // already (nearly) all its own
  // Not Buffer.from: small copies come from the shared 8 KiB pool, which one waiting frame would pin.
  const copy = Buffer.allocUnsafeSlow(data.byteLength);
  data.copy(copy);
  return copy;
}
