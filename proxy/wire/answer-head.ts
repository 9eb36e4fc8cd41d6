/**
 * The server's answer to a WebSocket client's opening handshake (RFC 9112 §4–5): its status line and
 * header fields, read strictly. Only what a client needs to judge a 101 is kept; a malformed head is
 * an error, never guessed at.
 */

/** Largest answer head accepted, as Node's own HTTP parser (`maxHeaderSize`). */
export const MAX_ANSWER_HEAD_BYTES = 16 * 1024;

/** A header field name (RFC 9110 §5.1: a token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters other than HTAB, which no field value may hold (RFC 9110 §5.5). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS_LINE = /^HTTP\/1\.[01] ([1-5][0-9][0-9])(?: |$)/;

/** The status code of a status line such as `HTTP/1.1 101 Switching Protocols`, or null if it is none. */
export function statusOf(line: string): number | null {
  const m = STATUS_LINE.exec(line);
  return m ? Number(m[1]) : null;
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
    if (!TOKEN.test(name)) return `Invalid header line ${JSON.stringify(line.slice(0, 40))}`;
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (CONTROL.test(value)) return `Invalid value in header ${name}`;
    const key = name.toLowerCase();
    const before = fields.get(key);
    fields.set(key, before === undefined ? value : `${before}, ${value}`);
  }
  return fields;
}
