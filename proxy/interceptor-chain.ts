import type {
  AnsweredCall, CallOutcome, ChargerCall, ChargerCallDecision, CsmsCall, CsmsCallDecision, Interceptor, InterceptorFactory, SessionApi, SessionEnd,
} from '../policies/interceptors/types';
import type { ChargerRecord } from './store/types';

const NONE: readonly Interceptor[] = Object.freeze([]);

/**
 * The interceptors of one session, run in their configured order. A hook that throws (or whose
 * promise rejects) is logged and counts as "no opinion": an interceptor's bug never breaks the relay.
 */
export class InterceptorChain {
  private readonly list: readonly Interceptor[];
  /** The interceptors that look at CSMS calls (none means those calls pass without a lookup). */
  private readonly csmsCallers: readonly Interceptor[];

  constructor(private readonly session: SessionApi, factories: readonly InterceptorFactory[]) {
    const list: Interceptor[] = [];
    for (const make of factories) {
      const i = this.safe('factory', () => make(session));
      if (i) list.push(i);
    }
    // Arrays of exactly their length, held for the session's life: one grown by push keeps room for
    // 17 (about 150 bytes a session each).
    this.list = list.slice();
    const csmsCallers = list.filter((i) => i.onCsmsCall);
    this.csmsCallers = csmsCallers.length === 0 ? NONE : csmsCallers.slice();
  }

  /** Whether any interceptor looks at CSMS calls. */
  get watchesCsmsCalls(): boolean {
    return this.csmsCallers.length > 0;
  }

  /** The first interceptor with an answer to a CSMS CALL decides; a hook that throws has no opinion. */
  csmsCall(call: CsmsCall, raw: Buffer): CsmsCallDecision {
    for (const i of this.csmsCallers) {
      try {
        const d = i.onCsmsCall!(this.session, call, raw);
        if (d !== undefined) return d;
      } catch (err) {
        this.session.log.error({ event: 'interceptor_failed', interceptor: i.name, err: String(err) });
      }
    }
    return undefined;
  }

  open(): void {
    for (const i of this.list) if (i.onOpen) this.safe(i.name, () => i.onOpen!(this.session));
  }

  /** Every CSMS answer to a charger CALL (hot path): try/catch inline, no closure per interceptor. */
  csmsAnswer(call: AnsweredCall, answer: CallOutcome): void {
    for (let n = 0; n < this.list.length; n++) {
      const i = this.list[n]!;
      if (!i.onCsmsAnswer) continue;
      try {
        const r: unknown = i.onCsmsAnswer(this.session, call, answer);
        if (r instanceof Promise) this.caught(i.name, r);
      } catch (err) {
        this.session.log.error({ event: 'interceptor_failed', interceptor: i.name, err: String(err) });
      }
    }
  }

  recordChanged(record: ChargerRecord, routine: boolean): void {
    for (const i of this.list) if (i.onRecordChanged) this.safe(i.name, () => i.onRecordChanged!(this.session, record, routine));
  }

  close(end: SessionEnd): void {
    for (const i of this.list) if (i.onClose) this.safe(i.name, () => i.onClose!(this.session, end));
  }

  /**
   * The first interceptor with an opinion on a charger CALL decides. Synchronous when every hook is
   * (the fast path: no promise per frame); once one answers with a promise the rest run after it.
   * `raw` is the frame as received (see `Interceptor.onChargerCall`).
   */
  chargerCall(call: ChargerCall, raw: Buffer): ChargerCallDecision | Promise<ChargerCallDecision> {
    for (let n = 0; n < this.list.length; n++) {
      const i = this.list[n]!;
      if (!i.onChargerCall) continue;
      // try/catch inline rather than `safe()`: no closure per interceptor per relayed CALL.
      let d: ChargerCallDecision | Promise<ChargerCallDecision>;
      try {
        d = i.onChargerCall(this.session, call, raw);
      } catch (err) {
        this.session.log.error({ event: 'interceptor_failed', interceptor: i.name, err: String(err) });
        continue;
      }
      if (d instanceof Promise) return this.decideAfter(d, i.name, n + 1, call, raw);
      if (d !== undefined) return d;
    }
    return undefined;
  }

  /**
   * An interceptor answered with a promise: its decision, or the next ones' once it has none. A
   * method of its own: closures in chargerCall would capture the loop's variables, and V8 would
   * then allocate a context for every interceptor of every relayed CALL (~570 bytes a call, seen
   * in a heap profile of the relay).
   */
  private async decideAfter(d: Promise<ChargerCallDecision>, name: string, next: number, call: ChargerCall, raw: Buffer): Promise<ChargerCallDecision> {
    let r: ChargerCallDecision;
    try {
      r = await d;
    } catch (err) {
      this.session.log.error({ event: 'interceptor_failed', interceptor: name, err: String(err) });
      r = undefined;
    }
    return r !== undefined ? r : this.decideFrom(next, call, raw);
  }

  private async decideFrom(start: number, call: ChargerCall, raw: Buffer): Promise<ChargerCallDecision> {
    for (let n = start; n < this.list.length; n++) {
      const i = this.list[n]!;
      if (!i.onChargerCall) continue;
      try {
        const d = await i.onChargerCall(this.session, call, raw);
        if (d !== undefined) return d;
      } catch (err) {
        this.session.log.error({ event: 'interceptor_failed', interceptor: i.name, err: String(err) });
      }
    }
    return undefined;
  }

  /** Runs a hook; a throw, or a rejection of the promise an async hook returns, is logged. */
  private safe<T>(name: string, fn: () => T): T | undefined {
    try {
      const r = fn();
      if (r instanceof Promise) this.caught(name, r);
      return r;
    } catch (err) {
      this.session.log.error({ event: 'interceptor_failed', interceptor: name, err: String(err) });
      return undefined;
    }
  }

  /** An async hook's rejection, logged: left unhandled it would end the process and every session in it. */
  private caught(name: string, p: Promise<unknown>): void {
    p.catch((err: unknown) => this.session.log.error({ event: 'interceptor_failed', interceptor: name, err: String(err) }));
  }
}
