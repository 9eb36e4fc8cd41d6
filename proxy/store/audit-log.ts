/**
 * The embedded store's audit stream: an append-only JSON-lines file plus an in-memory ring of the
 * newest `cap` events. The file is compacted (atomically) to the newest `cap` lines once it holds
 * twice that many, so appends stay cheap and the file stays bounded.
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic, removeStaleTemps } from './atomic-file';
import type { AuditEvent } from './types';

/** Capped, file-backed audit log. */
export class AuditLog {
  readonly #file: string;
  readonly #cap: number;
  #events: AuditEvent[] = [];
  #linesInFile = 0;
  #tail: Promise<void> = Promise.resolve();

  private constructor(file: string, cap: number) {
    this.#file = file;
    this.#cap = cap;
  }

  /** Open (or create) the log at `file`; unparsable lines (e.g. a torn last line) are skipped. */
  static async open(file: string, cap: number): Promise<AuditLog> {
    const log = new AuditLog(file, Math.max(1, cap));
    await removeStaleTemps(file);
    let text = '';
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n').filter((l) => l.length > 0);
    log.#linesInFile = lines.length;
    for (const line of lines.slice(-log.#cap)) {
      try {
        const ev = JSON.parse(line) as AuditEvent;
        if (ev && typeof ev.type === 'string' && typeof ev.at === 'number') log.#events.push(ev);
      } catch {
        /* torn line from a crash */
      }
    }
    return log;
  }

  /** Append one event; resolves when written (appends are serialised). */
  append(event: AuditEvent): Promise<void> {
    this.#events.push(event);
    if (this.#events.length > this.#cap) this.#events.splice(0, this.#events.length - this.#cap);
    const run = async () => {
      await fs.appendFile(this.#file, JSON.stringify(event) + '\n', { mode: 0o600 });
      this.#linesInFile++;
      if (this.#linesInFile >= 2 * this.#cap) {
        await writeFileAtomic(this.#file, this.#events.map((e) => JSON.stringify(e) + '\n').join(''));
        this.#linesInFile = this.#events.length;
      }
    };
    const p = this.#tail.then(run);
    this.#tail = p.catch(() => undefined);
    return p;
  }

  /** Newest `limit` events, newest first. */
  read(limit: number): AuditEvent[] {
    const n = Math.max(0, Math.min(limit, this.#events.length));
    return this.#events.slice(this.#events.length - n).reverse();
  }

  /** Wait for pending appends. */
  async drain(): Promise<void> {
    await this.#tail;
  }
}
