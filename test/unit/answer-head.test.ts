/**
 * The client handshake's two pure halves: the request head it writes (proxy/wire/client-handshake.ts
 * requestHead) and the answer head it reads (proxy/wire/answer-head.ts).
 */
import t from 'tap';
import { parseHeaderFields, statusOf } from '../../proxy/wire/answer-head';
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
  for (const bad of ['HTTP/2 101 x', 'HTTP/1.1 1O1 x', 'HTTP/1.1 101x', 'HTTP/1.1 1010 x', 'HTTP/1.1 099 x', 'HTTP/1.1  101 x', ' HTTP/1.1 101 x', 'http/1.1 101 x', 'FOO', '']) {
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
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6'], { 'Bad Name': 'x' })).kind, 'invalid', 'a name that is no token');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6, evil'])).kind, 'invalid', 'a subprotocol that is no token');
  t.equal(refused(() => requestHead(url, KEY, ['ocpp1.6\r\nX-Evil: 1'])).kind, 'invalid', 'CRLF in a subprotocol');
});
