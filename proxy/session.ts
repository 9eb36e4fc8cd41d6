import {
  InjectionError, type CallOutcome, type ChargerCall, type ChargerCallDecision, type InjectOptions, type InterceptorFactory, type SessionApi, type SessionEnd,
} from '../policies/interceptors/types';
import { InterceptorChain } from './interceptor-chain';
import { CallTable } from './call-table';
import { CallLine, type CallLineOwner } from './call-line';
import { ignoreSocketError } from './backend';
import { ownBytes } from './own-bytes';
import { LogBudget } from './log-budget';
import { pingWheelFor, type Pingable } from './ping-wheel';
import { clampReason, codeForCharger, codeForCsms } from './close-codes';
import { bytesFlushed, kLegOwner, type Leg } from './leg';
import { addListener, callListeners, removeListener, type Listeners } from './listeners';
import type { Logger } from './log';
import type { ChargerRecord } from './store/types';
import { answerForProblem, callError, callResult } from './ocpp/errors';
import { isProblem, readFrame, typesFor, type Frame } from './ocpp/frame';
import { chargerCallOf, csmsCallOf, outcomeOf } from './frame-views';

/** Direction label used in logs and metrics. */
export type Direction = 'charger_to_csms' | 'csms_to_charger';

/** Optional hooks for metrics; the session knows nothing of Prometheus. */
export interface SessionObserver {
  /** Every relayed frame (hot path): `type` is its OCPP-J message type number. */
  frameRelayed?(direction: Direction, type: number, seconds: number): void;
  frameRefused?(direction: Direction, problem: string): void;
  injected?(action: string, outcome: string): void;
  answeredLocally?(action: string): void;
}

/** What every session of a server shares: made once by the server, not per session. */
export interface SessionSettings {
  /** The proxy's logger; the session's own lines add its identity (see `Session.log`). */
  log: Logger;
  interceptors?: readonly InterceptorFactory[];
  observer?: SessionObserver;
  callTimeoutMs: number;
  pingIntervalMs: number;
  maxHeldFrames: number;
  /** The CSMS leg of an ended session, kept open for the charger's last frames (see `finish`), is closed now. */
  onFlushEnd?: (session: Session) => void;
}

/** Everything a session needs: its own facts, and the settings it shares with the others. */
export interface SessionOptions {
  identity: string;
  subprotocol: string;
  profile: 1 | 2 | 3;
  /** Charger address (for logs and the admin view). */
  remoteAddress?: string;
  charger: Leg;
  csms: Leg;
  facts?: Record<string, unknown>;
  settings: SessionSettings;
}

/** Bytes buffered towards one peer beyond which the other peer is no longer read (back-pressure). */
const HIGH_WATER = 1 << 20;
/** Charger frames queued behind a pending interceptor decision beyond which the charger is no longer read. */
const BACKLOG_PAUSE = 16;
const SEND_TEXT = { binary: false } as const;
const CHARGER_FIRST = ['charger', 'csms'] as const;
const CSMS_FIRST = ['csms', 'charger'] as const;
/** Ping rounds in a row a peer may miss its pong while it is busy reading what was queued ahead of the ping (see ping). */
const PING_QUEUE_PATIENCE = 3;
/** `frame_refused` lines per session and minute; the rest are counted, and summed up in the next line. */
const REFUSALS_LOGGED_PER_MINUTE = 20;

/**
 * One charger ↔ CSMS pair. Frames are forwarded as their original text after reading only their
 * header; malformed frames are answered as OCPP-J prescribes and not forwarded; the proxy can inject
 * calls of its own (see {@link CallLine}) and interceptors can answer charger calls themselves.
 * Either leg closing closes the other. Emits `close` with a {@link SessionEnd} exactly once, so
 * listeners use `on` (a `once` wrapper per listener would be kept for the whole session).
 */
export class Session implements SessionApi, CallLineOwner, Pingable {
  readonly identity: string;
  readonly subprotocol: string;
  readonly profile: 1 | 2 | 3;
  readonly facts: Record<string, unknown>;
  readonly startedAt = Date.now();
  readonly remoteAddress: string;
  /** Frames relayed, per direction (for the admin view). */
  readonly frames = { charger_to_csms: 0, csms_to_charger: 0 };

