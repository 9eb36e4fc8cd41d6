import type { ChargerRecord, SecurityProfile } from '../../proxy/store/types';
import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';

/**
 * The profile a connection presents: plain port → 1; TLS with a client certificate → 3; TLS without → 2.
 * Behind a trusted TLS-terminating front, its X-Forwarded-Proto and forwarded certificate count as TLS.
 */
export function presentedProfile(ctx: UpgradeContext): SecurityProfile {
  if (ctx.listener === 'plain' && !ctx.facts.edgeTls) return 1;
  return ctx.peerCertificate ? 3 : 2;
}

/**
 * Fixes the profile this connection is judged on and refuses anything below the charger's minimum
 * (Basic on the plain port when it needs 2, Basic when it needs 3): never downgraded (A00.FR.002,
 * A05.FR.07 / 1.6 A05.FR.09).
 */
export const profileGate: Gate = {
  name: 'profile',
  reportOnlyCapable: true,
  check(ctx: UpgradeContext): GateVerdict {
    const profile = presentedProfile(ctx);
    ctx.facts.profile = profile;
    if (profile === 3 && ctx.req.headers.authorization !== undefined) ctx.facts.basicWithCertificate = true;
    const record = ctx.facts.charger as ChargerRecord | undefined;
    if (record && profile < record.minProfile) {
      return reject(401, 'profile_too_low', profile === 3 ? undefined : { 'WWW-Authenticate': 'Basic realm="OCPP", charset="UTF-8"' });
    }
    return undefined;
  },
};
