/** Something pinged once per interval. */
export interface Pingable {
  ping(): void;
}

/**
 * One timer that pings every live session once per interval, in place of a timer per session (a
 * Timeout and its closure held ~200 bytes of heap for each of thousands of idle sessions). The
 * interval is cut into `slots` ticks and a session joins the slot that has just ticked, so it is
 * pinged one interval after it started and every interval after that, and the sessions' pings stay
 * spread over the interval by when they started, as their own timers spread them.
 */
export class PingWheel {
  private readonly slots: Set<Pingable>[];
  private cursor = 0;
  private members = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs: number, slotCount = 30) {
    this.slots = Array.from({ length: slotCount }, () => new Set<Pingable>());
  }

  /** Whether its timer runs (only while it has members). */
  get running(): boolean {
    return this.timer !== null;
  }

  /** Adds a session; returns its slot (for remove). */
  add(member: Pingable): number {
    const slot = (this.cursor + this.slots.length - 1) % this.slots.length;
    this.slots[slot]!.add(member);
    if (this.members++ === 0) {
      this.timer = setInterval(tickWheel, this.intervalMs / this.slots.length, this);
      this.timer.unref?.();
    }
    return slot;
  }

  remove(member: Pingable, slot: number): void {
    if (!this.slots[slot]?.delete(member)) return;
    if (--this.members === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** @internal the timer's tick: pings the next slot (a ping may remove its session: Set iteration allows it). */
  tick(): void {
    const slot = this.slots[this.cursor]!;
    this.cursor = (this.cursor + 1) % this.slots.length;
    for (const member of slot) member.ping();
  }
}

function tickWheel(wheel: PingWheel): void {
  wheel.tick();
}

const wheels = new Map<number, PingWheel>();

/** The process's wheel for an interval (sessions with the same interval share it). */
export function pingWheelFor(intervalMs: number): PingWheel {
  let wheel = wheels.get(intervalMs);
  if (!wheel) wheels.set(intervalMs, (wheel = new PingWheel(intervalMs)));
  return wheel;
}
