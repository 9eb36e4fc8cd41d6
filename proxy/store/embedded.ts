/**
 * EmbeddedStore: the single-node credential store (default for `npm start`). State lives in memory and
 * is persisted as one JSON file (`<dataDir>/store.json`) with atomic write-and-rename; every mutation
 * resolves only once the file holding it is fsynced, and concurrent mutations share one write.
 * The audit stream is a separate capped JSON-lines file; brute-force counters stay in memory.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AuditLog } from './audit-log';
import { BatchedWriter, removeStaleTemps, writeFileAtomic } from './atomic-file';
import { StoreError } from './errors';
import * as tr from './transitions';
import { checkMatch, checkSerial, clampLimit } from './transitions';
import type {
  AuditEvent, ChargerPage, ChargerPatch, ChargerRecord, CredentialStore, FactoryDefault, NewAuditEvent,
  NewChargerRecord, PasswordHash, PendingPassword, RevokedSerial,
} from './types';
import { VolatileCounters } from './volatile-counters';

/** File names inside the data directory. */
export const STORE_FILE = 'store.json';
export const AUDIT_FILE = 'audit.jsonl';
const FORMAT = 'ocpp-security-proxy/store';

/** Options of `EmbeddedStore.open`. */
export interface EmbeddedStoreOptions {
  /** Directory for store.json and audit.jsonl; created (mode 0700) when missing. */
  dataDir: string;
  /** Audit events kept. Default 10,000. */
  auditCap?: number;
}

interface FileShape {
  format: string;
  version: 1;
  chargers: ChargerRecord[];
  factoryDefaults: FactoryDefault[];
  revoked: RevokedSerial[];
}

/** File-backed CredentialStore for single-node use. */
export class EmbeddedStore implements CredentialStore {
  readonly kind = 'embedded' as const;
  /** Absolute path of the state file. */
  readonly file: string;
  readonly #chargers = new Map<string, ChargerRecord>();
  readonly #factory = new Map<string, FactoryDefault>();
  readonly #revoked = new Map<string, RevokedSerial>();
  readonly #counters = new VolatileCounters();
  readonly #writer: BatchedWriter;
  #sortedIds: string[] | null = null;
  #audit!: AuditLog;
  #closed = false;

  private constructor(file: string) {
    this.file = file;
    this.#writer = new BatchedWriter(() => writeFileAtomic(this.file, this.#serialise()));
  }

  /**
   * Open the store, loading `<dataDir>/store.json` when present.
   * @throws StoreError `store_corrupt` naming the file when it cannot be parsed (the file is left as is).
   */
  static async open(opts: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const dir = path.resolve(opts.dataDir);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new EmbeddedStore(path.join(dir, STORE_FILE));
    await removeStaleTemps(store.file);
    await store.#load();
    store.#audit = await AuditLog.open(path.join(dir, AUDIT_FILE), opts.auditCap ?? 10_000);
    return store;
  }

  async getCharger(identity: string): Promise<ChargerRecord | null> {
    this.#assertOpen();
    const rec = this.#chargers.get(identity);
    return rec ? structuredClone(rec) : null;
  }

  putCharger(record: NewChargerRecord): Promise<ChargerRecord> {
    return this.#mutate(() => {
      const rec = tr.applyPut(this.#chargers.get(record.identity) ?? null, record, Date.now());
      if (!this.#chargers.has(rec.identity)) this.#sortedIds = null;
      this.#chargers.set(rec.identity, rec);
      return { changed: true, result: structuredClone(rec) };
    });
  }

  updateCharger(identity: string, patch: ChargerPatch): Promise<ChargerRecord | null> {
    return this.#transition(identity, (rec, now) => tr.applyPatch(rec, patch, now), (next) => (next ? structuredClone(next) : null));
  }

