/**
 * Our own RFC 6455 layer (proxy/wire/): pause/resume and the bytes that came with the handshake, and
 * the close handshake from both ends (codes, timeouts, half-open peers, terminate).
 */
import t from 'tap';
import { FrameSocket } from '../../proxy/wire/frame-socket';
import { sleep, waitFor } from '../helpers/net';
import { OP, frame, closePayload, texts, wired, bounded } from '../helpers/wire';

// ---------------------------------------------------------------------------------------------
// pause(), resume() and head.

t.test('pause, resume and head', async (t) => {
  bounded(t, 'starts paused: reads nothing, not even head, until resume(); head first, then the socket', async (t) => {
    const head = frame({ opcode: OP.text, payload: 'from head', mask: true });
    const { ws, peer, seen } = await wired(t, { head, resume: false });
    t.equal(ws.isPaused, true, 'isPaused at construction');
    t.equal(ws.readyState, 1, 'OPEN at construction');
    peer.send({ opcode: OP.text, payload: 'from the socket' }, { opcode: OP.ping, payload: 'x' });
    await sleep(150);
    t.same(seen.messages, [], 'no message while paused');
    t.same(peer.frames, [], 'the ping is not even read while paused');
    ws.resume();
    t.equal(ws.isPaused, false, 'not paused after resume()');
    t.equal(seen.messages.length, 0, 'delivery is asynchronous');
    await waitFor(() => seen.messages.length === 2, 'both messages');
    t.same(texts(seen), ['from head', 'from the socket'], 'head before the socket bytes');
    const pong = await peer.next('the pong');
    t.equal(pong.opcode, OP.pong);
  });

  bounded(t, 'head holding half a frame, the rest on the socket', async (t) => {
    const whole = frame({ opcode: OP.text, payload: 'split between head and socket', mask: true });
    const { ws, peer, seen } = await wired(t, { head: whole.subarray(0, 5), resume: false });
    peer.socket.write(whole.subarray(5));
    await sleep(50);
    ws.resume();
    await waitFor(() => seen.messages.length, 'the message');
    t.same(texts(seen), ['split between head and socket']);
  });

  bounded(t, 'pause() holds messages until resume(), in order', async (t) => {
    const { ws, peer, seen } = await wired(t);
    peer.send({ opcode: OP.text, payload: 'a' });
    await waitFor(() => seen.messages.length === 1, 'first message');
    ws.pause();
    t.equal(ws.isPaused, true, 'isPaused after pause()');
    peer.send({ opcode: OP.text, payload: 'b' }, { opcode: OP.text, payload: 'c' });
    peer.send({ opcode: OP.text, fin: false, payload: 'd' }, { opcode: OP.cont, payload: 'e' });
    await sleep(150);
    t.same(texts(seen), ['a'], 'nothing while paused');
    ws.resume();
    t.same(texts(seen), ['a'], 'not synchronously in resume()');
    await waitFor(() => seen.messages.length === 4, 'the held messages');
    t.same(texts(seen), ['a', 'b', 'c', 'de']);
  });

  bounded(t, 'pause() inside a message handler stops the rest of the same TCP chunk', async (t) => {
    const { ws, peer, seen } = await wired(t);
    ws.once('message', () => ws.pause());
    peer.send({ opcode: OP.text, payload: '1' }, { opcode: OP.text, payload: '2' }, { opcode: OP.text, payload: '3' });
    await sleep(150);
    t.same(texts(seen), ['1'], 'only the first before pause() took effect');
    ws.resume();
    await waitFor(() => seen.messages.length === 3, 'the rest');
    t.same(texts(seen), ['1', '2', '3']);
  });
});

// ---------------------------------------------------------------------------------------------
// Closing.

