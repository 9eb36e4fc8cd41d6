import { randomUUID } from 'node:crypto';
import { InjectionError, type CallOutcome } from '../policies/interceptors/types';
import { call as callFrame } from './ocpp/errors';
import { CallTable } from './call-table';
import { ownBytes } from './own-bytes';

/** The most CSMS call ids remembered as outstanding; a CSMS that never gets answers cannot grow it without bound. */
const MAX_TRACKED_CALLS = 256;
/** Ids of the proxy's own timed-out calls remembered so a late answer is still swallowed. */
const MAX_LATE_IDS = 64;

interface Injection {
  action: string;
  payload: Record<string, unknown>;
  timeoutMs: number;
  stillWanted?: () => boolean;
  resolve: (o: CallOutcome) => void;
  reject: (e: Error) => void;
}

/** What a line needs from its session: methods, not closures, so a session allocates none for them. */
export interface CallLineOwner {
  /** Writes one of the proxy's own frames (an injected call) to the charger. */
  sendToCharger(frame: string | Buffer): void;
  /** Relays a CSMS frame the line held, once released: counted and remembered as any relayed frame. */
  relayToCharger(data: Buffer, type: number, id: string): void;
  /** More CSMS frames held back than allowed: the session closes. */
  lineOverflow(): void;
  /** The held frames passed `holdPauseBytes`: stop reading the CSMS (back-pressure, not buffering). */
  holdBackCsms(): void;
  /** The held frames went out: the CSMS may be read again (if nothing else holds it back). */
  releaseCsms(): void;
}

/** Bytes of held CSMS frames past which the CSMS is no longer read until they go out. */
export const HOLD_PAUSE_BYTES = 1 << 20;

function monotonicNow(): number {
  return performance.now();
}

interface InFlight extends Injection {
  id: string;
  timer: NodeJS.Timeout;
}

/**
 * The CSMS-to-charger direction of one session, where the proxy shares the line with the CSMS.
 * OCPP allows one outstanding CALL per direction, so an injected call waits until no CSMS call is
 * outstanding, and CSMS frames that arrive while it is in flight are held (in order) until it is
 * answered or times out. A CSMS call the charger leaves unanswered for `csmsCallTimeoutMs` no
 * longer holds the line, so that one unanswered call cannot block rotation for the whole session
 * (the CSMS has most likely given up on it by then; its late answer is still relayed to it). Ids of
 * injected calls are UUIDs, which cannot collide with the CSMS's ids in practice and fit the
 * 36-character limit.
 */
export class CallLine {
  /** Outstanding CSMS calls: id → when it was sent to the charger (ms, monotonic). */
  private readonly csmsCalls = new CallTable<number>();
  /**
   * Those of them whose id the CSMS wrote as a JSON integer (see readFrame), made on the first: a
   * charger may answer such a call with the number or its text, any other call only with its text.
   */
  private numericCalls: Set<string> | null = null;
  /** Set while every outstanding CSMS call will have gone stale at a known time: then it pumps. */
  private staleTimer: NodeJS.Timeout | null = null;
  /** When staleTimer fires (monotonic ms). */
  private staleTimerDue = 0;
  private readonly queue: Injection[] = [];
  private inFlight: InFlight | null = null;
  private readonly held: { data: Buffer; type: number; id: string; numericId: boolean }[] = [];
  private heldBytes = 0;
  /** The CSMS is not read because of what is held here. */
  private csmsHeldBack = false;
  private readonly lateIds: string[] = [];
  private closed = false;

  /**
   * @param owner the session: writes frames to the charger, and closes when too many are held
   * @param maxHeld most CSMS frames held back; past it `owner.lineOverflow` is called.
   * @param csmsCallTimeoutMs after this long unanswered, a CSMS call no longer holds injections back
   * @param now monotonic clock in ms (tests)
   */
  constructor(
    private readonly owner: CallLineOwner,
    private readonly maxHeld: number,
    private readonly csmsCallTimeoutMs = 30_000,
    private readonly now: () => number = monotonicNow,
  ) {}

  /** Queues a call of the proxy's own; see SessionApi.injectCall. */
  inject(action: string, payload: Record<string, unknown>, timeoutMs: number, stillWanted?: () => boolean): Promise<CallOutcome> {
    if (this.closed) return Promise.reject(new InjectionError('closed', 'session is closed'));
    if (this.queue.length >= this.maxHeld) return Promise.reject(new InjectionError('queue_full', 'too many injected calls queued'));
    return new Promise((resolve, reject) => {
      this.queue.push({ action, payload, timeoutMs, stillWanted, resolve, reject });
      this.pump();
    });
  }

  /**
   * A frame from the CSMS for the charger. Returns true when it may be forwarded now, false when
   * it was held (it will be sent by the line later, in order). `numericId`: the CSMS wrote the id
   * as a JSON integer.
   */
  fromCsms(data: Buffer, type: number, id: string, numericId = false): boolean {
    if (this.held.length > 0 || (type === 2 && this.inFlight !== null)) {
      if (this.held.length >= this.maxHeld) {
        this.owner.lineOverflow();
        return false;
      }
      this.held.push({ data: ownBytes(data), type, id, numericId });
      this.heldBytes += data.length;
      if (this.heldBytes > HOLD_PAUSE_BYTES && !this.csmsHeldBack) {
        this.csmsHeldBack = true;
        this.owner.holdBackCsms();
      }
      return false;
    }
    if (type === 2) this.trackCsmsCall(id, numericId);
    return true;
  }