  removeCharger(identity: string): Promise<boolean> {
    return this.#mutate(() => {
      const had = this.#chargers.delete(identity);
      if (had) this.#sortedIds = null;
      return { changed: had, result: had };
    });
  }

  async listChargers(opts: { cursor?: string; limit?: number } = {}): Promise<ChargerPage> {
    this.#assertOpen();
    const limit = clampLimit(opts.limit);
    const ids = this.#ids();
    let start = 0;
    if (opts.cursor !== undefined) {
      const c = Buffer.from(opts.cursor);
      let lo = 0;
      let hi = ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (Buffer.compare(Buffer.from(ids[mid]), c) <= 0) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const page = ids.slice(start, start + limit);
    const items = page.map((id) => structuredClone(this.#chargers.get(id)!));
    return start + limit < ids.length ? { items, cursor: page[page.length - 1] } : { items };
  }

  setPending(identity: string, pending: PendingPassword): Promise<boolean> {
    return this.#transition(identity, (rec, now) => tr.applySetPending(rec, pending, now), (next) => next !== null);
  }

  updatePending(
    identity: string,
    expectedCreatedAt: number,
    patch: Partial<Omit<PendingPassword, 'createdAt' | 'encrypted' | 'hash'>>,
  ): Promise<boolean> {
    return this.#transition(identity, (rec, now) => tr.applyUpdatePending(rec, expectedCreatedAt, patch, now), (n) => n !== null);
  }

  dropPending(identity: string, expectedCreatedAt?: number): Promise<boolean> {
    return this.#transition(identity, (rec, now) => tr.applyDropPending(rec, expectedCreatedAt, now), (n) => n !== null);
  }

  commitPending(identity: string, newHash: PasswordHash, expectedCreatedAt: number, at?: number): Promise<boolean> {
    return this.#transition(
      identity,
      (rec, now) => tr.applyCommitPending(rec, newHash, expectedCreatedAt, at ?? now, now),
      (n) => n !== null,
    );
  }

  addFactoryDefault(match: { prefix?: string; batch?: string }, hash: PasswordHash): Promise<string> {
    return this.#mutate(() => {
      const fd: FactoryDefault = { id: randomUUID(), match: checkMatch(match), hash, createdAt: Date.now() };
      this.#factory.set(fd.id, fd);
      return { changed: true, result: fd.id };
    });
  }

  async listFactoryDefaults(): Promise<FactoryDefault[]> {
    this.#assertOpen();
    return structuredClone([...this.#factory.values()]);
  }

  removeFactoryDefault(id: string): Promise<boolean> {
    return this.#mutate(() => {
      const had = this.#factory.delete(id);
      return { changed: had, result: had };
    });
  }

  revokeSerial(serialHex: string, reason?: string): Promise<void> {
    return this.#mutate(() => {
      checkSerial(serialHex);
      if (this.#revoked.has(serialHex)) return { changed: false, result: undefined };
      const entry: RevokedSerial = { serialHex, at: Date.now() };
      if (reason !== undefined) entry.reason = reason;
      this.#revoked.set(serialHex, entry);
      return { changed: true, result: undefined };
    });
  }

  async isRevoked(serialHex: string): Promise<boolean> {
    this.#assertOpen();
    return this.#revoked.has(serialHex);
  }

  async listRevoked(): Promise<RevokedSerial[]> {
    this.#assertOpen();
    return structuredClone([...this.#revoked.values()]);
  }

  unrevokeSerial(serialHex: string): Promise<boolean> {
    return this.#mutate(() => {
      const had = this.#revoked.delete(serialHex);
      return { changed: had, result: had };
    });
  }

  async recordFailure(key: string, windowMs: number): Promise<number> {
    this.#assertOpen();
    return this.#counters.recordFailure(key, windowMs);
  }

  async resetFailures(key: string): Promise<void> {
    this.#assertOpen();
    this.#counters.resetFailures(key);
  }

  async setLockout(key: string, untilMs: number): Promise<void> {
    this.#assertOpen();
    this.#counters.setLockout(key, untilMs);
  }

  async getLockout(key: string): Promise<number> {
    this.#assertOpen();
    return this.#counters.getLockout(key);
  }

  async appendAudit(event: NewAuditEvent): Promise<void> {
    this.#assertOpen();
    const ev: AuditEvent = { ...event, at: event.at ?? Date.now() };
    await this.#audit.append(JSON.parse(JSON.stringify(ev)) as AuditEvent);
  }

  async readAudit(limit: number): Promise<AuditEvent[]> {
    this.#assertOpen();
    return this.#audit.read(limit);
  }

  async touchLastSeen(identity: string, at: number): Promise<void> {
    await this.#transition(identity, (rec) => ({ ...rec, lastSeenAt: at }), () => undefined);
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer.idle();
    await this.#audit.drain();
  }

  /** Apply a record transition; null from `fn` means "does not apply" and writes nothing. */
  #transition<T>(
    identity: string,
    fn: (rec: ChargerRecord, now: number) => ChargerRecord | null,
    result: (next: ChargerRecord | null) => T,
  ): Promise<T> {
    return this.#mutate(() => {
      const rec = this.#chargers.get(identity);
      const next = rec ? fn(rec, Date.now()) : null;
      if (next) this.#chargers.set(identity, next);
      return { changed: next !== null, result: result(next) };
    });
  }

  /** Run a synchronous in-memory change, then wait until it is on disk. */
  async #mutate<T>(fn: () => { changed: boolean; result: T }): Promise<T> {
    this.#assertOpen();
    const { changed, result } = fn();
    if (changed) await this.#writer.flush();
    return result;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('store_closed', 'credential store is closed');
  }

  #ids(): string[] {
    if (!this.#sortedIds) {
      this.#sortedIds = [...this.#chargers.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    }
    return this.#sortedIds;
  }

  #serialise(): string {
    const data: FileShape = {
      format: FORMAT,
      version: 1,
      chargers: this.#ids().map((id) => this.#chargers.get(id)!),
      factoryDefaults: [...this.#factory.values()],
      revoked: [...this.#revoked.values()],
    };
    return JSON.stringify(data) + '\n';
  }

  async #load(): Promise<void> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new StoreError('store_unavailable', `cannot read ${this.file}: ${(err as NodeJS.ErrnoException).code}`);
    }
    let data: FileShape;
    try {
      data = JSON.parse(text) as FileShape;
      if (!data || data.format !== FORMAT || data.version !== 1 || !Array.isArray(data.chargers)) throw new Error('shape');
    } catch {
      throw new StoreError('store_corrupt', `store file ${this.file} is corrupt or not a store file; it was left untouched`);
    }
    for (const rec of data.chargers) this.#chargers.set(rec.identity, rec);
    for (const fd of data.factoryDefaults ?? []) this.#factory.set(fd.id, fd);
    for (const r of data.revoked ?? []) this.#revoked.set(r.serialHex, r);
  }
}
