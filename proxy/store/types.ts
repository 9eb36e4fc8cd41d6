/**
 * The credential store contract. Two implementations (embedded file-backed, Redis) satisfy it and one
 * shared contract test suite runs against both. Everything here is plain data: records are JSON-safe
 * so they survive a round trip through a file or Redis unchanged.
 *
 * Several processes may use one store at the same time (replicas on Redis; the proxy and the
 * `chargers` CLI on one embedded data directory); `subscribeChanges` tells each of them about the
 * others' changes.
 *
 * Secrets never live here in clear text: current passwords are stored only as salted hashes, pending
 * (in-flight rotation) passwords and back-end credentials only sealed with the server secret
 * (see `sealed.ts`).
 */

/** OCPP security profile number (OCPP-SECURITY.md §2.1). */
export type SecurityProfile = 1 | 2 | 3;

/** Scrypt cost parameters stored with a hash so they can be raised later without breaking old hashes. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/**
 * A salted password hash.
 * - `hmac-sha256`: HMAC-SHA-256 keyed with the server secret's password subkey over salt || password;
 *   used for passwords the proxy generated itself (high entropy, so a fast keyed hash is safe).
 * - `scrypt`: for operator-supplied or factory passwords, which may be weak.
 * `salt` and `hash` are base64.
 */
export interface PasswordHash {
  scheme: 'hmac-sha256' | 'scrypt';
  salt: string;
  hash: string;
  params?: ScryptParams;
}

/** Where the current password came from; factory passwords trigger a rotation. */
export type PasswordSource = 'generated' | 'operator' | 'factory';

/**
 * A rotation in flight (DESIGN.md "Rotation"), written *before* the new password is sent to the charger
 * so a retry resends the same value and a proxy crash never loses it.
 */
export interface PendingPassword {
  /** The new password sealed with the server secret (`Sealer.seal`, associated data = identity). */
  encrypted: string;
  /** Hash of the new password, so gates can verify it without unsealing. */
  hash?: PasswordHash;
  /** ms epoch; also the optimistic-concurrency token for `dropPending` / `commitPending`. */
  createdAt: number;
  /**
   * ms epoch when the ChangeConfiguration / SetVariables call was handed to the session to send:
   * stamped before it can be on the wire (it may wait behind a CSMS call), so that a crash right
   * after sending cannot hide a password the charger may already hold.
   */
  sentAt?: number;
  /** ms epoch when the charger answered Accepted. */
  acceptedAt?: number;
  /**
   * ms epoch when the charger answered RebootRequired: it keeps the old password until it reboots,
   * then uses this one, so both stay valid until it logs in with this one (A01.FR.04: only Accepted
   * retires the old password), and this value is never replaced meanwhile.
   */
  rebootRequiredAt?: number;
  /** 1 for the first send of this value, incremented on each resend. */
  attempt: number;
}

/** Certificate binding for Profile 3 (the certificate CN is the charger's serial number, not its identity). */
export interface CertificateBinding {
  /** Expected subject CN; when absent, callers fall back to `serialNumber`, then to the identity. */
  expectedCn?: string;
  /** The charger's serial number (= expected CN of its certificate). */
  serialNumber?: string;
  /** Serial of the certificate last seen/issued for this charger, lower-case hex without separators. */
  boundSerialHex?: string;
  /** ms epoch expiry of that certificate. */
  notAfter?: number;
  /** ms epoch when the charger accepted that certificate (bindings written before this field have none). */
  boundAt?: number;
  /** Subject CN of that certificate: once the serial number changes, it no longer logs in as this charger. */
  commonName?: string;
}

/** Automatic rotation bookkeeping for one charger. */
export interface RotationState {
  /** Operator switched automatic rotation off for this charger. */
  disabled?: boolean;
  /** ms epoch before which no new attempt is made (back-off). */
  nextAttemptAt?: number;
  /** Consecutive failed attempts (drives back-off). */
  failures?: number;
  /** Short label of the last outcome (e.g. `accepted`, `rejected`, `timeout`). */
  lastResult?: string;
  /** ms epoch of an operator's request to rotate now (cleared when a rotation starts). */
  requestedAt?: number;
  /** ms epoch of the last attempt's start. */
  lastAttemptAt?: number;
}

/** Which replica holds the charger's live session: the newest connection wins cluster-wide. */
export interface SessionOwner {
  /** Replica id (host name and pid, or the pod name). */
  replica: string;
  /** Unique per session, so a replica can tell its own claim from a newer one. */
  nonce: string;
  /** ms epoch of admission. */
  since: number;
  /** The charger's address at admission (its "familiar" address: see the identity lockout gate). */
  address?: string;
  /**
   * The claim's number among this charger's claims (1, 2, …), counted by the store when it records
   * the claim: the higher number is the newer session, whatever the replicas' clocks say. Absent
   * from claims stored by older versions (then `since` decides).
   */
  generation?: number;
}

