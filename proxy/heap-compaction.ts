import v8 from 'node:v8';
import { PerformanceObserver, constants } from 'node:perf_hooks';

/**
 * Keeps V8's old generation compacted without paying for compaction at every full GC.
 *
 * Reconnect churn leaves old-space pages half empty and V8's own heuristics seldom compact them, so
 * resident memory creeps (README, "Soak"); `--compact-on-every-full-gc` stops that. In a reconnect
 * storm, though, V8 runs a full GC every few seconds, and compacting each one made the pauses about
 * seven times longer (~150 ms against ~20 ms at 9,900 sessions). So compaction is armed, the next full
 * GC that starts after that compacts, and it stays off for `intervalMs` before it is armed again.
 * With an interval of 0 every full GC compacts.
 */
export interface HeapCompaction {
  /** Full GCs that started while compaction was armed (each one compacted). */
  readonly compactions: number;
  /** Stops re-arming and leaves compaction off (on, for an interval of 0, stays on). */
  stop(): void;
}

const ON = '--compact-on-every-full-gc';
const OFF = '--no-compact-on-every-full-gc';
/** setTimeout's limit: a longer delay would fire after 1 ms (TimeoutOverflowWarning). */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/**
 * Tells, from the GC entries seen since compaction was armed, when a full GC that started after
 * arming has finished. V8 decides to compact when a full GC starts (for incremental marking, when
 * marking starts), so the end of a marking cycle already under way when armed does not count.
 */
export class ArmedCompactionWatch {
  #markingStarted = false;
  #fullGcs = 0;

  /** Feeds one GC entry (its `detail.kind` and `detail.flags`); true once the compaction happened. */
  onEntry(kind: number, flags: number): boolean {
    if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) {
      this.#markingStarted = true; // an entry is made when incremental marking starts
      return false;
    }
    if (kind !== constants.NODE_PERFORMANCE_GC_MAJOR) return false;
    this.#fullGcs++;
    // A forced full GC is atomic (it started now); and a second full GC began after the first ended.
    return this.#markingStarted || (flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0 || this.#fullGcs >= 2;
  }
}

/** Starts compaction at most once per `intervalMs`; `setFlags` is V8's, replaceable to observe it. */
export function startHeapCompaction(intervalMs: number, setFlags: (flags: string) => void = v8.setFlagsFromString): HeapCompaction {
  let compactions = 0;
  if (intervalMs <= 0) {
    setFlags(ON);
    return { get compactions() { return compactions; }, stop() {} };
  }
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let watch = new ArmedCompactionWatch();
  const observer = new PerformanceObserver((list) => {
    const done = list.getEntries().some((e) => {
      const detail = (e as { detail?: { kind?: number; flags?: number } }).detail;
      return watch.onEntry(detail?.kind ?? -1, detail?.flags ?? 0);
    });
    if (!done) return;
    observer.disconnect();
    setFlags(OFF);
    compactions++;
    if (!stopped) timer = setTimeout(arm, Math.min(intervalMs, LONGEST_TIMER_MS)).unref();
  });
  function arm(): void {
    timer = null;
    watch = new ArmedCompactionWatch();
    setFlags(ON);
    // Observed only while armed: no entry is made for the many GCs in between.
    observer.observe({ entryTypes: ['gc'] });
  }
  arm();
  return {
    get compactions() { return compactions; },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      observer.disconnect();
      setFlags(OFF);
    },
  };
}
