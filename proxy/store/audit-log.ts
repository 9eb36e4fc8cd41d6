/**
 * The embedded store's audit stream: an append-only JSON-lines file plus an in-memory ring of the
 * newest `cap` events. The file is compacted (atomically) to the newest `cap` lines once it holds
 * twice that many, so appends stay cheap and the file stays bounded.
 *
 * Several processes may share the file: appends (grouped) and compaction hold the store's
 * inter-process lock, and the ring is reloaded from the file whenever the file is not the one this
 * process last read or wrote (inode, size and mtime differ), so each process sees the others' events.
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic, removeStaleTemps } from './atomic-file';
import type { FileLock } from './file-lock';
import type { AuditEvent } from './types';

/** Capped, file-backed audit log. */
export class AuditLog {
  readonly #file: string;
  readonly #cap: number;
  readonly #lock: FileLock;
  #events: AuditEvent[] = [];
  #linesInFile = 0;
  #stamp = '';
  #queue: AuditEvent[] = [];
  #tail: Promise<void> = Promise.resolve();

  private constructor(file: string, cap: number, lock: FileLock) {
    this.#file = file;
    this.#cap = cap;
    this.#lock = lock;
  }

  /** Open (or create) the log at `file`; unparsable lines (e.g. a torn last line) are skipped. */
  static async open(file: string, cap: number, lock: FileLock): Promise<AuditLog> {
    const log = new AuditLog(file, Math.max(1, cap), lock);
    await lock.run(async () => {
      await removeStaleTemps(file);
      await log.#reload();
    });
    return log;
  }

  /** Append one event; resolves when written. Appends queued meanwhile are written together. */
  append(event: AuditEvent): Promise<void> {
    this.#queue.push(event);
    const p = this.#tail.then(() => this.#flush());
    this.#tail = p.catch(() => undefined);
    return p;
  }

  /** Newest `limit` events, newest first, including other processes' events. */
  read(limit: number): Promise<AuditEvent[]> {
    // Queued behind appends so a reload never races with this process's own writes.
    const p = this.#tail.then(async () => {
      if ((await stampOf(this.#file)) !== this.#stamp) await this.#reload();
      const n = Math.max(0, Math.min(limit, this.#events.length));
      return this.#events.slice(this.#events.length - n).reverse();
    });
    this.#tail = p.then(() => undefined, () => undefined);
    return p;
  }

  /** Wait for pending appends. */
  async drain(): Promise<void> {
    await this.#tail;
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0);
    if (batch.length === 0) return;
    await this.#lock.run(async () => {
      if ((await stampOf(this.#file)) !== this.#stamp) await this.#reload();
      await fs.appendFile(this.#file, batch.map((e) => JSON.stringify(e) + '\n').join(''), { mode: 0o600 });
      this.#remember(batch);
      this.#linesInFile += batch.length;
      if (this.#linesInFile >= 2 * this.#cap) {
        await writeFileAtomic(this.#file, this.#events.map((e) => JSON.stringify(e) + '\n').join(''));
        this.#linesInFile = this.#events.length;
      }
      this.#stamp = await stampOf(this.#file);
    });
  }

  #remember(events: AuditEvent[]): void {
    this.#events.push(...events);
    if (this.#events.length > this.#cap) this.#events.splice(0, this.#events.length - this.#cap);
  }

  /** Rebuild the ring from the file. */
  async #reload(): Promise<void> {
    const stamp = await stampOf(this.#file);
    let text = '';
    try {
      text = await fs.readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n').filter((l) => l.length > 0);
    const events: AuditEvent[] = [];
    for (const line of lines.slice(-this.#cap)) {
      try {
        const ev = JSON.parse(line) as AuditEvent;
        if (ev && typeof ev.type === 'string' && typeof ev.at === 'number') events.push(ev);
      } catch {
        /* torn line from a crash */
      }
    }
    this.#events = events;
    this.#linesInFile = lines.length;
    this.#stamp = stamp;
  }
}

async function stampOf(file: string): Promise<string> {
  try {
    const st = await fs.stat(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return 'absent';
  }
}
