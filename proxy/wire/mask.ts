/**
 * XORs `buf[start..end)` with the 4-byte masking key at `key[keyAt]`, in place (RFC 6455 §5.3):
 * masking and unmasking are the same operation.
 */
export function applyMask(buf: Buffer, start: number, end: number, key: Buffer, keyAt: number): void {
  const k0 = key[keyAt]!, k1 = key[keyAt + 1]!, k2 = key[keyAt + 2]!, k3 = key[keyAt + 3]!;
  let i = start;
  for (; i + 3 < end; i += 4) {
    buf[i] ^= k0;
    buf[i + 1] ^= k1;
    buf[i + 2] ^= k2;
    buf[i + 3] ^= k3;
  }
  for (let j = 0; i < end; i++, j++) buf[i] ^= j === 0 ? k0 : j === 1 ? k1 : k2;
}
