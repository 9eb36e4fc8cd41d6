/**
 * The server's answer to a WebSocket client's opening handshake (RFC 9112 §4–5): its status line and
 * header fields, read strictly. Only what a client needs to judge a 101 is kept; a malformed head is
 * an error, never guessed at.
 */
import { isFieldText, isToken, trimOws } from '../http-syntax';

/** Largest answer accepted before its 101 head has ended (interim 1xx answers included), as Node's own HTTP parser (`maxHeaderSize`). */
export const MAX_ANSWER_HEAD_BYTES = 16 * 1024;

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5][0-9][0-9])(?: |$)/;

/** The status code of a status line such as `HTTP/1.1 101 Switching Protocols`, or null if it is none. */
export function statusOf(line: string): number | null {
  const m = STATUS_LINE.exec(line);
  return m && isFieldText(line) ? Number(m[1]) : null;
}

/**
 * The header fields of a head (the text between the status line's CRLF and the blank line), names
 * lower-cased and a repeated field's values joined with ", " (RFC 9110 §5.3, as Node does), or the
 * reason it is malformed: a line without a colon, a name that is no token (which also refuses
 * obsolete line folding and whitespace before the colon), a control character in a value.
 */
export function parseHeaderFields(text: string): Map<string, string> | string {
  const fields = new Map<string, string>();
  if (text === '') return fields;
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!isToken(name)) return `Invalid header line ${JSON.stringify(line.slice(0, 40))}`;
    const value = trimOws(line.slice(colon + 1));
    if (!isFieldText(value)) return `Invalid value in header ${name}`;
    const key = name.toLowerCase();
    const before = fields.get(key);
    fields.set(key, before === undefined ? value : `${before}, ${value}`);
  }
  return fields;
}

/** What {@link AnswerReader.push} has made of the answer so far. */
export type AnswerOutcome =
  /** Not whole yet: push more. */
  | { kind: 'more' }
  /** A whole 101 head; `rest` arrived after it (the first frames). */
  | { kind: 'switching'; fields: Map<string, string>; rest: Buffer }
  /** A final status other than 101, judged from its status line alone. */
  | { kind: 'refused'; status: number }
  | { kind: 'malformed'; reason: string };

const MORE: AnswerOutcome = { kind: 'more' };

/**
 * Reads an answer however the network cuts it, up to its first final status: interim 1xx answers
 * (100 Continue, 103 Early Hints) are skipped once whole, as RFC 9110 §15.2 asks and Node does; a
 * 101 is read to its blank line; any other status is a refusal as soon as its status line is whole,
 * so a server that sends one and stalls is not waited for. Bytes are copied into a buffer that grows
 * by doubling, and no byte is searched twice: an answer trickled in one byte at a time costs what
 * one read would.
 */
export class AnswerReader {
  private store: Buffer | null = null;
  /** Whether `store` is ours to append to (the first chunk is used as it came). */
  private owned = false;
  private length = 0;
  /** Where the current head (after any interim ones) begins. */
  private start = 0;
  /** Where its status line ends, once known (-1 before). */
  private lineEnd = -1;
  private status = 0;
  /** How far the bytes have been searched. */
  private scannedTo = 0;

  push(chunk: Buffer): AnswerOutcome {
    const buf = this.append(chunk);
    for (;;) {
      if (this.lineEnd === -1) {
        const lineEnd = buf.indexOf('\r\n', Math.max(this.start, this.scannedTo - 1));
        if (lineEnd === -1) break;
        const status = statusOf(buf.toString('latin1', this.start, lineEnd));
        if (status === null) return { kind: 'malformed', reason: 'Invalid HTTP status line' };
        if (status >= 200) return { kind: 'refused', status };
        this.lineEnd = lineEnd;
        this.status = status;
      }
      const headEnd = buf.indexOf('\r\n\r\n', Math.max(this.lineEnd, this.scannedTo - 3));
      if (headEnd === -1 || headEnd + 4 > MAX_ANSWER_HEAD_BYTES) break;
      if (this.status === 101) {
        const fields = parseHeaderFields(buf.toString('latin1', this.lineEnd + 2, headEnd));
        if (typeof fields === 'string') return { kind: 'malformed', reason: fields };
        return { kind: 'switching', fields, rest: buf.subarray(headEnd + 4) };
      }
      // An interim answer, whole: the one that counts follows it.
      this.start = this.scannedTo = headEnd + 4;
      this.lineEnd = -1;
    }
    if (buf.length > MAX_ANSWER_HEAD_BYTES) return { kind: 'malformed', reason: `Answer head larger than ${MAX_ANSWER_HEAD_BYTES} bytes` };
    this.scannedTo = buf.length;
    return MORE;
  }

  /** Everything received so far, `chunk` appended. */
  private append(chunk: Buffer): Buffer {
    if (this.store === null) {
      this.store = chunk;
      this.length = chunk.length;
      return chunk;
    }
    const needed = this.length + chunk.length;
    if (!this.owned || needed > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, 2 * this.length, 1024));
      this.store.copy(grown, 0, 0, this.length);
      this.store = grown;
      this.owned = true;
    }
    chunk.copy(this.store, this.length);
    this.length = needed;
    return this.store.subarray(0, needed);
  }
}
