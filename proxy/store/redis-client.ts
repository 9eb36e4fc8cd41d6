/**
 * Builds the ioredis client for a `RedisTarget` and registers the Lua scripts the store relies on.
 * Clients fail fast (no offline queue, one retry, command timeout) so callers can fail closed, and
 * reconnect on their own in the background.
 */
import type { ConnectionOptions } from 'node:tls';
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import { StoreError } from './errors';
import { primaryFollower } from './redis-failover';
import { describeRedisTarget, type RedisTarget } from './redis-url';

/** Connection tuning. */
export interface RedisClientOptions {
  /** Per-command timeout, ms (default 2000). */
  commandTimeoutMs?: number;
  /** How long `connectRedis` waits for the first ready connection, ms (default 5000). */
  connectTimeoutMs?: number;
  /** Extra TLS options (CA bundle, client cert) for rediss URLs. */
  tls?: ConnectionOptions;
  /** Told when the client left a demoted primary to follow its address to the new one. */
  onPrimaryMoved?: () => void;
  /** Told when the connection drops (`up` false, with the last error seen) and when it is ready again. */
  onConnectionChange?: (up: boolean, detail: string) => void;
}

/** The Lua-backed commands added to the client. */
export interface StoreCommands {
  /** Compare-and-set of a string key: set to `next` ('' deletes) only if it equals `expected` ('' = absent). 1 on success. */
  casJson(key: string, expected: string, next: string): Promise<number>;
  /** INCR with a fixed-window PEXPIRE set on the first increment; returns the count. */
  incrWindow(key: string, windowMs: number): Promise<number>;
  /**
   * Only while `recordKey` exists (keys share a slot): numbers the claim by INCR of `countKey`, SETs
   * `ownerKey` to `ownerHead` + number + `ownerTail` and PUBLISHes `messageHead` + number +
   * `messageTail` on `channel`, all in one script: a claim is one round trip. Returns the number, 0
   * when not set.
   */
  claimOwner(recordKey: string, ownerKey: string, countKey: string, ownerHead: string, ownerTail: string, channel: string, messageHead: string, messageTail: string): Promise<number>;
}

/** A connected ioredis client (standalone/Sentinel or Cluster) with the store's commands. */
export type StoreRedis = (Redis | Cluster) & StoreCommands;

const CAS_JSON = `
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1`;

const INCR_WINDOW = `
local c = redis.call('INCR', KEYS[1])
if c == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return c`;

// The count has a key of its own: a claim written by an older version (without a number), a lost or
// damaged claim, never restarts it.
const CLAIM_OWNER = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local generation = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], ARGV[1] .. generation .. ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. generation .. ARGV[5])
return generation`;

/**
 * Create a client for `target` and wait until it is ready.
 * @throws StoreError `store_unavailable` when Redis cannot be reached within the connect timeout.
 */
export async function connectRedis(target: RedisTarget, opts: RedisClientOptions = {}): Promise<StoreRedis> {
  const common: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
    username: target.username,
    password: target.password,
    tls: target.tls ? { ...opts.tls } : undefined,
  };
  let client: Redis | Cluster;
  // A failover behind an address that follows the primary leaves this connection on a replica (see
  // redis-failover.ts). A Cluster follows its primaries itself (MOVED, slot refresh).
  const followPrimary = (probeOptions: RedisOptions): RedisOptions => ({
    reconnectOnError: primaryFollower({
      client: () => client ?? null,
      openProbe: () => new Redis({ ...probeOptions, lazyConnect: true, retryStrategy: () => null, enableAutoPipelining: false }),
      onMoved: opts.onPrimaryMoved,
    }),
  });
  if (target.kind === 'standalone') {
    // Auto-pipelining: the admission gates' concurrent reads (and a reconnect storm's) share round trips.
    const options: RedisOptions = { ...common, host: target.host, port: target.port, db: target.db };
    client = new Redis({ ...options, ...followPrimary(options), enableAutoPipelining: true });
  } else if (target.kind === 'sentinel') {
    const options: RedisOptions = {
      ...common,
      sentinels: target.sentinels,
      name: target.masterName,
      db: target.db,
      sentinelUsername: target.sentinelUsername,
      sentinelPassword: target.sentinelPassword,
      enableTLSForSentinelMode: target.tls,
      sentinelRetryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
    };
    client = new Redis({ ...options, ...followPrimary(options), enableAutoPipelining: true });
  } else {
    const { lazyConnect, enableOfflineQueue, retryStrategy, ...redisOptions } = common;
    client = new Cluster(target.nodes, {
      lazyConnect,
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy,
      redisOptions,
      // Group commands per slot so fetching many chargers costs few round trips.
      enableAutoPipelining: true,
    });
  }
  client.defineCommand('casJson', { numberOfKeys: 1, lua: CAS_JSON });
  client.defineCommand('incrWindow', { numberOfKeys: 1, lua: INCR_WINDOW });
  client.defineCommand('claimOwner', { numberOfKeys: 3, lua: CLAIM_OWNER });
  // Without a listener ioredis prints every connection error; the store reports them per call instead.
  let lastError = '';
  client.on('error', (err: Error) => {
    lastError = err.message;
  });
  const timeoutMs = (opts.connectTimeoutMs ?? 5000) + 500;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    client.disconnect();
    const why = lastError && lastError !== (err as Error).message ? `${(err as Error).message} (${lastError})` : (err as Error).message;
    throw new StoreError('store_unavailable', `cannot connect to ${describeRedisTarget(target)}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
  // Once up: say when it drops and when it is back (ioredis reconnects by itself, quietly).
  let up = true;
  client.on('close', () => {
    if (!up) return;
    up = false;
    opts.onConnectionChange?.(false, lastError || 'connection closed');
  });
  client.on('ready', () => {
    if (up) return;
    up = true;
    lastError = '';
    opts.onConnectionChange?.(true, '');
  });
  return client as StoreRedis;
}
