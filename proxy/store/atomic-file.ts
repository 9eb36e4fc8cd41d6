/**
 * Durable file writes for the embedded store: write a temp file, fsync it, rename it over the target,
 * fsync the directory. A crash at any point leaves either the old or the new file, never a mix; stray
 * temp files from a crash are removed on the next open.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from './errors';

let tempCounter = 0;

/** Atomically replace `file` with `contents` and make it durable. Mode 0600. */
export async function writeFileAtomic(file: string, contents: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${++tempCounter}`;
  try {
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(contents);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
    await fsyncDir(path.dirname(file));
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new StoreError('store_unavailable', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      cause: err,
    });
  }
}

/** Remove `<file>.tmp-*` leftovers of interrupted writes. */
export async function removeStaleTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = path.basename(file) + '.tmp-';
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith(prefix)) await fs.rm(path.join(dir, name), { force: true });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Directory fsync persists the rename; not supported on every platform, so failures are ignored.
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * Coalesces concurrent flush requests: at most one write runs at a time, and every request made while
 * a write runs is served by the single write that follows it. `flush()` resolves once a write that
 * started after the call has completed, i.e. once the caller's change is durable.
 */
export class BatchedWriter {
  readonly #write: () => Promise<void>;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;

  /** @param write performs one full write of the current state (reads the state when it starts). */
  constructor(write: () => Promise<void>) {
    this.#write = write;
  }

  /** Request a write; resolves when the state as of now is durable, rejects if that write failed. */
  flush(): Promise<void> {
    if (this.#queued) return this.#queued;
    const before = this.#running ?? Promise.resolve();
    const next: Promise<void> = before
      .catch(() => undefined)
      .then(() => {
        this.#queued = null;
        this.#running = next;
        return this.#write();
      })
      .finally(() => {
        if (this.#running === next) this.#running = null;
      });
    this.#queued = next;
    return next;
  }

  /** Resolves when no write is running or queued. */
  async idle(): Promise<void> {
    while (this.#queued || this.#running) await (this.#queued ?? this.#running)!.catch(() => undefined);
  }
}