  private readonly charger: Leg;
  private readonly csms: Leg;
  /** Shared with every session of the server (an options object of its own would cost each session ~150 bytes). */
  private readonly settings: SessionSettings;
  private ownLog: Logger | null = null;
  private readonly line: CallLine;
  private readonly interceptors: InterceptorChain;
  private readonly knownTypes: ReadonlySet<number>;
  /** Charger CALLs forwarded to the CSMS and not yet answered, by id (no payload kept). */
  private readonly chargerCalls = new CallTable<PendingCall>();
  /** Charger frames waiting behind an asynchronous interceptor decision, to keep their order. */
  private readonly chargerBacklog: { data: Buffer; isBinary: boolean }[] = [];
  private chargerBusy = false;
  /** The charger closed while frames of its waited for an interceptor: the CSMS close waits for them. */
  private csmsFlush: { code: number; reason: string; timer: NodeJS.Timeout } | null = null;
  /**
   * 2.1 only (null before): ids of CALLRESULTs forwarded per direction, which a CALLRESULTERROR may
   * answer; and, made on first use, `own`: those the proxy sent itself (`charger:<id>`, `csms:<id>`
   * by receiving leg). A CALLRESULTERROR to one of those is the peer refusing the proxy's answer:
   * the other peer never sent that result, so it is logged, not relayed. (Not a field of its own:
   * every session would carry it.)
   */
  private readonly sentResults: (Record<Direction, Set<string>> & { own?: Set<string> }) | null;
  /** Slot in the ping wheel (-1: not pinged). */
  private pingSlot = -1;
  /** What the ping rounds and back-pressure track per leg (one object per leg, not one per fact). */
  private readonly watch = { charger: new LegWatch(), csms: new LegWatch() };
  private ended: SessionEnd | null = null;
  /** 'close' listeners: a field, not an EventEmitter (whose listener dictionary costs each session a few hundred bytes). */
  private closeListeners: Listeners = null;
  /** Made at the first refused frame: most sessions never have one. */
  private refusalLines: LogBudget | null = null;

  constructor(opts: SessionOptions) {
    this.settings = opts.settings;
    this.identity = opts.identity;
    this.subprotocol = opts.subprotocol;
    this.profile = opts.profile;
    this.facts = opts.facts ?? {};
    this.remoteAddress = opts.remoteAddress ?? '';
    this.charger = opts.charger;
    this.csms = opts.csms;
    this.knownTypes = typesFor(opts.subprotocol);
    this.sentResults = this.knownTypes.has(5) ? { charger_to_csms: new Set(), csms_to_charger: new Set() } : null;
    this.line = new CallLine(this, opts.settings.maxHeldFrames, opts.settings.callTimeoutMs);
    this.interceptors = new InterceptorChain(this, opts.settings.interceptors ?? []);
  }

  /** `listener` runs once when the session ends, with the session as `this`. */
  on(event: 'close', listener: (this: Session, end: SessionEnd) => void): this {
    this.closeListeners = addListener(this.closeListeners, listener);
    return this;
  }

  removeListener(event: 'close', listener: (this: Session, end: SessionEnd) => void): this {
    this.closeListeners = removeListener(this.closeListeners, listener);
    return this;
  }

  /**
   * This session's logger, bound to its identity, made on first use: a child logger costs ~0.9 KiB
   * per session, and most sessions log nothing but the server's start and end lines.
   */
  get log(): Logger {
    return (this.ownLog ??= this.settings.log.child({ identity: this.identity }));
  }

  /** Wires both legs and starts relaying. */
  start(): void {
    // Shared module functions that find the session through the leg: no closures per session.
    (this.charger as LegOf)[kLegOwner] = this;
    (this.csms as LegOf)[kLegOwner] = this;
    this.charger.on('message', chargerOnMessage);
    this.csms.on('message', csmsOnMessage);
    this.charger.on('close', chargerOnClose);
    this.csms.on('close', csmsOnClose);
    this.charger.on('error', chargerOnError);
    this.csms.removeListener('error', ignoreSocketError);
    this.csms.on('error', csmsOnError);
    this.charger.on('pong', chargerOnPong);
    this.csms.on('pong', csmsOnPong);
    if (this.settings.pingIntervalMs > 0) this.pingSlot = pingWheelFor(this.settings.pingIntervalMs).add(this);
    this.interceptors.open();
    // A leg that closed before the session listened (the CSMS reset while the last gates ran) sent
    // its 'close' to nobody: end now, rather than relay into a closed leg until a ping round notices.
    const closedLeg = this.csms.readyState !== 1 ? 'csms' : this.charger.readyState !== 1 ? 'charger' : null;
    if (closedLeg) {
      this.finish({ code: 1006, reason: `${closedLeg} closed before the session started`, by: closedLeg });
      return;
    }
    // Both legs arrive paused (see dialBackend and FrameSocket): a frame sent with a 101 is read only now.
    this.charger.resume();
    this.csms.resume();
  }

