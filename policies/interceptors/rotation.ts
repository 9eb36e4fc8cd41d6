import { isTakenUp } from '../../proxy/store/transitions';
import type { ChargerRecord, CredentialStore, PasswordHash } from '../../proxy/store/types';
import { admissionFacts } from '../gates/facts';
import { generatePassword } from '../rotation-password';
import { BootWatch, type BootListener } from './boot-watch';
import { readConfigurationAnswer, setPasswordCall } from './rotation-messages';
import { InjectionError, type AnsweredCall, type CallOutcome, type ChargerCall, type Interceptor, type InterceptorFactory, type SessionApi } from './types';

/** What the rotation interceptor needs; passed in explicitly (policies do not reach into proxy/ wiring). */
export interface RotationDeps {
  store: CredentialStore;
  /** HMAC-SHA-256 hash for generated passwords. */
  hashGenerated(password: Buffer): PasswordHash;
  /** Seal/open with the server secret; associated data is the identity. */
  seal(password: Buffer, identity: string): string;
  open(sealed: string, identity: string): Buffer;
  /** Global switch. */
  enabled: boolean;
  /** Rotate passwords older than this (0: never by age). */
  maxAgeMs: number;
  /** First back-off after a refusal; doubles per failure up to a day. */
  retryMs: number;
  /** How long the charger gets to answer. */
  callTimeoutMs: number;
  /** Config `bootWaitMs`: how long after the session opens to wait for a BootNotification (see BootWatch). */
  bootWaitMs?: number;
  /** Outcome counter (metrics). */
  outcome?(outcome: 'started' | 'accepted' | 'committed' | 'rejected' | 'failed' | 'timeout' | 'dropped'): void;
  now?: () => number;
}

const DAY = 24 * 3600 * 1000;

/**
 * An operator asked for a rotation that has not started yet. The attempt that serves a request
 * removes it as it starts, so its presence is the whole answer: comparing its time (the admin
 * host's clock) with the last attempt's (a replica's) would lose requests to clock skew.
 */
function hasOperatorRequest(r: ChargerRecord): boolean {
  return r.rotation?.requestedAt !== undefined;
}

/** Why a charger's password should be rotated now, or null. */
export function rotationReason(r: ChargerRecord, maxAgeMs: number, now: number): string | null {
  if (!r.password) return null;
  // The charger answered Accepted or RebootRequired: it holds the pending password, or will after a
  // reboot. Nothing new until it has logged in with it, an operator's request included (it runs
  // then): a new value now would replace one the charger uses.
  if (isTakenUp(r.pending)) return null;
  if (hasOperatorRequest(r)) return 'operator_request';
  if (r.pending) return 'resend_pending';
  if (r.passwordSource === 'factory') return 'factory_password';
  if (r.passwordSource === 'operator') return 'operator_password';
  if (maxAgeMs > 0 && r.passwordSetAt !== undefined && now - r.passwordSetAt > maxAgeMs) return 'password_age';
  return null;
}

/**
 * Password rotation injected into the frame stream (DESIGN.md "Rotation: never lock a charger out").
 * Runs for Profile 1/2 chargers once the CSMS answered BootNotification Accepted or Pending (now or,
 * remembered in the store, on an earlier connection) and never after Rejected:
 * write-ahead the new password as pending (sealed, so a retry resends the same value) → send
 * ChangeConfiguration AuthorizationKey (1.6) / SetVariables BasicAuthPassword (2.x) → Accepted or
 * RebootRequired: mark it so (the gate commits it when the charger logs in with it); refused: drop
 * it and back off, unless an earlier send of the same value went unanswered (the charger may hold
 * it: keep both); no answer: keep both. A kept value is resent (same value) after the back-off, and
 * a login with it commits it.
 */
export function passwordRotation(deps: RotationDeps): InterceptorFactory {
  const now = deps.now ?? Date.now;
  return (session) => {
    const facts = admissionFacts(session.facts);
    if (!facts || facts.profile === 3 || !deps.enabled) return undefined;
    // Logged in with its old password although it had answered Accepted or RebootRequired to the pending one.
    const acceptedPending = isTakenUp(facts.charger.pending) && facts.passwordMatched !== 'pending' ? facts.charger.pending!.createdAt : null;
    return new PasswordRotation(deps, now, session, facts.passwordMatched === 'pending', facts.charger, acceptedPending);
  };
}

/**
 * One session's rotation. A class rather than a closure per step: every Profile 1/2 session has one,
 * and methods on the prototype cost a session nothing, where its closures cost about 0.5 KiB.
 */
