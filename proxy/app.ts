import type { AddressInfo } from 'node:net';
import { BruteForceGuard } from '../policies/brute-force';
import { admissionGates } from '../policies/gates';
import { bootState } from '../policies/interceptors/boot-state';
import { certificateRenewal } from '../policies/interceptors/certificate-renewal';
import { certificateSigning } from '../policies/interceptors/certificate-signing';
import { csmsCredentialGuard } from '../policies/interceptors/csms-credential-guard';
import { securityEvents } from '../policies/interceptors/security-events';
import { serialNumberCheck } from '../policies/interceptors/serial-number-check';
import { openCaSigner, signingTrust } from './ca-signer';
import { passwordRotation } from '../policies/interceptors/rotation';
import { profileUpgrade } from '../policies/interceptors/profile-upgrade';
import type { InterceptorFactory } from '../policies/interceptors/types';
import { AdminServer, type AdminRoute } from './admin';
import { adminApiRoutes } from './admin-api';
import { loadAdminToken } from './admin-token';
import { ChargerAdmin } from './chargers';
import { SessionCoordinator } from './coordination';
import { metricsHooks } from './app-metrics';
import { probeBackend } from './backend-probe';
import { BackendTrust } from './backend-trust';
import type { ProxyConfig } from './config';
import { readSettingFile } from './setting-file';
import type { Logger } from './log';
import { ProxyMetrics } from './metrics';
import { instrumentStore } from './metrics-store';
import { ProxyServer } from './server';
import { openCredentials, type Credentials } from './store-setup';
import { verifyWithCache } from './store/verified-cache';
import type { ChargerRecord, FactoryDefault } from './store/types';
import { resolveTls, type ResolvedTls } from './tls-setup';
import { currentAllocator } from './allocator';

/** A running proxy: charger listeners, admin listener, credential store, and how to stop them. */
export interface App {
  config: ProxyConfig;
  server: ProxyServer;
  admin: AdminServer;
  credentials: Credentials;
  metrics: ProxyMetrics;
  /** Bearer token of the admin API. */
  adminToken: string;
  /** Where that token is kept (null: it came from OCPP_PROXY_ADMIN_TOKEN). */
  adminTokenFile: string | null;
  /** This process's replica id. */
  replica: string;
  tls: ResolvedTls;
  /** Whether the CSMS can be reached now (and, for wss://, its certificate verifies); rejects with a ProbeError. */
  probeCsms(): Promise<void>;
  addresses: { tls: AddressInfo; plain: AddressInfo | null; admin: AddressInfo };
  /** Graceful: drain sessions (1001 after grace + jitter), then close everything. */
  drain(): Promise<void>;
  /** Immediate. */
  stop(): Promise<void>;
}

/** Test and embedding hooks. */
export interface AppOptions {
  log: Logger;
  /** Extra interceptors (tests), run after the built-in ones. */
  interceptors?: InterceptorFactory[];
  /** Extra admin routes (the admin API registers here). */
  adminRoutes?: AdminRoute[];
  /** Prometheus default process metrics (off in tests that start many proxies). */
  processMetrics?: boolean;
  /** With Redis, how often every session held is checked against the store (default 5 min; 0 = never). */
  coordinationSweepMs?: number;
}

/** With Redis, how often every session held is checked against the store (see SessionCoordinator.start). */
const COORDINATION_SWEEP_MS = 5 * 60_000;

