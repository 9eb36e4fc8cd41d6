/**
 * The two list-valued WebSocket handshake headers, read as strictly as `ws` reads them (RFC 6455
 * §4.1, §9.1; RFC 9110 tokens), so that a request `ws` would refuse is refused before the CSMS is
 * dialled. Node joins repeated header lines with ", ", so a repeat shows up as a list element.
 */

import { isToken, TOKEN_SOURCE as TOKEN, trimOws } from '../../proxy/http-syntax';

const OWS = '[ \\t]*';
// As ws reads a parameter: `name`, `name=token` or `name="token"`, no space around `=`.
const EXTENSION = `${TOKEN}(?:${OWS};${OWS}${TOKEN}(?:=(?:${TOKEN}|"${TOKEN}"))?)*`;
const EXTENSION_LIST = new RegExp(`^${OWS}${EXTENSION}(?:${OWS},${OWS}${EXTENSION})*${OWS}$`);

/**
 * `Sec-WebSocket-Protocol` as its list of subprotocols, or null when it is not a comma-separated
 * list of distinct tokens (an empty element, a space inside a name, a name offered twice).
 */
export function parseSubprotocols(header: string): string[] | null {
  const names = header.split(',').map(trimOws);
  if (!names.every(isToken)) return null;
  return new Set(names).size === names.length ? names : null;
}

/** Whether `Sec-WebSocket-Extensions` is a well-formed extension list (its parameters' meaning aside). */
export function isExtensionList(header: string): boolean {
  return EXTENSION_LIST.test(header);
}
