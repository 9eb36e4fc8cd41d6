/**
 * The charger identity a certificate was issued to, carried in the certificate the proxy signs as a
 * subjectAltName URI. The CN is the charger's serial number (OCPP A00.FR.511), which is not unique
 * across a store: one charger's identity may be another's serial. With the identity in the
 * certificate, one issued to charger B cannot log in as charger A whose serial happens to be B's CN.
 */

/** The URN prefix; the identity follows percent-encoded, so the value never needs quoting. */
const PREFIX = 'urn:ocpp-security-proxy:identity:';

/** The URI naming `identity`. */
export function identityUri(identity: string): string {
  return PREFIX + encodeURIComponent(identity);
}

/**
 * Whether the certificate names a charger identity at all, and if so whether it names `identity`:
 * null when it names none (issued elsewhere, or before the proxy named identities), else true or
 * false. `subjectAltName` is Node's text form (`getPeerCertificate().subjectaltname`): entries
 * separated by ", ", a URI as `URI:<value>`, quoted when the value holds a comma or a quote (ours never does).
 */
export function namesIdentity(subjectAltName: string | undefined, identity: string): boolean | null {
  if (!subjectAltName) return null;
  const wanted = `URI:${identityUri(identity)}`;
  let named = false;
  for (const entry of subjectAltName.split(', ')) {
    if (entry === wanted) return true;
    if (entry.startsWith(`URI:${PREFIX}`) || entry.startsWith(`URI:"${PREFIX}`)) named = true;
  }
  return named ? false : null;
}
