/**
 * Minimal DER reading: just enough to take a CSR or SubjectPublicKeyInfo apart where the x509
 * library keeps the pieces private. Definite lengths only, as DER requires.
 */

/** One TLV element: its tag byte and where its header, content and end lie in the buffer. */
export interface DerElement {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/**
 * Reads the element starting at `offset`.
 * @throws Error when the buffer ends before the element does.
 */
export function readDerElement(der: Uint8Array, offset: number): DerElement {
  if (offset + 2 > der.length) throw new Error('truncated DER');
  const tag = der[offset];
  let length = der[offset + 1];
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || contentStart + count > der.length) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[contentStart + i];
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > der.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart, end };
}

/** Reads the elements directly inside a constructed element (SEQUENCE, SET). */
export function readDerChildren(der: Uint8Array, parent: DerElement): DerElement[] {
  const children: DerElement[] = [];
  for (let offset = parent.contentStart; offset < parent.end; ) {
    const child = readDerElement(der, offset);
    children.push(child);
    offset = child.end;
  }
  return children;
}

/** Decodes an OBJECT IDENTIFIER element to dotted form ("1.2.840.10045.4.3.2"). */
export function decodeOid(der: Uint8Array, element: DerElement): string {
  if (element.tag !== 0x06) throw new Error('not an OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (let i = element.contentStart; i < element.end; i++) {
    value = value * 128 + (der[i] & 0x7f);
    if ((der[i] & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** The content of a BIT STRING element without its leading unused-bits byte. */
export function bitStringBytes(der: Uint8Array, element: DerElement): Uint8Array {
  if (element.tag !== 0x03) throw new Error('not a BIT STRING');
  return der.subarray(element.contentStart + 1, element.end);
}
