import { openStore } from './store/open';
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
 * Opens the store the configuration names (Redis when `redis` is set, else the embedded store in
 * `dataDir`) and loads the server secret (file, `OCPP_PROXY_SECRET`, or generated in `dataDir`).
 * Used identically by `serve`, the `chargers` CLI and the admin API, so they always agree.
 */
export async function openCredentials(
  c: Pick<ProxyConfig, 'redis' | 'redisKeyPrefix' | 'dataDir' | 'secretFile' | 'credentialCacheTtlMs'>,
  hooks: { onPrimaryMoved?: () => void } = {},
): Promise<Credentials> {
  const secret = await loadServerSecret({ file: c.secretFile ?? undefined, generateIn: c.dataDir });
  const store = await openStore({ redisUrl: c.redis ?? undefined, redisKeyPrefix: c.redisKeyPrefix, dataDir: c.dataDir, onPrimaryMoved: hooks.onPrimaryMoved });
  return {
    store,
    secret,
    hasher: new PasswordHasher(secret.passwordKey),
    sealer: new Sealer(secret.sealKey),
    cache: new VerifiedCache({ key: secret.cacheKey, ttlMs: c.credentialCacheTtlMs, maxEntries: 100_000 }),
  };
}
