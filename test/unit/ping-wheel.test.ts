/** PingWheel: one timer pings every member once per interval, first one interval after it joined. */
import t from 'tap';
import { PingWheel } from '../../proxy/ping-wheel';
import { sleep } from '../helpers/net';

const INTERVAL = 300;

function member(log: number[], started: number) {
  return { ping: () => { log.push(performance.now() - started); } };
}

t.test('each member is pinged once per interval, the first time one interval after it joined', async (t) => {
  const wheel = new PingWheel(INTERVAL, 10);
  const started = performance.now();
  const first: number[] = [];
  const a = member(first, started);
  const slotA = wheel.add(a);
  await sleep(140);
  const second: number[] = [];
  const joined = performance.now() - started;
  const b = member(second, started);
  const slotB = wheel.add(b);
  await sleep(3.2 * INTERVAL);
  wheel.remove(a, slotA);
  wheel.remove(b, slotB);
  // Bounds loose enough for a loaded CI host (timers run late), tight enough to catch a wheel that
  // pings every tick (30 ms) or every other interval.
  t.ok(first.length === 3 || first.length === 4, `three (or, if the sleep ran late, four) pings in 3.7 intervals (${first.map(Math.round)})`);
  t.ok(first[0]! >= INTERVAL - INTERVAL / 10 - 5 && first[0]! <= INTERVAL + 100, `first ping after about one interval (${Math.round(first[0]!)} ms)`);
  for (let i = 1; i < first.length; i++) t.ok(Math.abs(first[i]! - first[i - 1]! - INTERVAL) < 100, `then one interval apart (${Math.round(first[i]! - first[i - 1]!)} ms)`);
  const mean = (first[first.length - 1]! - first[0]!) / (first.length - 1);
  t.ok(Math.abs(mean - INTERVAL) < 40, `one interval apart on average (${Math.round(mean)} ms)`);
  t.ok(second.length >= 2 && second[0]! - joined >= INTERVAL - INTERVAL / 10 - 5, `a later member's first ping comes an interval after it joined (${Math.round(second[0]! - joined)} ms)`);
  t.not(Math.round(first[0]!), Math.round(second[0]!), 'members that joined apart are pinged apart');
});

t.test('a removed member is pinged no more, also when it removes itself while pinged; the timer stops when empty', async (t) => {
  const wheel = new PingWheel(INTERVAL, 5);
  let pings = 0;
  let slot = -1;
  const selfRemoving = { ping: () => { pings++; wheel.remove(selfRemoving, slot); } };
  slot = wheel.add(selfRemoving);
  const other: number[] = [];
  const otherMember = member(other, performance.now());
  const otherSlot = wheel.add(otherMember);
  await sleep(2.5 * INTERVAL);
  t.equal(pings, 1, 'pinged once, then gone');
  t.equal(other.length, 2, 'the other member, in the same slot, still pinged each interval');
  t.ok(wheel.running, 'the timer runs while a member is left');
  wheel.remove(otherMember, otherSlot);
  wheel.remove(otherMember, otherSlot); // twice: no harm
  t.notOk(wheel.running, 'and stops with the last member');
  await sleep(2 * INTERVAL);
  t.equal(other.length, 2, 'no ping after removal');
});
