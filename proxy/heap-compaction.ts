import v8 from 'node:v8';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';

/**
 * Keeps V8's old generation compacted without paying for compaction at every full GC.
 *
 * Reconnect churn leaves old-space pages half empty and V8's own heuristics seldom compact them, so
 * resident memory creeps (README, "Soak"); `--compact-on-every-full-gc` stops that. In a reconnect
 * storm, though, V8 runs a full GC every few seconds, and compacting each one made the pauses about
 * seven times longer (~150 ms against ~20 ms at 9,900 sessions). So compaction is armed, the next full
 * GC compacts, and it stays off for `intervalMs` before it is armed again. With an interval of 0 every
 * full GC compacts.
 */
export interface HeapCompaction {
  /** Full GCs that ran while compaction was armed (each one compacted). */
  readonly compactions: number;
  /** Stops re-arming and leaves compaction off (on, for an interval of 0, stays on). */
  stop(): void;
}

const ON = '--compact-on-every-full-gc';
/** setTimeout's limit: a longer delay would fire after 1 ms (TimeoutOverflowWarning). */
const LONGEST_TIMER_MS = 2 ** 31 - 1;
const OFF = '--no-compact-on-every-full-gc';

/** Starts compaction at most once per `intervalMs`; `setFlags` is V8's, replaceable to observe it. */
export function startHeapCompaction(intervalMs: number, setFlags: (flags: string) => void = v8.setFlagsFromString): HeapCompaction {
  let compactions = 0;
  if (intervalMs <= 0) {
    setFlags(ON);
    return { get compactions() { return compactions; }, stop() {} };
  }
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const observer = new PerformanceObserver((list) => {
    if (!list.getEntries().some(isFullGc)) return;
    observer.disconnect();
    setFlags(OFF);
    compactions++;
    if (!stopped) timer = setTimeout(arm, Math.min(intervalMs, LONGEST_TIMER_MS)).unref();
  });
  function arm(): void {
    timer = null;
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

function isFullGc(entry: PerformanceEntry): boolean {
  return (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
}
