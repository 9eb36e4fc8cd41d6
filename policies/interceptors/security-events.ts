import type { Logger } from 'pino';
import { dialectOf, notificationAnswer, OCPP16_SECURITY_NOTIFICATIONS, readSecurityEvent, type OcppDialect } from '../../proxy/ocpp/dialects';
import type { CredentialStore } from '../../proxy/store/types';
import { Pace } from '../../proxy/pace';
import type { ChargerCall, ChargerCallDecision, Interceptor, InterceptorFactory, SessionApi } from './types';

/** Config `localSecurityEvents`: where security-extension notifications are answered. */
export type LocalSecurityEvents = 'auto' | 'always' | 'never';

/** Metric hook (ProxyMetrics.securityEvents). */
export interface SecurityEventMetrics {
  securityEvent(type: string): void;
}

/** Dependencies of {@link securityEvents}. */
export interface SecurityEventsDeps {
  store: CredentialStore;
  mode: LocalSecurityEvents;
  /** Accepted for symmetry with the other factories; per-session lines go to `session.log`. */
  log?: Logger;
  metrics?: SecurityEventMetrics;
  /** Security events one session may have logged and audited per second, after a burst; default 10. */
  perSecond?: number;
  /** The burst; default 20. */
  burst?: number;
}

/** Defaults of the per-session pace: a charger replaying a queue of events goes through at 10 a second. */
const PER_SECOND = 10;
const BURST = 20;

/**
 * Which charger notifications the proxy answers itself on a session of `dialect`:
 * - 1.6 (`auto` or `always`): SecurityEventNotification, SignedFirmwareStatusNotification and
 *   LogStatusNotification — a plain 1.6 CSMS does not know the security extension (WP2 §5).
 * - 2.x: only with `always`, and only SecurityEventNotification (a 2.x CSMS knows the others).
 * - `never`: none; everything is forwarded.
 */
export function locallyAnswered(mode: LocalSecurityEvents, dialect: OcppDialect): ReadonlySet<string> {
  if (mode === 'never') return new Set();
  if (dialect === '1.6') return new Set(OCPP16_SECURITY_NOTIFICATIONS);
  return new Set(mode === 'always' ? ['SecurityEventNotification'] : []);
}

/**
 * Security events (A04): every SecurityEventNotification is logged, counted and appended to the
 * store's capped audit stream — whether it is then forwarded or answered here. Answering locally
 * waits for the audit write, because the charger drops the event from its queue once confirmed; a
 * failed write is logged (the log line keeps the event) and the event is still confirmed, since a
 * CALLERROR would only make the charger re-send into the same outage.
 *
 * Each session's events and locally answered notifications are paced (`perSecond` after a `burst`):
 * a charger flooding them waits for its answers, and so stops being read, instead of flooding the
 * log and evicting everyone else's history from the capped audit stream. Nothing is dropped: a
 * charger keeps an event until it is confirmed, and one that sends the next only then (as OCPP has
 * it) replays a queue at that pace.
 */
export function securityEvents(deps: SecurityEventsDeps): InterceptorFactory {
  // Stateless per session: one interceptor per dialect, shared by every session speaking it.
  const perDialect = new Map<OcppDialect, Interceptor>();
  // Made at a session's first security event; gone with the session.
  const paces = new WeakMap<SessionApi, Pace>();
  const paceOf = (s: SessionApi): Pace => {
    let pace = paces.get(s);
    if (!pace) paces.set(s, (pace = new Pace(deps.perSecond ?? PER_SECOND, deps.burst ?? BURST)));
    return pace;
  };
  const forDialect = (dialect: OcppDialect): Interceptor => {
    const local = locallyAnswered(deps.mode, dialect);
    return {
      name: 'security-events',
      // No closures here: they would capture `s` and `call`, and V8 would allocate a context for
      // every charger CALL this hook sees (nearly all of them are none of its business).
      onChargerCall(s, call) {
        if (call.action === 'SecurityEventNotification') return paced(s, call, local.has(call.action) ? recordAndAnswer : recordOnly);
        if (local.has(call.action)) return paced(s, call, answerNotification);
        return undefined;
      },
    };
  };
  return (session) => {
    const dialect = dialectOf(session.subprotocol);
    if (!dialect) return undefined;
    let interceptor = perDialect.get(dialect);
    if (!interceptor) perDialect.set(dialect, (interceptor = forDialect(dialect)));
    return interceptor;
  };

  /** Runs `decide` now, or once the session's pace allows (the charger waits, and is not read meanwhile). */
  function paced(s: SessionApi, call: ChargerCall, decide: (s: SessionApi, call: ChargerCall) => ChargerCallDecision | Promise<ChargerCallDecision>): ChargerCallDecision | Promise<ChargerCallDecision> {
    const wait = paceOf(s).delayMs();
    return wait > 0 ? new Promise<void>((resolve) => setTimeout(resolve, wait)).then(() => decide(s, call)) : decide(s, call);
  }

  function recordAndAnswer(s: SessionApi, call: ChargerCall): ChargerCallDecision | Promise<ChargerCallDecision> {
    return recordSecurityEvent(s, call, true);
  }

  function recordOnly(s: SessionApi, call: ChargerCall): ChargerCallDecision | Promise<ChargerCallDecision> {
    return recordSecurityEvent(s, call, false);
  }

  function answerNotification(s: SessionApi, call: ChargerCall): ChargerCallDecision {
    s.log.info({ event: 'security_notification_answered', action: call.action, status: call.payload.status });
    return { answer: notificationAnswer() };
  }

  function recordSecurityEvent(s: SessionApi, call: ChargerCall, answerHere: boolean): ChargerCallDecision | Promise<ChargerCallDecision> {
    const event = readSecurityEvent(call.payload);
    const answeredBy = answerHere ? 'proxy' : 'csms';
    const detail = 'problem' in event ? { problem: event.problem } : { eventType: event.type, timestamp: event.timestamp, techInfo: event.techInfo };
    s.log.info({ event: 'security_event', answeredBy, ...detail });
    deps.metrics?.securityEvent('problem' in event ? '' : event.type);
    const written = deps.store.appendAudit({ type: 'security_event', identity: s.identity, detail: { ...detail, answeredBy } })
      .catch((err: unknown) => s.log.error({ event: 'audit_failed', type: 'security_event', err: String(err) }));
    // Forwarded events do not wait for the store: the CSMS confirms them, and the relay stays fast.
    return answerHere ? written.then(() => ({ answer: notificationAnswer() })) : undefined;
  }
}
