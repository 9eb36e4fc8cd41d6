/**
 * Opens the configured credential store: Redis when a URL is given, otherwise the embedded
 * file-backed store in the data directory.
 */
import { EmbeddedStore } from './embedded';
import { RedisStore } from './redis';
import type { RedisClientOptions } from './redis-client';
import type { CredentialStore } from './types';

/** Options of `openStore`. */
export interface OpenStoreOptions extends RedisClientOptions {
  /** redis://, rediss://, redis-sentinel://, redis-cluster:// (see `redis-url.ts`). */
  redisUrl?: string;
  /** Redis key prefix, default `ocpp:`. */
  redisKeyPrefix?: string;
  /** Directory of the embedded store (used when no redisUrl). */
  dataDir: string;
  /** Audit events kept, default 10,000. */
  auditCap?: number;
  /** Redis only: see RedisStoreOptions. */
  onReplicaCheckRefused?: () => void;
}

/** Open the credential store described by `opts`. @throws StoreError */
export async function openStore(opts: OpenStoreOptions): Promise<CredentialStore> {
  if (opts.redisUrl) {
    return RedisStore.open({ ...opts, url: opts.redisUrl, keyPrefix: opts.redisKeyPrefix });
  }
  return EmbeddedStore.open({ dataDir: opts.dataDir, auditCap: opts.auditCap });
}
