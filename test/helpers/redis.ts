/**
 * Test helper: real redis-server processes on free loopback ports, without persistence.
 * Every process is stopped by its PID (also on process exit, as a safety net).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';

/** A running redis-server (or sentinel). */
export interface RedisProcess {
  /** redis:// URL (sentinels: redis-sentinel://127.0.0.1:<port>/<master>). */
  url: string;
  port: number;
  /** PID of the current process (changes on restart). */
  pid: number;
  /** Stop the process (SIGTERM, then SIGKILL after 3 s). Idempotent. */
  stop(): Promise<void>;
  /** Stop and start again on the same port (data is lost: no persistence). */
  restart(): Promise<void>;
}

/** Options of `startRedis`. */
export interface StartRedisOptions {
  /** Require this password (`requirepass`). */
  password?: string;
  /** Extra redis-server arguments. */
  args?: string[];
  /** Use this port instead of a free one. */
  port?: number;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) if (child.pid) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
});

/** A currently free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Start a redis-server and wait until it answers PING. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisProcess> {
  const port = opts.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
  if (opts.password) args.push('--requirepass', opts.password);
  args.push(...(opts.args ?? []));
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : '';
  return supervise(`redis://${auth}127.0.0.1:${port}`, port, ['redis-server', ...args], opts.password);
}

/** Start a Sentinel monitoring `masterPort` as `masterName` (quorum 1, 1 s down-after). */
export async function startSentinel(masterPort: number, masterName = 'mymaster'): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sentinel-'));
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 3000`,
      '',
    ].join('\n'),
  );
  const proc = await supervise(`redis-sentinel://127.0.0.1:${port}/${masterName}`, port, ['redis-server', conf, '--sentinel']);
  const stop = proc.stop;
  proc.stop = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return proc;
}

/** A running Redis Cluster of three masters (no replicas). */
export interface RedisClusterProcess {
  /** redis-cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 */
  url: string;
  nodes: RedisProcess[];
  /** Stop every node and remove the cluster config directory. */
  stop(): Promise<void>;
}

/** Start three cluster-enabled redis-servers, join them with `redis-cli --cluster create`, wait for state ok. */
export async function startCluster(): Promise<RedisClusterProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'redis-cluster-'));
  const nodes: RedisProcess[] = [];
  const stop = async () => {
    for (const n of nodes) await n.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const busPort = await freePort();
      nodes.push(
        await startRedis({
          port,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
            '--cluster-port', String(busPort), '--dir', dir],
        }),
      );
    }
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-yes']);
    const deadline = Date.now() + 15_000;
    for (const n of nodes) {
      while (!(await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('Redis Cluster did not reach cluster_state:ok within 15 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { url: `redis-cluster://${addrs.join(',')}`, nodes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

async function supervise(url: string, port: number, argv: string[], password?: string): Promise<RedisProcess> {
  let child: ChildProcess | null = null;
  const start = async () => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(c);
    c.once('exit', () => live.delete(c));
    child = c;
    await waitForPing(port, password, c);
  };
  const stop = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    process.kill(c.pid!, 'SIGTERM');
    const timer = setTimeout(() => c.pid && process.kill(c.pid, 'SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  const handle: RedisProcess = {
    url,
    port,
    get pid() {
      return child?.pid ?? -1;
    },
    stop,
    restart: async () => {
      await stop();
      await start();
    },
  };
  return handle;
}

async function waitForPing(port: number, password: string | undefined, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with code ${child.exitCode}`);
    if (await pingOnce(port, password)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

function pingOnce(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write((password ? `AUTH ${password}\r\n` : '') + 'PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('+PONG')) done(true);
      else if (buf.includes('-')) done(false);
    });
  });
}

/** A command Redis ran, as MONITOR reports it (lower case); `source` is `lua` for a script's own. */
export interface SeenCommand {
  source: string;
  command: string;
  /** Its arguments (keys among them). */
  args: string[];
}

/** Watches, in order, what the Redis at `url` runs (MONITOR on a connection of its own) until `stop`. */
export async function watchCommands(url: string): Promise<{ seen: SeenCommand[]; stop(): void }> {
  const probe = new Redis(url);
  const monitor = await probe.monitor();
  const seen: SeenCommand[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ source, command: String(args[0]).toLowerCase(), args: args.slice(1).map(String) }));
  return { seen, stop: () => { monitor.disconnect(); probe.disconnect(); } };
}