  /**
   * Resolves once the charger's connection has closed (its close handshake done, or the socket
   * gone), so that a drain does not cut a close frame still on its way: the charger would see 1006.
   */
  chargerClosed(): Promise<void> {
    if (this.charger.readyState === 3) return Promise.resolve();
    return new Promise((resolve) => this.charger.once('close', () => resolve()));
  }

  get closed(): boolean {
    return this.ended !== null;
  }

  injectCall(action: string, payload: Record<string, unknown>, opts?: InjectOptions): Promise<CallOutcome> {
    const p = this.line.inject(action, payload, opts?.timeoutMs ?? this.settings.callTimeoutMs, opts?.stillWanted);
    p.then(
      (o) => this.settings.observer?.injected?.(action, injectedOutcome(o)),
      (e: unknown) => this.settings.observer?.injected?.(action, e instanceof InjectionError ? e.reason : 'failed'),
    );
    return p;
  }

  close(code: number, reason: string): void {
    this.finish({ code, reason, by: 'proxy' });
  }

  /** Hands a fresh copy of the charger's stored record to the interceptors (operator actions; `routine`: a sweep's re-read). */
  recordChanged(record: ChargerRecord, routine = false): void {
    if (this.closed) return;
    this.interceptors.recordChanged(record, routine);
  }

  /** @internal CallLineOwner: the proxy's own calls for the charger. */
  sendToCharger(frame: string | Buffer): void {
    this.send(this.charger, this.csms, frame);
  }

  /** @internal CallLineOwner: a CSMS frame the line held, relayed now (counted, and remembered in 2.1, as any other). */
  relayToCharger(data: Buffer, type: number, id: string): void {
    this.forward('csms_to_charger', { type: type as Frame['type'], id }, data, performance.now());
  }

  /** @internal CallLineOwner */
  lineOverflow(): void {
    this.close(1013, 'too many frames held for the charger');
  }

  /** @internal CallLineOwner */
  holdBackCsms(): void {
    if (!this.csms.isPaused) this.holdBack(this.csms);
  }

  /** @internal CallLineOwner */
  releaseCsms(): void {
    if (this.charger.bufferedAmount <= HIGH_WATER) this.release(this.csms);
  }

  /** @internal a pong came on a leg */
  onPong(leg: 'charger' | 'csms'): void {
    this.watch[leg].alive = true;
  }

  // ---- charger -> CSMS -------------------------------------------------------------------------

  /** @internal */
  onChargerMessage(data: Buffer, isBinary: boolean): void {
    // A `ws` leg still emits what it had read when the session ended: neither relayed nor acted on.
    if (this.ended) return;
    this.watch.charger.delivered = true;
    if (this.chargerBusy) {
      this.chargerBacklog.push({ data: ownBytes(data), isBinary });
      if (this.chargerBacklog.length >= BACKLOG_PAUSE && !this.charger.isPaused) this.holdBack(this.charger);
      return;
    }
    this.handleChargerFrame(data, isBinary);
  }

  private handleChargerFrame(data: Buffer, isBinary: boolean): void {
    const started = performance.now();
    const frame = this.readOrAnswer('charger_to_csms', data, isBinary);
    if (!frame) return;
    if (frame.type === 2) {
      if (this.chargerCalls.has(frame.id)) {
        // Not answered: a CALLERROR with this id would read as the answer to the first call.
        if (this.awaitingCsms(frame.id, started)) {
          this.refuse('charger_to_csms', 'duplicate_id', `CALL id ${frame.id} is still awaiting its answer`);
          return;
        }
        this.chargerCalls.delete(frame.id);
      }
      const call = chargerCallOf(frame);
      const decision = this.interceptors.chargerCall(call, data);
      if (decision instanceof Promise) {
        this.completeChargerCallLater(decision, call, data, started);
        return;
      }
      this.completeChargerCall(call, data, decision, started);
      return;
    }
    if (frame.type === 5 && this.ownResultRefused('charger', frame)) return;
    if (frame.type === 5 && !this.sentResults?.csms_to_charger.delete(frame.id)) {
      this.refuse('charger_to_csms', 'unsolicited_answer', `CALLRESULTERROR for unknown result id ${frame.id}`);
      return;
    }
    if (frame.type === 3 || frame.type === 4) {
      const owner = this.line.answerFromCharger(frame.id, () => outcomeOf(frame), frame.numericId);
      if (owner === 'proxy') return; // the answer to our own call: consumed, never shown to the CSMS
      if (owner === 'unknown') {
        this.refuse('charger_to_csms', 'unsolicited_answer', `answer to unknown call id ${frame.id}`);
        return;
      }
    }
    this.forward('charger_to_csms', frame, data, started);
  }