/** Profile-upgrade bookkeeping (issue: security-profile upgrade). */
export interface ProfileUpgradeState {
  /** ms epoch of the operator's request this state belongs to (a new request starts a new state). */
  requestedAt?: number;
  /** ms epoch the upgrade calls were last sent. */
  sentAt?: number;
  /** Short label of the last outcome. */
  lastResult?: string;
  failures?: number;
  nextAttemptAt?: number;
  /** 2.x: the configuration slot the last attempt wrote, reused by the next instead of taking another. */
  slot?: number;
  /** The charger answered the switch RebootRequired: it moves at its next reboot (1.6 gets no Reset from the proxy). */
  awaitsReboot?: boolean;
  /** 2.x: the `ocppInterface` the operator asked for, kept for every attempt of this request. */
  ocppInterface?: OcppInterface;
}

/**
 * The network interface of a 2.x connection profile (SetNetworkProfile `ocppInterface`). `Any` exists
 * from OCPP 2.1 on; a 2.0.1 charger has to be told which one.
 */
export const OCPP_INTERFACES = ['Wired0', 'Wired1', 'Wired2', 'Wired3', 'Wireless0', 'Wireless1', 'Wireless2', 'Wireless3', 'Any'] as const;
export type OcppInterface = typeof OCPP_INTERFACES[number];

/** Everything the proxy knows about one charger. */
export interface ChargerRecord {
  /** OCPP identity (the last URL path segment). Primary key. */
  identity: string;
  /** Lowest security profile this charger may connect with. */
  minProfile: SecurityProfile;
  status: 'active' | 'blocked';
  /** Current password hash (Profiles 1 and 2). */
  password?: PasswordHash;
  /** ms epoch when `password` became current. */
  passwordSetAt?: number;
  passwordSource?: PasswordSource;
  /** Rotation write-ahead; see `CredentialStore.setPending`. */
  pending?: PendingPassword;
  certificate?: CertificateBinding;
  /** Expected subject O of the client certificate. */
  organization?: string;
  /** Credentials the proxy presents to the legacy CSMS for this charger; password sealed. */
  backendCredentials?: { username: string; passwordEncrypted: string };
  /** Last BootNotification answer from the CSMS and when it was given (ms epoch). */
  bootState?: 'Accepted' | 'Pending' | 'Rejected';
  bootAt?: number;
  /** 2.x: the serial number its last BootNotification carried ('' when it carried none); see profile-upgrade.ts. */
  bootSerialNumber?: string;
  rotation?: RotationState;
  /** Profile the proxy should move the charger to (profile upgrade). */
  targetProfile?: SecurityProfile;
  profileUpgrade?: ProfileUpgradeState;
  /** The replica currently holding this charger's session. */
  session?: SessionOwner;
  /** Log admission failures for this charger but let it in (migration aid). */
  reportOnly?: boolean;
  /** ms epoch of the last successful admission. */
  lastSeenAt?: number;
  /** ms epoch; set by the store on first put and never changed afterwards. */
  createdAt: number;
  /** ms epoch; set by the store on every write. */
  updatedAt: number;
}

/**
 * A partial update for `updateCharger`. A field set to `null` is removed from the record; a field that
 * is absent (or `undefined`) is left as it is. `identity` and `createdAt` cannot be changed.
 * Nested objects are replaced whole, except `rotation` and `certificate`, which are merged field by
 * field the same way: in each the proxy and an operator write at the same time (rotation bookkeeping
 * and a request or switch-off; a certificate binding and a serial number), and neither may undo the
 * other's field.
 */
export type ChargerPatch = {
  [K in Exclude<keyof ChargerRecord, 'identity' | 'createdAt' | 'updatedAt' | 'rotation' | 'certificate'>]?: ChargerRecord[K] | null;
} & { rotation?: RotationPatch | null; certificate?: CertificatePatch | null };

/** Fields of `CertificateBinding` to change: `null` removes one, absent (or `undefined`) leaves it. */
export type CertificatePatch = { [K in keyof CertificateBinding]?: CertificateBinding[K] | null };

/** Fields of `RotationState` to change: `null` removes one, absent (or `undefined`) leaves it. */
export type RotationPatch = { [K in keyof RotationState]?: RotationState[K] | null };

/** Input to `putCharger`: timestamps are optional and filled in by the store. */
export type NewChargerRecord = Omit<ChargerRecord, 'createdAt' | 'updatedAt'> &
  Partial<Pick<ChargerRecord, 'createdAt' | 'updatedAt'>>;

