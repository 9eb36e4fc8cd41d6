/** LogBudget: so many lines per window, the rest counted and reported with the next line let through. */
import t from 'tap';
import { LogBudget } from '../../proxy/log-budget';

t.test('lets perWindow lines through per window and reports the ones held back', async (t) => {
  let now = 1_000;
  const b = new LogBudget(2, 60_000, () => now);
  t.same([b.take(), b.take()], [{ log: true, suppressedBefore: 0 }, { log: true, suppressedBefore: 0 }]);
  t.same([b.take(), b.take(), b.take()].map((v) => v.log), [false, false, false], 'the third line on is held back');
  t.equal(b.held(), 3);
  now += 59_999;
  t.equal(b.take().log, false, 'still the same window');
  now += 1;
  t.same(b.take(), { log: true, suppressedBefore: 4 }, 'a new window: the next line says how many were held back');
  t.equal(b.held(), 0);
});
