/**
 * Test helper: the real CLI (`node dist/proxy/cli.js serve ...`) as a child process, for tests that
 * need a proxy that can be SIGKILLed, SIGTERMed or run twice (replicas). It waits for the banner,
 * parses the bound ports from it, reads the admin token from `<dataDir>/admin-token` and collects the
 * JSON log lines. `restart()` starts the same command again on the same ports, so chargers pointed at
 * it come back by themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { App } from '../../proxy/app';
import { openCredentials, type Credentials } from '../../proxy/store-setup';
import { sleep, waitFor } from './net';
import { LOG_FLUSH_MS } from '../../proxy/log';
import { startLegacyCsms, type LegacyCsms } from './csms';
import { makeTestPki } from './pki';
import { scratchDir, seedCharger, TEST_PKI_DIR, type SeedCharger } from './proxy';
import { startRedis } from './redis';

const CLI = path.resolve(__dirname, '../../proxy/cli.js');

/** Children still running; SIGKILLed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
});

/** How the child process ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms epoch. */
  at: number;
}

/** Options of {@link spawnProxy}. */
export interface ProxyProcessOptions {
  /** Data directory (admin token, server secret unless `secretFile` is a flag); created if missing. */
  dataDir: string;
  /** Configuration flags in camelCase (`{ redis: url, drainGraceMs: 500 }`); lists as arrays. */
  flags?: Record<string, string | number | boolean | string[]>;
  /** Extra environment variables (the parent's OCPP_PROXY_* variables are never inherited). */
  env?: Record<string, string>;
  /** How long to wait for the banner (default 20 s). */
  startTimeoutMs?: number;
}

/** A running proxy process. */
export interface ProxyProcess {
  /** wss:// URL chargers append their identity to, e.g. `wss://127.0.0.1:1234/ocpp`. */
  readonly tlsUrl: string;
  readonly tlsPort: number;
  readonly adminUrl: string;
  readonly adminToken: string;
  /** PEM of the CA that signed the server certificate (the shared test PKI). */
  readonly caPem: Buffer;
  /** PID of the current child (changes on restart). */
  readonly pid: number;
  /** Parsed JSON log lines of every run so far (lines reach stdout in batches: see {@link settledLogs}). */
  readonly logs: Record<string, unknown>[];
  /** {@link logs} once every line logged before the call has had time to be written (LOG_FLUSH_MS). */
  settledLogs(): Promise<Record<string, unknown>[]>;
  /** Everything the current run wrote to stderr. */
  stderr(): string;
  /** Resolves when the current child exits. */
  readonly exited: Promise<ProcessExit>;
  /** Sends `signal` to the current child (no-op once it has exited). */
  kill(signal?: NodeJS.Signals): void;
  /** Starts the same command again on the same ports (kills a still-running child with SIGKILL first). */
  restart(): Promise<void>;
  /** SIGKILLs the child if it still runs and waits for it (teardown). */
  stop(): Promise<void>;
}

/** The environment without the developer's OCPP_PROXY_* variables. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OCPP_PROXY_')) env[k] = v;
  return { ...env, ...extra };
}

/** camelCase → `--kebab-case`. */
const flag = (key: string) => '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

function argv(flags: Record<string, string | number | boolean | string[]>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(flags)) {
    for (const item of Array.isArray(v) ? v : [v]) out.push(flag(k), String(item));
  }
  return out;
}

/**
 * Spawns `cli.js serve` with the shared test PKI as server certificate and client CA, loopback ports
 * (0 = chosen by the OS on the first start), `pingIntervalMs` 0 and info-level JSON logs, overridden
 * by `opts.flags`. Resolves once the banner shows the bound ports and the admin token file exists.
 * Rejects with the process's stderr when it exits or stays silent instead.
 */
