/**
 * RedisStore: the credential store for production and replicas (standalone, Sentinel or Cluster).
 *
 * Keys (prefix `P`, default `ocpp:`); `{...}` are Cluster hash tags so one charger's keys share a slot:
 *   P{<identity>}:charger   string, the record as JSON (changed only by compare-and-set in Lua)
 *   P{<identity>}:owner     string, the session claim as JSON (`claimSession`: one write per admission,
 *                           no compare-and-set; merged into the record as `session` / `lastSeenAt` on read)
 *   P{<identity>}:claims    integer, the number of the last claim (INCR in the claim script)
 *   P{<identity>}:fail / :lock        counters and lockouts for `id:<identity>` keys
 *   Pfail:{<key>} / Plock:{<key>}     the same for other keys (e.g. `ip:<addr>`)
 *   Pchargers   sorted set of identities (all score 0, paged by lexicographic range)
 *   Pfactory    hash id -> factory default JSON;   Prevoked  hash serial -> revocation JSON
 *   Paudit      stream, trimmed exactly to the cap
 *   Pchanges    pub/sub channel of the change feed (see `redis-changes.ts`)
 * Record transitions read the record, compute the next one with the shared pure functions in
 * `transitions.ts`, and write it with an atomic compare-and-set, retrying when another writer won.
 */
import { randomUUID } from 'node:crypto';
import { StoreError } from './errors';
import { connectRedis, type RedisClientOptions, type StoreRedis } from './redis-client';
import { RedisChangeFeed } from './redis-changes';
import { awaitReplica, DEFAULT_REPLICA_WAIT, type ReplicaWait } from './redis-replicas';
import { parseRedisUrl } from './redis-url';
import { identityKey, identityOfKey } from './counter-keys';
import * as tr from './transitions';
import { checkMatch, checkSerial, clampLimit } from './transitions';
import type {
  AdmissionRead, AuditEvent, ChargerPage, ChargerPatch, ChargerRecord, CredentialStore, FactoryDefault, NewAuditEvent,
  NewChargerRecord, PasswordHash, PendingPassword, PendingPatch, RevokedSerial, SessionOwner, StoreChange, StoreChangeListener,
} from './types';

/** Written when a process opens the store (NX): gone only when Redis lost its data (see `intact`). */
const STORE_MARKER = 'store-created';

/** Options of `RedisStore.open`. */
export interface RedisStoreOptions extends RedisClientOptions {
  /** See `redis-url.ts` for accepted forms. */
  url: string;
  /** Key prefix, default `ocpp:`. */
  keyPrefix?: string;
  /** Audit events kept, default 10,000. */
  auditCap?: number;
  /** How often the change feed checks that its subscription still hears (redis-changes.ts); 0 = never. */
  changeProbeMs?: number;
  /** How long a replica gets to acknowledge a write before a password is sent (`replicated`). */
  replicaWait?: ReplicaWait;
  /** Told (once) that Redis will not say whether it has replicas (ROLE refused): passwords go out unchecked. */
  onReplicaCheckRefused?: () => void;
}

const MAX_CAS_ATTEMPTS = 32;

/** Redis-backed CredentialStore. */
export class RedisStore implements CredentialStore {
  readonly kind = 'redis' as const;
  readonly #r: StoreRedis;
  readonly #p: string;
  readonly #auditCap: number;
  readonly #feed: RedisChangeFeed;
  readonly #replicaWait: ReplicaWait;
  readonly #onReplicaCheckRefused: (() => void) | undefined;
  #replicaCheckRefusedTold = false;
  #closed = false;

  private constructor(client: StoreRedis, prefix: string, auditCap: number, opts: Pick<RedisStoreOptions, 'changeProbeMs' | 'replicaWait' | 'onReplicaCheckRefused'>) {
    this.#r = client;
    this.#replicaWait = opts.replicaWait ?? DEFAULT_REPLICA_WAIT;
    this.#onReplicaCheckRefused = opts.onReplicaCheckRefused;
    this.#p = prefix;
    this.#auditCap = Math.max(1, auditCap);
    this.#feed = new RedisChangeFeed(client, prefix + 'changes', opts.changeProbeMs);
  }

