/** The HTTP syntax the proxy checks by hand: tokens (RFC 9110 §5.6.2) and field text. */

/** A token as regular-expression source, for building list and parameter patterns. */
export const TOKEN_SOURCE = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const TOKEN = new RegExp(`^${TOKEN_SOURCE}$`);

/** Whether `s` is exactly one token. */
export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

/** `s` without the optional whitespace (spaces and tabs only, RFC 9110 §5.6.3) around it. */
export function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Anything but HTAB, SP, visible ASCII and obs-text (RFC 9110 §5.5, RFC 9112 §4): Node's own rule for header values. */
const NOT_FIELD_TEXT = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * Whether `s` may stand in a header field value or a reason phrase: no control character but HTAB,
 * and (in a string to be written as latin1) nothing past latin1, whose low byte could be a CR.
 */
export function isFieldText(s: string): boolean {
  return !NOT_FIELD_TEXT.test(s);
}
