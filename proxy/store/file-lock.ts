/**
 * An exclusive lock shared by all processes using one embedded data directory (the proxy and the
 * `chargers` CLI). The lock is a file created with O_EXCL holding `{pid, host, token}`; it is held only
 * for the duration of one read-modify-write of the store, so waiting is short.
 *
 * A lock is stale, and is broken, when its holder is a dead process on this host or the lock file is
 * older than `staleMs` (a holder on another host, or a stuck one). Breaking moves the file aside and
 * checks that it moved the lock it judged stale; a holder whose lock was broken finds out in `verify()`
 * before it writes, so a broken lock costs a failed write, never a silently lost one.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import { StoreError } from './errors';

/** Options of `FileLock`. */
export interface FileLockOptions {
  /** Give up acquiring after this long, ms (default 10,000). */
  timeoutMs?: number;
  /** A lock file older than this is stale whoever holds it, ms (default 30,000). */
  staleMs?: number;
}

/** A held lock. */
export interface HeldLock {
  /** Rejects (StoreError `store_unavailable`) when another process has broken this lock. */
  verify(): Promise<void>;
  /** Release; a no-op when the lock was broken meanwhile. Never rejects. */
  release(): Promise<void>;
}

interface LockInfo {
  pid: number;
  host: string;
  token: string;
}

/**
 * Tokens of the locks this process holds or is taking, over every FileLock in it. A lock file naming
 * this pid with another token was left by an earlier process that had the same pid: in a container
 * the proxy is pid 1 on every start, and that lock would otherwise stand until it is `staleMs` old,
 * failing every start meanwhile.
 */
const tokensHere = new Set<string>();
/** When this process started (ms epoch). */
const PROCESS_STARTED_AT = Date.now() - process.uptime() * 1000;

/** Inter-process exclusive lock on a lock file; callers in the same process queue without polling. */
export class FileLock {
  /** Path of the lock file. */
  readonly file: string;
  readonly #timeoutMs: number;
  readonly #staleMs: number;
  #tail: Promise<void> = Promise.resolve();

  constructor(file: string, opts: FileLockOptions = {}) {
    this.file = file;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#staleMs = opts.staleMs ?? 30_000;
  }

  /** Run `fn` holding the lock (released afterwards, also when `fn` throws). */
  async run<T>(fn: (lock: HeldLock) => Promise<T>): Promise<T> {
    const lock = await this.acquire();
    try {
      return await fn(lock);
    } finally {
      await lock.release();
    }
  }

  /**
   * Acquire the lock, retrying with short jittered back-off.
   * @throws StoreError `store_unavailable` after `timeoutMs`, naming the holder's pid.
   */
  acquire(): Promise<HeldLock> {
    // Same-process callers wait for each other here rather than polling the file.
    let releaseLocal!: () => void;
    const mine = new Promise<void>((resolve) => (releaseLocal = resolve));
    const before = this.#tail;
    this.#tail = before.then(() => mine);
    return before.then(async () => {
      try {
        const token = await this.#acquireFile();
        return this.#held(token, releaseLocal);
      } catch (err) {
        releaseLocal();
        throw err;
      }
    });
  }

  async #acquireFile(): Promise<string> {
    const token = randomUUID();
    tokensHere.add(token);
    try {
      return await this.#createFile(token);
    } catch (err) {
      tokensHere.delete(token);
      throw err;
    }
  }

  async #createFile(token: string): Promise<string> {
    const body = JSON.stringify({ pid: process.pid, host: os.hostname(), token } satisfies LockInfo);
    const deadline = Date.now() + this.#timeoutMs;
    let delay = 1;
    for (;;) {
      try {
        const fh = await fs.open(this.file, 'wx', 0o600);
        try {
          await fh.writeFile(body);
        } finally {
          await fh.close();
        }
        return token;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new StoreError('store_unavailable', `cannot create lock ${this.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
        }
      }
      const holder = await this.#breakIfStale();
      if (holder === null) continue;
      if (Date.now() >= deadline) {
        throw new StoreError('store_unavailable', `timed out after ${this.#timeoutMs} ms waiting for lock ${this.file} (held by pid ${holder})`);
      }
      await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
      delay = Math.min(delay * 2, 25);
    }
  }

  /** Break the lock if stale. Returns null when the caller should retry at once, else the holder's pid (or '?'). */
  async #breakIfStale(): Promise<string | null> {
    let text: string;
    let ageMs: number;
    try {
      const st = await fs.stat(this.file);
      text = await fs.readFile(this.file, 'utf8');
      ageMs = Date.now() - st.mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StoreError('store_unavailable', `cannot read lock ${this.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const info = parseInfo(text);
    // Our pid with a token not ours: an earlier process's, if the lock predates this one. A lock made
    // since is a live process in another pid namespace sharing the host name (containers in one pod).
    const deadHolder = info !== null && info.host === os.hostname()
      && (info.pid === process.pid ? !tokensHere.has(info.token) && Date.now() - ageMs < PROCESS_STARTED_AT : !processAlive(info.pid));
    // An empty file is a lock being written right now: only its age can make it stale.
    if (!deadHolder && ageMs < this.#staleMs) return info ? String(info.pid) : '?';
    const aside = `${this.file}.broken-${process.pid}-${randomUUID()}`;
    try {
      await fs.rename(this.file, aside);
    } catch {
      return null; // someone else broke or released it first
    }
    const moved = await fs.readFile(aside, 'utf8').catch(() => '');
    if (moved !== text) {
      // We moved a fresh lock taken between our read and the rename: put it back if the slot is free.
      await fs.link(aside, this.file).catch(() => undefined);
    }
    await fs.rm(aside, { force: true });
    return null;
  }

  #held(token: string, releaseLocal: () => void): HeldLock {
    let released = false;
    const stillMine = async () => parseInfo(await fs.readFile(this.file, 'utf8').catch(() => ''))?.token === token;
    return {
      verify: async () => {
        if (released || !(await stillMine())) {
          throw new StoreError('store_unavailable', `lock ${this.file} was broken by another process; change not written`);
        }
      },
      release: async () => {
        if (released) return;
        released = true;
        try {
          if (await stillMine()) await fs.rm(this.file, { force: true });
        } catch {
          /* a lock we cannot remove goes stale and is broken by the next taker */
        } finally {
          tokensHere.delete(token);
          releaseLocal();
        }
      },
    };
  }
}

function parseInfo(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text) as LockInfo;
    return v && typeof v.pid === 'number' && typeof v.token === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** True when a process with this pid exists on this host (EPERM: exists, owned by someone else). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