/** One page of `listChargers`, ordered by identity (byte order). */
export interface ChargerPage {
  items: ChargerRecord[];
  /** Pass back to get the next page; absent on the last page. */
  cursor?: string;
}

/** A factory default password that applies to chargers by identity prefix and/or batch label. */
export interface FactoryDefault {
  id: string;
  match: { prefix?: string; batch?: string };
  hash: PasswordHash;
  createdAt: number;
}

/** A revoked certificate serial (the caller normalises the serial, e.g. lower-case hex). */
export interface RevokedSerial {
  serialHex: string;
  reason?: string;
  at: number;
}

/** An entry of the capped security audit stream. */
export interface AuditEvent {
  /** Short event label, e.g. `password_rotated`, `auth_failed`, `lockout`. */
  type: string;
  identity?: string;
  /** Free-form, JSON-safe details. Must never contain a password or secret. */
  detail?: Record<string, unknown>;
  /** ms epoch; filled in by the store when absent. */
  at: number;
}

/** Input to `appendAudit`. */
export type NewAuditEvent = Omit<AuditEvent, 'at'> & { at?: number };

/**
 * A notification that stored state changed; carries no data, so the receiver re-reads what it needs.
 * - `charger`: the record of `identity` was put, updated, removed or had a pending transition
 *   (not emitted for `touchLastSeen`).
 * - `revoked`: `serialHex` was revoked (or un-revoked); call `isRevoked` for the current answer.
 * - `factory`: a factory default was added or removed.
 * - `session`: `owner` was admitted as the charger's newest session (`claimSession`); the one change
 *   that carries its data, so the replica holding an older session can close it without a read.
 * - `resync`: changes may have been missed (the feed was disconnected and is back): re-read
 *   everything held. Reported by this process's feed only, never published.
 */
export type StoreChange =
  | { kind: 'charger'; identity: string }
  | { kind: 'session'; identity: string; owner: SessionOwner }
  | { kind: 'revoked'; serialHex: string }
  | { kind: 'factory' }
  | { kind: 'resync' };

/** Receives `StoreChange`s. Errors it throws (or promises it rejects) are caught and ignored. */
export type StoreChangeListener = (change: StoreChange) => void;

/** What an admission reads of one charger (see `CredentialStore.readAdmission`). */
export interface AdmissionRead {
  record: ChargerRecord | null;
  /** ms epoch until which `id:<identity>` is locked out, or 0 when it is not. */
  lockedUntil: number;
  /** Failures counted for `id:<identity>` in the current window (0 when none). */
  failures: number;
}

/**
 * The credential store. Every method rejects with a `StoreError` (see `errors.ts`) when the backing
 * storage is unavailable, so callers can fail closed. Mutations resolve only once durable
 * (embedded: fsynced file; Redis: acknowledged by the server).
 */
/** The fields of a pending password that change after it is written; `sentAt: null` removes the stamp. */
export type PendingPatch = Partial<Omit<PendingPassword, 'createdAt' | 'encrypted' | 'hash' | 'sentAt'>> & { sentAt?: number | null };

export interface CredentialStore {
  /** Which implementation this is, for logs and /readyz. */
  readonly kind: 'embedded' | 'redis';

  getCharger(identity: string): Promise<ChargerRecord | null>;
  /** Create or replace a record. Keeps `createdAt` of an existing record; sets `updatedAt`. */
  putCharger(record: NewChargerRecord): Promise<ChargerRecord>;
  /** Create a record only if none exists: null, writing nothing, when the identity is taken (atomically). */
  createCharger(record: NewChargerRecord): Promise<ChargerRecord | null>;
  /** Atomically apply a patch; returns the new record, or null when the charger does not exist. */
  updateCharger(identity: string, patch: ChargerPatch): Promise<ChargerRecord | null>;
  /** Returns false when there was no such charger. */
  removeCharger(identity: string): Promise<boolean>;
  /** Page through chargers in identity order. `limit` defaults to 100 (max 1000). */
  listChargers(opts?: { cursor?: string; limit?: number }): Promise<ChargerPage>;