class PasswordRotation implements Interceptor, BootListener {
  private running = false;
  /** Asked to consider while a run was under way (an operator's request mid-call): run once more after it. */
  private again = false;
  /** Retry after back-off while the session stays open (a charger may stay connected for weeks). */
  private retryTimer: NodeJS.Timeout | null = null;
  /** The pending value (its createdAt) whose call waits for the line or is out; null when none, or withdrawn. */
  private sending: number | null = null;
  private readonly boot: BootWatch;
  /**
   * When a rotation may next be due by the charger's record as read at admission, then as each
   * change delivered it (0: now; Infinity: not by age). Kept instead of the record: see onBootReady.
   */
  private dueAt: number;

  constructor(
    private readonly deps: RotationDeps,
    private readonly now: () => number,
    private readonly session: SessionApi,
    /** The charger logged in with the pending password: the rotation committed at admission. */
    private readonly loggedInWithPending: boolean,
    admitted: ChargerRecord,
    /**
     * The pending password (its createdAt) the charger had answered Accepted or RebootRequired to
     * when it logged in with its old one instead: it is sent the same value once more in this
     * session, so a charger that lost it gets it again (null: nothing to resend).
     */
    private acceptedPending: number | null,
  ) {
    this.dueAt = this.dueAtFor(admitted);
    this.boot = new BootWatch(this, admitted.bootState, session.subprotocol);
  }

  get name(): string {
    return 'password-rotation';
  }

  onOpen(s: SessionApi): void {
    const deferred = s.facts.rotationSettlementDeferred;
    if (deferred) s.log.warn({ event: 'rotation_settlement_deferred', settlement: deferred, why: 'the store refused the write; a later login settles it' });
    if ((this.loggedInWithPending && !deferred) || s.facts.rotationCommitted) {
      s.log.info({ event: 'rotation_committed' });
      void this.audit('rotation_committed');
      this.deps.outcome?.('committed');
    }
    if (s.facts.rotationDropped) {
      s.log.info({ event: 'rotation_dropped', why: 'charger logged in with its old password' });
      void this.audit('rotation_dropped');
      this.deps.outcome?.('dropped');
    }
    this.boot.start(this.deps.bootWaitMs ?? 5000);
  }

  onBootReady(): void {
    // Read the store only when the record at hand says a rotation may be due: a reconnect storm of
    // booted chargers would otherwise cost a read per session (the change feed brings any change).
    if (this.now() >= this.dueAt) void this.consider();
  }

  private dueAtFor(r: ChargerRecord): number {
    if (r.rotation?.disabled || r.status !== 'active') return Infinity;
    if (rotationReason(r, this.deps.maxAgeMs, this.now()) !== null || this.resendAccepted(r) !== null) return 0;
    // Not due now: later only by age (a pending password taken up waits for the charger's login).
    if (this.deps.maxAgeMs > 0 && r.password && r.passwordSetAt !== undefined && !isTakenUp(r.pending)) return r.passwordSetAt + this.deps.maxAgeMs;
    return Infinity;
  }

  onChargerCall(_s: SessionApi, call: ChargerCall): undefined {
    this.boot.chargerCall(call.action);
    return undefined;
  }

  onCsmsAnswer(_s: SessionApi, call: AnsweredCall, answer: CallOutcome): void {
    this.boot.csmsAnswer(call, answer);
  }

  onRecordChanged(s: SessionApi, record: ChargerRecord): void {
    this.dueAt = this.dueAtFor(record);
    // The value waiting for the line is no longer the pending one (an operator set a password): withdrawn.
    if (this.sending !== null && record.pending?.createdAt !== this.sending) {
      this.sending = null;
      s.log.debug({ event: 'rotation_send_withdrawing' });
    }
    if (hasOperatorRequest(record)) void this.consider();
  }

  onClose(): void {
    this.boot.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private scheduleRetry(at: number): void {
    if (this.session.closed) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { this.retryTimer = null; void this.consider(); }, Math.max(0, at - this.now()) + 10);
    this.retryTimer.unref?.();
  }

  private audit(type: string, detail: Record<string, unknown> = {}): Promise<void> {
    return this.deps.store.appendAudit({ type, identity: this.session.identity, detail }).catch(() => undefined);
  }

