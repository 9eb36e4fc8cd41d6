/** HTTP Basic credentials as bytes: OCPP 1.6 keys may be raw binary (OCPP-SECURITY.md §2.3). */
export interface BasicCredentials {
  username: string;
  password: Buffer;
}

/** Longest Authorization header considered (a 64-char password plus a 48-char identity fit easily). */
const MAX_HEADER = 1024;

/**
 * Parses `Authorization: Basic <base64>` into username and password bytes, splitting at the first
 * colon (an identity has none; a password may). Returns null when absent or malformed.
 */
export function parseBasic(header: string | undefined): BasicCredentials | null {
  if (!header || header.length > MAX_HEADER) return null;
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!m) return null;
  const raw = Buffer.from(m[1]!, 'base64');
  const colon = raw.indexOf(0x3a);
  if (colon < 0) return null;
  const username = raw.subarray(0, colon).toString('utf8');
  return { username, password: raw.subarray(colon + 1) };
}

/**
 * The forms a 1.6 AuthorizationKey may arrive in: as sent, hex-decoded (a charger that put the
 * ChangeConfiguration hex text into its Basic header, shiv3/ocpp-cp-simulator#260), and hex-encoded
 * (a key stored as hex text while the charger sends the decoded bytes).
 */
export function passwordVariants(candidate: Buffer, ocpp16Possible: boolean): Buffer[] {
  const variants = [candidate];
  if (!ocpp16Possible) return variants;
  const text = candidate.toString('latin1');
  if (text.length >= 32 && text.length <= 40 && text.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(text)) {
    variants.push(Buffer.from(text, 'hex'));
  }
  if (candidate.length >= 16 && candidate.length <= 20) variants.push(Buffer.from(candidate.toString('hex')));
  return variants;
}
