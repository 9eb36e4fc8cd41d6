import type { Logger } from 'pino';
import type { ChargerRecord } from '../../proxy/store/types';

/** The charger's answer to a call the proxy injected. */
export type CallOutcome =
  | { kind: 'result'; payload: Record<string, unknown> }
  | { kind: 'error'; code: string; description: string; details: Record<string, unknown> };

/** Why an injected call got no answer. */
export class InjectionError extends Error {
  constructor(readonly reason: 'timeout' | 'closed' | 'queue_full' | 'withdrawn', message: string) {
    super(message);
    this.name = 'InjectionError';
  }
}

/**
 * A CALL from the charger as interceptors see it. Its payload is parsed when first read; until then
 * the object holds the bytes the frame arrived in (part of a socket read): read what you need
 * during the hook (or the decision it returns) and keep that, not the object. The same holds for
 * a {@link CallOutcome} handed to `onCsmsAnswer` or returned by `injectCall`.
 */
export interface ChargerCall {
  id: string;
  action: string;
  payload: Record<string, unknown>;
}

/** A CSMS CALL on its way to the charger; `payload` is parsed when first read. */
export interface CsmsCall {
  id: string;
  action: string;
  readonly payload: unknown;
}

/** An interceptor's answer to a CSMS CALL (a CALLRESULT, or a CALLERROR): sent to the CSMS in the charger's place, the call never forwarded. */
export type CsmsCallDecision = undefined | { answer: Record<string, unknown> } | { error: { code: string; description: string } };

/**
 * A charger CALL the CSMS answered, as `onCsmsAnswer` sees it: its payload is not kept while the
 * CSMS takes its time (up to 256 unanswered calls of up to maxFrameBytes each, per session).
 */
export type AnsweredCall = Pick<ChargerCall, 'id' | 'action'>;

/**
 * What an interceptor does with a charger's CALL: undefined lets it pass to the CSMS; `answer`
 * sends a CALLRESULT and `error` a CALLERROR to the charger instead, and the CSMS never sees it.
 */
export type ChargerCallDecision =
  | undefined
  | { answer: Record<string, unknown> }
  | { error: { code: string; description: string } };

/** How a session ended, for interceptors that keep state. */
export interface SessionEnd {
  code: number;
  reason: string;
  /** Which side ended it. */
  by: 'charger' | 'csms' | 'proxy';
}

/** Options of {@link SessionApi.injectCall}. */
export interface InjectOptions {
  timeoutMs?: number;
  /**
   * Asked just before the call goes on the wire (it may wait behind a CSMS call for a while): false
   * withdraws it unsent, rejecting with an {@link InjectionError} `withdrawn`.
   */
  stillWanted?: () => boolean;
}

/** The session as interceptors see it: who is connected and how, and the two actions they may take. */
export interface SessionApi {
  readonly identity: string;
  /** Negotiated OCPP-J subprotocol, e.g. `ocpp1.6`. */
  readonly subprotocol: string;
  /** Security profile the charger was admitted on. */
  readonly profile: 1 | 2 | 3;
  /** Facts the admission gates established (stored record, certificate details, ...). */
  readonly facts: Readonly<Record<string, unknown>>;
  readonly log: Logger;
  /**
   * Sends a CALL of the proxy's own to the charger once no CSMS call is outstanding; CSMS calls
   * wait behind it. The answer is returned here and never shown to the CSMS.
   * Rejects with {@link InjectionError} on timeout or when the session closes first.
   */
  injectCall(action: string, payload: Record<string, unknown>, opts?: InjectOptions): Promise<CallOutcome>;
  /** Closes both legs. */
  close(code: number, reason: string): void;
  /** True once either leg has closed. */
  readonly closed: boolean;
}

/**
 * A per-session hook into the frame stream. Created per session by an {@link InterceptorFactory};
 * every hook is optional. Hooks must not throw; a hook that does is logged and treated as "pass".
 */
export interface Interceptor {
  readonly name: string;
  /** The session is open on both legs. */
  onOpen?(session: SessionApi): void;
  /** A charger CALL, before it would be forwarded. May answer it instead (async allowed; order is kept). */
  /**
   * `raw` is the frame's bytes as received, which is what the CSMS will get if the call passes: for
   * checks that must see what the CSMS will parse. Not to be kept (it is a view into a socket chunk).
   */
  onChargerCall?(session: SessionApi, call: ChargerCall, raw: Buffer): ChargerCallDecision | Promise<ChargerCallDecision>;
  /**
   * A CSMS CALL, before it would be forwarded to the charger. May answer it instead (synchronously:
   * CSMS calls are not held). `raw` is the frame as received, what the charger would parse.
   */
  onCsmsCall?(session: SessionApi, call: CsmsCall, raw: Buffer): CsmsCallDecision;
  /** The CSMS answered a charger CALL (e.g. BootNotification Accepted); observe only, the answer is forwarded. */
  onCsmsAnswer?(session: SessionApi, call: AnsweredCall, answer: CallOutcome): void;
  /**
   * The charger's stored record changed (an operator action from any replica or the CLI, delivered
   * through the store's change feed): e.g. a rotation was requested or a target profile set.
   * `routine` when the record was only read again (the coordinator's periodic sweep, in case a change
   * message was lost): act on requests found in it, not on its mere arrival.
   */
  onRecordChanged?(session: SessionApi, record: ChargerRecord, routine: boolean): void;
  /** The session ended. */
  onClose?(session: SessionApi, end: SessionEnd): void;
}

/**
 * Gives an interceptor for one session, or undefined when it has nothing to do there. An interceptor
 * without per-session state may be one object shared by every session (hooks get the session).
 */
export type InterceptorFactory = (session: SessionApi) => Interceptor | undefined;
