import { parseBasic } from './basic-credentials';
import { passwordJudge, type BasicAuthDeps } from './password-judge';
import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';

/**
 * Writes what the password login decided for a rotation: commit the pending password (the charger
 * logged in with it) or drop it (the charger logged in with its old one, having never accepted the
 * new). Runs after the CSMS leg opened, just before the charger's 101: a login that ends in a 503
 * because the CSMS is down settles nothing, so a charger that then falls back to its old password
 * still gets in. The login is judged again on a fresh read first, and again after a race lost to a
 * concurrent login of the same charger (its other password settled the rotation first).
 */
export function rotationSettlementGate(deps: BasicAuthDeps): Gate {
  const judge = passwordJudge(deps);
  return {
    name: 'rotation-settlement',
    reportOnlyCapable: true,
    afterBackend: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      for (let round = 0; ctx.facts.rotationSettlement; round++) {
        // Judged again on a fresh read: the record may have changed while the CSMS was dialled
        // (the charger's live session recording its Accepted, say), or a race was lost below.
        const record = await deps.store.getCharger(ctx.identity);
        if (!record || round >= 3) return reject(503, 'store_conflict');
        ctx.facts.charger = record;
        const verdict = await judge.judge(ctx, record, parseBasic(ctx.req.headers.authorization)!.password);
        if (verdict || !ctx.facts.rotationSettlement) return verdict;
        const pending = record.pending!;
        const commit = ctx.facts.rotationSettlement === 'commit';
        let settled: boolean;
        try {
          settled = commit
            ? await deps.store.commitPending(record.identity, pending.hash!, pending.createdAt, judge.now())
            : await deps.store.dropPending(record.identity, pending.createdAt);
        } catch {
          // The store refuses the write (a read-only replica after a failover, an outage): the
          // password just judged stays valid either way, so the charger gets in and a later login
          // settles the rotation. Refusing it would lock it out for as long as writes fail.
          ctx.facts.rotationSettlementDeferred = ctx.facts.rotationSettlement;
          return undefined;
        }
        if (settled) {
          ctx.facts[commit ? 'rotationCommitted' : 'rotationDropped'] = true;
          return undefined;
        }
      }
      return undefined;
    },
  };
}