  /**
   * A charger CALL with this id was forwarded and is unanswered. Once unanswered for callTimeoutMs,
   * the CSMS has let it go and the id is free again (a charger whose id counter wraps would
   * otherwise never be answered on it again).
   */
  private awaitingCsms(id: string, now = performance.now()): boolean {
    const pending = this.chargerCalls.get(id);
    return pending !== undefined && now - pending.sentAt < this.settings.callTimeoutMs;
  }

  /**
   * An interceptor decides later: the charger's frames wait (chargerBusy) until it has. A method of
   * its own, so that handleChargerFrame holds no closure (a context allocated for every frame).
   */
  private completeChargerCallLater(decision: Promise<ChargerCallDecision>, call: ChargerCall, data: Buffer, started: number): void {
    this.chargerBusy = true;
    decision.then((d) => this.completeChargerCall(call, data, d, started))
      // Unhandled, a throw here would end the process (and every session in it).
      .catch((err: unknown) => this.log.error({ event: 'charger_call_failed', err: err instanceof Error ? err.message : 'unknown error' }))
      .finally(() => this.drainChargerBacklog());
  }

  private completeChargerCall(call: ChargerCall, data: Buffer, decision: ChargerCallDecision, started: number): void {
    if (this.closed && (!this.csmsFlush || (decision && ('answer' in decision || 'error' in decision)))) return;
    if (decision && 'answer' in decision) {
      this.rememberOwnResult('charger', call.id);
      this.send(this.charger, this.charger, callResult(call.id, decision.answer));
      this.settings.observer?.answeredLocally?.(call.action);
      return;
    }
    if (decision && 'error' in decision) {
      this.send(this.charger, this.charger, callError(call.id, decision.error.code, decision.error.description));
      this.settings.observer?.answeredLocally?.(call.action);
      return;
    }
    this.chargerCalls.set(call.id, { action: call.action, sentAt: started });
    if (this.chargerCalls.size > 256) this.chargerCalls.delete(this.chargerCalls.oldestId()!);
    this.forward('charger_to_csms', { type: 2, id: call.id }, data, started);
  }

  private drainChargerBacklog(): void {
    this.chargerBusy = false;
    while (!this.chargerBusy && this.chargerBacklog.length > 0 && (!this.closed || this.csmsFlush)) {
      const next = this.chargerBacklog.shift()!;
      this.handleChargerFrame(next.data, next.isBinary);
    }
    if (this.csmsFlush && !this.chargerBusy && this.chargerBacklog.length === 0) this.closeCsmsAfterFlush();
    // Read the charger again once its backlog is gone, unless the CSMS leg is what holds it back.
    if (this.csms.bufferedAmount <= HIGH_WATER) this.release(this.charger);
  }

  // ---- CSMS -> charger -------------------------------------------------------------------------

  /** @internal */
  onCsmsMessage(data: Buffer, isBinary: boolean): void {
    if (this.ended) return;
    this.watch.csms.delivered = true;
    const started = performance.now();
    const frame = this.readOrAnswer('csms_to_charger', data, isBinary);
    if (!frame) return;
    if (frame.type === 5 && this.ownResultRefused('csms', frame)) return;
    if (frame.type === 5 && !this.sentResults?.charger_to_csms.delete(frame.id)) {
      this.refuse('csms_to_charger', 'unsolicited_answer', `CALLRESULTERROR for unknown result id ${frame.id}`);
      return;
    }
    if (frame.type === 3 || frame.type === 4) {
      const pending = this.chargerCalls.get(frame.id);
      if (!pending) {
        this.refuse('csms_to_charger', 'unsolicited_answer', `answer to unknown call id ${frame.id}`);
        return;
      }
      this.chargerCalls.delete(frame.id);
      this.interceptors.csmsAnswer({ id: frame.id, action: pending.action }, outcomeOf(frame));
    }
    if (frame.type === 2 && this.interceptors.watchesCsmsCalls && this.answeredForCharger(frame, data)) return;
    if (!this.line.fromCsms(data, frame.type, frame.id, frame.numericId)) return; // held behind an injected call
    this.forward('csms_to_charger', frame, data, started);
  }

  /** A CSMS CALL an interceptor answers in the charger's place: the answer goes back, the call nowhere. */
  private answeredForCharger(frame: Frame, data: Buffer): boolean {
    const decision = this.interceptors.csmsCall(csmsCallOf(frame), data);
    if (!decision) return false;
    const id = frame.numericId ? Number(frame.id) : frame.id;
    if ('error' in decision) {
      this.send(this.csms, this.csms, callError(id, decision.error.code, decision.error.description));
    } else {
      this.rememberOwnResult('csms', frame.id);
      this.send(this.csms, this.csms, callResult(id, decision.answer));
    }
    this.settings.observer?.answeredLocally?.(frame.action!);
    return true;
  }

