/** ownBytes: a frame that will wait gets memory of its own when it is a small view of a larger chunk. */
import t from 'tap';
import { ownBytes } from '../../proxy/own-bytes';

t.test('a small view of a large chunk is copied out of it, outside the shared pool', async (t) => {
  const chunk = Buffer.allocUnsafeSlow(16 * 1024).fill(0x61);
  const frame = chunk.subarray(100, 200);
  const own = ownBytes(frame);
  t.not(own.buffer, chunk.buffer, 'no longer keeps the 16 KiB chunk alive');
  t.equal(own.buffer.byteLength, 100, 'its own 100 bytes, not a slice of the 8 KiB Buffer pool');
  t.same(own, frame, 'same bytes');
  chunk[150] = 0x62;
  t.equal(own[50], 0x61, 'later writes to the chunk do not reach the copy');
});

t.test('a buffer that is (nearly) all of its memory is passed through untouched', async (t) => {
  const whole = Buffer.allocUnsafeSlow(1000).fill(1);
  t.equal(ownBytes(whole), whole);
  const most = whole.subarray(0, 600);
  t.equal(ownBytes(most), most, 'more than half of its chunk: not worth a copy');
});
