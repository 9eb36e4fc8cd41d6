import { CLOSE_ARRAY, COMMA, hasEscape, LETTER_N, MINUS, OPEN_ARRAY, OPEN_OBJECT, QUOTE, skipJsonValue, skipWhitespace } from './json-bytes';

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

/** A well-formed frame's header; the payload is parsed only if someone asks for it. */
export interface Frame {
  type: 2 | 3 | 4 | 5 | 6;
  id: string;
  /** Set for CALL and SEND. */
  action?: string;
  /** The id was a JSON integer (only the CSMS's rule allows one; see PayloadRule). */
  numericId: boolean;
  /**
   * The parsed array, built on first use: for interceptors that read a payload. The relay forwards
   * the original bytes and never needs it.
   */
  readonly value: unknown[];
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
 * Reads a frame's header and checks its shape (element count and element types per OCPP-J), in one
 * pass over the bytes that also checks the whole frame is JSON (the same JSON that JSON.parse
 * accepts) without parsing the payload. `data` is valid UTF-8 (the legs check it); a string is
 * encoded as UTF-8 first, so a lone surrogate in it reads as U+FFFD.
 * Returns a {@link Frame} or a {@link FrameProblem}; never throws.
 */
export function readFrame(data: Buffer | string, knownTypes: ReadonlySet<number> = TYPES_CLASSIC, rule: PayloadRule = 'strict'): Frame | FrameProblem {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  const first = skipWhitespace(b, 0);
  if (b[first] !== OPEN_ARRAY) {
    const end = skipJsonValue(b, first);
    return end >= 0 && skipWhitespace(b, end) === b.length ? notArray() : notJson();
  }
  const count = readElements(b, first);
  if (count < 0) return notJson();
  const type = count > 0 ? numberAt(b, 0) : undefined;
  if (type === undefined || !Number.isInteger(type)) return { problem: 'bad_type', detail: 'message type is not an integer' };
  const csmsIdRule = rule === 'lenient' || type === CALLRESULT || type === CALLERROR;
  const rawId = count > 1 ? idAt(b, csmsIdRule) : undefined;
  const id = rawId === undefined ? undefined : String(rawId);
  if (!knownTypes.has(type)) return { problem: 'unknown_type', type, id: rawId, detail: `message type ${type} is not supported` };
  if (id === undefined) {
    return {
      problem: 'bad_id', type,
      detail: csmsIdRule ? `message id must be a string of 1..${MAX_CSMS_MESSAGE_ID_LENGTH} characters or a non-negative integer`
        : `message id must be a string of 1..${MAX_MESSAGE_ID_LENGTH} characters`,
    };
  }
  if (count !== LENGTHS[type]) return { problem: 'bad_shape', type, id: rawId, detail: `message type ${type} must have ${LENGTHS[type]} elements` };
  const numericId = typeof rawId === 'number';
  switch (type) {
    case CALL:
    case SEND: {
      const action = kindAt(b, 2) === QUOTE ? stringAt(b, 2) : '';
      if (action.length === 0) return { problem: 'bad_shape', type, id: rawId, detail: 'action must be a non-empty string' };
      if (!isPayloadAt(b, 3, rule)) return { problem: 'bad_shape', type, id: rawId, detail: 'payload must be a JSON object' };
      return new ReadFrame(type, id, action, numericId, b);
    }
    case CALLRESULT:
      if (!isPayloadAt(b, 2, rule)) return { problem: 'bad_shape', type, id: rawId, detail: 'payload must be a JSON object' };
      return new ReadFrame(type, id, undefined, numericId, b);
    default: // CALLERROR, CALLRESULTERROR
      if (kindAt(b, 2) !== QUOTE || kindAt(b, 3) !== QUOTE || !(isPayloadAt(b, 4, rule) || (rule === 'lenient' && kindAt(b, 4) === LETTER_N))) {
        return { problem: 'bad_shape', type, id: rawId, detail: 'error frame must be [type, id, code, description, {details}]' };
      }
      return new ReadFrame(type as 4 | 5, id, undefined, numericId, b);
  }
}

const notJson = (): FrameProblem => ({ problem: 'not_json', detail: 'frame is not valid JSON' });
const notArray = (): FrameProblem => ({ problem: 'not_array', detail: 'frame is not a JSON array' });

class ReadFrame implements Frame {
  #bytes: Buffer | null;
  #value: unknown[] | null = null;