  // ---- plumbing --------------------------------------------------------------------------------

  /**
   * Relays a frame as the bytes it arrived in: already valid UTF-8 (checked by the leg) and the exact
   * text that was read, so nothing is re-encoded on the way.
   */
  private forward(direction: Direction, frame: Pick<Frame, 'type' | 'id'>, data: Buffer, started: number): void {
    if (frame.type === 3 && this.sentResults) {
      this.rememberResult(this.sentResults[direction], frame.id);
      // A relayed result now owns this id: an old answer of the proxy's with it is forgotten.
      this.sentResults.own?.delete(`${direction === 'charger_to_csms' ? 'csms' : 'charger'}:${frame.id}`);
    }
    if (direction === 'charger_to_csms') this.send(this.csms, this.charger, data);
    else this.send(this.charger, this.csms, data);
    this.frames[direction]++;
    this.settings.observer?.frameRelayed?.(direction, frame.type, (performance.now() - started) / 1000);
  }

  /**
   * Sends text to `to`; stops reading `from` while `to` cannot keep up. `from` is the leg whose
   * frames caused this one: the other leg for a relayed frame, `to` itself for the proxy's answer to
   * a frame of `to` (so a charger that floods frames the proxy answers, and reads none of the answers,
   * is the one held back). Frames go out without a
   * write callback (none to allocate or run per frame): only a frame that takes the backlog over the
   * high-water mark carries one, pauses `from`, and resumes it once that frame (and so everything
   * queued before it) has been written.
   */
  private send(to: Leg, from: Leg, frame: string | Buffer): void {
    if (to.readyState !== 1) return;
    const queued = to.bufferedAmount; // a getter over two queues: read once per frame
    if (queued > 0 && typeof frame !== 'string') frame = ownBytes(frame); // it will wait: see ownBytes
    if (queued + frame.length <= HIGH_WATER) {
      to.send(frame, SEND_TEXT);
      return;
    }
    this.sendOverMark(to, from, frame);
  }

  /**
   * `send` past the high-water mark. A method of its own: the callbacks below capture `from`, and a
   * function with such closures allocates a context on every call, here on every relayed frame.
   */
  private sendOverMark(to: Leg, from: Leg, frame: string | Buffer): void {
    // Hold `from` back until this frame (so everything before it) is written. Also when `from` is
    // already paused: a charger paused for its backlog would otherwise wait forever.
    if (!from.isPaused) this.holdBack(from);
    if (to !== from) {
      to.send(frame, SEND_TEXT, () => this.release(from));
      return;
    }
    // An answer to the peer's own frames: it stays unread until this answer is written, whatever
    // else (its backlog drained, the other leg's queue emptied) would resume it meanwhile.
    const leg = this.nameOf(to);
    this.watch[leg].unreadAnswers++;
    to.send(frame, SEND_TEXT, () => {
      this.watch[leg].unreadAnswers--;
      this.release(from);
    });
  }

  /** Reads a held-back leg again, unless it is held for a reason of its own. */
  private release(leg: Leg): void {
    if (!leg.isPaused || this.heldForItsOwn(leg)) return;
    leg.resume();
  }

  /**
   * A leg not to be read for a reason of its own, not for the other peer's queue: the charger's
   * frames wait for an interceptor's decision, the line holds the CSMS's, or an answer to the leg's
   * own frames is still queued over the high-water mark.
   */
  private heldForItsOwn(leg: Leg): boolean {
    return (leg === this.charger ? this.chargerBusy : this.line.holdsCsmsBack) || this.watch[this.nameOf(leg)].unreadAnswers > 0;
  }

  /** Stops reading a leg (back-pressure) and remembers it for the ping round (see `heldBack`). */
  private holdBack(leg: Leg): void {
    leg.pause();
    this.watch[this.nameOf(leg)].heldBack = true;
  }

  private nameOf(leg: Leg): 'charger' | 'csms' {
    return leg === this.charger ? 'charger' : 'csms';
  }

  /** 2.1: a CALLRESULT the proxy sends `to` itself (see sentResults). */
  private rememberOwnResult(to: 'charger' | 'csms', id: string): void {
    if (this.sentResults) this.rememberResult(this.sentResults.own ??= new Set(), `${to}:${id}`);
  }