  /** Connect and return a store. @throws StoreError `redis_url_invalid` / `store_unavailable`. */
  static async open(opts: RedisStoreOptions): Promise<RedisStore> {
    const client = await connectRedis(parseRedisUrl(opts.url), opts);
    const store = new RedisStore(client, opts.keyPrefix ?? 'ocpp:', opts.auditCap ?? 10_000, opts);
    // The marker `intact()` looks for; kept when present. A read-only replica cannot write it: the
    // next process to open a writable store does.
    await client.set(store.#p + STORE_MARKER, new Date().toISOString(), 'NX').catch(() => undefined);
    return store;
  }

  getCharger(identity: string): Promise<ChargerRecord | null> {
    return this.#call(async () => {
      const [raw, owner] = await this.#r.mget(this.#chargerKey(identity), this.#ownerKey(identity));
      return recordOf(raw, owner);
    });
  }

  putCharger(record: NewChargerRecord): Promise<ChargerRecord> {
    return this.#call(async () => {
      tr.checkIdentity(record.identity);
      const key = this.#chargerKey(record.identity);
      for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
        const raw = await this.#r.get(key);
        const next = tr.applyPut(raw === null ? null : parseRecord(raw), record, Date.now());
        if ((await this.#r.casJson(key, raw ?? '', JSON.stringify(next))) === 1) {
          await this.#r.zadd(this.#p + 'chargers', 0, record.identity);
          await this.#feed.publish({ kind: 'charger', identity: record.identity });
          return next;
        }
      }
      throw conflict();
    });
  }

  createCharger(record: NewChargerRecord): Promise<ChargerRecord | null> {
    return this.#call(async () => {
      tr.checkIdentity(record.identity);
      const next = tr.applyPut(null, record, Date.now());
      // The compare-and-set against "no record" (the script reads a missing key as '').
      if ((await this.#r.casJson(this.#chargerKey(record.identity), '', JSON.stringify(next))) !== 1) return null;
      await this.#r.zadd(this.#p + 'chargers', 0, record.identity);
      await this.#feed.publish({ kind: 'charger', identity: record.identity });
      return next;
    });
  }

  updateCharger(identity: string, patch: ChargerPatch): Promise<ChargerRecord | null> {
    return this.#transition(identity, (rec, now) => tr.applyPatch(rec, patch, now));
  }

  removeCharger(identity: string): Promise<boolean> {
    return this.#call(async () => {
      const removed = await this.#r.del(this.#chargerKey(identity), this.#ownerKey(identity), this.#claimsKey(identity));
      await this.#r.zrem(this.#p + 'chargers', identity);
      if (removed > 0) await this.#feed.publish({ kind: 'charger', identity });
      return removed > 0;
    });
  }

  listChargers(opts: { cursor?: string; limit?: number } = {}): Promise<ChargerPage> {
    return this.#call(async () => {
      const limit = clampLimit(opts.limit);
      const min = opts.cursor === undefined ? '-' : '(' + opts.cursor;
      const ids = await this.#r.zrangebylex(this.#p + 'chargers', min, '+', 'LIMIT', 0, limit + 1);
      const more = ids.length > limit;
      const page = ids.slice(0, limit);
      const raws = await Promise.all(page.map((id) => this.#r.mget(this.#chargerKey(id), this.#ownerKey(id))));
      // An index entry without a record is a removal racing with us: skip it.
      const items = raws.map(([r, owner]) => recordOf(r, owner)).filter((rec): rec is ChargerRecord => rec !== null);
      return more ? { items, cursor: page[page.length - 1] } : { items };
    });
  }

  async setPending(identity: string, pending: PendingPassword): Promise<boolean> {
    return (await this.#transition(identity, (rec, now) => tr.applySetPending(rec, pending, now))) !== null;
  }

  replicated(identity: string): Promise<void> {
    return this.#call(async () => {
      if ((await awaitReplica(this.#r, this.#chargerKey(identity), this.#replicaWait)) === 'unknown' && !this.#replicaCheckRefusedTold) {
        this.#replicaCheckRefusedTold = true;
        this.#onReplicaCheckRefused?.();
      }
    });
  }

  async updatePending(
    identity: string,
    expectedCreatedAt: number,
    patch: PendingPatch,
  ): Promise<boolean> {
    return (await this.#transition(identity, (rec, now) => tr.applyUpdatePending(rec, expectedCreatedAt, patch, now))) !== null;
  }

  async dropPending(identity: string, expectedCreatedAt?: number): Promise<boolean> {
    return (await this.#transition(identity, (rec, now) => tr.applyDropPending(rec, expectedCreatedAt, now))) !== null;
  }

  async commitPending(identity: string, newHash: PasswordHash, expectedCreatedAt: number, at?: number): Promise<boolean> {
    const next = await this.#transition(identity, (rec, now) =>
      tr.applyCommitPending(rec, newHash, expectedCreatedAt, at ?? now, now),
    );
    return next !== null;
  }

  addFactoryDefault(match: { prefix?: string; batch?: string }, hash: PasswordHash): Promise<string> {
    return this.#call(async () => {
      const fd: FactoryDefault = { id: randomUUID(), match: checkMatch(match), hash, createdAt: Date.now() };
      await this.#r.hset(this.#p + 'factory', fd.id, JSON.stringify(fd));
      await this.#feed.publish({ kind: 'factory' });
      return fd.id;
    });
  }

  listFactoryDefaults(): Promise<FactoryDefault[]> {
    return this.#call(async () => Object.values(await this.#r.hgetall(this.#p + 'factory')).map((v) => parseJson<FactoryDefault>(v)));
  }

  removeFactoryDefault(id: string): Promise<boolean> {
    return this.#call(async () => this.#reportIf((await this.#r.hdel(this.#p + 'factory', id)) > 0, { kind: 'factory' }));
  }

  revokeSerial(serialHex: string, reason?: string): Promise<void> {
    return this.#call(async () => {
      checkSerial(serialHex);
      const entry: RevokedSerial = { serialHex, at: Date.now() };
      if (reason !== undefined) entry.reason = reason;
      await this.#r.hsetnx(this.#p + 'revoked', serialHex, JSON.stringify(entry));
      await this.#feed.publish({ kind: 'revoked', serialHex });
    });
  }

  isRevoked(serialHex: string): Promise<boolean> {
    return this.#call(async () => (await this.#r.hexists(this.#p + 'revoked', serialHex)) === 1);
  }

  listRevoked(): Promise<RevokedSerial[]> {
    return this.#call(async () => Object.values(await this.#r.hgetall(this.#p + 'revoked')).map((v) => parseJson<RevokedSerial>(v)));
  }

  unrevokeSerial(serialHex: string): Promise<boolean> {
    return this.#call(async () =>
      this.#reportIf((await this.#r.hdel(this.#p + 'revoked', serialHex)) > 0, { kind: 'revoked', serialHex }),
    );
  }

  recordFailure(key: string, windowMs: number): Promise<number> {
    return this.#call(() => this.#r.incrWindow(this.#counterKey('fail', key), Math.max(1, Math.ceil(windowMs))));
  }

  resetFailures(key: string): Promise<void> {
    return this.#call(async () => void (await this.#r.del(this.#counterKey('fail', key))));
  }

  setLockout(key: string, untilMs: number): Promise<void> {
    return this.#call(async () => {
      const k = this.#counterKey('lock', key);
      if (untilMs <= Date.now()) await this.#r.del(k);
      else await this.#r.set(k, String(Math.ceil(untilMs)), 'PXAT', Math.ceil(untilMs));
    });
  }

  getLockout(key: string): Promise<number> {
    return this.#call(async () => {
      return lockoutOf(await this.#r.get(this.#counterKey('lock', key)));
    });
  }

  readAdmission(identity: string): Promise<AdmissionRead> {
    return this.#call(async () => {
      const id = identityKey(identity);
      const [raw, owner, lock, failures] = await this.#r.mget(
        this.#chargerKey(identity), this.#ownerKey(identity), this.#counterKey('lock', id), this.#counterKey('fail', id),
      );
      return { record: recordOf(raw, owner), lockedUntil: lockoutOf(lock), failures: Number(failures ?? 0) };
    });
  }

  appendAudit(event: NewAuditEvent): Promise<void> {
    return this.#call(async () => {
      const ev: AuditEvent = { ...event, at: event.at ?? Date.now() };
      await this.#r.xadd(this.#p + 'audit', 'MAXLEN', '=', this.#auditCap, '*', 'e', JSON.stringify(ev));
    });
  }

  readAudit(limit: number): Promise<AuditEvent[]> {
    return this.#call(async () => {
      if (limit <= 0) return [];
      const entries = await this.#r.xrevrange(this.#p + 'audit', '+', '-', 'COUNT', Math.floor(limit));
      return entries.map(([, fields]) => parseJson<AuditEvent>(fields[1]));
    });
  }

  /**
   * The server secret's fingerprint stored with this store, or null; with `adopt`, `fingerprint` is
   * stored first when there is none (so a replica started later with another secret finds out). Not
   * part of the contract: the embedded store lives in one data directory, next to its secret.
   */
  secretFingerprint(fingerprint: string, adopt: boolean): Promise<string | null> {
    return this.#call(async () => {
      const key = this.#p + 'server-secret-fingerprint';
      const stored = await this.#r.get(key); // read first: a read-only replica can still answer
      if (stored !== null || !adopt) return stored;
      await this.#r.set(key, fingerprint, 'NX');
      return this.#r.get(key);
    });
  }

  claimSession(identity: string, owner: SessionOwner): Promise<number> {
    return this.#call(async () => {
      // The script numbers the claim: both texts go to it in two pieces, around where the number goes.
      const claimed: SessionOwner = { replica: owner.replica, nonce: owner.nonce, since: owner.since, ...(owner.address ? { address: owner.address } : {}), generation: GENERATION_SLOT };
      const [ownerHead, ownerTail] = aroundGenerationSlot(JSON.stringify(claimed));
      const [messageHead, messageTail] = aroundGenerationSlot(this.#feed.messageFor({ kind: 'session', identity, owner: claimed }));
      // The script publishes the claim itself: one round trip per admission instead of two.
      const generation = Number(await this.#r.claimOwner(this.#chargerKey(identity), this.#ownerKey(identity), this.#claimsKey(identity), ownerHead, ownerTail, this.#feed.channel, messageHead, messageTail));
      if (generation > 0) this.#feed.reportLocally({ kind: 'session', identity, owner: { ...claimed, generation } });
      return generation;
    });
  }

  /**
   * Change feed over Redis pub/sub (see `CredentialStore.subscribeChanges` and `redis-changes.ts`):
   * this instance's changes are reported directly, other instances' through the `<prefix>changes`
   * channel, received on a dedicated connection opened on the first subscription.
   */
  subscribeChanges(listener: StoreChangeListener): () => void {
    if (this.#closed) throw new StoreError('store_closed', 'credential store is closed');
    return this.#feed.subscribe(listener);
  }

  ping(): Promise<void> {
    return this.#call(async () => void (await this.#r.ping()));
  }

  intact(): Promise<boolean> {
    return this.#call(async () => (await this.#r.exists(this.#p + STORE_MARKER)) === 1);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#feed.close();
    try {
      await this.#r.quit();
    } catch {
      this.#r.disconnect();
    }
  }

  /**
   * Read-compute-CAS loop; null when the charger is missing or the transition does not apply. The
   * record returned is as `getCharger` gives it (with the session claim stored beside it), as the
   * embedded store's is.
   */
  #transition(
    identity: string,
    fn: (rec: ChargerRecord, now: number) => ChargerRecord | null,
    report = true,
  ): Promise<ChargerRecord | null> {
    return this.#call(async () => {
      const key = this.#chargerKey(identity);
      for (let i = 0; i < MAX_CAS_ATTEMPTS; i++) {
        const [raw, owner] = await this.#r.mget(key, this.#ownerKey(identity));
        if (raw === null) return null;
        const next = fn(parseRecord(raw), Date.now());
        if (!next) return null;
        if ((await this.#r.casJson(key, raw, JSON.stringify(next))) === 1) {
          if (report) await this.#feed.publish({ kind: 'charger', identity });
          return withOwner(next, owner ?? null);
        }
      }
      throw conflict();
    });
  }

  /** Publish `change` when `happened`; returns `happened`. */
  async #reportIf(happened: boolean, change: StoreChange): Promise<boolean> {
    if (happened) await this.#feed.publish(change);
    return happened;
  }

  /** Run a Redis operation, turning client/connection errors into `store_unavailable`. */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError('store_closed', 'credential store is closed');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('store_unavailable', `redis: ${(err as Error).message}`, { cause: err });
    }
  }

  #chargerKey(identity: string): string {
    return `${this.#p}{${identity}}:charger`;
  }

  #ownerKey(identity: string): string {
    return `${this.#p}{${identity}}:owner`;
  }

  #claimsKey(identity: string): string {
    return `${this.#p}{${identity}}:claims`;
  }

  #counterKey(kind: 'fail' | 'lock', key: string): string {
    const identity = identityOfKey(key);
    return identity !== null ? `${this.#p}{${identity}}:${kind}` : `${this.#p}${kind}:{${key}}`;
  }
}

