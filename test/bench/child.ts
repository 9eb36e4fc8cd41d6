/**
 * Child processes of the bench: forked Node workers spoken to by request/response over IPC, and
 * spawned programs (proxy, HAProxy, nginx) started under a raised file-descriptor limit. Every
 * child is recorded so the runner can stop it by PID and report which PIDs it started.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';

/** Every PID the bench started, for the report (the smoke test checks they are all gone). */
export const startedPids: number[] = [];
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.pid && c.exitCode === null && c.signalCode === null) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
});

/** A forked Node worker answering `{id, cmd, ...}` requests with `{id, ...}`. */
export class Worker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: any): void; reject(e: Error): void }>();
  readonly child: ChildProcess;

  constructor(script: string, name: string) {
    this.child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.env.BENCH_WORKER_ARGS ? process.env.BENCH_WORKER_ARGS.split(' ') : [] });
    track(this.child);
    this.child.on('message', (m: { id: number; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m);
    });
    this.child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code ?? signal}) during a request`));
      this.pending.clear();
    });
  }

  /** Sends one request and waits for its answer (or `timeoutMs`). */
  request<T = any>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 600_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`request ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  /** Asks nicely (disconnect), then SIGKILL after 3 s. */
  stop(): Promise<void> {
    return stopChild(this.child, () => this.child.connected && this.child.disconnect());
  }
}

/**
 * Spawns a program with the open-file limit raised (65536, or the hard limit when not allowed),
 * its stdout/stderr appended to `logFile`. `exec` keeps the PID the program's own.
 */
export function spawnRaised(argv: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('bash', ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ${quoted}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const out = createWriteStream(logFile, { flags: 'a' });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  track(child);
  return child;
}

/** SIGTERM (or `polite`), then SIGKILL after 3 s; resolves when the process has exited. */
export function stopChild(child: ChildProcess, polite?: () => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      if (polite) polite();
      else child.kill('SIGTERM');
    } catch { /* gone */ }
  });
}

/** True while a process with this PID exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Resident set size of a process in bytes (from /proc), or 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8') );
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Child PIDs of `pid` (from /proc/<pid>/task/<pid>/children). */
export function childPids(pid: number): number[] {
  try {
    return (readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8') ).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function track(child: ChildProcess): void {
  if (child.pid) startedPids.push(child.pid);
  live.add(child);
  child.once('exit', () => live.delete(child));
}