  /** A CALLRESULTERROR from `from` to a result the proxy sent it: logged and consumed. */
  private ownResultRefused(from: 'charger' | 'csms', frame: Pick<Frame, 'id'>): boolean {
    if (!this.sentResults?.own?.delete(`${from}:${frame.id}`)) return false;
    this.log.warn({ event: 'own_answer_refused', by: from, id: frame.id });
    return true;
  }

  /** OCPP 2.1: a CALLRESULTERROR may only answer a CALLRESULT that went the other way (bounded memory). */
  private rememberResult(ids: Set<string>, id: string): void {
    ids.add(id);
    if (ids.size > 256) ids.delete(ids.values().next().value as string);
  }

  /**
   * Reads a frame's header; a frame that is not OCPP-J (binary, bad JSON, bad shape) is refused,
   * answered to its sender where OCPP-J prescribes an answer, and null is returned.
   */
  private readOrAnswer(direction: Direction, data: Buffer, isBinary: boolean): Frame | null {
    const frame = isBinary ? { problem: 'not_json' as const, detail: 'binary frames are not OCPP-J' }
      : readFrame(data, this.knownTypes, direction === 'charger_to_csms' ? 'strict' : 'lenient');
    if (!isProblem(frame)) return frame;
    this.refuse(direction, frame.problem, frame.detail);
    // A broken CALL reusing the id of one still awaiting the CSMS's answer goes unanswered: a CALLERROR
    // with that id would read as the answer to the first call (see the duplicate_id rule).
    if (direction === 'charger_to_csms' && frame.id !== undefined && this.awaitingCsms(String(frame.id))) return null;
    const answer = answerForProblem(frame, this.subprotocol);
    const sender = direction === 'charger_to_csms' ? this.charger : this.csms;
    if (answer) this.send(sender, sender, answer); // a sender that does not read its answers is held back itself
    return null;
  }

  private refuse(direction: Direction, problem: string, detail: string): void {
    this.settings.observer?.frameRefused?.(direction, problem);
    const verdict = (this.refusalLines ??= new LogBudget(REFUSALS_LOGGED_PER_MINUTE, 60_000)).take();
    if (verdict.log) this.log.warn({ event: 'frame_refused', direction, problem, detail, ...(verdict.suppressedBefore > 0 ? { suppressedBefore: verdict.suppressedBefore } : {}) });
  }

  /** @internal one ping round (the ping wheel calls it every pingIntervalMs) */
  ping(): void {
    // Backstop: a leg held back for the other's queue is released by the write that took that queue
    // over the mark. A ping or pong (written with no callback) can be that write; then nothing would
    // release it, and the next round would judge it dead for the pong it was not let to read.
    if (this.csms.bufferedAmount <= HIGH_WATER) this.release(this.charger);
    if (this.charger.bufferedAmount <= HIGH_WATER) this.release(this.csms);
    // A leg we hold back is judged after the other: when one peer stops reading, we stop reading the
    // other, whose pong then waits unread, and it is the one that stopped that failed its pong.
    // A pong cannot come before the peer has read everything queued ahead of our ping, in our buffer
    // or the kernel's (a slow link, a big backlog). So a missing pong is excused, for a few rounds at
    // most, when our last ping was written behind data queued for it, when the peer sent us frames
    // since (it is there, only busy reading), or when we held it back since the last round; and so is
    // the other leg's, while we hold it back for that queue (its own pong waits unread). The rounds
    // count only while the peer shows no progress (see progressing): a slow reader is not cut while
    // the kernel keeps taking its queue, nor the leg held back for it, and a dead peer is still found,
    // only rounds later. Queues are read here, in the timer phase, before this round's pings are
    // written: a TLS socket reports a write as queued until a tick after it was made.
    // Behind also when the queue was found empty at the last ping but not at the one before: it may
    // have just been written out, with the kernel's buffers still full ahead of that ping.
    const behind = { charger: this.watch.charger.aheadOfPing > 0 || this.watch.charger.queuedBefore, csms: this.watch.csms.aheadOfPing > 0 || this.watch.csms.queuedBefore };
    const moving = { charger: progressing(this.charger, this.watch.charger), csms: progressing(this.csms, this.watch.csms) };
    const queued = { charger: this.charger.bufferedAmount, csms: this.csms.bufferedAmount };
    for (const leg of this.charger.isPaused && !this.csms.isPaused ? CSMS_FIRST : CHARGER_FIRST) {
      const ws = leg === 'charger' ? this.charger : this.csms;
      const w = this.watch[leg];
      const other = leg === 'charger' ? 'csms' : 'charger';
      // Still not read for the other peer's queue alone (the backstop above resumed it otherwise).
      const heldForOther = ws.isPaused && queued[other] > HIGH_WATER && !this.heldForItsOwn(ws);
      // Resumed since the last round and not read yet (timers run before sockets are read): its
      // pong may be next in line. A round it had no turn in does not count.
      const justResumed = w.heldBack && !ws.isPaused && !w.delivered;
      // Held by the line its count waits too: it starts when the hold ends.
      const lineHeld = leg === 'csms' && this.line.holdsCsmsBack;
      if (!w.alive && (moving[leg] || (heldForOther && moving[other]) || justResumed || lineHeld)) w.excusedRounds = 0;
      const excused = !w.alive && w.excusedRounds < PING_QUEUE_PATIENCE && (behind[leg] || w.delivered || heldForOther || w.heldBack);
      w.excusedRounds = excused ? w.excusedRounds + 1 : 0;
      // A CSMS not read because the line holds its frames (an injected call in flight, see CallLine)
      // cannot answer a ping either; the hold ends when that call is answered or times out.
      if (!w.alive && !excused && !(w.heldBack && w.delivered) && !lineHeld) {
        // queuedBytes: what still waited for it here; none for a peer that went away while idle.
        this.log.info({ event: 'peer_dead', leg, queuedBytes: queued[leg] }, 'no pong: closing session');
        this.finish({ code: 1001, reason: `${leg} did not answer ping`, by: 'proxy' }, leg);
        return;
      }
      // Still not read now: the benefit of the doubt carries into the next round, if it delivers.
      w.heldBack = ws.isPaused;
      w.delivered = false;
      w.alive = false;
      w.queuedBefore = w.aheadOfPing > 0;
      w.aheadOfPing = queued[leg];
      w.flushedAtPing = w.aheadOfPing > 0 ? bytesFlushed(ws) : -1;
      if (ws.readyState === 1) ws.ping();
    }
  }

