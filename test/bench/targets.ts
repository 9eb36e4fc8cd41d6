/**
 * The proxies under test, each started on a free loopback port in front of the same CSMS stand-in
 * with the same certificates and suites: ours (the real CLI in its own process, Redis store),
 * HAProxy and nginx (from the configs in test/bench/config/, filled in per run), and "direct"
 * (chargers talk plain ws to the CSMS: the floor every proxy is compared with), and "node" (the least a
 * Node.js TLS-terminating proxy can do: node-floor.ts, TLS terminated and bytes piped, nothing parsed).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import path from 'node:path';
import { childPids, spawnRaised, startedPids, stopChild } from './child';
import { freePort } from '../helpers/net';
import { JEMALLOC_MALLOC_CONF } from '../../proxy/allocator';

/** Name of a column of the results. */
export type TargetName = 'ours' | 'haproxy' | 'nginx' | 'node' | 'direct';

/** A running target. */
export interface Target {
  name: TargetName;
  /** URL base chargers append their identity to. */
  base: string;
  tls: boolean;
  /** Our proxy only: base URL of its admin listener (`/metrics`). */
  admin?: string;
  /** PIDs whose RSS is the target's memory (nginx: master and workers). */
  pids(): number[];
  stop(): Promise<void>;
}

/** What every target is built from. */
export interface TargetEnv {
  /** Scratch directory of this run (configs, logs, data dir). */
  dir: string;
  csmsPort: number;
  redisUrl: string;
  pkiDir: string;
  /** Threads/workers for HAProxy and nginx, worker processes for ours (1 = the single core Node's event loop gets). */
  threads: number;
  /** Write a V8 CPU profile of our proxy into dir/profiles. */
  cpuProfile: boolean;
  /** Extra Node options for our proxy. */
  proxyNodeArgs: string[];
  /** C allocator of our proxy: jemalloc (preloaded, as the container image runs it) or glibc's malloc. */
  proxyAllocator: BenchAllocator;
}

/** The C allocators the bench can run our proxy on. */
export type BenchAllocator = 'jemalloc' | 'glibc';

/** Debian's libjemalloc2 (the container image preloads the same library), or null when missing. */
export function jemallocPath(): string | null {
  const candidates = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2', '/usr/lib/libjemalloc.so.2'];
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** The environment of our proxy's process for an allocator (LD_PRELOAD and the image's MALLOC_CONF, unless the bench's environment has one; or cleared for glibc). */
function allocatorEnv(allocator: BenchAllocator): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _inherited, ...rest } = process.env;
  const lib = allocator === 'jemalloc' ? jemallocPath() : null;
  if (allocator === 'jemalloc' && !lib) throw new Error('jemalloc asked for but libjemalloc2 is not installed (apt-get install libjemalloc2)');
  return lib ? { ...rest, LD_PRELOAD: lib, MALLOC_CONF: process.env.MALLOC_CONF ?? JEMALLOC_MALLOC_CONF } : rest;
}

const CONFIG_DIR = path.resolve(__dirname, '../../../test/bench/config');
const REPO_ROOT = path.resolve(__dirname, '../../..');

/** Suites every target offers: the OCPP TLS 1.2 set plus ECDHE-RSA-GCM, as proxy/tls.ts does. */
export const CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-GCM-SHA384';

/**
 * The open-file limit every target runs under (the hard limit: an unprivileged sandbox cannot raise
 * it). A proxy holds two descriptors per session, so this caps the sessions a target can hold.
 */
export function fileLimit(): number {
  const r = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return r.stdout.trim() === 'unlimited' ? 1_048_576 : Number.isFinite(n) && n > 0 ? n : 1024;
}

/** Most sessions a proxy can hold under {@link fileLimit} (two descriptors each, plus a margin). */
export function maxSessions(): number {
  return Math.max(1, Math.floor((Math.min(fileLimit(), 65_536) - 200) / 2));
}

/** Whether a program is on PATH (HAProxy and nginx columns are n/a without it). */
export function haveBinary(name: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Starts our proxy via its CLI (`serve`) with the Redis store and both server certificates. */
export async function startOurs(env: TargetEnv): Promise<Target> {
  const port = await freePort();
  const admin = await freePort();
  const dataDir = path.join(env.dir, 'proxy-data');
  mkdirSync(dataDir, { recursive: true });
  const profileArgs = [...(env.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(env.dir, 'profiles')}`] : []), ...env.proxyNodeArgs];
  const child = spawnRaised([
    process.execPath, ...profileArgs, path.join(REPO_ROOT, 'dist/proxy/cli.js'), 'serve',
    '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${admin}`,
    '--backend', `ws://127.0.0.1:${env.csmsPort}/ocpp`, '--redis', env.redisUrl,
    '--tls-cert', path.join(env.pkiDir, 'server-rsa.crt'), '--tls-key', path.join(env.pkiDir, 'server-rsa.key'),
    '--tls-cert', path.join(env.pkiDir, 'server-ec.crt'), '--tls-key', path.join(env.pkiDir, 'server-ec.key'),
    '--client-ca', path.join(env.pkiDir, 'ca.crt'), '--data-dir', dataDir,
    '--drain-grace-ms', '0', '--drain-jitter-ms', '0',
    // --threads N > 1: our `workers` option (N processes sharing the listener), as HAProxy gets N threads.
    ...(env.threads > 1 ? ['--workers', String(env.threads)] : []),
  ], path.join(env.dir, 'proxy.log'), allocatorEnv(env.proxyAllocator));
  await waitForPort(port, child, 'our proxy', path.join(env.dir, 'proxy.log'));
  const t = simpleTarget('ours', `wss://127.0.0.1:${port}/ocpp/`, child);
  if (env.threads > 1) {
    if (child.pid) startedPids.push(...childPids(child.pid));
    t.pids = () => (child.pid ? [child.pid, ...childPids(child.pid)] : []); // the primary and its workers
  }
  return { ...t, admin: `http://127.0.0.1:${admin}` };
}

