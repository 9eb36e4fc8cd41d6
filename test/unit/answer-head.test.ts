/**
 * The client handshake's two pure halves: the request head it writes (proxy/wire/client-handshake.ts
 * requestHead) and the answer it reads (proxy/wire/answer-head.ts), the latter cut at every place
 * the network could cut it.
 */
import t, { type Test } from 'tap';
import { AnswerReader, MAX_ANSWER_HEAD_BYTES, parseHeaderFields, statusOf, type AnswerOutcome } from '../../proxy/wire/answer-head';
import { HandshakeError, requestHead } from '../../proxy/wire/client-handshake';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** The head's lines, without the final blank line. */
function lines(url: string, protocols: string[] = ['ocpp1.6'], headers?: Record<string, string>): string[] {
  return requestHead(new URL(url), KEY, protocols, headers).slice(0, -4).split('\r\n');
}

function refused(fn: () => unknown): HandshakeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof HandshakeError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

t.test('statusOf: the code of an HTTP/1.x status line, else null', async (t) => {
  t.equal(statusOf('HTTP/1.1 101 Switching Protocols'), 101);
  t.equal(statusOf('HTTP/1.0 404 Not Found'), 404);
  t.equal(statusOf('HTTP/1.1 101'), 101, 'no reason phrase');
  t.equal(statusOf('HTTP/1.1 503 '), 503, 'an empty reason phrase');
  t.equal(statusOf('HTTP/1.1 101 Switching\tProtocols'), 101, 'HTAB in the reason phrase');
  for (const bad of ['HTTP/2 101 x', 'HTTP/1.1 1O1 x', 'HTTP/1.1 101x', 'HTTP/1.1 1010 x', 'HTTP/1.1 099 x', 'HTTP/1.1  101 x', ' HTTP/1.1 101 x', 'http/1.1 101 x', 'FOO', '',
    'HTTP/1.1 101 S\nX: y', 'HTTP/1.1 101 S\rX', 'HTTP/1.1 101 S\x00', 'HTTP/1.1 101 S\x7f']) {
    t.equal(statusOf(bad), null, JSON.stringify(bad));
  }
});

t.test('parseHeaderFields: names lower-cased, values trimmed, repeats joined', async (t) => {
  const fields = parseHeaderFields('Upgrade: websocket\r\nSec-WebSocket-Accept:\t abc= \t\r\nX-Twice: a\r\nx-twice: b\r\nX-Empty:\r\nX-Tab: a\tb');
  t.same([...(fields as Map<string, string>)], [['upgrade', 'websocket'], ['sec-websocket-accept', 'abc='], ['x-twice', 'a, b'], ['x-empty', ''], ['x-tab', 'a\tb']]);
  t.same([...(parseHeaderFields('') as Map<string, string>)], [], 'no fields');
});

t.test('parseHeaderFields: a malformed line is named, never guessed at', async (t) => {
  for (const [text, why] of [
    ['Upgrade websocket', 'no colon'],
    [': websocket', 'no name'],
    ['Upgrade : websocket', 'whitespace before the colon'],
    ['Upgrade: websocket\r\n  continued', 'obsolete line folding'],
    ['Up/grade: websocket', 'a name that is no token'],
    ['Upgrade: web\x00socket', 'NUL in a value'],
    ['Upgrade: web\nsocket', 'a bare LF in a value'],
    ['Upgrade: websocket\x7f', 'DEL in a value'],
  ] as const) {
    t.type(parseHeaderFields(text), 'string', why);
  }
});

