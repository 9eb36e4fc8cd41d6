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
 * Starts counting, from INFO's per-command counts, which include the commands a Lua script runs (an
 * admission: GET, MGET and EVALSHA, whose script runs EXISTS, SET and PUBLISH); the probe's own INFO
 * calls are left out.
 */
export async function countRedisCommands(url: string): Promise<RedisCommandCounter> {
  const probe = new Redis(url, { enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 1 });
  await probe.connect();
  const commands = async () => {
    let n = 0;
    for (const [, name, calls] of (await probe.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
      if (name !== 'info') n += Number(calls);
    }
    return n;
  };
  const before = await commands();
  return {
    async stop() {
      try {
        // An admission's claim goes out as the charger gets its 101, so the last ones may still be on
        // their way when the chargers report: read until two reads 50 ms apart agree (at most 1 s).
        let last = await commands();
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 50));
          const now = await commands();
          if (now === last) break;
          last = now;
        }
        return last - before;
      } finally {
        probe.disconnect();
      }
    },
  };
}