t.test('closing', async (t) => {
  bounded(t, 'peer closes with a code and reason: echoed, socket ended, close(code, reason) once', async (t) => {
    const { ws, peer, seen } = await wired(t);
    peer.send({ opcode: OP.close, payload: closePayload(4001, 'why ✓') });
    const echo = await peer.next('the echo');
    t.equal(echo.opcode, OP.close);
    t.equal(echo.payload.readUInt16BE(0), 4001, 'same code echoed');
    await waitFor(() => peer.ended, 'our side ends the socket');
    await waitFor(() => seen.closes.length, "'close'");
    t.equal(seen.closes[0]!.code, 4001);
    t.equal(seen.closes[0]!.reason, 'why ✓');
    t.ok(Buffer.isBuffer(seen.closes[0]!.rawReason), 'reason is a Buffer');
    t.equal(ws.readyState, 3, 'CLOSED');
    await sleep(50);
    t.equal(seen.closes.length, 1, 'exactly once');
    t.same(seen.errors, []);
  });

  bounded(t, 'every allowed close code is accepted and echoed', async (t) => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
      const { peer, seen } = await wired(t);
      peer.send({ opcode: OP.close, payload: closePayload(code) });
      const echo = await peer.next(`echo of ${code}`);
      t.equal(echo.payload.readUInt16BE(0), code, `${code} echoed`);
      await waitFor(() => seen.closes.length, `'close' for ${code}`);
      t.equal(seen.closes[0]!.code, code);
      t.same(seen.errors, [], `no error for ${code}`);
    }
  });

  bounded(t, 'peer closes without a code: empty close echoed, close 1005', async (t) => {
    const { peer, seen } = await wired(t);
    peer.send({ opcode: OP.close });
    const echo = await peer.next('the echo');
    t.same([echo.opcode, echo.payload.length], [OP.close, 0], 'empty close frame echoed');
    await waitFor(() => seen.closes.length, "'close'");
    t.same(seen.closes.map((c) => [c.code, c.reason]), [[1005, '']]);
  });

  bounded(t, 'peer closes in the middle of a fragmented message: no message', async (t) => {
    const { peer, seen } = await wired(t);
    peer.send({ opcode: OP.text, fin: false, payload: 'half' }, { opcode: OP.close, payload: closePayload(1001) });
    await waitFor(() => seen.closes.length, "'close'");
    t.same(texts(seen), []);
    t.equal(seen.closes[0]!.code, 1001);
  });

  bounded(t, 'frames after the peer’s close frame are ignored', async (t) => {
    const { peer, seen } = await wired(t);
    peer.send({ opcode: OP.close, payload: closePayload(1000) }, { opcode: OP.text, payload: 'after close' }, { opcode: OP.ping, payload: 'after close' });
    await waitFor(() => seen.closes.length, "'close'");
    await sleep(30);
    t.same(texts(seen), []);
    t.same(peer.frames.map((f) => f.opcode), [OP.close], 'only the echo, no pong');
  });

  bounded(t, 'peer destroys the socket: close 1006 once', async (t) => {
    const { ws, peer, seen } = await wired(t);
    peer.socket.destroy();
    await waitFor(() => seen.closes.length, "'close'");
    t.same(seen.closes.map((c) => c.code), [1006]);
    t.equal(ws.readyState, 3);
    await sleep(50);
    t.equal(seen.closes.length, 1, 'exactly once');
  });

  bounded(t, 'peer ends its side (FIN) without a close frame: we end ours, close 1006', async (t) => {
    const { peer, seen } = await wired(t);
    peer.socket.end();
    await waitFor(() => peer.ended, 'our side ends too');
    await waitFor(() => seen.closes.length, "'close'");
    t.same(seen.closes.map((c) => c.code), [1006]);
  });

  bounded(t, 'close(code, reason): close frame, CLOSING, peer answers → socket ended, close once', async (t) => {
    const { ws, peer, seen } = await wired(t, { closeTimeoutMs: 10_000 });
    ws.close(4000, 'bye ✓');
    t.equal(ws.readyState, 2, 'CLOSING');
    const f = await peer.next('our close frame');
    t.equal(f.opcode, OP.close);
    t.equal(f.payload.readUInt16BE(0), 4000, 'code');
    t.equal(f.payload.subarray(2).toString(), 'bye ✓', 'reason');
    t.notOk(peer.ended, 'not ended before the peer answered');
    const start = Date.now();
    peer.send({ opcode: OP.close, payload: closePayload(4000, 'bye ✓') });
    await waitFor(() => peer.ended, 'our side ends the socket after the answer');
    t.ok(Date.now() - start < 2000, 'promptly, not at closeTimeoutMs');
    await waitFor(() => seen.closes.length, "'close'");
    t.equal(seen.closes[0]!.code, 4000);
    t.equal(ws.readyState, 3);
    await sleep(50);
    t.equal(seen.closes.length, 1, 'exactly once');
  });

  bounded(t, 'close() from the client side sends a masked close frame', async (t) => {
    const { ws, peer, seen } = await wired(t, { isServer: false });
    ws.close(1000, 'done');
    const f = await peer.next();
    t.same([f.opcode, f.masked, f.payload.readUInt16BE(0), f.payload.subarray(2).toString()], [OP.close, true, 1000, 'done']);
    peer.send({ opcode: OP.close, payload: closePayload(1000) });
    await waitFor(() => peer.ended, 'our side ends the socket');
    peer.socket.end();
    await waitFor(() => seen.closes.length, "'close'");
    t.equal(seen.closes[0]!.code, 1000);
  });

  bounded(t, 'close() with a silent peer: destroyed after closeTimeoutMs, close 1006', async (t) => {
    const { ws, peer, seen } = await wired(t, { closeTimeoutMs: 300 });
    const start = Date.now();
    ws.close(1000);
    await peer.next('our close frame');
    await waitFor(() => seen.closes.length, "'close'", 5000);
    const ms = Date.now() - start;
    t.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms (closeTimeoutMs 300)`);
    t.same(seen.closes.map((c) => c.code), [1006]);
    await waitFor(() => peer.closed, 'the connection gone');
    t.equal(ws.readyState, 3);
  });

  bounded(t, "no 'message' (and no pong) after close(), even for frames the peer sent before answering", async (t) => {
    const { ws, peer, seen } = await wired(t);
    ws.close(1000);
    await peer.next('our close frame');
    peer.send({ opcode: OP.text, payload: 'late' }, { opcode: OP.ping, payload: 'late' }, { opcode: OP.binary, payload: 'late' }, { opcode: OP.close, payload: closePayload(1000) });
    await waitFor(() => seen.closes.length, "'close'");
    t.same(texts(seen), []);
    t.equal(seen.closes[0]!.code, 1000);
    t.same(peer.unread().map((f) => f.opcode), [], 'a ping is answered only when OPEN');
  });

  bounded(t, "no 'message' after close() for frames already buffered while paused", async (t) => {
    const { ws, peer, seen } = await wired(t);
    ws.pause();
    peer.send({ opcode: OP.text, payload: 'held' });
    await sleep(100);
    ws.close(1000);
    ws.resume();
    await peer.next('our close frame');
    peer.send({ opcode: OP.close, payload: closePayload(1000) });
    await waitFor(() => seen.closes.length, "'close'");
    await sleep(30);
    t.same(texts(seen), []);
  });

  bounded(t, 'peer closes, gets the echo, but keeps its side open: cut after closeTimeoutMs', async (t) => {
    const { peer, seen } = await wired(t, { closeTimeoutMs: 300, peerHalfOpen: true });
    const start = Date.now();
    peer.send({ opcode: OP.close, payload: closePayload(4001) });
    await peer.next('the echo');
    await waitFor(() => peer.ended, 'our FIN');
    await waitFor(() => seen.closes.length, "'close'", 5000);
    t.ok(Date.now() - start < 2000, `cut after ${Date.now() - start} ms`);
    t.same(seen.closes.map((c) => c.code), [4001], "the peer's code");
    // a half-open peer learns that our side is gone when it writes (RST, then EPIPE)
    await waitFor(() => peer.closed || void peer.send({ opcode: OP.ping }), 'the connection gone');
  });

  bounded(t, 'after a protocol error, a peer that stays silent and half-open is cut after closeTimeoutMs', async (t) => {
    const { peer, seen } = await wired(t, { closeTimeoutMs: 300, peerHalfOpen: true });
    peer.send({ opcode: OP.text, payload: 'x', rsv1: true });
    await waitFor(() => seen.errors.length, "'error'");
    await waitFor(() => seen.closes.length, "'close'", 5000);
    t.equal(seen.closes.length, 1);
    // a half-open peer learns that our side is gone when it writes (RST, then EPIPE)
    await waitFor(() => peer.closed || void peer.send({ opcode: OP.ping }), 'the connection gone');
  });

  bounded(t, "terminate(): destroyed at once, close 1006; repeated close()/terminate() give one 'close'", async (t) => {
    const { ws, peer, seen } = await wired(t);
    ws.close(1000);
    ws.close(1001);
    ws.terminate();
    ws.terminate();
    await waitFor(() => peer.closed, 'the connection gone');
    await waitFor(() => seen.closes.length, "'close'");
    await sleep(50);
    t.equal(seen.closes.length, 1, 'exactly once');
    t.equal(seen.closes[0]!.code, 1006);
    t.equal(ws.readyState, 3);
    t.ok(peer.frames.filter((f) => f.opcode === OP.close).length <= 1, 'at most one close frame sent');
  });

  bounded(t, 'terminate() on a paused FrameSocket still emits close', async (t) => {
    const { ws, seen } = await wired(t, { resume: false });
    ws.terminate();
    await waitFor(() => seen.closes.length, "'close'");
    t.same(seen.closes.map((c) => c.code), [1006]);
  });

  bounded(t, "a FrameSocket never resumed emits no 'message' when terminated, though head held a frame", async (t) => {
    const head = frame({ opcode: OP.text, payload: 'sent with the handshake', mask: true });
    const { ws, seen } = await wired(t, { head, resume: false });
    ws.terminate();
    await waitFor(() => seen.closes.length, "'close'");
    t.same(texts(seen), [], 'head is never read without resume()');
  });

  bounded(t, "messages held by pause() are emitted before 'close' when the peer then resets the connection (never lose a frame)", async (t) => {
    const { ws, peer, seen } = await wired(t);
    ws.once('message', () => ws.pause());
    let messagesAtClose = -1;
    ws.once('close', () => { messagesAtClose = seen.messages.length; });
    peer.send({ opcode: OP.text, payload: '1' }, { opcode: OP.text, payload: '2' });
    await waitFor(() => seen.messages.length, 'the first message');
    await sleep(50);
    peer.socket.resetAndDestroy();
    await waitFor(() => seen.closes.length, "'close'");
    t.equal(ws.isPaused, true, 'still paused');
    t.same(texts(seen), ['1', '2'], 'the held message is delivered, not lost');
    t.equal(messagesAtClose, 2, "and before 'close'");
  });
});
