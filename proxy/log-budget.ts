/**
 * At most `perWindow` log lines per window for one noisy kind of event, so that a peer cannot turn
 * its frames into an unbounded stream of log lines (every refused frame is still counted in the
 * metrics). Lines held back are reported: as `suppressedBefore` on the next line let through, or by
 * {@link LogBudget.held} at the end.
 */
export class LogBudget {
  private windowStart = -Infinity;
  private used = 0;
  private suppressed = 0;

  constructor(private readonly perWindow: number, private readonly windowMs: number, private readonly now: () => number = Date.now) {}

  /** Whether this line may be logged, and how many were held back before it (0 when none). */
  take(): { log: boolean; suppressedBefore: number } {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.suppressed++;
      return { log: false, suppressedBefore: 0 };
    }
    this.used++;
    const suppressedBefore = this.suppressed;
    this.suppressed = 0;
    return { log: true, suppressedBefore };
  }

  /** Lines held back since the last one let through. */
  held(): number {
    return this.suppressed;
  }
}
