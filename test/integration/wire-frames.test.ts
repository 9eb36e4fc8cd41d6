/**
 * Our own RFC 6455 layer (proxy/wire/) against a raw `net` peer writing hand-built frames, for
 * everything `ws` would never send: every protocol violation (error code, the status in our close
 * frame, no message), fragmentation, odd TCP chunking, length encodings and masking.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { sleep, waitFor } from '../helpers/net';
import { OP, FrameSpec, frame, closePayload, texts, wired, bounded } from '../helpers/wire';

// ---------------------------------------------------------------------------------------------
// Protocol violations: each must give one 'error' with ws's code, our close frame with the status,
// no 'message' (not even for a valid frame after it), and the end of the connection.

interface Violation {
  name: string;
  frames: FrameSpec[];
  code: string;
  status: number;
  isServer?: boolean;
  maxPayload?: number;
}

const bytes = (...b: number[]) => Buffer.from(b);

const violations: Violation[] = [
  { name: 'RSV1 set on a text frame', frames: [{ opcode: OP.text, payload: 'x', rsv1: true }], code: 'WS_ERR_UNEXPECTED_RSV_1', status: 1002 },
  { name: 'RSV1 set on a ping', frames: [{ opcode: OP.ping, rsv1: true }], code: 'WS_ERR_UNEXPECTED_RSV_1', status: 1002 },
  { name: 'RSV2 set', frames: [{ opcode: OP.text, payload: 'x', rsv2: true }], code: 'WS_ERR_UNEXPECTED_RSV_2_3', status: 1002 },
  { name: 'RSV3 set', frames: [{ opcode: OP.binary, payload: 'x', rsv3: true }], code: 'WS_ERR_UNEXPECTED_RSV_2_3', status: 1002 },
  ...[3, 4, 5, 6, 7, 11, 12, 13, 14, 15].map((opcode) => ({ name: `unknown opcode ${opcode}`, frames: [{ opcode, payload: 'x' }], code: 'WS_ERR_INVALID_OPCODE', status: 1002 })),
  { name: 'a continuation with no message started', frames: [{ opcode: OP.cont, payload: 'x' }], code: 'WS_ERR_INVALID_OPCODE', status: 1002 },
  { name: 'a text frame while a fragmented message is open', frames: [{ opcode: OP.text, fin: false, payload: 'a' }, { opcode: OP.text, payload: 'b' }], code: 'WS_ERR_INVALID_OPCODE', status: 1002 },
  { name: 'a binary frame while a fragmented text message is open', frames: [{ opcode: OP.text, fin: false, payload: 'a' }, { opcode: OP.binary, payload: 'b' }], code: 'WS_ERR_INVALID_OPCODE', status: 1002 },
  { name: 'a ping with FIN clear', frames: [{ opcode: OP.ping, fin: false, payload: 'p' }], code: 'WS_ERR_EXPECTED_FIN', status: 1002 },
  { name: 'a pong with FIN clear', frames: [{ opcode: OP.pong, fin: false }], code: 'WS_ERR_EXPECTED_FIN', status: 1002 },
  { name: 'a close with FIN clear', frames: [{ opcode: OP.close, fin: false, payload: closePayload(1000) }], code: 'WS_ERR_EXPECTED_FIN', status: 1002 },
  { name: 'a ping of 126 bytes', frames: [{ opcode: OP.ping, payload: Buffer.alloc(126, 1) }], code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', status: 1002 },
  { name: 'a pong of 126 bytes', frames: [{ opcode: OP.pong, payload: Buffer.alloc(126, 1) }], code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', status: 1002 },
  { name: 'a close of 126 bytes', frames: [{ opcode: OP.close, payload: closePayload(1000, 'r'.repeat(124)) }], code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', status: 1002 },
  { name: 'a close payload of 1 byte', frames: [{ opcode: OP.close, payload: bytes(0x03) }], code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', status: 1002 },
  { name: 'an unmasked frame to the server', frames: [{ opcode: OP.text, payload: 'x', mask: false }], code: 'WS_ERR_EXPECTED_MASK', status: 1002 },
  { name: 'an unmasked ping to the server', frames: [{ opcode: OP.ping, mask: false }], code: 'WS_ERR_EXPECTED_MASK', status: 1002 },
  { name: 'a masked frame to the client', isServer: false, frames: [{ opcode: OP.text, payload: 'x', mask: true }], code: 'WS_ERR_UNEXPECTED_MASK', status: 1002 },
  { name: 'a masked close to the client', isServer: false, frames: [{ opcode: OP.close, payload: closePayload(1000), mask: true }], code: 'WS_ERR_UNEXPECTED_MASK', status: 1002 },
  { name: 'a 64-bit length of 2^53', frames: [{ opcode: OP.binary, lengthBytes: 8, declaredLength: 2n ** 53n }], code: 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', status: 1009 },
  { name: 'a 64-bit length of 2^64-1', frames: [{ opcode: OP.binary, lengthBytes: 8, declaredLength: 2n ** 64n - 1n }], code: 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', status: 1009 },
  { name: 'a text frame one byte over maxPayload', maxPayload: 100, frames: [{ opcode: OP.text, payload: 'a'.repeat(101) }], code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', status: 1009 },
  { name: 'a binary frame one byte over maxPayload (client side)', isServer: false, maxPayload: 100, frames: [{ opcode: OP.binary, payload: Buffer.alloc(101) }], code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', status: 1009 },
  { name: 'fragments adding up to one byte over maxPayload', maxPayload: 100, frames: [{ opcode: OP.text, fin: false, payload: 'a'.repeat(60) }, { opcode: OP.cont, fin: false, payload: 'b'.repeat(40) }, { opcode: OP.cont, payload: 'c' }], code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', status: 1009 },
  { name: 'a header announcing more than maxPayload, payload never sent', maxPayload: 100, frames: [{ opcode: OP.binary, lengthBytes: 8, declaredLength: 2n ** 32n }], code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', status: 1009 },
  { name: 'text with a 0xff byte', frames: [{ opcode: OP.text, payload: bytes(0x61, 0xff) }], code: 'WS_ERR_INVALID_UTF8', status: 1007 },
  { name: 'text with an overlong encoding', frames: [{ opcode: OP.text, payload: bytes(0xc0, 0x80) }], code: 'WS_ERR_INVALID_UTF8', status: 1007 },
  { name: 'text with a UTF-16 surrogate', frames: [{ opcode: OP.text, payload: bytes(0xed, 0xa0, 0x80) }], code: 'WS_ERR_INVALID_UTF8', status: 1007 },
  { name: 'text with a code point above U+10FFFF', frames: [{ opcode: OP.text, payload: bytes(0xf4, 0x90, 0x80, 0x80) }], code: 'WS_ERR_INVALID_UTF8', status: 1007 },
  { name: 'text ending inside a character', frames: [{ opcode: OP.text, payload: bytes(0x61, 0xe2, 0x82) }], code: 'WS_ERR_INVALID_UTF8', status: 1007 },
  { name: 'fragmented text whose last fragment leaves a character unfinished', frames: [{ opcode: OP.text, fin: false, payload: bytes(0x61, 0xe2) }, { opcode: OP.cont, payload: bytes(0x82) }], code: 'WS_ERR_INVALID_UTF8', status: 1007 },
  { name: 'a close reason that is not UTF-8', frames: [{ opcode: OP.close, payload: closePayload(1000, bytes(0x61, 0xff)) }], code: 'WS_ERR_INVALID_UTF8', status: 1007 },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535].map((c) => ({
    name: `close code ${c}`,
    frames: [{ opcode: OP.close, payload: closePayload(c) }],
    code: 'WS_ERR_INVALID_CLOSE_CODE',
    status: 1002,
  })),
];

t.test('protocol violations by the peer', async (t) => {
  for (const v of violations) {
    bounded(t, v.name, async (t) => {
      const { ws, peer, seen } = await wired(t, { isServer: v.isServer ?? true, maxPayload: v.maxPayload });
      peer.send(...v.frames, { opcode: OP.text, payload: 'a valid frame after the bad one' });
      const err = await waitFor(() => seen.errors[0], `'error' for ${v.name}`);
      t.ok(err instanceof Error, 'an Error');
      t.equal(err.code, v.code, 'error code');
      const closeFrame = await peer.next('our close frame');
      t.equal(closeFrame.opcode, OP.close, 'a close frame is sent');
      t.equal(closeFrame.payload.length >= 2 ? closeFrame.payload.readUInt16BE(0) : undefined, v.status, 'close status');
      t.equal(closeFrame.masked, !(v.isServer ?? true), 'masked only from the client side');
      t.equal(ws.readyState === 2 || ws.readyState === 3, true, `CLOSING or CLOSED (${ws.readyState})`);
      peer.send({ opcode: OP.close, payload: closePayload(v.status) });
      peer.socket.end();
      await waitFor(() => seen.closes.length > 0, "'close'");
      await waitFor(() => peer.closed, 'the connection gone');
      await sleep(30);
      t.same(texts(seen), [], 'no message emitted');
      t.equal(seen.errors.length, 1, 'exactly one error');
      t.equal(seen.closes.length, 1, "exactly one 'close'");
      t.equal(ws.readyState, 3, 'CLOSED');
      t.same(peer.unread().map((f) => f.opcode), [], 'nothing after the close frame');
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Receiving.

t.test('receiving frames', async (t) => {
  bounded(t, 'a text and a binary message, as Buffers with isBinary', async (t) => {
    const { ws, peer, seen } = await wired(t);
    t.equal(ws.readyState, 1, 'OPEN');
    t.equal(ws.protocol, 'ocpp1.6', 'protocol as given');
    peer.send({ opcode: OP.text, payload: 'grüße ✓' });
    peer.send({ opcode: OP.binary, payload: bytes(0, 1, 2, 255) });
    peer.send({ opcode: OP.text, payload: '' });
    await waitFor(() => seen.messages.length === 3, '3 messages');
    t.ok(seen.messages.every((m) => Buffer.isBuffer(m.data)), 'data is a Buffer');
    t.same(seen.messages.map((m) => [m.data.toString('hex'), m.isBinary]), [
      [Buffer.from('grüße ✓').toString('hex'), false],
      ['000102ff', true],
      ['', false],
    ]);
  });

  bounded(t, 'a text message in 3 fragments, a ping between fragments answered at once', async (t) => {
    const { peer, seen } = await wired(t);
    peer.send({ opcode: OP.text, fin: false, payload: 'Hel' });
    peer.send({ opcode: OP.ping, payload: 'between' });
    const pong = await peer.next('the pong');
    t.equal(pong.opcode, OP.pong, 'pong');
    t.equal(pong.payload.toString(), 'between', 'same payload');
    t.equal(pong.masked, false, 'unmasked from the server');
    t.equal(seen.messages.length, 0, 'no message before the last fragment');
    peer.send({ opcode: OP.cont, fin: false, payload: 'lo, ' });
    await sleep(30);
    t.equal(seen.messages.length, 0, 'still none');
    peer.send({ opcode: OP.cont, payload: 'world' });
    await waitFor(() => seen.messages.length, 'the message');
    t.same(seen.messages.map((m) => [m.data.toString(), m.isBinary]), [['Hello, world', false]], 'one message, reassembled');
  });

  bounded(t, 'a binary message in fragments, including empty ones', async (t) => {
    const { peer, seen } = await wired(t);
    peer.send(
      { opcode: OP.binary, fin: false, payload: bytes(1, 2) },
      { opcode: OP.cont, fin: false, payload: Buffer.alloc(0) },
      { opcode: OP.pong, payload: 'unsolicited' },
      { opcode: OP.cont, payload: bytes(3) },
    );
    await waitFor(() => seen.messages.length, 'the message');
    t.same(seen.messages.map((m) => [m.data.toString('hex'), m.isBinary]), [['010203', true]]);
    t.same(seen.pongs.map(String), ['unsolicited'], "an unsolicited pong gives 'pong'");
  });

  bounded(t, 'a UTF-8 character split across fragments is valid', async (t) => {
    const { peer, seen } = await wired(t);
    const euro = Buffer.from('a€b'); // 61 e2 82 ac 62
    const emoji = Buffer.from('🔌'); // f0 9f 94 8c
    peer.send({ opcode: OP.text, fin: false, payload: euro.subarray(0, 2) }, { opcode: OP.cont, fin: false, payload: euro.subarray(2, 3) }, { opcode: OP.cont, payload: euro.subarray(3) });
    peer.send({ opcode: OP.text, fin: false, payload: emoji.subarray(0, 1) }, { opcode: OP.cont, payload: emoji.subarray(1) });
    await waitFor(() => seen.messages.length === 2, '2 messages');
    t.same(texts(seen), ['a€b', '🔌']);
    t.same(seen.errors, [], 'no error');
  });

  bounded(t, 'frames delivered one byte at a time', async (t) => {
    const { peer, seen } = await wired(t);
    const big = randomBytes(300); // 16-bit length
    const all = peer.bytes({ opcode: OP.text, payload: 'one ✓ byte' }, { opcode: OP.ping, payload: 'p' }, { opcode: OP.binary, payload: big }, { opcode: OP.text, fin: false, payload: 'fr' }, { opcode: OP.cont, payload: 'ag' });
    for (const b of all) {
      peer.socket.write(Buffer.from([b]));
      await sleep(1);
    }
    await waitFor(() => seen.messages.length === 3, '3 messages');
    t.same(seen.messages.map((m) => m.data.toString('hex')), [Buffer.from('one ✓ byte').toString('hex'), big.toString('hex'), Buffer.from('frag').toString('hex')]);
    const pong = await peer.next('the pong');
    t.same([pong.opcode, pong.payload.toString()], [OP.pong, 'p']);
  }, 30_000);

  bounded(t, 'many frames in one TCP write, in order', async (t) => {
    const { peer, seen } = await wired(t);
    const specs: FrameSpec[] = [];
    for (let i = 0; i < 200; i++) specs.push({ opcode: OP.text, payload: `m${i}` });
    specs.splice(100, 0, { opcode: OP.ping, payload: 'mid' });
    specs.push({ opcode: OP.binary, payload: Buffer.alloc(70_000, 7) });
    peer.send(...specs);
    await waitFor(() => seen.messages.length === 201, '201 messages');
    t.same(texts(seen).slice(0, 200), Array.from({ length: 200 }, (_, i) => `m${i}`), 'in order');
    t.equal(seen.messages[200]!.data.length, 70_000, 'then the big binary');
    const pong = await peer.next('the pong');
    t.same([pong.opcode, pong.payload.toString()], [OP.pong, 'mid']);
  });

  bounded(t, 'a seeded random mix of fragmented messages and pings, split at random points', async (t) => {
    const { peer, seen } = await wired(t);
    let seed = 20261126;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const specs: FrameSpec[] = [];
    const want: string[] = [];
    const pings: string[] = [];
    for (let m = 0; m < 40; m++) {
      const size = [0, 1, 125, 126, 300, 65535, 65536, 70_000][rnd(8)]!;
      const binary = rnd(2) === 0;
      const data = binary ? randomBytes(size) : Buffer.from('é'.repeat(size >> 1) + 'a'.repeat(size & 1));
      want.push(`${binary ? 'b' : 't'}:${data.toString('hex')}`);
      const pieces = 1 + rnd(4);
      let at = 0;
      for (let f = 0; f < pieces; f++) {
        const end = f === pieces - 1 ? data.length : at + rnd(data.length - at + 1);
        specs.push({ opcode: f === 0 ? (binary ? OP.binary : OP.text) : OP.cont, fin: f === pieces - 1, payload: data.subarray(at, end) });
        at = end;
        if (f < pieces - 1 && rnd(3) === 0) {
          const p = randomBytes(rnd(126)).toString('hex').slice(0, 125);
          specs.push({ opcode: OP.ping, payload: p });
          pings.push(p);
        }
      }
    }
    const all = peer.bytes(...specs);
    for (let i = 0; i < all.length; ) {
      const n = rnd(4) === 0 ? 1 + rnd(3) : 1 + rnd(20_000);
      peer.socket.write(all.subarray(i, i + n));
      i += n;
      if (rnd(8) === 0) await sleep(1);
    }
    await waitFor(() => seen.messages.length === want.length, `${want.length} messages`);
    t.same(seen.messages.map((m) => `${m.isBinary ? 'b' : 't'}:${m.data.toString('hex')}`), want, 'every message intact and in order');
    await waitFor(() => peer.frames.length === pings.length, `${pings.length} pongs`);
    t.same(peer.frames.map((f) => f.payload.toString()), pings, 'every ping answered in order');
    t.same(seen.errors, []);
  }, 30_000);

  bounded(t, '7-, 16- and 64-bit length encodings', async (t) => {
    const { peer, seen } = await wired(t);
    const sizes = [0, 1, 125, 126, 127, 65535, 65536, 70_000];
    const payloads = sizes.map((n) => randomBytes(n));
    for (const p of payloads) peer.send({ opcode: OP.binary, payload: p });
    // non-minimal encodings are still well-formed lengths
    peer.send({ opcode: OP.text, payload: 'sixteen', lengthBytes: 2 }, { opcode: OP.text, payload: 'sixty-four', lengthBytes: 8 });
    await waitFor(() => seen.messages.length === sizes.length + 2, 'all messages');
    for (let i = 0; i < sizes.length; i++) t.ok(seen.messages[i]!.data.equals(payloads[i]!), `${sizes[i]} bytes intact`);
    t.same(texts(seen).slice(sizes.length), ['sixteen', 'sixty-four']);
  });

  bounded(t, 'a message of exactly maxPayload bytes (fragmented too) is accepted', async (t) => {
    const { peer, seen } = await wired(t, { maxPayload: 100 });
    peer.send({ opcode: OP.text, payload: 'a'.repeat(100) });
    peer.send({ opcode: OP.binary, fin: false, payload: Buffer.alloc(50) }, { opcode: OP.cont, payload: Buffer.alloc(50) });
    await waitFor(() => seen.messages.length === 2, '2 messages');
    t.same(seen.messages.map((m) => m.data.length), [100, 100]);
    t.same(seen.errors, []);
  });

  bounded(t, 'a ping is answered with a pong of the same payload (up to 125 bytes), from both sides', async (t) => {
    const server = await wired(t);
    const client = await wired(t, { isServer: false });
    const p125 = randomBytes(125);
    server.peer.send({ opcode: OP.ping, payload: p125 }, { opcode: OP.ping });
    client.peer.send({ opcode: OP.ping, payload: 'from the server' });
    const [a, b, c] = [await server.peer.next(), await server.peer.next(), await client.peer.next()];
    t.same([a.opcode, a.masked, a.payload.equals(p125)], [OP.pong, false, true], '125-byte ping echoed');
    t.same([b.opcode, b.payload.length], [OP.pong, 0], 'empty ping echoed');
    t.same([c.opcode, c.masked, c.payload.toString()], [OP.pong, true, 'from the server'], 'client pong is masked');
    t.same(server.seen.messages, [], 'pings are not messages');
  });
});

// ---------------------------------------------------------------------------------------------
// Sending.

t.test('sending frames', async (t) => {
  bounded(t, 'from the server side: unmasked, FIN set, RSV clear, text and binary opcodes', async (t) => {
    const { ws, peer } = await wired(t);
    const done: (Error | undefined | null)[] = [];
    ws.send('héllo ✓', { binary: false }, (err) => done.push(err));
    ws.send(bytes(9, 8, 7), { binary: true }, (err) => done.push(err));
    ws.send(Buffer.from('text from a Buffer'), { binary: false });
    const [a, b, c] = [await peer.next(), await peer.next(), await peer.next()];
    t.same([a.fin, a.rsv, a.opcode, a.masked, a.payload.toString()], [true, 0, OP.text, false, 'héllo ✓']);
    t.same([b.fin, b.rsv, b.opcode, b.masked, b.payload.toString('hex')], [true, 0, OP.binary, false, '090807']);
    t.same([c.opcode, c.payload.toString()], [OP.text, 'text from a Buffer']);
    await waitFor(() => done.length === 2, 'send callbacks');
    t.same(done.map((e) => !e), [true, true], 'callbacks without error');
  });

  bounded(t, 'from the client side: masked, and the unmasked payload matches', async (t) => {
    const { ws, peer } = await wired(t, { isServer: false });
    const big = randomBytes(70_000);
    ws.send('masked ✓', { binary: false });
    ws.send(big, { binary: true });
    for (let i = 0; i < 6; i++) ws.send(`k${i}`, { binary: false });
    const a = await peer.next();
    t.same([a.fin, a.rsv, a.opcode, a.masked, a.key?.length, a.payload.toString()], [true, 0, OP.text, true, 4, 'masked ✓']);
    const b = await peer.next();
    t.same([b.opcode, b.masked, b.lengthBytes], [OP.binary, true, 8]);
    t.ok(b.payload.equals(big), '70 000 bytes unmasked equal what was sent');
    const rest = [];
    for (let i = 0; i < 6; i++) rest.push(await peer.next());
    t.same(rest.map((f) => f.payload.toString()), ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    const keys = new Set([a, b, ...rest].map((f) => f.key!.toString('hex')));
    t.ok(keys.size > 1, `masking keys vary between frames (${[...keys].join(' ')})`);
  });

  bounded(t, 'minimal length encodings: 125 → 7-bit, 126 and 65535 → 16-bit, 65536 → 64-bit', async (t) => {
    const { ws, peer } = await wired(t);
    for (const n of [0, 125, 126, 65535, 65536]) ws.send(Buffer.alloc(n, 1), { binary: true });
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await peer.next());
    t.same(got.map((f) => [f.payload.length, f.lengthBytes]), [[0, 0], [125, 0], [126, 2], [65535, 2], [65536, 8]]);
  });

  bounded(t, 'ping() sends an empty ping (masked from the client); the pong gives a pong event', async (t) => {
    const server = await wired(t);
    const client = await wired(t, { isServer: false });
    server.ws.ping();
    client.ws.ping();
    const [a, b] = [await server.peer.next(), await client.peer.next()];
    t.same([a.opcode, a.fin, a.masked, a.payload.length], [OP.ping, true, false, 0]);
    t.same([b.opcode, b.fin, b.masked, b.payload.length], [OP.ping, true, true, 0]);
    server.peer.send({ opcode: OP.pong, payload: 'p1' });
    client.peer.send({ opcode: OP.pong });
    await waitFor(() => server.seen.pongs.length && client.seen.pongs.length, 'pongs');
    t.same(server.seen.pongs.map(String), ['p1']);
    t.ok(Buffer.isBuffer(client.seen.pongs[0]), 'payload is a Buffer');
    t.equal(client.seen.pongs[0]!.length, 0);
  });

  bounded(t, 'bufferedAmount is a number ≥ 0 and drains to 0', async (t) => {
    const { ws, peer } = await wired(t);
    t.equal(typeof ws.bufferedAmount, 'number');
    t.equal(ws.bufferedAmount, 0, '0 when nothing was sent');
    for (let i = 0; i < 20; i++) ws.send(Buffer.alloc(256 * 1024), { binary: true });
    // The session's back-pressure reads this: 5 MiB written at once cannot all be in the kernel yet.
    t.ok(ws.bufferedAmount > 1 << 20, `over 1 MiB right after 5 MiB of sends (${ws.bufferedAmount})`);
    await waitFor(() => peer.frames.length === 20, 'all frames at the peer');
    await waitFor(() => ws.bufferedAmount === 0, 'bufferedAmount back to 0');
  });

  bounded(t, 'send() when not OPEN is ignored and its callback gets an error', async (t) => {
    const { ws, peer, seen } = await wired(t);
    ws.close(1000);
    t.equal(ws.readyState, 2, 'CLOSING');
    const closing = await new Promise<Error | undefined | null>((r) => ws.send('late', { binary: false }, r));
    t.ok(closing instanceof Error, 'error while CLOSING');
    const f = await peer.next();
    t.equal(f.opcode, OP.close);
    peer.send({ opcode: OP.close, payload: closePayload(1000) });
    await waitFor(() => seen.closes.length, "'close'");
    const closed = await new Promise<Error | undefined | null>((r) => ws.send('later', { binary: false }, r));
    t.ok(closed instanceof Error, 'error when CLOSED');
    await sleep(30);
    t.same(peer.unread().map((x) => x.opcode), [], 'nothing written after the close frame');
  });

  bounded(t, 'a peer that floods pings and reads nothing does not grow our memory: pongs past 1 MiB queued are not written', async (t) => {
    const { ws, peer } = await wired(t);
    await peer.floodPingsUnread();
    t.ok(ws.bufferedAmount <= (1 << 20) + 131, `pongs queued stay under 1 MiB (${ws.bufferedAmount} bytes)`);
    t.equal(ws.readyState, 1, 'and the connection stays open');
  }, 15_000);

  bounded(t, 'a message in 20,000 one-byte fragments arrives whole', async (t) => {
    const { peer, seen } = await wired(t);
    const text = 'x'.repeat(20_000);
    const specs = Array.from(text, (c, i) => ({ opcode: i === 0 ? OP.text : OP.cont, fin: i === text.length - 1, payload: c }));
    peer.send(...specs);
    await waitFor(() => seen.messages.length === 1, 'the message', 8000);
    t.equal(seen.messages[0]!.data.toString(), text);
  });
});