t.test('requestHead: request line, Host, the handshake fields, the offered subprotocols', async (t) => {
  t.same(lines('ws://127.0.0.1:9000/ocpp/CP%201?x=1', ['ocpp2.0.1', 'ocpp1.6']), [
    'GET /ocpp/CP%201?x=1 HTTP/1.1',
    'Host: 127.0.0.1:9000',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${KEY}`,
    'Sec-WebSocket-Protocol: ocpp2.0.1,ocpp1.6',
  ]);
  t.notOk(lines('ws://127.0.0.1:9000/x', []).some((l) => l.startsWith('Sec-WebSocket-Protocol')), 'none offered, none named');
  const head = requestHead(new URL('ws://127.0.0.1:9000/x'), KEY, ['ocpp1.6'], { 'X-A': '1' });
  t.ok(head.endsWith('X-A: 1\r\n\r\n'), 'one blank line ends the head');
  t.equal(head.split('\r\n\r\n').length, 2, 'and only one');
});

t.test('requestHead: Host carries no port when it is the scheme default', async (t) => {
  const host = (url: string) => lines(url).find((l) => l.startsWith('Host: '));
  t.equal(host('ws://csms.example/ocpp'), 'Host: csms.example');
  t.equal(host('ws://csms.example:80/ocpp'), 'Host: csms.example');
  t.equal(host('wss://csms.example:443/ocpp'), 'Host: csms.example');
  t.equal(host('wss://csms.example:80/ocpp'), 'Host: csms.example:80', 'ws’s default is not wss’s');
  t.equal(host('ws://CSMS.Example:8080/ocpp'), 'Host: csms.example:8080');
  t.equal(host('ws://[::1]:9000/ocpp'), 'Host: [::1]:9000', 'an IPv6 literal in brackets');
});

t.test('requestHead: caller headers kept; URL credentials become Basic auth unless Authorization is given', async (t) => {
  const withCreds = 'ws://csms%20user:p%40ss@127.0.0.1:9000/ocpp';
  t.ok(lines(withCreds).includes('Authorization: Basic ' + Buffer.from('csms user:p@ss').toString('base64')), 'decoded user and password');
  const own = lines(withCreds, ['ocpp1.6'], { authorization: 'Basic b3duOm93bg==', 'X-Forwarded-For': '10.0.0.1' });
  t.same(own.filter((l) => /^authorization:/i.test(l)), ['authorization: Basic b3duOm93bg=='], "only the caller's own");
  t.ok(own.includes('X-Forwarded-For: 10.0.0.1'));
  t.notOk(lines('ws://127.0.0.1:9000/ocpp').some((l) => /^authorization:/i.test(l)), 'no credentials, no Authorization');
});

t.test('requestHead: a header or subprotocol that would break the head is refused', async (t) => {
  const url = new URL('ws://127.0.0.1:9000/ocpp');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { 'X-For': '10.0.0.1\r\nX-Evil: 1' })).kind, 'invalid', 'CRLF in a value');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { 'X-For': 'a\nb' })).kind, 'invalid', 'LF in a value');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { 'X-For': 'a\0b' })).kind, 'invalid', 'NUL in a value');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { 'X-For': 'a\x01b' })).kind, 'invalid', 'another control character');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { 'X-For': 'a\u010db' })).kind, 'invalid', 'a character past latin1 (its low byte is CR)');
  t.ok(requestHead(url, KEY, ['ocpp1.6'], { 'X-Name': 'Zoé\tx' }).includes('X-Name: Zoé\tx\r\n'), 'latin1 and HTAB are values');
  for (const own of ['Host', 'connection', 'Upgrade', 'Sec-WebSocket-Key', 'sec-websocket-version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions']) {
    t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { [own]: 'x' })).kind, 'invalid', `${own}: the handshake's own field`);
  }
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { 'Bad Name': 'x' })).kind, 'invalid', 'a name that is no token');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6, evil'])).kind, 'invalid', 'a subprotocol that is no token');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6\r\nX-Evil: 1'])).kind, 'invalid', 'CRLF in a subprotocol');
});

// ---------------------------------------------------------------------------------------------
// AnswerReader: an answer cut anywhere.

const ANSWER_101 = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n';
const FRAME = Buffer.from([0x81, 0x05, ...Buffer.from('hello')]);

/** Pushes `parts` in turn until an outcome other than 'more'; returns it, and every byte pushed after it (with its `rest`). */
function feed(parts: Buffer[]): { outcome: AnswerOutcome; at: number; after: Buffer } {
  const reader = new AnswerReader();
  for (let i = 0; i < parts.length; i++) {
    const outcome = reader.push(parts[i]!);
    if (outcome.kind !== 'more') {
      const rest = outcome.kind === 'switching' ? outcome.rest : Buffer.alloc(0);
      return { outcome, at: i, after: Buffer.concat([rest, ...parts.slice(i + 1)]) };
    }
  }
  return { outcome: { kind: 'more' }, at: parts.length, after: Buffer.alloc(0) };
}

/** `whole` cut at the given offsets. */
function cut(whole: Buffer, at: number[]): Buffer[] {
  const edges = [0, ...at, whole.length];
  return edges.slice(1).map((end, i) => whole.subarray(edges[i], end));
}

function checkSwitching(t: Test, got: ReturnType<typeof feed>, label: string, frame = FRAME): void {
  if (got.outcome.kind !== 'switching') return void t.fail(`${label}: ${JSON.stringify(got.outcome)}`);
  if (got.outcome.fields.get('sec-websocket-protocol') !== 'ocpp1.6') t.fail(`${label}: fields ${JSON.stringify([...got.outcome.fields])}`);
  if (!got.after.equals(frame)) t.fail(`${label}: the bytes after the head are ${got.after.toString('hex')}`);
}

