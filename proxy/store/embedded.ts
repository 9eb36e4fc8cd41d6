/**
 * EmbeddedStore: the single-node credential store (default for `npm start`). State is persisted as one
 * JSON file (`<dataDir>/store.json`) with atomic write-and-rename; every mutation resolves only once the
 * file holding it is fsynced, and concurrent mutations share one write.
 *
 * Several processes may open the same data directory (the proxy and the `chargers` CLI): every write
 * holds the inter-process lock `<dataDir>/store.lock` and starts from the file's latest contents, so no
 * process overwrites another's change; reads see other processes' changes at most `readCheckMs` late,
 * and change listeners hear of them within `changePollMs` (see `shared-file.ts`, `file-lock.ts`).
 *
 * The audit stream is a separate capped JSON-lines file. Brute-force counters and lockouts stay in
 * memory, per process: they are not shared with the CLI or other processes and reset on restart.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AuditLog } from './audit-log';
import { ChangeListeners } from './change-feed';
import type { StoreState } from './embedded-state';
import { StoreError } from './errors';
import { FileLock } from './file-lock';
import { SharedStateFile, type MutationOutcome } from './shared-file';
import { identityKey } from './counter-keys';
import * as tr from './transitions';
import { checkMatch, checkSerial, clampLimit } from './transitions';
import type {
  AdmissionRead, AuditEvent, ChargerPage, ChargerPatch, ChargerRecord, CredentialStore, FactoryDefault, NewAuditEvent,
  NewChargerRecord, PasswordHash, PendingPassword, PendingPatch, RevokedSerial, SessionOwner, StoreChange, StoreChangeListener,
} from './types';
import { VolatileCounters } from './volatile-counters';

/** File names inside the data directory. */
export const STORE_FILE = 'store.json';
export const AUDIT_FILE = 'audit.jsonl';
/** The inter-process lock taken by every write. */
export const LOCK_FILE = 'store.lock';

/** Options of `EmbeddedStore.open`. */
export interface EmbeddedStoreOptions {
  /** Directory for store.json and audit.jsonl; created (mode 0700) when missing. */
  dataDir: string;
  /** Audit events kept. Default 10,000. */
  auditCap?: number;
  /** Reads check the file for other processes' changes at most this often, ms (default 100). */
  readCheckMs?: number;
  /** While anyone subscribes to changes, poll the file for other processes' changes this often, ms (default 250). */
  changePollMs?: number;
  /** Give up waiting for the lock after this long, ms (default 10,000). */
  lockTimeoutMs?: number;
  /** A lock held longer than this is broken, ms (default 30,000). */
  lockStaleMs?: number;
}

/** File-backed CredentialStore for single-node use. */
export class EmbeddedStore implements CredentialStore {
  readonly kind = 'embedded' as const;
  /** Absolute path of the state file. */
  readonly file: string;
  readonly #file: SharedStateFile;
  readonly #counters = new VolatileCounters();
  readonly #listeners: ChangeListeners;
  readonly #changePollMs: number;
  #poll: NodeJS.Timeout | null = null;
  #audit!: AuditLog;
  #closed = false;

