/**
 * JSON (RFC 8259) checked over the bytes of a frame, without building the value: the relay must
 * know a frame is valid JSON before forwarding it, but reads only its header. Accepts exactly what
 * JSON.parse accepts (test/unit/json-bytes.test.ts compares the two), in one pass, with no
 * recursion (a deeply nested frame cannot exhaust the stack) and no allocation for nesting up to
 * the size of the shared stack below. The bytes are known valid UTF-8 (the leg checked them), so
 * only ASCII matters here.
 */

/** JSON's structural bytes (also read by the frame header reader). */
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const OPEN_ARRAY = 0x5b;
export const CLOSE_ARRAY = 0x5d;
export const OPEN_OBJECT = 0x7b;
export const CLOSE_OBJECT = 0x7d;
export const MINUS = 0x2d;
/** The first byte of `null`. */
export const LETTER_N = 0x6e;

/** The open containers while a value is checked: 1 for an object, 0 for an array. Grown on demand. */
const USUAL_DEPTH = 64;
let open = new Uint8Array(USUAL_DEPTH);

/** The index of the first byte at or after `i` that is not JSON whitespace (space, tab, LF, CR). */
export function skipWhitespace(b: Uint8Array, i: number): number {
  while (i < b.length) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/**
 * The index just past the JSON value that starts at `i` (no whitespace before it), or -1 when no
 * valid value starts there.
 */
export function skipJsonValue(b: Uint8Array, i: number): number {
  const end = skipNested(b, i);
  if (open.length > USUAL_DEPTH) open = new Uint8Array(USUAL_DEPTH); // one deep frame keeps no memory
  return end;
}

function skipNested(b: Uint8Array, i: number): number {
  let depth = 0;
  for (;;) {
    // A value starts at i.
    const c = b[i];
    if (c === OPEN_OBJECT) {
      i = skipWhitespace(b, i + 1);
      if (b[i] === CLOSE_OBJECT) i++;
      else {
        depth = enter(depth, 1);
        i = skipMemberName(b, i);
        if (i < 0) return -1;
        continue;
      }
    } else if (c === OPEN_ARRAY) {
      i = skipWhitespace(b, i + 1);
      if (b[i] === CLOSE_ARRAY) i++;
      else {
        depth = enter(depth, 0);
        continue;
      }
    } else if (c === QUOTE) i = skipString(b, i);
    else if (c === 0x74) i = skipLiteral(b, i, 'true');
    else if (c === 0x66) i = skipLiteral(b, i, 'false');
    else if (c === LETTER_N) i = skipLiteral(b, i, 'null');
    else i = skipNumber(b, i);
    if (i < 0) return -1;
    // A value ended at i: close what it ends, then find where the next one starts.
    for (;;) {
      if (depth === 0) return i;
      i = skipWhitespace(b, i);
      const inObject = open[depth - 1] === 1;
      const d = b[i];
      if (d === COMMA) {
        i = skipWhitespace(b, i + 1);
        if (inObject) {
          i = skipMemberName(b, i);
          if (i < 0) return -1;
        }
        break;
      }
      if (d !== (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) return -1;
      depth--;
      i++;
    }
  }
}

function enter(depth: number, kind: 0 | 1): number {
  if (depth === open.length) {
    const grown = new Uint8Array(open.length * 2);
    grown.set(open);
    open = grown;
  }
  open[depth] = kind;
  return depth + 1;
}

/** `"name" :` and the whitespace after it: the index where the member's value starts, or -1. */
function skipMemberName(b: Uint8Array, i: number): number {
  if (b[i] !== QUOTE) return -1;
  i = skipString(b, i);
  if (i < 0) return -1;
  i = skipWhitespace(b, i);
  if (b[i] !== COLON) return -1;
  return skipWhitespace(b, i + 1);
}

/** The index just past the string whose opening quote is at `i`, or -1. */
function skipString(b: Uint8Array, i: number): number {
  i++;
  for (;;) {
    if (i >= b.length) return -1;
    const c = b[i++]!;
    if (c === QUOTE) return i;
    if (c < 0x20) return -1; // control characters must be escaped
    if (c !== BACKSLASH) continue;
    const e = b[i++];
    if (e === 0x75) { // \uXXXX
      for (let k = 0; k < 4; k++) if (!isHexDigit(b[i++])) return -1;
    } else if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) {
      return -1;
    }
  }
}

/** True when the string token in [start, end) has an escape (and must be decoded by JSON.parse). */
export function hasEscape(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start + 1; i < end - 1; i++) if (b[i] === BACKSLASH) return true;
  return false;
}

/** -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
function skipNumber(b: Uint8Array, i: number): number {
  if (b[i] === MINUS) i++;
  if (b[i] === 0x30) i++;
  else if (isDigit(b[i])) i = skipDigits(b, i + 1);
  else return -1;
  if (b[i] === 0x2e) {
    if (!isDigit(b[i + 1])) return -1;
    i = skipDigits(b, i + 2);
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === MINUS) i++;
    if (!isDigit(b[i])) return -1;
    i = skipDigits(b, i + 1);
  }
  return i;
}

function skipDigits(b: Uint8Array, i: number): number {
  while (isDigit(b[i])) i++;
  return i;
}

function skipLiteral(b: Uint8Array, i: number, word: string): number {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number | undefined): boolean {
  if (c === undefined) return false;
  const lower = c | 0x20;
  return (c >= 0x30 && c <= 0x39) || (lower >= 0x61 && lower <= 0x66);
}