/** Composes and starts the proxy from a validated configuration. */
export async function startApp(config: ProxyConfig, opts: AppOptions): Promise<App> {
  const log = opts.log;
  const tls = await resolveTls(config);
  // Read before anything is opened: a broken bundle stops the start with a ConfigError.
  const backendTrust = new URL(config.backend).protocol === 'wss:' ? new BackendTrust(config.backendCa) : null;
  // Within the admin check's 2 s, but as long as a dial may take: a TLS handshake to a distant CSMS
  // takes two more round trips than the TCP connect the probe used to be.
  const probeCsms = () => probeBackend(config.backend, Math.min(config.backendTimeoutMs, 1900), backendTrust?.connectOptions());
  const metrics = new ProxyMetrics({ collectDefault: opts.processMetrics ?? true, version: packageVersion(), allocator: currentAllocator() });
  const credentials = await openCredentials(config, {
    onPrimaryMoved: () => log.warn({ event: 'redis_primary_moved', msg: 'Redis refused a write (READONLY) and the address now reaches a primary: reconnected to it' }),
    onReplicaCheckRefused: () => log.warn({ event: 'redis_replica_check_refused', msg: 'Redis refused ROLE (allow the proxy\'s ACL user +role): rotated passwords are sent without checking that a replica holds them' }),
    onConnectionChange: (up, detail) => (up
      ? log.info({ event: 'redis_connection_restored' }, 'Redis is reachable again: admissions resume')
      : log.warn({ event: 'redis_connection_lost', err: detail }, 'Redis is unreachable: live sessions keep relaying, new connections get 503 gate_error until it is back')),
  });
  const store = instrumentStore(credentials.store, metrics);
  for (const w of credentials.secret.warnings) log.warn({ event: 'server_secret_warning', warning: w });
  if (config.redis && credentials.secret.source === 'generated') {
    // Each replica would key password hashes with a secret of its own: a password rotated through
    // one replica would be refused by the others.
    log.warn({ event: 'server_secret_per_replica', file: credentials.secret.file },
      'the credential store is shared (Redis) but the server secret is this replica\'s own (dataDir/server-secret): give every replica the same secretFile or OCPP_PROXY_SECRET');
  }
  const guard = new BruteForceGuard(store, {
    identityThreshold: config.lockoutThreshold,
    addressThreshold: config.addressLockoutThreshold,
    windowMs: config.failureWindowMs,
    baseMs: config.lockoutBaseMs,
    maxMs: config.lockoutMaxMs,
  }, Date.now, (err) => log.warn({ event: 'failures_counted_locally', err: err.message }, 'the store refuses writes: failed logins are counted in this process only'));
  const gates = admissionGates(config, {
    store,
    guard,
    autoEnrol: config.autoEnrol,
    organization: config.organization,
    rotationGraceMs: config.rotationGraceMs,
    lockoutSparesFamiliarAddress: config.lockoutSparesFamiliarAddress,
    verifier: { verify: (identity, candidate, stored) => verifyWithCache(credentials.hasher, credentials.cache, identity, candidate, stored) },
    factoryDefaults: cachedFactoryDefaults(() => store.listFactoryDefaults()),
  });
  const backendCredentials = await globalBackendCredentials(config);
  const signer = await openCaSigner(config);
  // Checked at every CSR against the client CA file as it is then (it may be rotated at runtime).
  const signerTrusted = signer ? signingTrust(signer, tls.files.clientCa) : undefined;
  if (!signer) log.warn({ event: 'no_signing_ca' }, 'no caDir configured: SignCertificate requests will be answered Rejected');
  else if (!signerTrusted!()) {
    log.error({ event: 'signing_ca_untrusted', clientCa: tls.files.clientCa ?? null },
      'the signing CA (caDir) root is not in clientCa: certificates it signed would be refused at login; SignCertificate requests are answered Rejected until it is');
  }
  const hooks = metricsHooks(metrics);
  let coordinator: SessionCoordinator | null = null;
  const server = new ProxyServer(config, {
    log,
    tls: tls.files,
    backendTrust,
    gates,
    interceptors: [
      csmsCredentialGuard({ enabled: config.guardCsmsCalls, store }),
      serialNumberCheck({ enabled: config.checkSerialNumber, store, log }),
      bootState({ store }),
      securityEvents({ store, mode: config.localSecurityEvents, log, metrics: { securityEvent: (type) => metrics.securityEvents.inc({ type }) } }),
      certificateSigning({
        store, signer, signerTrusted, organization: config.organization, log,
        metrics: { certificate: (outcome, reason) => metrics.certificates.inc({ outcome, reason }) },
      }),
      certificateRenewal({ store, renewBeforeDays: config.renewBeforeDays, log, bootWaitMs: config.bootWaitMs }),
      profileUpgrade({
        store, publicUrl: config.publicUrl, retryMs: config.rotationRetryMs, callTimeoutMs: config.callTimeoutMs, checkSerialNumber: config.checkSerialNumber, bootWaitMs: config.bootWaitMs,
        outcome: (o) => metrics.profileUpgrades.inc({ outcome: o }),
      }),
      passwordRotation({
        store,
        enabled: config.rotation,
        maxAgeMs: config.passwordMaxAgeDays * 24 * 3600 * 1000,
        retryMs: config.rotationRetryMs,
        callTimeoutMs: config.callTimeoutMs,
        bootWaitMs: config.bootWaitMs,
        hashGenerated: (pw) => credentials.hasher.hashGenerated(pw),
        seal: (pw, identity) => credentials.sealer.seal(pw, identity),
        open: (sealed, identity) => credentials.sealer.open(sealed, identity),
        outcome: (o) => metrics.rotations.inc({ outcome: o }),
      }),
      ...(opts.interceptors ?? []),
    ],
    backendCredentials: (ctx) => {
      // Per charger (sealed in the store) wins over the global setting.
      const own = (ctx.facts.charger as ChargerRecord | undefined)?.backendCredentials;
      if (own) return { username: own.username, password: credentials.sealer.open(own.passwordEncrypted, ctx.identity) };
      return backendCredentials ? { username: backendCredentials.username ?? ctx.identity, password: backendCredentials.password } : null;
    },
    ...hooks,
    // The coordinator's mark, taken before the gates read the store, travels with the facts to the claim.
    onUpgradeStarted: (ctx) => { if (coordinator) ctx.facts.changeMark = coordinator.mark(); },
    onSession: (session) => {
      hooks.onSession?.(session);
      void coordinator?.claim(session, session.facts.changeMark as number | undefined);
    },
  });
  coordinator = new SessionCoordinator(store, server.sessions, log);
  const sharedCredentials: Credentials = { ...credentials, store };
  const adminToken = await loadAdminToken({ file: config.adminTokenFile, generateIn: config.dataDir });
  const replica = coordinator.replica;
  const apiRoute = adminApiRoutes({
    admin: new ChargerAdmin(sharedCredentials, { actor: 'admin-api', servingProcess: config.workers <= 1, forgetLocalLockouts: (keys) => guard.forgetHere(keys) }),
    token: adminToken.token,
    log,
    sessions: {
      list: () => server.sessions.all().map((s) => ({
        identity: s.identity, profile: s.profile, subprotocol: s.subprotocol, since: new Date(s.startedAt).toISOString(),
        frames: { ...s.frames }, replica, remoteAddress: s.remoteAddress,
      })),
      disconnect: (identity, code) => {
        const s = server.sessions.get(identity);
        if (!s) return false;
        s.close(code ?? 1000, 'closed by operator');
        return true;
      },
    },
  });
  const admin = new AdminServer({
    listen: config.adminListen,
    log,
    readiness: {
      listeners: async () => server.listening,
      store: () => store.ping(),
      csms: probeCsms,
    },
    metrics: { contentType: metrics.contentType, text: () => metrics.metricsText() },
    routes: [apiRoute, ...(opts.adminRoutes ?? [])],
  });
  const closeStore = () => credentials.store.close().catch((err: unknown) => log.warn({ event: 'store_close_failed', err: String(err) }));
  let listeners;
  let adminAddress;
  let stopTrustWatch: (() => void) | null = null;
  try {
    listeners = await server.start();
    adminAddress = await admin.start();
    stopTrustWatch = backendTrust?.watch(log, 2000, hooks.onTlsReload) ?? null;
    // Only a shared store loses change messages (the embedded one tells its listeners in process).
    coordinator.start(config.redis ? opts.coordinationSweepMs ?? COORDINATION_SWEEP_MS : 0);
  } catch (err) {
    await server.stop();
    await admin.stop();
    await closeStore();
    throw err;
  }
  return {
    config,
    server,
    admin,
    credentials: sharedCredentials,
    adminToken: adminToken.token,
    adminTokenFile: adminToken.file ?? null,
    replica,
    metrics,
    tls,
    probeCsms,
    addresses: { ...listeners, admin: adminAddress },
    async drain() {
      stopTrustWatch?.();
      // Blocks, revocations and replacements still close sessions during the grace; records handed
      // to interceptors would only start work the drain is about to cut.
      coordinator?.quiesce();
      await server.drain();
      coordinator?.stop();
      await admin.stop();
      await closeStore();
    },
    async stop() {
      stopTrustWatch?.();
      coordinator?.stop();
      await server.stop();
      await admin.stop();
      await closeStore();
    },
  };
}

