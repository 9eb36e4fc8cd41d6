/**
 * A token bucket that delays rather than drops: `delayMs()` takes one token and says how long the
 * caller must wait for it (0 while the burst lasts). For work a peer can trigger at will, where
 * losing an item is not an option but doing it at any rate is.
 */
export class Pace {
  private tokens: number;
  private last: number;

  constructor(private readonly perSecond: number, private readonly burst: number, private readonly now: () => number = () => performance.now()) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes a token; the milliseconds until it is due (tokens taken ahead are owed in turn). */
  delayMs(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.perSecond;
  }
}