t.test('AnswerReader: a 101 and a frame after it, cut in two at every offset, in three at every pair, one byte at a time', async (t) => {
  const whole = Buffer.concat([Buffer.from(ANSWER_101), FRAME]);
  const headEnd = ANSWER_101.length;
  for (let i = 1; i < whole.length; i++) {
    const got = feed(cut(whole, [i]));
    checkSwitching(t, got, `cut at ${i}`);
    if (got.at !== (i >= headEnd ? 0 : 1)) t.fail(`cut at ${i}: the head ended at part ${got.at}`);
  }
  for (let i = 1; i < whole.length; i++) for (let j = i + 1; j < whole.length; j++) checkSwitching(t, feed(cut(whole, [i, j])), `cut at ${i} and ${j}`);
  const bytes = feed([...whole].map((b) => Buffer.from([b])));
  checkSwitching(t, bytes, 'one byte at a time');
  t.equal(bytes.at, headEnd - 1, 'the head is whole with its last byte, not before, not after');
  t.pass(`${whole.length - 1} two-way and ${((whole.length - 1) * (whole.length - 2)) / 2} three-way cuts`);
});

t.test('AnswerReader: interim 1xx answers are skipped once whole, cut anywhere', async (t) => {
  const interim = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n';
  const whole = Buffer.concat([Buffer.from(interim + ANSWER_101), FRAME]);
  checkSwitching(t, feed([whole]), 'in one piece');
  for (let i = 1; i < whole.length; i++) checkSwitching(t, feed(cut(whole, [i])), `cut at ${i}`);
  checkSwitching(t, feed([...whole].map((b) => Buffer.from([b]))), 'one byte at a time');
  t.pass('every cut');
});

t.test('AnswerReader: another status is a refusal as soon as its status line is whole', async (t) => {
  t.same(feed([Buffer.from('HTTP/1.1 5'), Buffer.from('03 Service Unavailable\r'), Buffer.from('\nRetry-After: 5\r\n')]), { outcome: { kind: 'refused', status: 503 }, at: 2, after: Buffer.from('') });
  t.same(feed([Buffer.from('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n')]).outcome, { kind: 'refused', status: 401 });
  t.same(feed([Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\n')]).outcome, { kind: 'refused', status: 404 }, 'after an interim answer');
  t.same(feed([Buffer.from('HTTP/1.1 200 OK\r\n')]).outcome, { kind: 'refused', status: 200 }, 'a 200 is no switch either');
});

t.test('AnswerReader: malformed answers are named', async (t) => {
  const malformed = (parts: string[]) => feed(parts.map((p) => Buffer.from(p, 'latin1'))).outcome;
  t.match(malformed(['HTTP/1.1 1O1 Switching\r\n']), { kind: 'malformed', reason: /status line/ });
  t.match(malformed(['HTTP/1.1 101 S\nX: y\r\n']), { kind: 'malformed', reason: /status line/ }, 'a bare LF in the status line');
  t.match(malformed(['HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\r\n']), { kind: 'malformed', reason: /Invalid header line/ });
  t.match(malformed(['HTTP/1.1 100 Continue\r\n\r\nnonsense\r\n']), { kind: 'malformed', reason: /status line/ }, 'after an interim answer');
});

t.test('AnswerReader: a 101 head of 16 KiB is read, one byte more is refused, interim answers count', async (t) => {
  const headOf = (bytes: number, prefix = '') => {
    const bare = prefix + ANSWER_101.replace('\r\n\r\n', '\r\nX-Pad: \r\n\r\n');
    return prefix + ANSWER_101.replace('\r\n\r\n', `\r\nX-Pad: ${'a'.repeat(bytes - bare.length)}\r\n\r\n`);
  };
  const limit = Buffer.from(headOf(MAX_ANSWER_HEAD_BYTES));
  t.equal(limit.length, MAX_ANSWER_HEAD_BYTES);
  checkSwitching(t, feed([Buffer.concat([limit, FRAME])]), '16384 bytes');
  checkSwitching(t, feed(cut(Buffer.concat([limit, FRAME]), [1000, 9000, 16383])), '16384 bytes in pieces');
  t.match(feed([Buffer.from(headOf(MAX_ANSWER_HEAD_BYTES + 1))]).outcome, { kind: 'malformed', reason: /larger than 16384/ }, '16385 bytes');
  t.match(feed([Buffer.from(headOf(MAX_ANSWER_HEAD_BYTES + 1, 'HTTP/1.1 103 Early Hints\r\n\r\n'))]).outcome, { kind: 'malformed', reason: /larger than 16384/ }, '16385 with the interim answer');
  const endless = feed([Buffer.from('HTTP/1.1 101 Switching Protocols\r\n'), Buffer.from(`X-Pad: ${'a'.repeat(MAX_ANSWER_HEAD_BYTES)}`)]);
  t.match(endless.outcome, { kind: 'malformed', reason: /larger than 16384/ }, 'a head that does not end: refused once past the limit');
});