  constructor(readonly type: Frame['type'], readonly id: string, readonly action: string | undefined, readonly numericId: boolean, bytes: Buffer) {
    this.#bytes = bytes;
  }

  get value(): unknown[] {
    if (this.#value === null) {
      this.#value = JSON.parse(this.#bytes!.toString()) as unknown[];
      this.#bytes = null; // parsed once; the bytes are not kept for it
    }
    return this.#value;
  }
}

/** Where the first elements of the frame last read start and end (OCPP-J reads five at most). */
const ELEMENTS_READ = 5;
const bounds = new Float64Array(ELEMENTS_READ * 2); // not Int32: maxFrameBytes has no upper bound

/**
 * Checks the array at `first` (its '[') and the whitespace after it up to the end, noting where its
 * first elements are: the element count, or -1 when the bytes are not one JSON value.
 */
function readElements(b: Buffer, first: number): number {
  let i = skipWhitespace(b, first + 1);
  let count = 0;
  if (b[i] === CLOSE_ARRAY) i++;
  else {
    for (;;) {
      const end = skipJsonValue(b, i);
      if (end < 0) return -1;
      if (count < ELEMENTS_READ) {
        bounds[count * 2] = i;
        bounds[count * 2 + 1] = end;
      }
      count++;
      i = skipWhitespace(b, end);
      if (b[i] === COMMA) i = skipWhitespace(b, i + 1);
      else if (b[i] === CLOSE_ARRAY) {
        i++;
        break;
      } else return -1;
    }
  }
  return skipWhitespace(b, i) === b.length ? count : -1;
}

/** The first byte of element `k` (it tells the JSON type: '"', '{', '[', 'n', a digit, ...). */
function kindAt(b: Buffer, k: number): number {
  return b[bounds[k * 2]!]!;
}

/** Element `k` as a number, or undefined when it is not a JSON number. */
function numberAt(b: Buffer, k: number): number | undefined {
  const start = bounds[k * 2]!;
  const end = bounds[k * 2 + 1]!;
  const c = b[start]!;
  if (end - start === 1 && c >= 0x30 && c <= 0x39) return c - 0x30; // the usual one-digit type
  return c === MINUS || (c >= 0x30 && c <= 0x39) ? Number(b.toString('latin1', start, end)) : undefined;
}

/** Element `k`, a JSON string token, decoded. */
function stringAt(b: Buffer, k: number): string {
  const start = bounds[k * 2]!;
  const end = bounds[k * 2 + 1]!;
  return hasEscape(b, start, end) ? (JSON.parse(b.toString('utf8', start, end)) as string) : b.toString('utf8', start + 1, end - 1);
}

/**
 * The message id as its sender wrote it (a string, or an integer where the CSMS's rule allows one;
 * an integer is read as its decimal text, so a charger that echoes the CSMS's 42 as "42" still
 * answers the call it was asked: whether a number may answer a call is CallLine's to decide), or
 * undefined when the rule refuses it.
 */
function idAt(b: Buffer, csmsIdRule: boolean): string | number | undefined {
  if (kindAt(b, 1) === QUOTE) {
    const id = stringAt(b, 1);
    return id.length > 0 && id.length <= (csmsIdRule ? MAX_CSMS_MESSAGE_ID_LENGTH : MAX_MESSAGE_ID_LENGTH) ? id : undefined;
  }
  if (!csmsIdRule) return undefined;
  const n = numberAt(b, 1);
  return n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Element `k` is a payload: a JSON object, or (the CSMS's rule) an empty array. */
function isPayloadAt(b: Buffer, k: number, rule: PayloadRule): boolean {
  const start = bounds[k * 2]!;
  if (b[start] === OPEN_OBJECT) return true;
  return rule === 'lenient' && b[start] === OPEN_ARRAY && skipWhitespace(b, start + 1) === bounds[k * 2 + 1]! - 1;
}

/** Narrowing helper. */
export function isProblem(f: Frame | FrameProblem): f is FrameProblem {
  return (f as FrameProblem).problem !== undefined;
}
