/**
 * heap-compaction.ts arms V8's compaction, lets the next full GC that starts after that compact,
 * switches it off and arms it again one interval later; with an interval of 0 it simply stays on.
 * Real full GCs of this process drive it (V8's own flags are set; the spy only records what was set);
 * the rule for "a full GC that started after arming" is checked entry by entry.
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { PerformanceObserver, constants as gc } from 'node:perf_hooks';
import { ArmedCompactionWatch, startHeapCompaction } from '../../proxy/heap-compaction';

v8.setFlagsFromString('--expose-gc');
const fullGc = vm.runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** PerformanceObserver delivers GC entries asynchronously. */
const settle = () => sleep(50);

function spy() {
  const flags: string[] = [];
  return { flags, set: (f: string) => { flags.push(f); v8.setFlagsFromString(f); } };
}

t.test('which full GC compacted: the first one that started after arming', async (t) => {
  const { NODE_PERFORMANCE_GC_MAJOR: MAJOR, NODE_PERFORMANCE_GC_MINOR: MINOR, NODE_PERFORMANCE_GC_INCREMENTAL: MARKING_STARTED, NODE_PERFORMANCE_GC_FLAGS_FORCED: FORCED } = gc;
  const feed = (entries: [number, number][]) => {
    const w = new ArmedCompactionWatch();
    return entries.map(([kind, flags]) => w.onEntry(kind, flags));
  };
  t.same(feed([[MINOR, 0], [MARKING_STARTED, 0], [MINOR, 0], [MAJOR, 0]]), [false, false, false, true], 'marking started after arming: its full GC compacted');
  t.same(feed([[MINOR, 0], [MAJOR, 0], [MARKING_STARTED, 0], [MAJOR, 0]]), [false, false, false, true], 'marking already under way when armed: its end does not count, the next cycle does');
  t.same(feed([[MAJOR, 0], [MAJOR, 0]]), [false, true], 'two atomic full GCs: the second one began after arming');
  t.same(feed([[MAJOR, FORCED]]), [true], 'a forced full GC is atomic, started after arming');
  t.same(feed([[MINOR, 0], [MINOR, FORCED]]), [false, false], 'young-generation GCs never count');
});

t.test('compacts one full GC, then stays off until the interval has passed', async (t) => {
  const s = spy();
  const hc = startHeapCompaction(1000, s.set);
  t.same(s.flags, ['--compact-on-every-full-gc'], 'armed at start');
  fullGc();
  await settle();
  const offAt = Date.now();
  t.equal(hc.compactions, 1, 'the full GC compacted');
  t.same(s.flags.slice(1), ['--no-compact-on-every-full-gc'], 'switched off after it');
  fullGc();
  fullGc();
  await settle();
  t.equal(hc.compactions, 1, 'full GCs inside the interval do not compact');
  t.equal(s.flags.length, 2, 'and change nothing');
  // Polled, not slept: a loaded machine may run the timer late, never early.
  while (s.flags.length < 3 && Date.now() - offAt < 10_000) await sleep(20);
  t.equal(s.flags[2], '--compact-on-every-full-gc', 're-armed');
  t.ok(Date.now() - offAt >= 950, `not before the interval (${Date.now() - offAt} ms after switching off)`);
  fullGc();
  await settle();
  t.equal(hc.compactions, 2, 'the next full GC compacted');
  hc.stop();
  t.equal(s.flags[s.flags.length - 1], '--no-compact-on-every-full-gc', 'stopped: off');
});

t.test('a young-generation GC does not use up the armed compaction', async (t) => {
  const s = spy();
  let scavenges = 0;
  const seen = new PerformanceObserver((l) => { scavenges += l.getEntries().filter((e) => (e as { detail?: { kind?: number } }).detail?.kind === gc.NODE_PERFORMANCE_GC_MINOR).length; });
  seen.observe({ entryTypes: ['gc'] });
  const hc = startHeapCompaction(60_000, s.set);
  // Short-lived garbage, kept reachable a moment so it is really allocated: scavenges only.
  let sink: unknown[] = [];
  for (let i = 0; i < 300_000; i++) {
    sink.push({ i, s: `x${i}` });
    if (sink.length > 1000) sink = [];
  }
  await settle();
  seen.disconnect();
  t.ok(scavenges > 0, `young-generation GCs ran (${scavenges})`);
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
