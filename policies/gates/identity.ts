import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';

/** OCPP 2.x identifierString characters without ':' (it separates Basic user and password); at most 48. */
const IDENTITY_PATTERN = /^[A-Za-z0-9*\-_=+|@.]{1,48}$/;

/**
 * "." and ".." are identifierStrings, but as the last segment of the CSMS URL they are dot-segments
 * (RFC 3986 §5.2.4): `ws://csms/ocpp/..` resolves to `ws://csms/`, a path traversal on the CSMS.
 */
const DOT_SEGMENT = /^\.{1,2}$/;

/** Longest raw request path considered at all; longer ones are refused before decoding. */
const MAX_PATH_LENGTH = 2048;

/**
 * Reads the charger identity: the percent-decoded single path segment after the prefix (one "/"
 * more in between is taken as written by a charger that adds "/" to a URL ending in "/").
 * Anything else (other paths, nested segments, bad escapes, characters outside the OCPP
 * identifierString set) is refused with 400 and never reaches the CSMS.
 */
export function identityGate(pathPrefix: string): Gate {
  return {
    name: 'identity',
    check(ctx: UpgradeContext): GateVerdict {
      const raw = ctx.req.url ?? '';
      if (raw.length > MAX_PATH_LENGTH) return reject(414, 'path_too_long');
      const path = raw.split('?', 1)[0]!;
      if (!path.startsWith(pathPrefix)) return reject(404, 'unknown_path');
      // One extra slash is the charger's "/" + identity after a URL that ended with "/" already (2.x
      // chargers add their identity to the SetNetworkProfile URL, and implementations differ on the "/").
      const afterPrefix = path.slice(pathPrefix.length);
      const segment = afterPrefix.startsWith('/') ? afterPrefix.slice(1) : afterPrefix;
      if (segment.length === 0 || segment.includes('/')) return reject(400, 'bad_identity');
      let identity: string;
      try {
        identity = decodeURIComponent(segment);
      } catch {
        return reject(400, 'bad_identity');
      }
      if (!isValidIdentity(identity)) return reject(400, 'bad_identity');
      ctx.identity = identity;
      return undefined;
    },
  };
}

/** Exposed for tests and the CLI (validating identities given by an operator). */
export function isValidIdentity(identity: string): boolean {
  return IDENTITY_PATTERN.test(identity) && !DOT_SEGMENT.test(identity);
}
