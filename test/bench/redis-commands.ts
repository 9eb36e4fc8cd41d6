/**
 * How many commands the lab's Redis ran: the figure behind "Redis commands per session", what one
 * replica's admissions cost the Redis that every replica shares.
 */
import Redis from 'ioredis';

/** Counts what Redis runs between `countRedisCommands` and `stop` (stop also closes the probe). */
export interface RedisCommandCounter {
  stop(): Promise<number>;
}

/**
 * Starts counting. INFO's `total_commands_processed` counts clients' commands and the commands a
 * Lua script runs (an admission: GET, MGET and EVALSHA, whose script runs EXISTS, SET and PUBLISH).
 * The INFO that reads it is counted after it answers: each read adds one to the next, taken off here.
 */
export async function countRedisCommands(url: string): Promise<RedisCommandCounter> {
  const probe = new Redis(url, { enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 1 });
  await probe.connect();
  const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await probe.info('stats'))?.[1] ?? NaN);
  const before = await processed();
  return {
    async stop() {
      try {
        // An admission's claim goes out as the charger gets its 101, so the last ones may still be on
        // their way when the chargers report: read until nothing but these reads is counted (≤ 1 s).
        // `reads` INFOs have answered; the value a read returns counts the reads before it.
        let reads = 1;
        let last = await processed();
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 50));
          const now = await processed();
          reads++;
          if (now === last + 1) return last - before - (reads - 1);
          last = now;
        }
        return last - before - reads; // not settled in 1 s: what was counted by the last read
      } finally {
        probe.disconnect();
      }
    },
  };
}