  private async consider(): Promise<void> {
    const { deps, session } = this;
    if (this.running) {
      this.again = true;
      return;
    }
    if (session.closed || !this.boot.allows('variables')) return;
    this.running = true;
    try {
      const record = await deps.store.getCharger(session.identity);
      if (!record || record.rotation?.disabled || record.status !== 'active') return;
      const reason = rotationReason(record, deps.maxAgeMs, this.now()) ?? this.resendAccepted(record);
      if (!reason) return;
      const operator = reason === 'operator_request';
      if (!operator && record.rotation?.nextAttemptAt && record.rotation.nextAttemptAt > this.now()) {
        this.scheduleRetry(record.rotation.nextAttemptAt); // backing off (maybe from another session): try again then
        return;
      }
      if (reason === 'resend_accepted') this.acceptedPending = null; // once a session, when it is actually sent
      await this.rotate(session, record, reason);
    } catch (err) {
      session.log.warn({ event: 'rotation_error', err: String(err) });
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        setImmediate(() => void this.consider());
      }
    }
  }

  /** 'resend_accepted' (once a session) for the pending password the charger took up but did not log in with. */
  private resendAccepted(r: ChargerRecord): string | null {
    if (this.acceptedPending === null || r.pending?.createdAt !== this.acceptedPending || !isTakenUp(r.pending)) return null;
    return 'resend_accepted';
  }

  private async rotate(s: SessionApi, record: ChargerRecord, reason: string): Promise<void> {
    const { deps, now } = this;
    let password: Buffer;
    let createdAt: number;
    let attempt: number;
    /** This value went out before (a crash before the send stamps no sentAt): the charger may hold it. */
    let sentBefore = false;
    if (record.pending) { // never replaced while the charger may hold it: resent (not taken up, or resend_accepted)
      // Resend the value already written ahead: the charger may have applied it without answering.
      sentBefore = record.pending.sentAt !== undefined;
      password = deps.open(record.pending.encrypted, s.identity);
      createdAt = record.pending.createdAt;
      attempt = record.pending.attempt + 1;
      if (!(await deps.store.updatePending(s.identity, createdAt, { attempt }))) return this.stale(s, 'attempt');
    } else {
      password = generatePassword(s.subprotocol);
      createdAt = now();
      attempt = 1;
      const written = await deps.store.setPending(s.identity, {
        encrypted: deps.seal(password, s.identity), hash: deps.hashGenerated(password), createdAt, attempt,
      });
      if (!written) {
        // Another session of this charger wrote (and may have sent) a value since the read. That
        // session may be the old link about to close, whose send never arrives: look again once its
        // call would have timed out, and resend that value (or wait out its back-off).
        s.log.info({ event: 'rotation_raced' });
        this.scheduleRetry(now() + deps.callTimeoutMs);
        return;
      }
    }
    // A resend of an accepted value is no attempt of its own: an operator's request waiting for the
    // charger to log in with it stays unserved.
    const resend = reason === 'resend_accepted';
    if (!resend) await deps.store.updateCharger(s.identity, { rotation: { requestedAt: null, lastAttemptAt: now() } });
    // `attempt` counts sends of this value; `failures` the attempts that failed before it (the back-off).
    s.log.info({ event: 'rotation_started', reason, attempt, failures: record.rotation?.failures ?? 0 });
    await this.audit('rotation_started', { reason, attempt });
    deps.outcome?.('started');

    const call = setPasswordCall(s.subprotocol, password);
    // From here until the call goes out, an operator may replace the pending value (set a password:
    // the change feed tells onRecordChanged, which clears `sending`); the call is then withdrawn
    // unsent: sent anyway, the charger would apply a value the store no longer knows. The call may
    // wait for the replicas and then for the line (behind a CSMS call, up to its timeout).
    this.sending = createdAt;
    /** Held back at the last moment: the charger started booting (its BootNotification unanswered). */
    let booting = false;
    const stillWanted = (): boolean => {
      if (this.sending !== createdAt) return false;
      booting = !this.boot.allows('variables');
      return !booting;
    };
    let answered: { outcome: CallOutcome } | { err: unknown };
    try {
      // Stamped before the send, and nothing is sent when the value is no longer pending.
      if (!(await deps.store.updatePending(s.identity, createdAt, { sentAt: now() }))) return this.stale(s, 'send');
      if (!(await this.replicated(s, record, createdAt, sentBefore))) return;
      answered = await s.injectCall(call.action, call.payload, { timeoutMs: deps.callTimeoutMs, stillWanted })
        .then((outcome) => ({ outcome }), (err: unknown) => ({ err }));
    } finally {
      this.sending = null;
    }
    if ('err' in answered) {
      const { err } = answered;
      if (err instanceof InjectionError && err.reason === 'withdrawn' && booting) {
        // Not the charger's doing: the value stays pending and goes out once the boot is answered.
        s.log.info({ event: 'rotation_paused', why: 'the charger is booting' });
        return;
      }
      if (err instanceof InjectionError && err.reason === 'withdrawn') {
        if ((await deps.store.getCharger(s.identity))?.pending?.createdAt === createdAt) {
          // The word was stale (a record read before our own write, arriving late): still pending, never
          // sent; sent after the back-off.
          await this.backOff(record, 'unanswered');
          deps.outcome?.('failed');
          return;
        }
        // Never on the wire: the charger cannot hold a value the store no longer knows.
        s.log.info({ event: 'rotation_withdrawn', why: 'the pending password was replaced before its call went out' });
        await this.audit('rotation_withdrawn');
        return;
      }
      // No answer, or the link dropped: both passwords stay valid; resent after the back-off.
      const why = err instanceof InjectionError ? err.reason : 'failed';
      s.log.info({ event: 'rotation_unanswered', reason: why });
      await this.audit('rotation_unanswered', { reason: why });
      await this.backOff(record, why === 'timeout' ? 'timeout' : 'unanswered');
      deps.outcome?.(why === 'timeout' ? 'timeout' : 'failed');
      return;
    }
    const verdict = readConfigurationAnswer(s.subprotocol, answered.outcome);
    if (verdict.accepted) {
      const answered = now();
      // A resend of an accepted value keeps the first Accepted's time: the grace period (A01.FR.03) is
      // not renewed. A RebootRequired is recorded either way: it keeps the old password valid.
      const marked = (resend && !verdict.rebootRequired)
        || await deps.store.updatePending(s.identity, createdAt, verdict.rebootRequired ? { rebootRequiredAt: answered } : { acceptedAt: answered });
      if (!marked) {
        // The pending value went meanwhile (the charger logged in elsewhere and settled it): nothing to mark.
        s.log.info({ event: 'rotation_answer_stale', rebootRequired: verdict.rebootRequired });
        return;
      }
      // Field by field: an operator's request or switch-off made during the call is kept (the request
      // stays on the record and runs once the charger has logged in with this value).
      await deps.store.updateCharger(s.identity, { rotation: { failures: 0, nextAttemptAt: null, lastResult: verdict.rebootRequired ? 'reboot_required' : 'accepted' } });
      s.log.info({ event: 'rotation_accepted', rebootRequired: verdict.rebootRequired });
      await this.audit('rotation_accepted', { rebootRequired: verdict.rebootRequired });
      deps.outcome?.('accepted');
      return;
    }
    if (sentBefore) {
      // An earlier send of this value went unanswered: the charger may have applied it then, and a
      // refusal of the same value now proves nothing. Keep both; resent after the back-off.
      s.log.info({ event: 'rotation_refused', status: verdict.status, pendingKept: true });
      await this.audit('rotation_refused', { status: verdict.status, pendingKept: true });
    } else {
      // Rejected, NotSupported, CALLERROR to the first send: the charger kept its old password; so do we.
      await deps.store.dropPending(s.identity, createdAt);
      s.log.info({ event: 'rotation_refused', status: verdict.status });
      await this.audit('rotation_refused', { status: verdict.status });
    }
    await this.backOff(record, 'rejected');
    deps.outcome?.('rejected');
  }

  /**
   * Whether the value and its sentAt would survive a failover of the store: a store that lost them
   * after the charger applied the value would lock it out. When no replica holds them in time,
   * nothing is sent and the stamp is taken back (a value never sent stays a first send); both
   * passwords stay valid and the value goes out after the back-off.
   */
  private async replicated(s: SessionApi, record: ChargerRecord, createdAt: number, sentBefore: boolean): Promise<boolean> {
    const { deps } = this;
    try {
      await deps.store.replicated(s.identity);
      // Read back: a failover during the wait may have taken the value or its stamp with it.
      const pending = (await deps.store.getCharger(s.identity))?.pending;
      if (pending?.createdAt === createdAt && pending.sentAt !== undefined) return true;
      this.stale(s, 'replicated');
      return false;
    } catch (err) {
      s.log.warn({ event: 'rotation_not_replicated', err: String(err) });
      if (!sentBefore) await deps.store.updatePending(s.identity, createdAt, { sentAt: null }).catch(() => undefined);
      await this.audit('rotation_not_replicated');
      await this.backOff(record, 'not_replicated');
      deps.outcome?.('failed');
      return false;
    }
  }

  /**
   * The pending value went between the read and this step (the charger logged in with it elsewhere
   * and it was committed, or an operator set a password and dropped it): nothing is sent.
   */
  private stale(s: SessionApi, step: 'attempt' | 'send' | 'replicated'): void {
    s.log.info({ event: 'rotation_stale', step });
  }

  private async backOff(record: ChargerRecord, result: string): Promise<void> {
    const { deps, session } = this;
    const fresh = (await deps.store.getCharger(session.identity)) ?? record;
    const failures = (fresh.rotation?.failures ?? 0) + 1;
    const nextAttemptAt = this.now() + Math.min(DAY, deps.retryMs * 2 ** (failures - 1));
    await deps.store.updateCharger(session.identity, { rotation: { failures, nextAttemptAt, lastResult: result } });
    session.log.info({ event: 'rotation_retry_scheduled', result, failures, nextAttemptAt: new Date(nextAttemptAt).toISOString() });
    if (!session.closed) this.scheduleRetry(nextAttemptAt);
  }
}
