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
 * The INFO that reads it is counted after it answers, so the first read adds one, taken off here.
 */
export async function countRedisCommands(url: string): Promise<RedisCommandCounter> {
  const probe = new Redis(url, { enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 1 });
  await probe.connect();
  const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await probe.info('stats'))?.[1] ?? NaN);
  const before = await processed();
  return {
    async stop() {
      try {
        return (await processed()) - before - 1;
      } finally {
        probe.disconnect();
      }
    },
  };
}
