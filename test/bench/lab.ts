/**
 * Everything the targets share during one bench run: a scratch directory, the test PKI (server
 * certificates, a CA that also issues the chargers' client certificate), a redis-server, the CSMS
 * stand-in process, the charger worker processes, and the seeded charger identities and passwords.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { makeTestPki } from '../helpers/pki';
import { TEST_PKI_DIR, TMP_ROOT } from '../helpers/proxy';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { openCredentials } from '../../proxy/store-setup';
import { startedPids, Worker } from './child';
import type { BenchAllocator, TargetEnv } from './targets';

/** The CN of the one client certificate every Profile 3 bench charger presents (bound in the store). */
export const P3_SERIAL = 'BENCH-CP-0001';

/** Seeded chargers: Profile 2 (generated HMAC passwords) and Profile 3 (certificate binding). */
export interface Fleet {
  p2: string[];
  p2Passwords: string[];
  p3: string[];
}

/** The shared parts of a run. */
export interface Lab {
  env: TargetEnv;
  redis: RedisProcess;
  csms: Worker;
  csmsPid: number;
  workers: Worker[];
  fleet: Fleet;
  caPem: string;
  client: { cert: string; key: string };
  /** Stops every process the lab started and removes the scratch directory (unless `keep`). */
  close(keep: boolean): Promise<void>;
}

/** Sets the lab up; on failure everything already started is stopped again. */
export async function openLab(o: { chargers: number; workers: number; threads: number; cpuProfile: boolean; proxyNodeArgs: string[]; proxyAllocator: BenchAllocator }, log: (s: string) => void): Promise<Lab> {
  mkdirSync(TMP_ROOT, { recursive: true });
  const dir = mkdtempSync(path.join(TMP_ROOT, 'bench-'));
  const stops: (() => Promise<void>)[] = [];
  const close = async (keep: boolean) => {
    for (const s of stops.reverse()) await s().catch(() => {});
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const pki = await makeTestPki(TEST_PKI_DIR);
    const client = await pki.charger(P3_SERIAL, { keyType: 'ec' });
    const redis = await startRedis();
    startedPids.push(redis.pid);
    stops.push(() => redis.stop());
    const csms = new Worker(path.join(__dirname, 'csms-main.js'), 'csms');
    stops.push(() => csms.request('stop', {}, 5000).then(() => undefined, () => undefined).then(() => csms.stop()));
    const { port: csmsPort } = await csms.request<{ port: number }>('listen');
    const workers = Array.from({ length: o.workers }, (_, k) => new Worker(path.join(__dirname, 'charger-worker.js'), `charger-worker-${k}`));
    for (const w of workers) stops.push(() => w.stop());
    const env: TargetEnv = { dir, csmsPort, redisUrl: redis.url, pkiDir: TEST_PKI_DIR, threads: o.threads, cpuProfile: o.cpuProfile, proxyNodeArgs: o.proxyNodeArgs, proxyAllocator: o.proxyAllocator };
    const fleet = await seed(env, o.chargers, log);
    return {
      env, redis, csms, csmsPid: csms.child.pid!, workers, fleet,
      caPem: readFileSync(path.join(TEST_PKI_DIR, 'ca.crt'), 'utf8'),
      client: { cert: client.chainPem, key: client.keyPem },
      close,
    };
  } catch (err) {
    await close(false);
    throw err;
  }
}

/**
 * Writes the fleet into Redis through the store API as `chargers add` would: Profile 2 chargers get
 * generated passwords (HMAC-hashed, 20 characters as the proxy generates for 1.6), Profile 3
 * chargers a certificate binding to {@link P3_SERIAL}. The server secret lands in the proxy's data dir.
 */
async function seed(env: TargetEnv, n: number, log: (s: string) => void): Promise<Fleet> {
  const started = Date.now();
  const dataDir = path.join(env.dir, 'proxy-data');
  mkdirSync(dataDir, { recursive: true });
  const creds = await openCredentials({ redis: env.redisUrl, redisKeyPrefix: 'ocpp:', dataDir, secretFile: null, credentialCacheTtlMs: 60_000 });
  const width = String(n).length;
  const fleet: Fleet = { p2: [], p2Passwords: [], p3: [] };
  for (let i = 0; i < n; i++) {
    const id = String(i).padStart(width, '0');
    fleet.p2.push(`bench-p2-${id}`);
    fleet.p2Passwords.push(randomBytes(15).toString('base64').replace(/[+/]/g, 'x'));
    fleet.p3.push(`bench-p3-${id}`);
  }
  try {
    const now = Date.now();
    // Booted before, as a fleet reconnecting after a rollout or an outage is: the proxy's own calls
    // decide at each admission whether anything is due (nothing is, for these chargers).
    const booted = { bootState: 'Accepted' as const, bootAt: now };
    for (let i = 0; i < n; i += 500) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(n, i + 500); j++) {
        batch.push(creds.store.putCharger({
          identity: fleet.p2[j]!, minProfile: 2, status: 'active', ...booted,
          password: creds.hasher.hashGenerated(Buffer.from(fleet.p2Passwords[j]!)), passwordSetAt: now, passwordSource: 'generated',
        }));
        batch.push(creds.store.putCharger({ identity: fleet.p3[j]!, minProfile: 3, status: 'active', ...booted, certificate: { serialNumber: P3_SERIAL } }));
      }
      await Promise.all(batch);
    }
  } finally {
    await creds.store.close();
  }
  log(`seeded ${2 * n} chargers in Redis in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return fleet;
}