export async function spawnProxy(opts: ProxyProcessOptions): Promise<ProxyProcess> {
  mkdirSync(opts.dataDir, { recursive: true });
  const base: Record<string, string | number | boolean | string[]> = {
    listen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
    dataDir: opts.dataDir,
    tlsCert: [path.join(TEST_PKI_DIR, 'server-rsa.crt'), path.join(TEST_PKI_DIR, 'server-ec.crt')],
    tlsKey: [path.join(TEST_PKI_DIR, 'server-rsa.key'), path.join(TEST_PKI_DIR, 'server-ec.key')],
    clientCa: path.join(TEST_PKI_DIR, 'ca.crt'),
    caDir: TEST_PKI_DIR,
    pingIntervalMs: 0,
    logLevel: 'info',
    ...opts.flags,
  };
  const logs: Record<string, unknown>[] = [];
  let child: ChildProcess;
  let stdout = '';
  let stderr = '';
  let exited!: Promise<ProcessExit>;
  let tlsPort = 0;
  let adminPort = 0;

  const start = async (flags: Record<string, string | number | boolean | string[]>) => {
    stdout = '';
    stderr = '';
    let pending = '';
    const c = spawn(process.execPath, [CLI, 'serve', ...argv(flags)], { env: cleanEnv(opts.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c);
    c.once('exit', () => live.delete(c));
    exited = new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
    c.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      pending += d.toString();
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (line.startsWith('{')) try { logs.push(JSON.parse(line)); } catch { /* not a log line */ }
      }
    });
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const gone = exited.then((e) => { throw new Error(`proxy exited (${e.code ?? e.signal}) before its banner: ${stderr.trim()}`); });
    const banner = await Promise.race([
      waitFor(() => (/Admin \/ metrics:\s+http:\/\/[\d.]+:(\d+)/.test(stdout) ? stdout : ''), 'the proxy banner', opts.startTimeoutMs ?? 20000, 25),
      gone,
    ]).catch((err: Error) => {
      c.kill('SIGKILL');
      throw new Error(`${err.message}\nstderr: ${stderr}`);
    });
    tlsPort = Number(/Point chargers at:\s+wss:\/\/[\d.]+:(\d+)\//.exec(banner)![1]);
    adminPort = Number(/Admin \/ metrics:\s+http:\/\/[\d.]+:(\d+)/.exec(banner)![1]);
  };

  await start(base);
  // Later runs keep the ports, so chargers and the test reach the restarted process at the same URLs.
  const again = { ...base, listen: `127.0.0.1:${tlsPort}`, adminListen: `127.0.0.1:${adminPort}` };
  const adminToken = readFileSync(path.join(opts.dataDir, 'admin-token'), 'utf8').trim();
  const running = () => child.exitCode === null && child.signalCode === null;

  const handle: ProxyProcess = {
    get tlsUrl() { return `wss://127.0.0.1:${tlsPort}/ocpp`; },
    get tlsPort() { return tlsPort; },
    get adminUrl() { return `http://127.0.0.1:${adminPort}`; },
    adminToken,
    caPem: readFileSync(path.join(TEST_PKI_DIR, 'ca.crt')),
    get pid() { return child.pid ?? -1; },
    logs,
    settledLogs: async () => {
      await sleep(2 * LOG_FLUSH_MS + 100);
      return logs;
    },
    stderr: () => stderr,
    get exited() { return exited; },
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (running()) process.kill(child.pid!, signal);
    },
    async restart() {
      await handle.stop();
      await start(again);
    },
    async stop() {
      if (running()) process.kill(child.pid!, 'SIGKILL');
      await exited;
    },
  };
  return handle;
}

/** Calls the admin API of a proxy process; resolves with status and parsed JSON body (null when empty). */
export async function adminCall(p: Pick<ProxyProcess, 'adminUrl' | 'adminToken'>, method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${p.adminUrl}/api/v1${apiPath}`, {
    method,
    headers: { authorization: `Bearer ${p.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Writes a fresh server secret (32 random bytes, hex) to `file`, for replicas that must share one. */
export function writeSecretFile(file: string): string {
  writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  return file;
}

/**
 * Opens the Redis store with the given secret in this process, as the `chargers` CLI would, so a
 * test can seed and inspect what spawned proxies see. Close `credentials.store` at teardown.
 */
export function openSharedCredentials(redisUrl: string, secretFile: string, dataDir: string): Promise<Credentials> {
  return openCredentials({ redis: redisUrl, redisKeyPrefix: 'ocpp:', dataDir, secretFile, credentialCacheTtlMs: 0 });
}

/** `seedCharger` for a store opened with {@link openSharedCredentials}. */
export function seedShared(credentials: Credentials, c: SeedCharger): Promise<void> {
  return seedCharger({ credentials } as unknown as App, c);
}

/** What tests with spawned proxies share: a scratch dir, Redis, a CSMS stand-in, one server secret and a store view. */
export interface SharedRig {
  dir: string;
  redis: Awaited<ReturnType<typeof startRedis>>;
  csms: LegacyCsms;
  secretFile: string;
  creds: Credentials;
}

/**
 * Starts the shared parts for proxy processes (torn down with the test): Redis (extra `redisArgs`,
 * e.g. AOF persistence in the scratch dir), the legacy CSMS stand-in, a server secret file every
 * replica reads, and the test's own view of the store.
 */
export async function startSharedRig(t: { teardown(fn: () => unknown): void }, prefix: string, redisArgs: (dir: string) => string[] = () => []): Promise<SharedRig> {
  await makeTestPki(TEST_PKI_DIR);
  const dir = scratchDir(t, prefix);
  const redis = await startRedis({ args: redisArgs(dir) });
  t.teardown(() => redis.stop());
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const secretFile = writeSecretFile(path.join(dir, 'server-secret'));
  const creds = await openSharedCredentials(redis.url, secretFile, dir);
  t.teardown(() => creds.store.close());
  return { dir, redis, csms, secretFile, creds };
}
