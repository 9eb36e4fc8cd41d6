import type { CredentialStore } from '../../proxy/store/types';
import { admissionFacts } from '../gates/facts';
import type { AnsweredCall, CallOutcome, Interceptor, InterceptorFactory } from './types';

/** The CSMS's verdict on a BootNotification, or undefined for anything else. */
export function bootStatusOf(call: AnsweredCall, answer: CallOutcome): 'Accepted' | 'Pending' | 'Rejected' | undefined {
  if (call.action !== 'BootNotification' || answer.kind !== 'result') return undefined;
  const s = answer.payload.status;
  return s === 'Accepted' || s === 'Pending' || s === 'Rejected' ? s : undefined;
}

/**
 * What the proxy may send a charger in a boot state (OCPP-SECURITY §7): everything once Accepted;
 * while Pending, on 1.6 everything (configuration and certificates are what Pending is for), on 2.x
 * only variables and triggers (B02.FR.01; charger stacks answer anything else SecurityError, libocpp
 * among them); nothing before an answer or after Rejected.
 */
export type InjectScope = 'all' | 'variables' | 'none';

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
 * session opens it waits up to `waitMs` (config `bootWaitMs`) for one: a BootNotification hands the
 * decision to its answer, any other charger message ends the wait at once (the charger is running),
 * and silence ends it after `waitMs`. The listener is told each time calls become possible.
 */
export class BootWatch {
  private waiting = false;
  private bootInFlight = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly listener: BootListener,
    private state: string | undefined,
    private readonly subprotocol: string,
    private readonly waitMs: number,
  ) {}

  /** At session open. */
  start(): void {
    if (injectScope(this.state, this.subprotocol) === 'none') return;
    if (this.waitMs <= 0) return this.ready();
    this.waiting = true;
    this.timer = setTimeout(() => { this.timer = null; this.endWait(); }, this.waitMs);
    this.timer.unref?.();
  }

  /** A call from the charger. */
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

/**
 * Remembers, per charger in the store, how the CSMS last answered its BootNotification. A charger
 * that reconnects normally sends no new BootNotification, so this is how the proxy knows, on the next
 * connection, that it may inject calls (and must not after Rejected).
 */
export function bootState(deps: { store: CredentialStore }): InterceptorFactory {
  // Stateless per session: one interceptor shared by every session with a stored record.
  const shared: Interceptor = {
    name: 'boot-state',
    onCsmsAnswer(s, call, answer) {
      const status = bootStatusOf(call, answer);
      if (!status) return;
      s.log.info({ event: 'boot_state', status });
      deps.store.updateCharger(s.identity, { bootState: status, bootAt: Date.now() }).catch((err: unknown) => {
        s.log.warn({ event: 'boot_state_store_failed', err: String(err) });
      });
    },
  };
  return (session) => (admissionFacts(session.facts) ? shared : undefined);
}
