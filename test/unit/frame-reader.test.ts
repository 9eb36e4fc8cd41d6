/**
 * FrameReader's memory bound: a message trickled in one byte per read, or sent as one-byte
 * fragments, is held in a bounded number of buffers (each Buffer object costs about a hundred bytes
 * of heap, so one per byte would multiply a message's size), and still arrives whole.
 */
import t from 'tap';
import { FrameReader } from '../../proxy/wire/frame-reader';

/** A masked client frame (the reader plays the server). */
function clientFrame(opcode: number, fin: boolean, payload: Buffer): Buffer {
  const key = Buffer.from([1, 2, 3, 4]);
  const len = payload.length;
  const header = len < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len])
    : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([header, key, masked]);
}

t.test('a 20,000-byte frame delivered one byte per read: at most 33 buffers held, the message whole', async (t) => {
  const text = 'ab'.repeat(10_000);
  const bytes = clientFrame(1, true, Buffer.from(text));
  const reader = new FrameReader(true, 1 << 20);
  let most = 0;
  let message: Buffer | null = null;
  for (let i = 0; i < bytes.length; i++) {
    reader.push(bytes.subarray(i, i + 1));
    most = Math.max(most, reader.heldPieces);
    const event = reader.next();
    if (event?.kind === 'message') message = event.data;
  }
  t.ok(most <= 33, `at most 33 buffers held (${most})`);
  t.equal(message?.toString(), text);
});

t.test('a message in 20,000 one-byte fragments: at most 33 fragments held, the message whole', async (t) => {
  const text = 'x'.repeat(20_000);
  const reader = new FrameReader(true, 1 << 20);
  let most = 0;
  let message: Buffer | null = null;
  for (let i = 0; i < text.length; i++) {
    reader.push(clientFrame(i === 0 ? 1 : 0, i === text.length - 1, Buffer.from(text[i]!)));
    const event = reader.next();
    most = Math.max(most, reader.heldPieces);
    if (event?.kind === 'message') message = event.data;
  }
  t.ok(most <= 33, `at most 33 buffers held (${most})`);
  t.equal(message?.toString(), text);
});