  /**
   * The session ended but its CSMS leg stays open for the charger's last frames (see `finish`). The
   * proxy ends that early (`endFlush`) when the charger is back on a new session: the CSMS must not
   * hold two connections of one charger.
   */
  get flushingToCsms(): boolean {
    return this.csmsFlush !== null;
  }

  /** Closes a CSMS leg kept open for the charger's last frames now; frames still waiting are dropped. */
  endFlush(): void {
    this.closeCsmsAfterFlush();
  }

  /** Closes the CSMS leg once the charger's last frames went through (or waited long enough). */
  private closeCsmsAfterFlush(): void {
    const flush = this.csmsFlush;
    if (!flush) return;
    this.csmsFlush = null;
    clearTimeout(flush.timer);
    this.chargerBacklog.length = 0;
    if (this.csms.readyState === 0 || this.csms.readyState === 1) this.csms.close(flush.code, flush.reason);
    this.settings.onFlushEnd?.(this);
  }

  /** @internal */
  onLegClosed(leg: 'charger' | 'csms', code: number, reason: string): void {
    if (leg === 'csms') this.closeCsmsAfterFlush(); // a CSMS leg kept open for a flush is gone: the flush ends
    this.finish({ code, reason, by: leg });
  }

  /**
   * Ends the session once; a `dead` leg is cut (it would not answer a close), the other gets a close
   * frame. What the closing peer sent before its close still reaches the other: the CSMS's answers the
   * line held, and the charger's frames waiting behind an interceptor's decision (the CSMS leg is
   * closed once they are through, or after callTimeoutMs).
   */
  private finish(end: SessionEnd, dead?: 'charger' | 'csms'): void {
    if (this.ended) return;
    if (end.by === 'csms' && this.charger.readyState === 1) {
      for (const answer of this.line.takeHeldAnswers()) this.send(this.charger, this.csms, answer);
    }
    this.ended = end;
    if (this.pingSlot >= 0) pingWheelFor(this.settings.pingIntervalMs).remove(this, this.pingSlot);
    this.line.close();
    const toCharger = codeForCharger(end.code);
    const toCsms = codeForCsms(end.code);
    const flushToCsms = end.by === 'charger' && this.csms.readyState === 1 && (this.chargerBusy || this.chargerBacklog.length > 0);
    for (const [ws, code] of [[this.charger, toCharger], [this.csms, toCsms]] as const) {
      // A leg held back is read again, or the peer's close reply would wait unread (ws) until its close timer.
      if (ws.isPaused) ws.resume();
      if (dead && this.nameOf(ws) === dead) ws.terminate();
      else if (ws === this.csms && flushToCsms) this.csmsFlush = { code, reason: clampReason(end.reason), timer: setTimeout(() => this.closeCsmsAfterFlush(), this.settings.callTimeoutMs) };
      else if (ws.readyState === 0 || ws.readyState === 1) ws.close(code, clampReason(end.reason));
    }
    const held = this.refusalLines?.held() ?? 0;
    if (held > 0) this.log.warn({ event: 'frame_refused_suppressed', count: held }, 'refused frames not logged one by one (see frames_refused_total)');
    this.interceptors.close(end);
    const listeners = this.closeListeners;
    this.closeListeners = null; // it ends once
    callListeners(listeners, this, end);
  }
}

