/**
 * When an interceptor may send a charger calls of its own, judged from its boot: the state stored
 * from an earlier connection, the BootNotification a rebooted charger sends first, and the answer.
 */
import { bootStatusOf } from './boot-state';
import type { AnsweredCall, CallOutcome } from './types';

/** What the proxy may send a charger: every call, only variables and triggers, or nothing. */
export type InjectScope = 'all' | 'variables' | 'none';

/**
 * The scope in a boot state (OCPP-SECURITY §7): everything once Accepted; while Pending, on 1.6
 * everything (configuration and certificates are what Pending is for), on 2.x only variables and
 * triggers (B02.FR.01; charger stacks answer anything else SecurityError, libocpp's v201
 * `ChargePoint::message_callback` among them); nothing before an answer or after Rejected.
 */
export function injectScope(boot: string | undefined, subprotocol: string): InjectScope {
  if (boot === 'Accepted') return 'all';
  if (boot === 'Pending') return subprotocol === 'ocpp1.6' ? 'all' : 'variables';
  return 'none';
}

/** Told when the charger may be sent calls again (see BootWatch). */
export interface BootListener { onBootReady(): void }

/**
 * One session's view of the charger's boot, for an interceptor that sends calls of its own. It
 * starts from the state stored from an earlier connection, but a charger that rebooted sends a
 * BootNotification first and refuses other calls until it is answered (B03.FR.08). So after the
 * session opens it waits up to `bootWaitMs` for one: a BootNotification hands the
 * decision to its answer, any other call the charger sends toward the CSMS ends the wait at once
 * (the charger is running), and silence ends it after `bootWaitMs`. The listener is told each time
 * calls become possible.
 */
export class BootWatch {
  private waiting = false;
  private bootInFlight = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly listener: BootListener,
    private state: string | undefined,
    private readonly subprotocol: string,
  ) {}

  /** At session open; `waitMs` is config `bootWaitMs`. */
  start(waitMs: number): void {
    if (injectScope(this.state, this.subprotocol) === 'none') return;
    if (waitMs <= 0) return this.ready();
    this.waiting = true;
    this.timer = setTimeout(() => { this.timer = null; this.endWait(); }, waitMs);
    this.timer.unref?.();
  }

  /** A call from the charger, on its way to the CSMS. */
  chargerCall(action: string): void {
    if (action === 'BootNotification') {
      this.bootInFlight = true;
      this.stopWaiting();
    } else if (this.waiting) {
      this.endWait();
    }
  }

  /** The CSMS answered a charger call: a BootNotification's answer sets the state. */
  csmsAnswer(call: AnsweredCall, answer: CallOutcome): void {
    const status = bootStatusOf(call, answer);
    if (!status) return;
    this.state = status;
    this.bootInFlight = false;
    this.stopWaiting();
    // setImmediate: the answer (forwarded right after this hook) reaches the charger first.
    if (injectScope(status, this.subprotocol) !== 'none') setImmediate(() => this.listener.onBootReady());
  }

  /** Whether calls of this kind may be sent now. */
  allows(need: 'variables' | 'all'): boolean {
    if (this.waiting || this.bootInFlight) return false;
    const scope = injectScope(this.state, this.subprotocol);
    return scope === 'all' || (scope === 'variables' && need === 'variables');
  }

  /** At session close. */
  stop(): void {
    this.stopWaiting();
  }

  private endWait(): void {
    this.stopWaiting();
    if (!this.bootInFlight) this.ready();
  }

  private stopWaiting(): void {
    this.waiting = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private ready(): void {
    setImmediate(() => this.listener.onBootReady());
  }
}
