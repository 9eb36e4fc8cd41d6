/**
 * Our own RFC 6455 layer (proxy/wire/) with the real `ws` package both ways (our server with a ws
 * client, our client with a ws server), acceptWebSocket's refusals and its 101, and connectWebSocket's
 * outcomes (HandshakeError kinds).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { connectWebSocket, type ConnectOptions, type HandshakeError } from '../../proxy/wire/client-handshake';
import { FrameSocket } from '../../proxy/wire/frame-socket';
import { acceptWebSocket } from '../../proxy/wire/server-handshake';
import { freePort, sleep, waitFor } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { TEST_PKI_DIR } from '../helpers/proxy';
import { OP, noop, frame, RawPeer, record, texts, bounded, acceptFor } from '../helpers/wire';
import { KEY_ACCEPT, upgradeRequest, rawUpgrade, startOurServer, startWsServer, startHandWrittenServer, switching, refusal } from '../helpers/wire-handshakes';

/** The dial options most cases use. */
const DIAL = { timeoutMs: 3000, maxPayload: 1 << 20 };

// ---------------------------------------------------------------------------------------------
// Interoperability with ws.

/** Text, binary, small and 70 KB frames both ways, and ping/pong both ways. */
async function exchange(t: Test, ours: FrameSocket, theirs: WebSocket): Promise<void> {
  const seen = record(ours);
  const got: { data: Buffer; isBinary: boolean }[] = [];
  theirs.on('message', (d: WebSocket.RawData, isBinary: boolean) => got.push({ data: d as Buffer, isBinary }));
  ours.resume();
  const small = randomBytes(100);
  const big = randomBytes(70 * 1024);
  const bigText = 'ünïcødé ✓ '.repeat(4480); // 16 bytes × 4480 = 70 KB
  for (const side of [(d: Buffer | string, binary: boolean) => ours.send(d, { binary }), (d: Buffer | string, binary: boolean) => theirs.send(d, { binary })]) {
    side('hello ✓', false);
    side(small, true);
    side(big, true);
    side(bigText, false);
  }
  await waitFor(() => got.length === 4 && seen.messages.length === 4, 'all 8 messages');
  for (const [who, list] of [['ws got', got], ['we got', seen.messages]] as const) {
    t.same(list.map((m) => m.isBinary), [false, true, true, false], `${who}: isBinary`);
    t.equal(list[0]!.data.toString(), 'hello ✓', `${who}: text`);
    t.ok(list[1]!.data.equals(small), `${who}: 100 B binary`);
    t.ok(list[2]!.data.equals(big), `${who}: 70 KB binary`);
    t.equal(list[3]!.data.toString(), bigText, `${who}: 70 KB text`);
  }
  const theirPongs: Buffer[] = [];
  theirs.on('pong', (p: Buffer) => theirPongs.push(p));
  theirs.ping(Buffer.from('from ws'));
  ours.ping();
  await waitFor(() => theirPongs.length && seen.pongs.length, 'pongs both ways');
  t.equal(theirPongs[0]!.toString(), 'from ws', 'we answer ws’s ping with its payload');
  t.equal(seen.pongs[0]!.length, 0, 'ws answers our ping');
  t.same(seen.errors, [], 'no error on our side');
}

/** A ws client connected to our server (acceptWebSocket), both sides open, ours resumed and recorded. */
async function wsClientOnOurServer(t: Test, maxPayload?: number): Promise<{ client: WebSocket; ours: FrameSocket; seen: ReturnType<typeof record> }> {
  const server = await startOurServer(t, { protocol: 'ocpp1.6', ...(maxPayload ? { maxPayload } : {}) });
  const client = new WebSocket(server.url, ['ocpp1.6']);
  client.on('error', noop);
  t.teardown(() => client.terminate());
  const opened = new Promise((r) => client.once('open', r));
  const ours = (await server.next())!;
  const seen = record(ours);
  ours.resume();
  await opened;
  return { client, ours, seen };
}

