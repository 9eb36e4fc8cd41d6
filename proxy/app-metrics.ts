import type { Rejection, UpgradeContext } from '../policies/gates/types';
import type { ProxyMetrics } from './metrics';
import type { ProxyDeps } from './server';
import type { Session, SessionObserver } from './session';
import type { SessionEnd } from '../policies/interceptors/types';

/** Close code -> bounded label part. 1008 is policy in general (replaced, blocked, revoked), not only "replaced". */
const CLOSE_KINDS: Record<number, string> = {
  1000: 'normal', 1001: 'going_away', 1002: 'protocol_error', 1005: 'abnormal', 1006: 'abnormal', 1007: 'bad_data',
  1008: 'policy', 1009: 'too_big', 1011: 'internal_error', 1012: 'restart', 1013: 'try_again_later',
};

/** `<who closed>_<kind of code>`, e.g. `charger_normal`, `proxy_policy`, `csms_abnormal`: bounded label values. */
export function closeLabel(by: string, code: number): string {
  const who = by === 'charger' || by === 'csms' || by === 'proxy' ? by : 'other';
  return `${who}_${CLOSE_KINDS[code] ?? 'other'}`;
}

/**
 * The server hooks that feed Prometheus. Kept apart from the server so the relay core knows nothing
 * of metrics; every label value here is bounded (reason labels, profile, subprotocol, direction).
 */
export function metricsHooks(m: ProxyMetrics): Pick<ProxyDeps, 'observer' | 'onRejected' | 'onReportOnly' | 'onGatesPassed' | 'onBackendFailure' | 'onSession' | 'onTlsError' | 'onConnectionRefused' | 'onDrain' | 'onTlsReload'> {
  // Every session's 'close' listener (the session is `this`): one function, not a closure per session.
  const sessionClosed = function (this: Session, end: SessionEnd): void {
    m.sessionsActive.dec({ profile: this.profile, ocpp_version: this.subprotocol });
    m.sessionsClosed.inc({ close_reason: closeLabel(end.by, end.code) });
  };
  const authSeconds = (ctx: UpgradeContext) => (performance.now() - ctx.startedAt) / 1000;
  const observer: SessionObserver = {
    frameRelayed: (direction, type, seconds) => m.relayTally.record(direction, type, seconds),
    injected: (action, outcome) => m.injectedCalls.inc({ action, outcome: outcome as never }),
    frameRefused: (direction, problem) => m.framesRefused.inc({ direction, problem }),
    answeredLocally: (action) => m.locallyAnsweredCalls.inc({ action }),
  };
  return {
    observer,
    onRejected: (ctx: UpgradeContext, r: Rejection) => {
      m.upgradeAttempts.inc({ result: 'rejected', reason: r.reason });
      // Labelled by the rejecting reason (documented contract): slow and fast refusals stay apart.
      if (!r.reason.startsWith('backend_')) m.authDuration.observe({ result: r.reason }, authSeconds(ctx));
      if (ctx.facts.lockedOut === 'identity' || ctx.facts.lockedOut === 'address') m.lockouts.inc({ scope: ctx.facts.lockedOut === 'identity' ? 'identity' : 'address' });
    },
    onReportOnly: (_ctx, r) => m.upgradeAttempts.inc({ result: 'report_only', reason: r.reason }),
    onGatesPassed: (ctx) => m.authDuration.observe({ result: 'ok' }, authSeconds(ctx)),
    onBackendFailure: (_ctx, reason) => m.backendConnectFailures.inc({ reason }),
    onTlsError: (reason) => m.tlsHandshakeFailures.inc({ reason }),
    onConnectionRefused: (reason) => m.connectionsRefused.inc({ reason }),
    onDrain: (sessions) => m.drainingSessions.set(sessions),
    onTlsReload: (ok) => m.tlsReloads.inc({ outcome: ok ? 'ok' : 'failed' }),
    onSession: (s: Session) => {
      m.upgradeAttempts.inc({ result: 'admitted', reason: 'ok' });
      m.backendSessionsOpened.inc({ ocpp_version: s.subprotocol });
      m.sessionsActive.inc({ profile: s.profile, ocpp_version: s.subprotocol });
      s.on('close', sessionClosed);
    },
  };
}