  /**
   * An answer (CALLRESULT/CALLERROR) from the charger. Returns `proxy` when it answered an injected
   * call (consumed here, never forwarded), `csms` when it answers a CSMS call, `unknown` otherwise.
   * `numericId`: the charger wrote the id as a JSON integer, which only answers a call whose id the
   * CSMS wrote so (a CSMS that uses string ids never gets a number from the proxy).
   */
  answerFromCharger(id: string, outcome: () => CallOutcome, numericId = false): 'proxy' | 'csms' | 'unknown' {
    if (this.inFlight && this.inFlight.id === id) {
      const done = this.inFlight;
      clearTimeout(done.timer);
      this.inFlight = null;
      done.resolve(outcome());
      this.release();
      return 'proxy';
    }
    if (this.lateIds.includes(id)) return 'proxy';
    if (numericId && !this.numericCalls?.has(id)) return 'unknown';
    if (this.csmsCalls.delete(id)) {
      this.numericCalls?.delete(id);
      this.pump();
      return 'csms';
    }
    return 'unknown';
  }

  /** Whether any injected call is in flight or waiting (for tests and the admin view). */
  get busy(): boolean {
    return this.inFlight !== null || this.queue.length > 0;
  }

  /**
   * The CSMS's held answers (CALLRESULT/CALLERROR to the charger's calls), in order, taken out of the
   * line: when the CSMS closes, they go to the charger before its close frame, as they would have had
   * the proxy not held them. Held CSMS CALLs are not among them: their answers would reach no one.
   */
  takeHeldAnswers(): Buffer[] {
    const answers = this.held.filter((h) => h.type === 3 || h.type === 4).map((h) => h.data);
    this.held.length = 0;
    this.heldBytes = 0;
    return answers;
  }

  /** Whether the CSMS must stay unread for what is held here (the session's release checks it). */
  get holdsCsmsBack(): boolean {
    return this.csmsHeldBack;
  }

  /** The session closed: every waiting or in-flight injection fails with `closed`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.held.length = 0;
    if (this.staleTimer) clearTimeout(this.staleTimer);
    if (!this.inFlight && this.queue.length === 0) return; // the common case: no error object to build
    const err = new InjectionError('closed', 'session closed before the charger answered');
    if (this.inFlight) {
      clearTimeout(this.inFlight.timer);
      this.inFlight.reject(err);
      this.inFlight = null;
    }
    for (const q of this.queue.splice(0)) q.reject(err);
  }

  private trackCsmsCall(id: string, numericId: boolean): void {
    if (this.csmsCalls.size >= MAX_TRACKED_CALLS) {
      const oldest = this.csmsCalls.oldestId()!;
      this.csmsCalls.delete(oldest);
      this.numericCalls?.delete(oldest);
    }
    this.csmsCalls.set(id, this.now());
    if (numericId) (this.numericCalls ??= new Set()).add(id);
    else this.numericCalls?.delete(id); // the same text as a string id: a string call now
  }

  /** Starts the next injected call when the line is free. */
  private pump(): void {
    if (this.closed || this.inFlight || this.held.length > 0 || this.queue.length === 0 || this.csmsCallPending()) return;
    const next = this.queue.shift();
    if (!next) return;
    if (next.stillWanted && !next.stillWanted()) {
      next.reject(new InjectionError('withdrawn', `${next.action} withdrawn before it was sent`));
      this.pump();
      return;
    }
    const id = randomUUID();
    const timer = setTimeout(() => this.timeout(id), next.timeoutMs);
    timer.unref?.();
    this.inFlight = { ...next, id, timer };
    this.owner.sendToCharger(callFrame(id, next.action, next.payload));
  }

  /**
   * Whether a CSMS call still holds the line. Calls older than the timeout do not; when only younger
   * ones do, a timer pumps again once the youngest of them has gone stale.
   */
  private csmsCallPending(): boolean {
    if (this.csmsCalls.size === 0) return false;
    let newest = -Infinity;
    this.csmsCalls.forEachValue((sentAt) => { newest = Math.max(newest, sentAt); });
    const due = newest + this.csmsCallTimeoutMs;
    const wait = due - this.now();
    if (wait <= 0) return false;
    // Armed for the youngest call's deadline; moved earlier when the youngest was answered since.
    if (!this.staleTimer || this.staleTimerDue > due) {
      if (this.staleTimer) clearTimeout(this.staleTimer);
      this.staleTimerDue = due;
      this.staleTimer = setTimeout(() => { this.staleTimer = null; this.pump(); }, wait + 1);
      this.staleTimer.unref?.();
    }
    return true;
  }

  private timeout(id: string): void {
    if (!this.inFlight || this.inFlight.id !== id) return;
    const done = this.inFlight;
    this.inFlight = null;
    this.lateIds.push(id);
    if (this.lateIds.length > MAX_LATE_IDS) this.lateIds.shift();
    done.reject(new InjectionError('timeout', `charger did not answer ${done.action} in ${done.timeoutMs} ms`));
    this.release();
  }

  /**
   * Sends the CSMS frames held during an injected call, in the order the CSMS sent them, then
   * starts the next injection if the line is free again.
   */
  private release(): void {
    this.heldBytes = 0;
    for (const frame of this.held.splice(0)) {
      if (this.closed) return;
      if (frame.type === 2) this.trackCsmsCall(frame.id, frame.numericId);
      this.owner.relayToCharger(frame.data, frame.type, frame.id);
    }
    if (this.csmsHeldBack) {
      this.csmsHeldBack = false;
      this.owner.releaseCsms();
    }
    this.pump();
  }
}
