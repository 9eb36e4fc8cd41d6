/**
 * OCPP-J frame header reading. The relay forwards the original text; this module only tells what
 * a frame is (type, id, action) and whether it is well-formed enough to forward.
 */

export const CALL = 2;
export const CALLRESULT = 3;
export const CALLERROR = 4;
/** OCPP 2.1 only. */
export const CALLRESULTERROR = 5;
/** OCPP 2.1 only: unconfirmed message, never answered. */
export const SEND = 6;

/** Longest message id OCPP-J allows (room for a UUID). */
export const MAX_MESSAGE_ID_LENGTH = 36;
/**
 * Longest message id accepted where the operator's CSMS chose it: its own frames, and a charger's
 * answer to its call (see readFrame). A legacy CSMS whose ids run past 36 characters worked with its
 * chargers before the proxy stood in between; the bound keeps remembered ids small.
 */
export const MAX_CSMS_MESSAGE_ID_LENGTH = 128;

/** A well-formed frame's header, plus the parsed value for interceptors that need the payload. */
export interface Frame {
  type: 2 | 3 | 4 | 5 | 6;
  id: string;
  /** Set for CALL and SEND. */
  action?: string;
  /** The parsed array; read by interceptors only, never re-serialised for forwarding. */
  value: unknown[];
}

/** Why a frame cannot be forwarded, and what an OCPP-J peer should be told. */
export interface FrameProblem {
  problem: 'not_json' | 'not_array' | 'bad_type' | 'bad_id' | 'bad_shape' | 'unknown_type';
  /**
   * The message id when it could be read, as its sender wrote it (a string, or an integer from the
   * CSMS), so a CALLERROR answer carries the very id it answers.
   */
  id?: string | number;
  /** The message type number when it could be read. */
  type?: number;
  detail: string;
}

/** The frame types a subprotocol knows: 5 and 6 exist only in OCPP 2.1. */
export function typesFor(subprotocol: string): ReadonlySet<number> {
  return subprotocol === 'ocpp2.1' ? TYPES_21 : TYPES_CLASSIC;
}
const TYPES_CLASSIC: ReadonlySet<number> = new Set([CALL, CALLRESULT, CALLERROR]);
const TYPES_21: ReadonlySet<number> = new Set([CALL, CALLRESULT, CALLERROR, CALLRESULTERROR, SEND]);

/** Expected element count per message type. */
const LENGTHS: Record<number, number> = { 2: 4, 3: 3, 4: 5, 5: 5, 6: 4 };

/**
 * How strictly frames are judged. `strict` (frames from chargers, which the proxy guards the CSMS
 * against): payloads and error details are JSON objects, and a CALL's id is a string of 1..36
 * characters. `lenient` (frames from the operator's own CSMS, which its chargers took before the
 * proxy stood in between): an empty array also stands for an empty payload or details, as PHP's
 * json_encode writes one, error details may be null, and message ids may be longer (up to
 * MAX_CSMS_MESSAGE_ID_LENGTH) or non-negative integers, read as their decimal text.
 * A charger's CALLRESULT or CALLERROR echoes an id the CSMS (or the proxy) chose, so under either
 * rule it takes the CSMS's id rule; the session relays it only when that id is awaiting an answer,
 * and a number only when the CSMS wrote that call's id as one (CallLine.answerFromCharger).
 */
export type PayloadRule = 'strict' | 'lenient';

/**
 * Reads a frame's header and checks its shape (element count and element types per OCPP-J).
 * Returns a {@link Frame} or a {@link FrameProblem}; never throws.
 */
export function readFrame(text: string, knownTypes: ReadonlySet<number> = TYPES_CLASSIC, rule: PayloadRule = 'strict'): Frame | FrameProblem {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'not_json', detail: 'frame is not valid JSON' };
  }
  if (!Array.isArray(value)) return { problem: 'not_array', detail: 'frame is not a JSON array' };
  const type = value[0];
  if (typeof type !== 'number' || !Number.isInteger(type)) return { problem: 'bad_type', detail: 'message type is not an integer' };
  const csmsIdRule = rule === 'lenient' || type === CALLRESULT || type === CALLERROR;
  const id = messageIdOf(value[1], csmsIdRule);
  const idAsSent = id === undefined ? undefined : value[1] as string | number;
  if (!knownTypes.has(type)) return { problem: 'unknown_type', type, id: idAsSent, detail: `message type ${type} is not supported` };
  if (id === undefined) {
    return {
      problem: 'bad_id', type,
      detail: csmsIdRule ? `message id must be a string of 1..${MAX_CSMS_MESSAGE_ID_LENGTH} characters or a non-negative integer`
        : `message id must be a string of 1..${MAX_MESSAGE_ID_LENGTH} characters`,
    };
  }
  if (value.length !== LENGTHS[type]) return { problem: 'bad_shape', type, id: idAsSent, detail: `message type ${type} must have ${LENGTHS[type]} elements` };
  switch (type) {
    case CALL:
    case SEND:
      if (typeof value[2] !== 'string' || value[2].length === 0) return { problem: 'bad_shape', type, id: idAsSent, detail: 'action must be a non-empty string' };
      if (!isPayload(value[3], rule)) return { problem: 'bad_shape', type, id: idAsSent, detail: 'payload must be a JSON object' };
      return { type, id, action: value[2], value };
    case CALLRESULT:
      if (!isPayload(value[2], rule)) return { problem: 'bad_shape', type, id: idAsSent, detail: 'payload must be a JSON object' };
      return { type, id, value };
    default: // CALLERROR, CALLRESULTERROR
      if (typeof value[2] !== 'string' || typeof value[3] !== 'string' || !(isPayload(value[4], rule) || (rule === 'lenient' && value[4] === null))) {
        return { problem: 'bad_shape', type, id: idAsSent, detail: 'error frame must be [type, id, code, description, {details}]' };
      }
      return { type: type as 4 | 5, id, value };
  }
}

/**
 * A frame's message id as text, or undefined when the rule refuses it. Under the CSMS's rule an
 * integer id reads as its decimal text, so a charger that echoes the CSMS's 42 as "42" still answers
 * the call it was asked (whether a number may answer a call is CallLine's to decide).
 */
function messageIdOf(raw: unknown, csmsIdRule: boolean): string | undefined {
  if (typeof raw === 'string') {
    return raw.length > 0 && raw.length <= (csmsIdRule ? MAX_CSMS_MESSAGE_ID_LENGTH : MAX_MESSAGE_ID_LENGTH) ? raw : undefined;
  }
  return csmsIdRule && Number.isSafeInteger(raw) && (raw as number) >= 0 ? String(raw) : undefined;
}

/** Narrowing helper. */
export function isProblem(f: Frame | FrameProblem): f is FrameProblem {
  return (f as FrameProblem).problem !== undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPayload(v: unknown, rule: PayloadRule): boolean {
  return isObject(v) || (rule === 'lenient' && Array.isArray(v) && v.length === 0);
}
