/** Pace: a token bucket that says how long to wait instead of refusing. */
import t from 'tap';
import { Pace } from '../../proxy/pace';

t.test('the burst goes at once; then one token per 1/perSecond, owed in turn', async (t) => {
  let now = 0;
  const p = new Pace(10, 3, () => now);
  t.same([p.delayMs(), p.delayMs(), p.delayMs()], [0, 0, 0], 'the burst');
  t.equal(p.delayMs(), 100, 'the fourth waits one token\'s time');
  t.equal(p.delayMs(), 200, 'the fifth waits behind it');
  now = 500; // 5 tokens' worth later: the two owed are paid, the bucket holds 3 again (capped at the burst)
  t.same([p.delayMs(), p.delayMs(), p.delayMs(), p.delayMs()], [0, 0, 0, 100]);
});
