import type { CallOutcome, ChargerCall, CsmsCall } from '../policies/interceptors/types';
import type { Frame } from './ocpp/frame';

/*
 * What interceptors see of a relayed frame. Their hooks run for every call and answer but read a
 * payload only for the few actions they handle, so the payload is parsed when first read (from the
 * frame's bytes, which nothing overwrites), not for every frame, and then kept: every read gives
 * the same object. Until then a view holds the frame's bytes (see ChargerCall). Logged or
 * serialised, a view shows the plain object it stands for (toJSON).
 */

/** A charger CALL as interceptors see it. */
export function chargerCallOf(frame: Frame): ChargerCall {
  return new CallView(frame);
}

/** A CSMS CALL as interceptors see it (the same view: its payload parsed when first read). */
export function csmsCallOf(frame: Frame): CsmsCall {
  return new CallView(frame);
}

/** An answer (CALLRESULT or CALLERROR) as interceptors and injected calls see it. */
export function outcomeOf(frame: Frame): CallOutcome {
  return frame.type === 3 ? new ResultView(frame) : new ErrorView(frame);
}

class CallView implements ChargerCall {
  readonly id: string;
  readonly action: string;
  readonly #frame: Frame;

  constructor(frame: Frame) {
    this.id = frame.id;
    this.action = frame.action!;
    this.#frame = frame;
  }

  get payload(): Record<string, unknown> {
    return this.#frame.value[3] as Record<string, unknown>;
  }

  toJSON(): ChargerCall {
    return { id: this.id, action: this.action, payload: this.payload };
  }
}

// From the CSMS, `[]` and null stand for an empty payload or details (see readFrame): read as {}.
class ResultView {
  readonly kind = 'result';
  #frame: Frame | null;
  #payload: Record<string, unknown> | null = null;

  constructor(frame: Frame) {
    this.#frame = frame;
  }

  get payload(): Record<string, unknown> {
    if (this.#payload === null) {
      this.#payload = asObject(this.#frame!.value[2]);
      this.#frame = null;
    }
    return this.#payload;
  }

  toJSON(): CallOutcome {
    return { kind: this.kind, payload: this.payload };
  }
}

class ErrorView {
  readonly kind = 'error';
  #frame: Frame | null;
  #parts: { code: string; description: string; details: Record<string, unknown> } | null = null;

  constructor(frame: Frame) {
    this.#frame = frame;
  }

  get code(): string {
    return this.parts().code;
  }

  get description(): string {
    return this.parts().description;
  }

  get details(): Record<string, unknown> {
    return this.parts().details;
  }

  toJSON(): CallOutcome {
    return { kind: this.kind, ...this.parts() };
  }

  private parts(): { code: string; description: string; details: Record<string, unknown> } {
    if (this.#parts === null) {
      const v = this.#frame!.value;
      this.#parts = { code: String(v[2]), description: String(v[3]), details: asObject(v[4]) };
      this.#frame = null;
    }
    return this.#parts;
  }
}

function asObject(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