/** Stands for the claim's number in the texts sent to the claim script (any number: it is cut out). */
const GENERATION_SLOT = 0;
const GENERATION_TEXT = `"generation":${GENERATION_SLOT}`;

/**
 * `json` before and after the number of its one `"generation"` key. The text cannot occur inside
 * a string value, where JSON escapes every quote; the check guards against a future second key.
 */
function aroundGenerationSlot(json: string): [string, string] {
  const at = json.indexOf(GENERATION_TEXT);
  if (at < 0 || json.lastIndexOf(GENERATION_TEXT) !== at) throw new Error('claim text must hold exactly one generation');
  const cut = at + GENERATION_TEXT.length - String(GENERATION_SLOT).length;
  return [json.slice(0, cut), json.slice(at + GENERATION_TEXT.length)];
}

function parseRecord(raw: string): ChargerRecord {
  return parseJson<ChargerRecord>(raw);
}

/** A charger's stored record and claim (`MGET` replies) as callers see it; null when there is none. */
function recordOf(raw: string | null | undefined, owner: string | null | undefined): ChargerRecord | null {
  return raw == null ? null : withOwner(parseRecord(raw), owner ?? null);
}

/** A stored lockout end (ms epoch), or 0 when there is none or it has passed. */
function lockoutOf(raw: string | null | undefined): number {
  const until = Number(raw ?? 0);
  return until > Date.now() ? until : 0;
}

/** The record as callers see it: the claim stored beside it becomes `session` and `lastSeenAt`. */
function withOwner(rec: ChargerRecord, rawOwner: string | null): ChargerRecord {
  if (rawOwner === null) return rec;
  let owner: SessionOwner;
  try {
    owner = JSON.parse(rawOwner) as SessionOwner;
  } catch {
    return rec; // a damaged claim only costs the "last seen" display; the record itself is intact
  }
  return { ...rec, session: owner, lastSeenAt: Math.max(owner.since, rec.lastSeenAt ?? 0) };
}

function parseJson<T>(raw: string): T {
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new StoreError('store_corrupt', 'a value in Redis is not valid JSON');
  }
}

function conflict(): StoreError {
  return new StoreError('store_conflict', `record kept changing during ${MAX_CAS_ATTEMPTS} update attempts`);
}