  private constructor(file: string, lock: FileLock, opts: EmbeddedStoreOptions) {
    this.file = file;
    this.#changePollMs = Math.max(10, opts.changePollMs ?? 250);
    this.#listeners = new ChangeListeners((n) => this.#pollWhileListened(n));
    this.#file = new SharedStateFile(file, lock, {
      readCheckMs: Math.max(0, opts.readCheckMs ?? 100),
      emit: (changes) => changes.forEach((c) => this.#listeners.emit(c)),
      wantDiff: () => this.#listeners.size > 0,
    });
  }

  /**
   * Open the store, loading `<dataDir>/store.json` when present.
   * @throws StoreError `store_corrupt` naming the file when it cannot be parsed (the file is left as is);
   *   `store_unavailable` when the directory, file or lock cannot be used.
   */
  static async open(opts: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const dir = path.resolve(opts.dataDir);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = new FileLock(path.join(dir, LOCK_FILE), { timeoutMs: opts.lockTimeoutMs, staleMs: opts.lockStaleMs });
    const store = new EmbeddedStore(path.join(dir, STORE_FILE), lock, opts);
    await store.#file.open();
    store.#audit = await AuditLog.open(path.join(dir, AUDIT_FILE), opts.auditCap ?? 10_000, lock);
    return store;
  }

  async getCharger(identity: string): Promise<ChargerRecord | null> {
    const rec = (await this.#read()).chargers.get(identity);
    return rec ? structuredClone(rec) : null;
  }

  putCharger(record: NewChargerRecord): Promise<ChargerRecord> {
    return this.#mutate((st) => {
      const rec = tr.applyPut(st.chargers.get(record.identity) ?? null, record, Date.now());
      st.setCharger(rec);
      return { changed: true, result: structuredClone(rec), changes: [{ kind: 'charger', identity: rec.identity }] };
    });
  }

  createCharger(record: NewChargerRecord): Promise<ChargerRecord | null> {
    return this.#mutate((st) => {
      if (st.chargers.has(record.identity)) return { changed: false, result: null, changes: [] };
      const rec = tr.applyPut(null, record, Date.now());
      st.setCharger(rec);
      return { changed: true, result: structuredClone(rec), changes: [{ kind: 'charger', identity: rec.identity }] };
    });
  }

  updateCharger(identity: string, patch: ChargerPatch): Promise<ChargerRecord | null> {
    return this.#transition(identity, (rec, now) => tr.applyPatch(rec, patch, now), (next) => (next ? structuredClone(next) : null));
  }

  removeCharger(identity: string): Promise<boolean> {
    return this.#mutate((st) => {
      const had = st.deleteCharger(identity);
      return { changed: had, result: had, changes: had ? [{ kind: 'charger', identity }] : [] };
    });
  }

  async listChargers(opts: { cursor?: string; limit?: number } = {}): Promise<ChargerPage> {
    const st = await this.#read();
    const limit = clampLimit(opts.limit);
    const ids = st.sortedIds();
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
    const items = page.map((id) => structuredClone(st.chargers.get(id)!));
    return start + limit < ids.length ? { items, cursor: page[page.length - 1] } : { items };
  }

  setPending(identity: string, pending: PendingPassword): Promise<boolean> {
    return this.#transition(identity, (rec, now) => tr.applySetPending(rec, pending, now), (next) => next !== null);
  }

  /** Written to disk before each write resolves, with no replica to wait for. */
  async replicated(_identity: string): Promise<void> {
    this.#assertOpen();
  }

  updatePending(
    identity: string,
    expectedCreatedAt: number,
    patch: PendingPatch,
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
    return this.#mutate((st) => {
      const fd: FactoryDefault = { id: randomUUID(), match: checkMatch(match), hash, createdAt: Date.now() };
      st.factory.set(fd.id, fd);
      return { changed: true, result: fd.id, changes: [{ kind: 'factory' }] };
    });
  }

  async listFactoryDefaults(): Promise<FactoryDefault[]> {
    return structuredClone([...(await this.#read()).factory.values()]);
  }

  removeFactoryDefault(id: string): Promise<boolean> {
    return this.#mutate((st) => {
      const had = st.factory.delete(id);
      return { changed: had, result: had, changes: had ? [{ kind: 'factory' }] : [] };
    });
  }

  revokeSerial(serialHex: string, reason?: string): Promise<void> {
    return this.#mutate((st) => {
      checkSerial(serialHex);
      // Already revoked: nothing to write, but still tell listeners (every revokeSerial is reported).
      if (st.revoked.has(serialHex)) return { changed: false, result: undefined, changes: [{ kind: 'revoked', serialHex }] };
      const entry: RevokedSerial = { serialHex, at: Date.now() };
      if (reason !== undefined) entry.reason = reason;
      st.revoked.set(serialHex, entry);
      return { changed: true, result: undefined, changes: [{ kind: 'revoked', serialHex }] };
    });
  }

  async isRevoked(serialHex: string): Promise<boolean> {
    return (await this.#read()).revoked.has(serialHex);
  }

  async listRevoked(): Promise<RevokedSerial[]> {
    return structuredClone([...(await this.#read()).revoked.values()]);
  }

  unrevokeSerial(serialHex: string): Promise<boolean> {
    return this.#mutate((st) => {
      const had = st.revoked.delete(serialHex);
      return { changed: had, result: had, changes: had ? [{ kind: 'revoked', serialHex }] : [] };
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

  async readAdmission(identity: string): Promise<AdmissionRead> {
    const record = await this.getCharger(identity);
    const key = identityKey(identity);
    return { record, lockedUntil: this.#counters.getLockout(key), failures: this.#counters.failures(key) };
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

  claimSession(identity: string, owner: SessionOwner): Promise<number> {
    return this.#mutate((st) => {
      const rec = st.chargers.get(identity);
      if (!rec) return { changed: false, result: 0, changes: [] };
      const generation = (tr.claimGeneration(rec.session) ?? 0) + 1;
      const claimed: SessionOwner = { replica: owner.replica, nonce: owner.nonce, since: owner.since, ...(owner.address ? { address: owner.address } : {}), generation };
      st.setCharger({ ...rec, session: claimed, lastSeenAt: claimed.since });
      return { changed: true, result: generation, changes: [{ kind: 'session', identity, owner: claimed }] };
    });
  }

  /**
   * Change feed (see `CredentialStore.subscribeChanges`). This process's changes are reported once
   * durable; other processes' changes are found by polling the file every `changePollMs` while at
   * least one listener is subscribed (and on any read), and reported per changed record / serial.
   */
  subscribeChanges(listener: StoreChangeListener): () => void {
    this.#assertOpen();
    return this.#listeners.add(listener);
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  /** The file is this store: it cannot lose its data behind the process's back the way a Redis can. */
  async intact(): Promise<boolean> {
    this.#assertOpen();
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pollWhileListened(0);
    await this.#file.idle();
    await this.#audit.drain();
  }

  /** Apply a record transition; null from `fn` means "does not apply" and writes nothing. */
  #transition<T>(
    identity: string,
    fn: (rec: ChargerRecord, now: number) => ChargerRecord | null,
    result: (next: ChargerRecord | null) => T,
    report = true,
  ): Promise<T> {
    return this.#mutate((st) => {
      const rec = st.chargers.get(identity);
      const next = rec ? fn(rec, Date.now()) : null;
      if (next) st.setCharger(next);
      const changes: StoreChange[] = report && next ? [{ kind: 'charger', identity }] : [];
      return { changed: next !== null, result: result(next), changes };
    });
  }

  /** Apply a change to the latest state under the inter-process lock; resolves once it is on disk. */
  async #mutate<T>(fn: (state: StoreState) => MutationOutcome<T>): Promise<T> {
    this.#assertOpen();
    return this.#file.mutate(fn);
  }

  /** The state, refreshed with other processes' committed changes. */
  async #read(): Promise<StoreState> {
    this.#assertOpen();
    await this.#file.fresh();
    return this.#file.state;
  }

  #pollWhileListened(listeners: number): void {
    if (listeners > 0 && !this.#poll && !this.#closed) {
      this.#poll = setInterval(() => void this.#file.fresh().catch(() => undefined), this.#changePollMs);
      this.#poll.unref();
    } else if ((listeners === 0 || this.#closed) && this.#poll) {
      clearInterval(this.#poll);
      this.#poll = null;
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('store_closed', 'credential store is closed');
  }
}