/** Starts HAProxy in the foreground (-db) from config/haproxy.cfg. */
export async function startHaproxy(env: TargetEnv): Promise<Target> {
  const port = await freePort();
  // HAProxy wants certificate and key in one PEM per certificate.
  for (const kind of ['rsa', 'ec']) {
    const pem = readFileSync(path.join(env.pkiDir, `server-${kind}.crt`), 'utf8') + readFileSync(path.join(env.pkiDir, `server-${kind}.key`), 'utf8');
    writeFileSync(path.join(env.dir, `haproxy-${kind}.pem`), pem, { mode: 0o600 });
  }
  const cfg = path.join(env.dir, 'haproxy.cfg');
  writeFileSync(cfg, fill('haproxy.cfg', {
    PORT: String(port), CSMS_PORT: String(env.csmsPort), THREADS: String(env.threads), CIPHERS, MAXCONN: String(maxSessions()),
    RSA_PEM: path.join(env.dir, 'haproxy-rsa.pem'), EC_PEM: path.join(env.dir, 'haproxy-ec.pem'), CA: path.join(env.pkiDir, 'ca.crt'),
  }));
  const log = path.join(env.dir, 'haproxy.log');
  const child = spawnRaised(['haproxy', '-db', '-f', cfg], log);
  await waitForPort(port, child, 'haproxy', log);
  return simpleTarget('haproxy', `wss://127.0.0.1:${port}/ocpp/`, child);
}

/** Starts nginx with `daemon off` (master + workers) from config/nginx.conf. */
export async function startNginx(env: TargetEnv): Promise<Target> {
  const port = await freePort();
  const prefix = path.join(env.dir, 'nginx');
  mkdirSync(prefix, { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(conf, fill('nginx.conf', {
    PORT: String(port), CSMS_PORT: String(env.csmsPort), WORKERS: String(env.threads), CIPHERS, DIR: prefix,
    NOFILE: String(Math.min(fileLimit(), 65_536)), MAXCONN: String(Math.min(fileLimit(), 65_536)),
    RSA_CRT: path.join(env.pkiDir, 'server-rsa.crt'), RSA_KEY: path.join(env.pkiDir, 'server-rsa.key'),
    EC_CRT: path.join(env.pkiDir, 'server-ec.crt'), EC_KEY: path.join(env.pkiDir, 'server-ec.key'), CA: path.join(env.pkiDir, 'ca.crt'),
  }));
  const log = path.join(env.dir, 'nginx.log');
  const child = spawnRaised(['nginx', '-p', prefix, '-e', path.join(prefix, 'error.log'), '-c', conf, '-g', 'daemon off;'], log);
  await waitForPort(port, child, 'nginx', log);
  if (child.pid) startedPids.push(...childPids(child.pid));
  const t = simpleTarget('nginx', `wss://127.0.0.1:${port}/ocpp/`, child);
  // The workers are the master's children; they hold the connections.
  t.pids = () => (child.pid ? [child.pid, ...childPids(child.pid)] : []);
  return t;
}

/** node-floor.ts: Node's TLS termination and a byte pipe, the floor for any proxy written in Node. */
export async function startNodeFloor(env: TargetEnv): Promise<Target> {
  const port = await freePort();
  const log = path.join(env.dir, 'node-floor.log');
  // --threads N: N processes sharing the listener, as ours gets N workers.
  const child = spawnRaised([process.execPath, path.join(REPO_ROOT, 'dist/test/bench/node-floor.js'), String(port), String(env.csmsPort), env.pkiDir, CIPHERS, String(env.threads)], log);
  await waitForPort(port, child, 'node floor', log);
  const t = simpleTarget('node', `wss://127.0.0.1:${port}/ocpp/`, child);
  if (env.threads > 1) {
    if (child.pid) startedPids.push(...childPids(child.pid));
    t.pids = () => (child.pid ? [child.pid, ...childPids(child.pid)] : []); // the primary and its workers
  }
  return t;
}

/** No proxy: plain ws straight to the CSMS stand-in. */
export function directTarget(env: TargetEnv, csmsPid: number): Target {
  return { name: 'direct', base: `ws://127.0.0.1:${env.csmsPort}/ocpp/`, tls: false, pids: () => [csmsPid], stop: async () => {} };
}

function simpleTarget(name: TargetName, base: string, child: ChildProcess): Target {
  return { name, base, tls: true, pids: () => (child.pid ? [child.pid] : []), stop: () => stopChild(child) };
}

/** Reads config/<name> and replaces every {{KEY}}; an unknown placeholder is an error. */
function fill(name: string, values: Record<string, string>): string {
  return readFileSync(path.join(CONFIG_DIR, name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
    const v = values[k];
    if (v === undefined) throw new Error(`config/${name}: no value for {{${k}}}`);
    return v;
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string, log: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}: ${tail(log)}`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopChild(child);
  throw new Error(`${what} did not listen on ${port} within 20 s: ${tail(log)}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-8).join('\n') : '(no log)';
}