  /**
   * Rotation step 3 (write-ahead): store `pending` for the charger. Resolves false (nothing written)
   * when the charger does not exist or already has a pending password: that one may have been sent
   * by a concurrent session, and is resent, never replaced (see transitions.ts).
   */
  setPending(identity: string, pending: PendingPassword): Promise<boolean>;
  /**
   * Resolves once the charger's writes so far would survive a failover of the store: at once for a
   * store without replicas (the embedded one, a Redis primary with none connected); with Redis
   * replicas, once one of them has acknowledged them. Called before a password leaves for the
   * charger. Rejects with StoreError `store_not_replicated` when no replica did in time.
   */
  replicated(identity: string): Promise<void>;
  /**
   * Atomically patch the pending entry (e.g. `sentAt`, `acceptedAt`, `attempt`) only if its
   * `createdAt` still equals `expectedCreatedAt`. Returns false otherwise.
   */
  updatePending(
    identity: string,
    expectedCreatedAt: number,
    patch: PendingPatch,
  ): Promise<boolean>;
  /**
   * Drop the pending entry. With `expectedCreatedAt`, only if it is still that entry.
   * Returns true when something was dropped.
   */
  dropPending(identity: string, expectedCreatedAt?: number): Promise<boolean>;
  /**
   * Rotation step 6: atomically make the pending password current (`password = newHash`,
   * `passwordSource = 'generated'`, `passwordSetAt = at ?? now`) and remove the pending entry, only if
   * the pending entry's `createdAt` equals `expectedCreatedAt`. Of concurrent commits exactly one wins;
   * the others (and stale ones) return false and change nothing.
   */
  commitPending(identity: string, newHash: PasswordHash, expectedCreatedAt: number, at?: number): Promise<boolean>;

  /** Register a factory default password; returns its id. */
  addFactoryDefault(match: { prefix?: string; batch?: string }, hash: PasswordHash): Promise<string>;
  listFactoryDefaults(): Promise<FactoryDefault[]>;
  /** Returns false when no such id. */
  removeFactoryDefault(id: string): Promise<boolean>;

  /** Mark a certificate serial revoked. The caller normalises `serialHex`. Idempotent. */
  revokeSerial(serialHex: string, reason?: string): Promise<void>;
  isRevoked(serialHex: string): Promise<boolean>;
  listRevoked(): Promise<RevokedSerial[]>;
  /** Returns false when the serial was not revoked. */
  unrevokeSerial(serialHex: string): Promise<boolean>;

  /**
   * Brute-force counter: atomically increment the failure count for `key` (convention: `id:<identity>`
   * or `ip:<address>`) and return the new count. The window is fixed: it starts at the first failure
   * and the counter disappears `windowMs` later.
   */
  recordFailure(key: string, windowMs: number): Promise<number>;
  resetFailures(key: string): Promise<void>;
  /** Lock `key` out until `untilMs` (ms epoch). A past time clears the lockout. */
  setLockout(key: string, untilMs: number): Promise<void>;
  /** ms epoch until which `key` is locked out, or 0 when it is not. */
  getLockout(key: string): Promise<number>;
  /**
   * The charger's record (as `getCharger`) with the lockout and failure count of `id:<identity>`, read
   * together: one request with Redis, whose keys of one charger share a slot.
   */
  readAdmission(identity: string): Promise<AdmissionRead>;

  /** Append to the capped audit stream (oldest entries are dropped beyond the cap). */
  appendAudit(event: NewAuditEvent): Promise<void>;
  /** The newest `limit` audit events, newest first. */
  readAudit(limit: number): Promise<AuditEvent[]>;

  /**
   * Record `owner` as the charger's session holder and `lastSeenAt = owner.since` (read back in the
   * record's `session` and `lastSeenAt`). Last writer wins, without compare-and-set: every admission
   * claims, and the newest is the owner. The store numbers the claim (`generation`, one more than
   * the charger's previous claim) and reports it as a `session` change (never as `charger`).
   * Resolves the claim's generation, or 0, storing nothing, when the charger does not exist.
   */
  claimSession(identity: string, owner: SessionOwner): Promise<number>;

  /**
   * Change feed: call `listener` for every change made through any instance of this store in any
   * process (replica, CLI), including this one. Delivery is best effort: a change may be missed while
   * the connection to the backing storage is down, and several changes may be reported as one or more
   * times, so treat an event as "re-read this", never as the data itself. Local changes are reported
   * once durable; other processes' changes within about a second (embedded: polling, see
   * `EmbeddedStoreOptions.changePollMs`; Redis: pub/sub). Returns an idempotent unsubscribe function.
   */
  subscribeChanges(listener: StoreChangeListener): () => void;

  /** Resolves when the backing storage answers; rejects (StoreError `store_unavailable`) otherwise. */
  ping(): Promise<void>;
  /**
   * False when the store has lost its data since a process opened it (a Redis restarted without its
   * data, a FLUSHALL): a record missing then means the data is gone, not that an operator removed
   * the charger. Rejects (StoreError `store_unavailable`) when the storage does not answer.
   */
  intact(): Promise<boolean>;
  /** Flush and release resources. Further calls reject. */
  close(): Promise<void>;
}
