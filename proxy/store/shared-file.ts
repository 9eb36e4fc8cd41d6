/**
 * Keeps an in-memory `StoreState` in step with `store.json` when several processes (the proxy and the
 * `chargers` CLI) use the same data directory.
 *
 * Writes are group commits: mutations queued while a commit runs are applied together by the next one,
 * which takes the inter-process `FileLock`, re-reads the file if another process changed it since this
 * one last read or wrote it, applies the queued mutations in order, writes the file atomically, and
 * releases the lock. "Changed" means the file's identity (inode, size, mtime and ctime in ns) differs
 * from the one recorded at the last read or write: every write is a rename of a new file.
 *
 * Reads call `fresh()`, which checks that identity at most once per `readCheckMs` and reloads on a
 * difference, so a read sees other processes' committed changes at most `readCheckMs` late.
 */
import { promises as fs, type BigIntStats } from 'node:fs';
import { writeFileAtomic, removeStaleTemps } from './atomic-file';
import { StoreState } from './embedded-state';
import { StoreError } from './errors';
import type { FileLock } from './file-lock';
import type { StoreChange } from './types';

/** The outcome of one mutation function. */
export interface MutationOutcome<T> {
  /** False when nothing changed (no write needed for this mutation). */
  changed: boolean;
  result: T;
  /** Change-feed events, emitted once the change is durable (also when `changed` is false). */
  changes?: StoreChange[];
}

interface Queued {
  fn: (state: StoreState) => MutationOutcome<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** 'absent' = no file; 'unknown' = must reload (initially and after a failed write). */
type Stamp = string | 'absent' | 'unknown';

/** Group-committing, multi-process-safe holder of the embedded store's state. */
export class SharedStateFile {
  readonly #file: string;
  readonly #lock: FileLock;
  readonly #readCheckMs: number;
  readonly #emit: (changes: StoreChange[]) => void;
  readonly #wantDiff: () => boolean;
  #state = new StoreState();
  #stamp: Stamp = 'unknown';
  #queue: Queued[] = [];
  #committing: Promise<void> | null = null;
  #syncing: Promise<void> | null = null;
  #checkedAt = 0;
  /** True while a commit holds the lock: memory is then the newest state and must not be reloaded. */
  #busy = false;

  /**
   * @param emit receives change-feed events (local ones after commit, foreign ones after a reload).
   * @param wantDiff whether anyone listens; reloads skip computing the diff when not.
   */
  constructor(file: string, lock: FileLock, opts: { readCheckMs: number; emit: (c: StoreChange[]) => void; wantDiff: () => boolean }) {
    this.#file = file;
    this.#lock = lock;
    this.#readCheckMs = opts.readCheckMs;
    this.#emit = opts.emit;
    this.#wantDiff = opts.wantDiff;
  }

  /** Current state; call `fresh()` first. Do not mutate outside `mutate`. */
  get state(): StoreState {
    return this.#state;
  }

  /**
   * First load: under the lock, remove temp files of interrupted writes (no writer can be active) and
   * read. A store that does not exist yet is written out empty, so a data directory shows from the
   * start that a store lives there (the chargers CLI tells a proxy's data dir from a mistyped one so).
   */
  async open(): Promise<void> {
    await this.#lock.run(async (lock) => {
      await removeStaleTemps(this.#file);
      await this.#reloadIfChanged();
      if (this.#stamp !== 'absent') return;
      await lock.verify();
      await writeFileAtomic(this.#file, this.#state.serialise());
      this.#stamp = await stampOf(this.#file);
    });
  }

  /** Make the state reflect other processes' commits (checked at most once per `readCheckMs`). */
  async fresh(): Promise<void> {
    if (this.#busy || (this.#stamp !== 'unknown' && Date.now() - this.#checkedAt < this.#readCheckMs)) return;
    if (!this.#syncing) {
      this.#syncing = this.#reloadIfChanged().finally(() => {
        this.#syncing = null;
      });
    }
    await this.#syncing;
  }

  /** Queue a mutation; resolves with its result once durable (rejects if the commit failed). */
  mutate<T>(fn: (state: StoreState) => MutationOutcome<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#committing) this.#committing = this.#drain();
    });
  }

  /** Resolves once every queued mutation has been committed or failed. */
  async idle(): Promise<void> {
    while (this.#committing) await this.#committing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#commit(this.#queue.splice(0));
    } finally {
      // Cleared in the same tick as the empty-queue check, so no mutation can be queued unseen.
      this.#committing = null;
    }
  }

  async #commit(batch: Queued[]): Promise<void> {
    while (this.#syncing) await this.#syncing.catch(() => undefined);
    this.#busy = true;
    const changes: StoreChange[] = [];
    const applied: [Queued, unknown][] = [];
    try {
      await this.#lock.run(async (lock) => {
        await this.#reloadIfChanged();
        let dirty = false;
        for (const op of batch) {
          try {
            const out = op.fn(this.#state);
            dirty ||= out.changed;
            changes.push(...(out.changes ?? []));
            applied.push([op, out.result]);
          } catch (err) {
            op.reject(err);
          }
        }
        if (!dirty) return;
        try {
          await lock.verify();
          await writeFileAtomic(this.#file, this.#state.serialise());
          this.#stamp = await stampOf(this.#file);
        } catch (err) {
          // Memory now holds changes that are not on disk: force a reload from the file next time.
          this.#stamp = 'unknown';
          throw err;
        }
      });
    } catch (err) {
      // Lock, reload or write failed: nothing of this batch is durable (settled promises ignore this).
      for (const op of batch) op.reject(err);
      return;
    } finally {
      this.#busy = false;
    }
    for (const [op, result] of applied) op.resolve(result);
    if (changes.length > 0) this.#emit(changes);
  }

  /** Reload the file when its identity differs from the last one seen; emit the differences. */
  async #reloadIfChanged(): Promise<void> {
    this.#checkedAt = Date.now();
    const now = await stampOf(this.#file);
    if (now === this.#stamp) return;
    const snap = now === 'absent' ? null : await readSnapshot(this.#file);
    const next = snap ? StoreState.parse(snap.text, this.#file) : new StoreState();
    const stamp: Stamp = snap ? snap.stamp : 'absent';
    const changes = this.#wantDiff() ? this.#state.diff(next) : [];
    this.#state = next;
    this.#stamp = stamp;
    if (changes.length > 0) this.#emit(changes);
  }
}

async function stampOf(file: string): Promise<Stamp> {
  try {
    return stampFrom(await fs.stat(file, { bigint: true }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw unreadable(file, err);
  }
}

/** Stamp and contents from the same open file, so a concurrent rename cannot pair them wrongly; null when absent. */
async function readSnapshot(file: string): Promise<{ stamp: string; text: string } | null> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw unreadable(file, err);
  }
  try {
    return { stamp: stampFrom(await fh.stat({ bigint: true })), text: await fh.readFile('utf8') };
  } catch (err) {
    throw unreadable(file, err);
  } finally {
    await fh.close();
  }
}

function stampFrom(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function unreadable(file: string, err: unknown): StoreError {
  return new StoreError('store_unavailable', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
}