/** Our client (connectWebSocket) connected to a ws server, ours resumed and recorded. */
async function oursOnWsServer(t: Test): Promise<{ ours: FrameSocket; seen: ReturnType<typeof record>; theirs: WebSocket }> {
  const server = await startWsServer(t, { handleProtocols: () => 'ocpp1.6' });
  const ours = await connectWebSocket(server.url, ['ocpp1.6'], DIAL);
  t.teardown(() => ours.terminate());
  const seen = record(ours);
  ours.resume();
  const theirs = (await server.next())!;
  return { ours, seen, theirs };
}

/** Our dial's refusal by a server answering every upgrade with `answer`. */
async function refusedBy(t: Test, answer: Parameters<typeof startHandWrittenServer>[1], dial: ConnectOptions = DIAL): Promise<HandshakeError> {
  const server = await startHandWrittenServer(t, answer);
  return refusal(t, connectWebSocket(server.url, ['ocpp1.6'], dial));
}

/** ws's 'close' as [code, reason]. */
const wsClosed = (ws: WebSocket) => new Promise<[number, string]>((r) => ws.once('close', (code: number, reason: Buffer) => r([code, reason.toString()])));

t.test('our server (acceptWebSocket) with a ws client', async (t) => {
  bounded(t, 'messages and pings both ways', async (t) => {
    const server = await startOurServer(t, { protocol: 'ocpp1.6' });
    const client = new WebSocket(server.url, ['ocpp1.6']);
    client.on('error', noop);
    t.teardown(() => client.terminate());
    const opened = new Promise((r) => client.once('open', r));
    const ours = await server.next();
    await opened;
    t.equal(client.protocol, 'ocpp1.6', 'ws sees the subprotocol');
    t.equal(client.extensions, '', 'no extension negotiated although ws offers permessage-deflate');
    t.ok(ours, 'accepted');
    await exchange(t, ours!, client);
  });

  bounded(t, 'ws closes with 4001 and a reason', async (t) => {
    const { client, ours, seen } = await wsClientOnOurServer(t);
    const theirClose = wsClosed(client);
    client.close(4001, 'bye from ws');
    t.equal((await theirClose)[0], 4001, 'ws sees our echo of its code');
    await waitFor(() => seen.closes.length, "our 'close'");
    t.same(seen.closes.map((c) => [c.code, c.reason]), [[4001, 'bye from ws']]);
  });

  bounded(t, 'we close with 1001 and a reason', async (t) => {
    const { client, ours, seen } = await wsClientOnOurServer(t);
    const theirClose = wsClosed(client);
    ours.close(1001, 'going away');
    t.same(await theirClose, [1001, 'going away'], 'ws sees our code and reason');
    await waitFor(() => seen.closes.length, "our 'close'");
    t.equal(seen.closes[0]!.code, 1001, 'ws echoed the code');
  });

  bounded(t, 'a ws client sending over maxPayload gets 1009', async (t) => {
    const { client, seen } = await wsClientOnOurServer(t, 1000);
    const theirClose = wsClosed(client);
    client.send('x'.repeat(1001));
    t.equal((await theirClose)[0], 1009);
    t.equal(seen.errors[0]?.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    t.same(seen.messages, []);
  });
});

t.test('our client (connectWebSocket) with a ws WebSocketServer', async (t) => {
  bounded(t, 'messages and pings both ways', async (t) => {
    const server = await startWsServer(t, { handleProtocols: (offered) => (offered.has('ocpp1.6') ? 'ocpp1.6' : false) });
    const ours = await connectWebSocket(server.url, ['ocpp2.0.1', 'ocpp1.6'], DIAL);
    t.teardown(() => ours.terminate());
    const theirs = await server.next();
    t.equal(ours.protocol, 'ocpp1.6', 'subprotocol chosen by the server');
    t.equal(ours.isPaused, true, 'resolved paused');
    t.equal(ours.readyState, 1, 'OPEN');
    await exchange(t, ours, theirs);
  });

  bounded(t, 'ws server closes with 4002 and a reason', async (t) => {
    const { ours, seen, theirs } = await oursOnWsServer(t);
    const theirClose = wsClosed(theirs);
    theirs.close(4002, 'bye from ws server');
    await waitFor(() => seen.closes.length, "our 'close'");
    t.same(seen.closes.map((c) => [c.code, c.reason]), [[4002, 'bye from ws server']]);
    t.equal((await theirClose)[0], 4002, 'ws server sees our echo');
  });

  bounded(t, 'we close with 1000 and a reason', async (t) => {
    const { ours, seen, theirs } = await oursOnWsServer(t);
    const theirClose = wsClosed(theirs);
    ours.close(1000, 'done');
    t.same(await theirClose, [1000, 'done']);
    await waitFor(() => seen.closes.length, "our 'close'");
    t.equal(seen.closes[0]!.code, 1000);
  });
});

// ---------------------------------------------------------------------------------------------
// acceptWebSocket.

t.test('acceptWebSocket', async (t) => {
  const refusals: { name: string; request: string; status: number; versionHeader?: boolean }[] = [
    { name: 'POST', request: upgradeRequest({}, 'POST'), status: 405 },
    { name: 'PUT', request: upgradeRequest({}, 'PUT'), status: 405 },
    { name: 'Upgrade: h2c', request: upgradeRequest({ Upgrade: 'h2c' }), status: 400 },
    { name: 'no Sec-WebSocket-Key', request: upgradeRequest({ 'Sec-WebSocket-Key': null }), status: 400 },
    { name: 'a key of 15 bytes', request: upgradeRequest({ 'Sec-WebSocket-Key': Buffer.alloc(15, 1).toString('base64') }), status: 400 },
    { name: 'a key of 17 bytes', request: upgradeRequest({ 'Sec-WebSocket-Key': Buffer.alloc(17, 1).toString('base64') }), status: 400 },
    { name: 'a key with a character outside base64', request: upgradeRequest({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZ-==' }), status: 400 },
    { name: 'a key with a single =', request: upgradeRequest({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ=' }), status: 400 },
    { name: 'Sec-WebSocket-Version 12', request: upgradeRequest({ 'Sec-WebSocket-Version': '12' }), status: 400, versionHeader: true },
    { name: 'Sec-WebSocket-Version 14', request: upgradeRequest({ 'Sec-WebSocket-Version': '14' }), status: 400, versionHeader: true },
    { name: 'no Sec-WebSocket-Version', request: upgradeRequest({ 'Sec-WebSocket-Version': null }), status: 400, versionHeader: true },
  ];
  for (const r of refusals) {
    bounded(t, `${r.name} → ${r.status}, null, socket destroyed`, async (t) => {
      const server = await startOurServer(t, { protocol: 'ocpp1.6' });
      const answer = await rawUpgrade(server.port, r.request);
      t.equal(answer.status, r.status, 'status');
      if (r.versionHeader) t.equal(answer.headers['sec-websocket-version'], '13, 8', 'Sec-WebSocket-Version: 13, 8');
      t.equal(answer.headers['sec-websocket-accept'], undefined, 'no Sec-WebSocket-Accept');
      t.equal(await server.next(), null, 'acceptWebSocket returned null');
      answer.socket.resume();
      await waitFor(() => answer.closed(), 'the socket destroyed');
    });
  }

  bounded(t, 'a refused client that keeps its side open is still cut', async (t) => {
    const server = await startOurServer(t, { protocol: 'ocpp1.6' });
    const socket = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', noop);
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.resume();
    socket.write(upgradeRequest({}, 'POST'));
    t.equal(await server.next(), null);
    const start = Date.now();
    // it learns that the server's side is gone when it writes (RST, then EPIPE)
    await waitFor(() => closed || void socket.write('x'), 'the socket destroyed', 5000, 50);
    t.ok(Date.now() - start < 3000, `cut after ${Date.now() - start} ms`);
  });

  bounded(t, '101 with Sec-WebSocket-Accept and the chosen subprotocol; a paused server-side FrameSocket', async (t) => {
    const server = await startOurServer(t, { protocol: 'ocpp1.6' });
    const answer = await rawUpgrade(server.port, upgradeRequest({ 'Sec-WebSocket-Protocol': 'ocpp2.0.1, ocpp1.6' }));
    t.equal(answer.status, 101);
    t.equal(answer.headers['upgrade']?.toLowerCase(), 'websocket');
    t.equal(answer.headers['connection']?.toLowerCase(), 'upgrade');
    t.equal(answer.headers['sec-websocket-accept'], KEY_ACCEPT, 'accept of the RFC sample key');
    t.equal(answer.headers['sec-websocket-protocol'], 'ocpp1.6');
    t.equal(answer.headers['sec-websocket-extensions'], undefined, 'no extension');
    const ws = (await server.next())!;
    t.ok(ws instanceof FrameSocket, 'a FrameSocket');
    t.equal(ws.isPaused, true, 'paused');
    t.equal(ws.readyState, 1, 'OPEN');
    t.equal(ws.protocol, 'ocpp1.6');
    const seen = record(ws);
    const peer = new RawPeer(answer.socket, true, answer.rest);
    peer.send({ opcode: OP.text, payload: 'hi' });
    await sleep(100);
    t.same(seen.messages, [], 'nothing read before resume()');
    ws.resume();
    await waitFor(() => seen.messages.length, 'the message');
    t.same(texts(seen), ['hi']);
    ws.send('back', { binary: false });
    const f = await peer.next();
    t.same([f.opcode, f.masked, f.payload.toString()], [OP.text, false, 'back'], 'server side: unmasked');
    peer.send({ opcode: OP.text, payload: 'unmasked', mask: false });
    await waitFor(() => seen.errors.length, "'error'");
    t.equal(seen.errors[0]!.code, 'WS_ERR_EXPECTED_MASK', 'server side: masking required');
  });

  bounded(t, 'protocol false: no Sec-WebSocket-Protocol header', async (t) => {
    const server = await startOurServer(t, { protocol: false });
    const answer = await rawUpgrade(server.port, upgradeRequest({ 'Sec-WebSocket-Protocol': null }));
    t.equal(answer.status, 101);
    t.equal(answer.headers['sec-websocket-protocol'], undefined);
    t.ok(await server.next());
    answer.socket.destroy();
  });

  bounded(t, 'Sec-WebSocket-Version 8 and a mixed-case Upgrade token are accepted', async (t) => {
    const server = await startOurServer(t, { protocol: 'ocpp1.6' });
    const v8 = await rawUpgrade(server.port, upgradeRequest({ 'Sec-WebSocket-Version': '8' }));
    t.equal(v8.status, 101, 'version 8');
    const mixed = await rawUpgrade(server.port, upgradeRequest({ Upgrade: 'WebSocket', Connection: 'keep-alive, Upgrade' }));
    t.equal(mixed.status, 101, 'Upgrade: WebSocket');
    v8.socket.destroy();
    mixed.socket.destroy();
  });

  bounded(t, 'an offered permessage-deflate is not accepted', async (t) => {
    const server = await startOurServer(t, { protocol: 'ocpp1.6' });
    const answer = await rawUpgrade(server.port, upgradeRequest({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }));
    t.equal(answer.status, 101);
    t.equal(answer.headers['sec-websocket-extensions'], undefined);
    answer.socket.destroy();
  });

  bounded(t, 'frames sent with the request (head) are delivered after resume()', async (t) => {
    const server = await startOurServer(t, { protocol: 'ocpp1.6' });
    const request = Buffer.concat([Buffer.from(upgradeRequest()), frame({ opcode: OP.text, payload: 'in the same write as the request', mask: true })]);
    const answer = await rawUpgrade(server.port, request);
    t.equal(answer.status, 101);
    const ws = (await server.next())!;
    const seen = record(ws);
    const peer = new RawPeer(answer.socket, true, answer.rest);
    await sleep(100);
    t.same(seen.messages, [], 'held while paused');
    ws.resume();
    await waitFor(() => seen.messages.length, 'the message');
    t.same(texts(seen), ['in the same write as the request']);
    peer.socket.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
// connectWebSocket.

t.test('connectWebSocket', async (t) => {
  bounded(t, 'the request: GET, version 13, a valid key, the offered subprotocols, custom headers, no extension', async (t) => {
    const server = await startWsServer(t, { handleProtocols: () => 'ocpp1.6' });
    const ours = await connectWebSocket(`${server.url}?a=1`, ['ocpp2.0.1', 'ocpp1.6'], { timeoutMs: 3000, maxPayload: 1 << 20, headers: { Authorization: 'Basic Q1AtMTpzZWNyZXQ=', 'X-Charger': 'CP-1', 'X-Name': 'Zoé' } });
    t.teardown(() => ours.terminate());
    await server.next();
    const req = server.requests[0]!;
    t.equal(req.method, 'GET');
    t.equal(req.url, '/ocpp/CP-1?a=1', 'path and query kept');
    t.equal(req.headers['authorization'], 'Basic Q1AtMTpzZWNyZXQ=', 'Authorization arrives');
    t.equal(req.headers['x-charger'], 'CP-1', 'custom header arrives');
    t.equal(req.headers['x-name'], 'Zoé', 'a latin1 value arrives as latin1 (one byte), as Node’s HTTP client wrote it');
    t.equal(req.headers['sec-websocket-version'], '13');
    t.match(req.headers['sec-websocket-key'], /^[+/0-9A-Za-z]{22}==$/);
    t.same(String(req.headers['sec-websocket-protocol']).split(',').map((s) => s.trim()), ['ocpp2.0.1', 'ocpp1.6']);
    t.equal(req.headers['sec-websocket-extensions'], undefined, 'no extension offered');
    t.equal(req.headers['host'], `127.0.0.1:${server.port}`);
  });

  bounded(t, 'credentials in the URL become Basic auth, unless an Authorization header is given', async (t) => {
    const server = await startWsServer(t, { handleProtocols: () => 'ocpp1.6' });
    const withUser = server.url.replace('ws://', 'ws://csms%20user:p%40ss@');
    (await connectWebSocket(withUser, ['ocpp1.6'], DIAL)).terminate();
    (await connectWebSocket(withUser, ['ocpp1.6'], { timeoutMs: 3000, maxPayload: 1 << 20, headers: { authorization: 'Basic b3duOm93bg==' } })).terminate();
    await waitFor(() => server.requests.length === 2, 'both requests');
    t.equal(server.requests[0]!.headers['authorization'], 'Basic ' + Buffer.from('csms user:p@ss').toString('base64'), 'decoded user and password');
    t.equal(server.requests[1]!.headers['authorization'], 'Basic b3duOm93bg==', "the caller's own header wins");
  });

  bounded(t, 'the server choosing no subprotocol → subprotocol', async (t) => {
    const server = await startWsServer(t, { handleProtocols: () => false });
    const err = await refusal(t, connectWebSocket(server.url, ['ocpp1.6'], DIAL));
    t.equal(err.kind, 'subprotocol');
  });

  bounded(t, 'the server choosing one not offered → subprotocol', async (t) => {
    const server = await startHandWrittenServer(t, (req, socket) => socket.write(switching(req, 'Sec-WebSocket-Protocol: ocpp2.1\r\n')));
    const err = await refusal(t, connectWebSocket(server.url, ['ocpp1.6'], DIAL));
    t.equal(err.kind, 'subprotocol');
    const s = server.sockets[0] as net.Socket;
    s.resume();
    await waitFor(() => s.destroyed || s.readableEnded, 'our side closed the connection');
  });

  bounded(t, 'a 404 answer (ws verifyClient) → status 404', async (t) => {
    const server = await startWsServer(t, { verifyClient: (_info, cb) => cb(false, 404, 'Not Found') });
    const err = await refusal(t, connectWebSocket(server.url, ['ocpp1.6'], DIAL));
    t.equal(err.kind, 'status');
    t.equal(err.status, 404);
  });

  bounded(t, 'a 401 answer from a plain upgrade handler → status 401', async (t) => {
    const err = await refusedBy(t, (_req, socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    t.equal(err.kind, 'status');
    t.equal(err.status, 401);
  });

  bounded(t, 'nothing listening → network ECONNREFUSED', async (t) => {
    const port = await freePort();
    const err = await refusal(t, connectWebSocket(`ws://127.0.0.1:${port}/ocpp/CP-1`, ['ocpp1.6'], DIAL));
    t.equal(err.kind, 'network');
    t.equal(err.code, 'ECONNREFUSED');
  });

  bounded(t, 'a server that drops the connection at once → network', async (t) => {
    const rude = net.createServer((s) => s.resetAndDestroy());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    t.teardown(() => rude.close());
    const err = await refusal(t, connectWebSocket(`ws://127.0.0.1:${(rude.address() as net.AddressInfo).port}/x`, ['ocpp1.6'], DIAL));
    t.equal(err.kind, 'network');
    t.equal(err.code, 'ECONNRESET');
  });

  bounded(t, 'a server that never answers → timeout after about timeoutMs, socket closed', async (t) => {
    const silent = net.createServer();
    const sockets: net.Socket[] = [];
    let closed = 0;
    silent.on('connection', (s) => {
      sockets.push(s);
      s.on('error', noop);
      s.on('close', () => closed++);
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    t.teardown(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const start = Date.now();
    const err = await refusal(t, connectWebSocket(`ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/x`, ['ocpp1.6'], { timeoutMs: 300, maxPayload: 1 << 20 }));
    const ms = Date.now() - start;
    t.equal(err.kind, 'timeout');
    t.ok(ms >= 250 && ms < 2000, `refused after ${ms} ms (timeoutMs 300)`);
    await waitFor(() => closed === 1, 'the connection closed by our side');
  });

  bounded(t, 'a server that answers half a head and stalls → timeout', async (t) => {
    const err = await refusedBy(t, (_req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'), { timeoutMs: 300, maxPayload: 1 << 20 });
    t.equal(err.kind, 'timeout');
  });

  bounded(t, 'a wrong Sec-WebSocket-Accept → invalid', async (t) => {
    const err = await refusedBy(t, (_req, socket) => socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${KEY_ACCEPT}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n`));
    t.equal(err.kind, 'invalid');
  });

  bounded(t, 'a missing Sec-WebSocket-Accept → invalid', async (t) => {
    const err = await refusedBy(t, (_req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n'));
    t.equal(err.kind, 'invalid');
  });

  bounded(t, 'a 101 without Upgrade: websocket → invalid', async (t) => {
    const err = await refusedBy(t, (req, socket) =>
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(String(req.headers['sec-websocket-key']))}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n`));
    t.equal(err.kind, 'invalid');
  });

  bounded(t, 'a Sec-WebSocket-Extensions answer although none was offered → invalid', async (t) => {
    const err = await refusedBy(t, (req, socket) => socket.write(switching(req, 'Sec-WebSocket-Protocol: ocpp1.6\r\nSec-WebSocket-Extensions: permessage-deflate\r\n')));
    t.equal(err.kind, 'invalid');
  });

  bounded(t, 'an answer in pieces: one byte per write up to a blank line split between writes, then a frame → opens, frame kept', async (t) => {
    const server = await startHandWrittenServer(t, async (req, socket) => {
      const whole = Buffer.concat([Buffer.from(switching(req, 'Sec-WebSocket-Protocol: ocpp1.6\r\n')), frame({ opcode: OP.text, payload: 'after the head' })]);
      const cut = whole.indexOf('\r\n\r\n') + 3; // the last LF of the blank line comes with the frame
      for (let i = 0; i < cut; i++) {
        socket.write(whole.subarray(i, i + 1));
        await sleep(1);
      }
      socket.write(whole.subarray(cut));
    });
    const ours = await connectWebSocket(server.url, ['ocpp1.6'], DIAL);
    t.teardown(() => ours.terminate());
    t.equal(ours.protocol, 'ocpp1.6');
    const seen = record(ours);
    ours.resume();
    await waitFor(() => seen.messages.length, 'the frame');
    t.same(texts(seen), ['after the head']);
  });

  bounded(t, 'a 101 without Connection: Upgrade → invalid; one listing it among others opens', async (t) => {
    const accept = (req: import('node:http').IncomingMessage) => acceptFor(String(req.headers['sec-websocket-key']));
    const err = await refusedBy(t, (req, socket) =>
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept(req)}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n`));
    t.equal(err.kind, 'invalid');
    t.match(err.message, /Connection/);
    const listed = await startHandWrittenServer(t, (req, socket) =>
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive, UPGRADE\r\nSec-WebSocket-Accept: ${accept(req)}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n`));
    (await connectWebSocket(listed.url, ['ocpp1.6'], DIAL)).terminate();
  });

  bounded(t, 'interim answers (100, 103 Early Hints) before the 101 are skipped', async (t) => {
    const server = await startHandWrittenServer(t, async (req, socket) => {
      socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      await sleep(20);
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' + switching(req, 'Sec-WebSocket-Protocol: ocpp1.6\r\n'));
    });
    const ours = await connectWebSocket(server.url, ['ocpp1.6'], DIAL);
    t.teardown(() => ours.terminate());
    t.equal(ours.protocol, 'ocpp1.6');
  });

  bounded(t, 'an answer head over 16 KiB, ended or not → invalid, our side closes', async (t) => {
    const pad = `X-Pad: ${'a'.repeat(17 * 1024)}\r\n`;
    for (const [what, answer] of [
      ['ended', (req: import('node:http').IncomingMessage) => switching(req, `Sec-WebSocket-Protocol: ocpp1.6\r\n${pad}`)],
      ['never ended', () => `HTTP/1.1 101 Switching Protocols\r\n${pad}`],
    ] as const) {
      const server = await startHandWrittenServer(t, (req, socket) => socket.write(answer(req)));
      const err = await refusal(t, connectWebSocket(server.url, ['ocpp1.6'], DIAL));
      t.equal(err.kind, 'invalid', what);
      t.match(err.message, /larger than 16384/, what);
      const s = server.sockets[0] as net.Socket;
      s.resume();
      await waitFor(() => s.destroyed || s.readableEnded, `${what}: our side closed the connection`);
    }
  });

  bounded(t, 'a malformed status line → invalid', async (t) => {
    const err = await refusedBy(t, (req, socket) => socket.write(switching(req, 'Sec-WebSocket-Protocol: ocpp1.6\r\n').replace('101', '1O1')));
    t.equal(err.kind, 'invalid');
    t.match(err.message, /status line/);
  });

  bounded(t, 'a header line without a colon in a 101 → invalid', async (t) => {
    const err = await refusedBy(t, (req, socket) => socket.write(switching(req, 'Sec-WebSocket-Protocol: ocpp1.6\r\nNot a header\r\n')));
    t.equal(err.kind, 'invalid');
    t.match(err.message, /Invalid header line/);
  });

  bounded(t, 'two Sec-WebSocket-Accept fields, even equal ones → invalid', async (t) => {
    const err = await refusedBy(t, (req, socket) =>
      socket.write(switching(req, `Sec-WebSocket-Accept: ${acceptFor(String(req.headers['sec-websocket-key']))}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n`)));
    t.equal(err.kind, 'invalid');
  });

  bounded(t, 'a refusal whose head never ends → its status at once, not a timeout', async (t) => {
    const server = await startHandWrittenServer(t, (_req, socket) => socket.write('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n'));
    const start = Date.now();
    const err = await refusal(t, connectWebSocket(server.url, ['ocpp1.6'], { timeoutMs: 10_000, maxPayload: 1 << 20 }));
    t.equal(err.kind, 'status');
    t.equal(err.status, 503);
    t.ok(Date.now() - start < 5000, `refused after ${Date.now() - start} ms, well before the 10 s timeout`);
  });

  bounded(t, 'the server ending the connection mid-head → network ECONNRESET (a hang-up)', async (t) => {
    const err = await refusedBy(t, (_req, socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'));
    t.equal(err.kind, 'network');
    t.equal(err.code, 'ECONNRESET');
  });

  bounded(t, 'a header that would break the request → invalid, and no connection is made', async (t) => {
    let connections = 0;
    const counter = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
    t.teardown(() => counter.close());
    const url = `ws://127.0.0.1:${(counter.address() as net.AddressInfo).port}/ocpp/CP-1`;
    const err = await refusal(t, connectWebSocket(url, ['ocpp1.6'], { ...DIAL, headers: { 'X-Forwarded-For': '10.0.0.1\r\nX-Evil: 1' } }));
    t.equal(err.kind, 'invalid');
    await sleep(100);
    t.equal(connections, 0, 'nothing dialled');
  });

  bounded(t, 'frames sent with the 101 (head) are delivered after resume(), unmasked frames accepted', async (t) => {
    const server = await startHandWrittenServer(t, (req, socket) =>
      socket.write(Buffer.concat([Buffer.from(switching(req, 'Sec-WebSocket-Protocol: ocpp1.6\r\n')), frame({ opcode: OP.text, payload: 'with the 101' })])));
    const ours = await connectWebSocket(server.url, ['ocpp1.6'], DIAL);
    t.teardown(() => ours.terminate());
    t.equal(ours.isPaused, true);
    const seen = record(ours);
    await sleep(100);
    t.same(seen.messages, [], 'held while paused');
    ours.resume();
    await waitFor(() => seen.messages.length, 'the message');
    t.same(texts(seen), ['with the 101']);
    // the client side masks what it sends
    const peer = new RawPeer(server.sockets[0] as net.Socket, false);
    ours.send('masked?', { binary: false });
    const f = await peer.next();
    t.same([f.masked, f.payload.toString()], [true, 'masked?']);
  });

  bounded(t, 'wss:// with the test CA', async (t) => {
    const pki = await makeTestPki(TEST_PKI_DIR);
    const ca = readFileSync(pki.caCert);
    const server = await startWsServer(t, { handleProtocols: () => 'ocpp1.6' }, { cert: readFileSync(pki.ecCert), key: readFileSync(pki.ecKey) });
    const ours = await connectWebSocket(server.url, ['ocpp1.6'], { timeoutMs: 5000, maxPayload: 1 << 20, tls: { ca } });
    t.teardown(() => ours.terminate());
    const theirs = await server.next();
    const got: string[] = [];
    theirs.on('message', (d: WebSocket.RawData) => got.push(String(d)));
    const seen = record(ours);
    ours.resume();
    ours.send('over TLS', { binary: false });
    theirs.send('back over TLS');
    await waitFor(() => got.length && seen.messages.length, 'both messages');
    t.same([got, texts(seen)], [['over TLS'], ['back over TLS']]);
    const err = await refusal(t, connectWebSocket(server.url, ['ocpp1.6'], { timeoutMs: 5000, maxPayload: 1 << 20, tls: {} }));
    t.ok(err.kind, `an untrusted certificate is refused (${err.kind} ${err.code ?? ''})`);
  }, 30_000);

  bounded(t, 'wss:// honours the servername given in tls (SNI), as ws does', async (t) => {
    const pki = await makeTestPki(TEST_PKI_DIR);
    const server = await startWsServer(t, { handleProtocols: () => 'ocpp1.6' }, { cert: readFileSync(pki.ecCert), key: readFileSync(pki.ecKey) });
    const ours = await connectWebSocket(server.url, ['ocpp1.6'], { timeoutMs: 5000, maxPayload: 1 << 20, tls: { ca: readFileSync(pki.caCert), servername: 'localhost' } });
    t.teardown(() => ours.terminate());
    await server.next();
    t.equal((server.requests[0]!.socket as import('node:tls').TLSSocket).servername, 'localhost', 'SNI sent');
  }, 30_000);
});
