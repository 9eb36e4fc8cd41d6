/**
 * heap-compaction.ts arms V8's compaction, lets the next full GC compact, switches it off and arms it
 * again one interval later; with an interval of 0 it simply stays on. Real full GCs of this process
 * drive it (V8's own flags are set; the spy only records what was set).
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startHeapCompaction } from '../../proxy/heap-compaction';

v8.setFlagsFromString('--expose-gc');
const fullGc = vm.runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** PerformanceObserver delivers GC entries asynchronously. */
const settle = () => sleep(50);

function spy() {
  const flags: string[] = [];
  return { flags, set: (f: string) => { flags.push(f); v8.setFlagsFromString(f); } };
}

t.test('compacts one full GC, then stays off until the interval has passed', async (t) => {
  const s = spy();
  const hc = startHeapCompaction(300, s.set);
  t.same(s.flags, ['--compact-on-every-full-gc'], 'armed at start');
  fullGc();
  await settle();
  t.equal(hc.compactions, 1, 'the full GC compacted');
  t.same(s.flags.slice(1), ['--no-compact-on-every-full-gc'], 'switched off after it');
  fullGc();
  fullGc();
  await settle();
  t.equal(hc.compactions, 1, 'full GCs inside the interval do not compact');
  t.equal(s.flags.length, 2, 'and change nothing');
  await sleep(400);
  t.equal(s.flags[2], '--compact-on-every-full-gc', 're-armed once the interval passed');
  fullGc();
  await settle();
  t.equal(hc.compactions, 2, 'the next full GC compacted');
  hc.stop();
  t.equal(s.flags[s.flags.length - 1], '--no-compact-on-every-full-gc', 'stopped: off');
});

t.test('a young-generation GC does not use up the armed compaction', async (t) => {
  const s = spy();
  const hc = startHeapCompaction(60_000, s.set);
  // Short-lived garbage: scavenges only.
  for (let i = 0; i < 200_000; i++) void { i, s: `x${i}` };
  await settle();
  t.equal(hc.compactions, 0, 'no full GC yet, still armed');
  t.same(s.flags, ['--compact-on-every-full-gc']);
  fullGc();
  await settle();
  t.equal(hc.compactions, 1);
  hc.stop();
});

t.test('stop() while waiting for the interval: never re-armed', async (t) => {
  const s = spy();
  const hc = startHeapCompaction(100, s.set);
  fullGc();
  await settle();
  hc.stop();
  const n = s.flags.length;
  await sleep(250);
  t.equal(s.flags.length, n, 'nothing set after stop');
  t.equal(s.flags[n - 1], '--no-compact-on-every-full-gc');
});

t.test('an interval beyond what a timer can hold waits, rather than re-arming at once', async (t) => {
  const s = spy();
  const hc = startHeapCompaction(40 * 24 * 3600 * 1000, s.set);
  fullGc();
  await settle();
  await sleep(100);
  t.same(s.flags, ['--compact-on-every-full-gc', '--no-compact-on-every-full-gc'], 'off, and not re-armed');
  hc.stop();
});

t.test('interval 0: compaction stays on for every full GC', async (t) => {
  const s = spy();
  const hc = startHeapCompaction(0, s.set);
  fullGc();
  fullGc();
  await settle();
  t.same(s.flags, ['--compact-on-every-full-gc'], 'set once, never switched off');
  hc.stop();
  v8.setFlagsFromString('--no-compact-on-every-full-gc');
});
