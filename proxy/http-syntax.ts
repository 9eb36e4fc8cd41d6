/** RFC 9110 §5.6.2 token: header field names, subprotocols, extension names and parameters. */

/** A token as regular-expression source, for building list and parameter patterns. */
export const TOKEN_SOURCE = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const TOKEN = new RegExp(`^${TOKEN_SOURCE}$`);

/** Whether `s` is exactly one token. */
export function isToken(s: string): boolean {
  return TOKEN.test(s);
}