/** This package's version, for ocpp_proxy_build_info. */
function packageVersion(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Factory defaults change rarely and are read on factory-password logins: keep them 10 s. */
function cachedFactoryDefaults(load: () => Promise<FactoryDefault[]>): () => Promise<FactoryDefault[]> {
  let value: Promise<FactoryDefault[]> | null = null;
  let at = 0;
  return () => {
    if (!value || Date.now() - at > 10_000) {
      at = Date.now();
      value = load().catch((err: unknown) => {
        value = null;
        throw err;
      });
    }
    return value;
  };
}

async function globalBackendCredentials(c: ProxyConfig): Promise<{ username: string | null; password: Buffer } | null> {
  const fromEnv = process.env.OCPP_PROXY_BACKEND_PASSWORD;
  let password: Buffer | null = fromEnv ? Buffer.from(fromEnv) : null;
  if (c.backendPasswordFile) {
    password = readSettingFile('backendPasswordFile', c.backendPasswordFile); // raw bytes: 1.6 keys may be binary
    // A trailing newline from `echo pw > file` is never part of a password.
    while (password.length > 0 && (password[password.length - 1] === 0x0a || password[password.length - 1] === 0x0d)) password = password.subarray(0, -1);
  }
  if (!password) return null;
  return { username: c.backendUsername, password };
}
