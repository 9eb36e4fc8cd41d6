/**
 * Keys of the brute-force counters and lockouts (`recordFailure`, `setLockout`, ...): one scheme for
 * the guard that writes them, the stores that read them with a charger's record, and the operator
 * commands that clear them.
 */

/** The key of an identity's failure count and lockout. */
export function identityKey(identity: string): string {
  return `${IDENTITY_PREFIX}${identity}`;
}

/** The key of a source address's failure count and lockout, as the proxy spells the address. */
export function addressKey(address: string): string {
  return `ip:${address}`;
}

/** The identity of an {@link identityKey}, or null for another key. */
export function identityOfKey(key: string): string | null {
  return key.startsWith(IDENTITY_PREFIX) ? key.slice(IDENTITY_PREFIX.length) : null;
}

const IDENTITY_PREFIX = 'id:';
