import { StoreError } from './store/errors';
import { openStore } from './store/open';
import { RedisStore } from './store/redis';
import { PasswordHasher } from './store/hashing';
import { Sealer } from './store/sealed';
import { loadServerSecret, type ServerSecret } from './store/secret';
import type { CredentialStore } from './store/types';
import { VerifiedCache } from './store/verified-cache';
import type { ProxyConfig } from './config';

/** The credential store with the keys that make its contents usable. */
export interface Credentials {
  store: CredentialStore;
  secret: ServerSecret;
  /** Hashes and verifies passwords (HMAC for generated ones, scrypt for operator/factory ones). */
  hasher: PasswordHasher;
  /** Seals pending passwords and backend credentials (associated data: the charger identity). */
  sealer: Sealer;
  /** Recently verified passwords, so reconnect storms skip scrypt. */
  cache: VerifiedCache;
}

/**
 * Every process sharing a Redis store must use the same server secret: a password hashed or sealed
 * under another one verifies nowhere else, so one replica (or a `chargers` CLI) started with the
 * wrong secret would lock out every charger whose password it rotates or sets. A process with a
 * configured secret (file or environment: the proxy or the CLI) stores its fingerprint when the
 * store has none; every process whose secret differs from a stored one stops before it writes
 * anything. A generated secret (one data directory's own) never sets it.
 */
async function refuseAnotherSecret(store: RedisStore, secret: ServerSecret): Promise<void> {
  const stored = await store.secretFingerprint(secret.fingerprint, secret.source !== 'generated').catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  if (stored === null || stored === secret.fingerprint) return;
  await store.close();
  const where = secret.source === 'env' ? 'OCPP_PROXY_SECRET' : secret.source === 'generated' ? `the secret generated in ${secret.file}` : secret.file;
  throw new StoreError('secret_mismatch',
    `the server secret (${where}) is not the one this Redis store was written with: give every replica and the chargers CLI the same secretFile or OCPP_PROXY_SECRET ` +
    `(fingerprint here ${secret.fingerprint}, in the store ${stored}; after a deliberate change of secret, which invalidates every password the proxy generated, delete the key <prefix>server-secret-fingerprint)`);
}

/**
 * Opens the store the configuration names (Redis when `redis` is set, else the embedded store in
 * `dataDir`) and loads the server secret (file, `OCPP_PROXY_SECRET`, or generated in `dataDir`).
 * Used identically by `serve`, the `chargers` CLI and the admin API, so they always agree.
 */
export async function openCredentials(
  c: Pick<ProxyConfig, 'redis' | 'redisKeyPrefix' | 'dataDir' | 'secretFile' | 'credentialCacheTtlMs'>,
  hooks: { onPrimaryMoved?: () => void; onReplicaCheckRefused?: () => void; onConnectionChange?: (up: boolean, detail: string) => void } = {},
): Promise<Credentials> {
  const secret = await loadServerSecret({ file: c.secretFile ?? undefined, generateIn: c.dataDir });
  const store = await openStore({ redisUrl: c.redis ?? undefined, redisKeyPrefix: c.redisKeyPrefix, dataDir: c.dataDir, onPrimaryMoved: hooks.onPrimaryMoved, onReplicaCheckRefused: hooks.onReplicaCheckRefused, onConnectionChange: hooks.onConnectionChange });
  if (store instanceof RedisStore) await refuseAnotherSecret(store, secret);
  return {
    store,
    secret,
    hasher: new PasswordHasher(secret.passwordKey),
    sealer: new Sealer(secret.sealKey),
    cache: new VerifiedCache({ key: secret.cacheKey, ttlMs: c.credentialCacheTtlMs, maxEntries: 100_000 }),
  };
}
