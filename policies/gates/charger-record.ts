import type { CredentialStore } from '../../proxy/store/types';
import { prefetched } from './prefetch';
import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';

/**
 * Reads the charger's stored record. Unknown identity → 404 (what OCPP-J prescribes), unless
 * auto-enrolment may admit it with a factory default password (decided by the password gate).
 * Blocked → 403. A charger's own report-only flag takes effect from here on.
 */
export function chargerRecordGate(store: CredentialStore, opts: { autoEnrol: boolean }): Gate {
  return {
    name: 'charger-record',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      const record = await (prefetched(ctx)?.record ?? store.getCharger(ctx.identity));
      if (!record) {
        if (opts.autoEnrol && ctx.req.headers.authorization) {
          ctx.facts.enrolCandidate = true;
          return undefined;
        }
        return reject(404, 'unknown_identity');
      }
      ctx.facts.charger = record;
      if (record.reportOnly) ctx.reportOnly = true;
      if (record.status === 'blocked') return reject(403, 'blocked');
      return undefined;
    },
  };
}