/** A charger CALL forwarded to the CSMS: what its answer's interceptors need, and when it went (performance.now()). */
interface PendingCall {
  action: string;
  sentAt: number;
}

/** One leg as the ping rounds and back-pressure see it. */
class LegWatch {
  /** A pong came since the last ping round. */
  alive = true;
  /**
   * The proxy stopped reading it (back-pressure) at some time since the last ping round: its pong may
   * wait unread behind its frames. Held back and still delivering, a missing pong does not make it
   * dead that round; held back and delivering nothing, it gets the few excused rounds (see ping), so a
   * stalled or dead peer is still found.
   */
  heldBack = false;
  delivered = false;
  /** Answers to its own frames written over the high-water mark and not yet flushed: it is not read meanwhile. */
  unreadAnswers = 0;
  /** Bytes queued for it (not yet handed to the kernel) when the last ping was written behind them. */
  aheadOfPing = 0;
  /** Bytes were queued for it at the ping before the last. */
  queuedBefore = false;
  /** bytesFlushed of the leg when the last ping was written behind queued bytes (else -1). */
  flushedAtPing = -1;
  /** Rounds in a row its missing pong was excused without progress. */
  excusedRounds = 0;
}

/**
 * Whether a leg's peer showed since the last round that it is there and reading: its pong came, or the
 * kernel took more of the bytes queued for it when the last ping was written. The proxy queues only
 * once the kernel's buffers for the peer are full, and those empty only as the peer reads (or as TCP
 * sends to a vanished peer, which stops once they fill). When our queue has run empty the kernel may
 * still hold what the ping waits behind; that shows no progress, and is left to the few excused
 * rounds (ample on real links, whose buffers the kernel sizes to the link).
 */
function progressing(ws: Leg, w: LegWatch): boolean {
  if (w.alive) return true;
  return w.flushedAtPing >= 0 && bytesFlushed(ws) > w.flushedAtPing;
}

/** Bounded label for an injected call's answer: the charger's status word where the answer has one. */
function injectedOutcome(o: CallOutcome): string {
  if (o.kind === 'error') return 'callerror';
  const results = o.payload.setVariableResult;
  const status = o.payload.status ?? (Array.isArray(results) ? (results[0] as Record<string, unknown> | undefined)?.attributeStatus : undefined);
  return status === undefined || status === 'Accepted' ? 'accepted' : 'rejected';
}

type LegOf = Leg & { [kLegOwner]: Session };
const sessionOf = (leg: Leg): Session => (leg as LegOf)[kLegOwner];

// A leg's listeners: `this` is the leg (EventEmitter calls listeners so, in ws and in FrameSocket).
function chargerOnMessage(this: Leg, data: Buffer, isBinary: boolean): void {
  sessionOf(this).onChargerMessage(data, isBinary);
}
function csmsOnMessage(this: Leg, data: Buffer, isBinary: boolean): void {
  sessionOf(this).onCsmsMessage(data, isBinary);
}
function chargerOnClose(this: Leg, code: number, reason: Buffer): void {
  sessionOf(this).onLegClosed('charger', code, reason.toString());
}
function csmsOnClose(this: Leg, code: number, reason: Buffer): void {
  sessionOf(this).onLegClosed('csms', code, reason.toString());
}
function chargerOnError(this: Leg, err: Error): void {
  sessionOf(this).log.debug({ event: 'charger_socket_error', err: err.message });
}
/**
 * A frame the CSMS got wrong (WS_ERR_* codes: ws's names, which our framing uses too) is worth a
 * warning: it is the operator's own system. A reset is not: when a CSMS dies, every session would
 * log one at once.
 */
function csmsOnError(this: Leg, err: NodeJS.ErrnoException): void {
  const log = sessionOf(this).log;
  if (err.code?.startsWith('WS_ERR_')) log.warn({ event: 'csms_socket_error', err: err.message });
  else log.debug({ event: 'csms_socket_error', err: err.message });
}
function chargerOnPong(this: Leg): void {
  sessionOf(this).onPong('charger');
}
function csmsOnPong(this: Leg): void {
  sessionOf(this).onPong('csms');
}
