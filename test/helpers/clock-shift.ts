/**
 * Preload (`NODE_OPTIONS=--require …/clock-shift.js`) that moves this process's wall clock by
 * `TEST_CLOCK_SHIFT_MS` (negative: behind), for replicas whose clocks disagree. Only `Date.now()`
 * and `new Date()` move; timers and `performance.now()` keep the real pace.
 */
const shift = Number(process.env.TEST_CLOCK_SHIFT_MS ?? 0);
if (Number.isFinite(shift) && shift !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + shift);
      else super(...(args as [string]));
    }
    static override now(): number {
      return realNow() + shift;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}
