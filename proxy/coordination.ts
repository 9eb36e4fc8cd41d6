import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { admissionFacts } from '../policies/gates/facts';
import type { Logger } from './log';
import type { SessionRegistry } from './registry';
import { REPLACED_CODE } from './registry';
import type { Session } from './session';
import { claimGeneration } from './store/transitions';
import type { CredentialStore, SessionOwner, StoreChange } from './store/types';

/** This process's replica id: the pod name in Kubernetes (POD_NAME), else host name and pid. */
export function replicaId(): string {
  return process.env.POD_NAME || process.env.HOSTNAME_OVERRIDE || `${os.hostname()}:${process.pid}`;
}

/**
 * Makes operator actions and the "newest connection wins" rule work across replicas that share
 * nothing but the store: every admission is claimed as the charger's session owner (one write, a
 * `session` change carrying the owner), and every store change (from any replica or the CLI) is
 * checked against the sessions held here.
 * - another replica admitted the same charger later → close ours (1008, replaced);
 * - charger blocked or removed → close (1008);
 * - a certificate serial revoked → close the session using it (1008);
 * - otherwise the fresh record is handed to the session's interceptors (`onRecordChanged`), which
 *   act on rotation requests and profile-upgrade targets.
 */
export class SessionCoordinator {
  readonly replica = replicaId();
  private readonly nonces = new WeakMap<Session, string>();
  /** Per session, the number the store gave its claim (none while the claim is under way, or when it failed). */
  private readonly generations = new WeakMap<Session, number>();
  /** Per session whose claim is under way, the other claims heard meanwhile: judged once ours is numbered. */
  private readonly heardWhileClaiming = new WeakMap<Session, SessionOwner[]>();
  private unsubscribe: (() => void) | null = null;
  /** Counts the changes heard that could make an admission stale (see `mark`). */
  private seq = 0;
  /** Per identity, the `seq` of the last `charger` change heard for it. */
  private readonly chargerChangedAt = new Map<string, number>();
  private revokedAt = 0;
  /** The last `resync`; also where `chargerChangedAt` was last cleared (older marks then count as stale). */
  private forgottenAt = 0;
  private quiet = false;
  private resyncing = false;
  private resyncAgain = false;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** A `store.intact()` under way, shared by the rechecks that find records missing meanwhile. */
  private intactCheck: Promise<boolean> | null = null;
  /** When the store was last found to have lost its data (that answer serves a few seconds). */
  private wipedSeenAt = 0;
  private wipedWarnedAt = 0;

  constructor(private readonly store: CredentialStore, private readonly sessions: SessionRegistry, private readonly log: Logger) {}

  /**
   * Subscribes to the change feed. With `sweepMs` > 0 every session held is also checked again that
   * often, as after a lost feed: a change message can be lost without the feed noticing (a PUBLISH
   * that failed after its write, a Cluster subscription moved between probes), and a blocked,
   * removed or revoked charger must not keep its session for good.
   */
  start(sweepMs = 0): void {
    this.unsubscribe = this.store.subscribeChanges((change) => {
      this.onChange(change).catch((err: unknown) => this.log.warn({ event: 'coordination_failed', err: String(err) }));
    });
    if (sweepMs > 0) {
      this.sweepTimer = setInterval(() => {
        if (!this.resyncing) this.resync('sweep').catch((err: unknown) => this.log.warn({ event: 'coordination_failed', err: String(err) }));
      }, sweepMs);
      this.sweepTimer.unref();
    }
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Draining: the close rules still apply, but fresh records are no longer handed to sessions. */
  quiesce(): void {
    this.quiet = true;
  }

  /**
   * Taken when an upgrade starts, before its gates read the store. A session enters the registry
   * only once admitted (after the password check and the CSMS dial, seconds later with a slow
   * CSMS); a block, removal or revocation heard in between found no session to close. `claim`
   * compares this mark with what was heard since and checks the new session again.
   */
  mark(): number {
    return this.seq;
  }

  /**
   * Records this replica as the owner of a newly admitted session (best effort: the session runs
   * regardless), then checks it again if its charger changed, a certificate was revoked or changes
   * were missed since `mark` (the mark its upgrade took).
   */
  async claim(session: Session, mark?: number): Promise<void> {
    if (!admissionFacts(session.facts)) return; // admitted in report-only mode without a record
    const nonce = randomUUID();
    this.nonces.set(session, nonce);
    this.heardWhileClaiming.set(session, []);
    try {
      // The address becomes the charger's familiar one (see the identity lockout gate): only when its
      // credentials were verified, not for a report-only admission that would have been refused, and
      // only when it is the charger's own, not that of a front every charger behind it shares.
      const address = session.facts.reportOnlyFindings || session.facts.addressShared ? undefined : session.remoteAddress;
      const generation = await this.store.claimSession(session.identity, { replica: this.replica, nonce, since: session.startedAt, ...(address ? { address } : {}) });
      if (generation > 0) this.generations.set(session, generation);
    } catch (err) {
      this.log.warn({ event: 'session_claim_failed', identity: session.identity, err: String(err) });
    }
    const heard = this.heardWhileClaiming.get(session) ?? [];
    this.heardWhileClaiming.delete(session);
    const newer = heard.find((owner) => this.replacedElsewhere(session, owner));
    if (newer && !session.closed) {
      this.closeReplaced(session, newer);
      return;
    }
    if (mark !== undefined && this.heardSince(session, mark)) {
      await this.recheck(session, 'changed_during_admission').catch((err: unknown) =>
        this.log.warn({ event: 'coordination_failed', identity: session.identity, err: String(err) }));
    }
  }

  private heardSince(session: Session, mark: number): boolean {
    if (this.forgottenAt > mark) return true;
    if ((this.chargerChangedAt.get(session.identity) ?? 0) > mark) return true;
    return this.revokedAt > mark && admissionFacts(session.facts)?.certificate !== undefined;
  }

  private async onChange(change: StoreChange): Promise<void> {
    if (change.kind === 'resync') return this.resync('feed_resumed');
    if (change.kind === 'revoked') {
      this.revokedAt = ++this.seq;
      for (const s of this.sessions.all()) {
        if (admissionFacts(s.facts)?.certificate?.serialHex === change.serialHex) {
          this.log.info({ event: 'session_closed_revoked', identity: s.identity, serial: change.serialHex });
          s.close(1008, 'certificate revoked');
        }
      }
      return;
    }
    if (change.kind === 'factory') return;
    if (change.kind === 'charger') this.noteChargerChange(change.identity);
    const session = this.sessions.get(change.identity);
    if (!session || session.closed) return;
    if (change.kind === 'session') {
      // The claim carries its owner: no read, and our own claim (same nonce) is not a change for us.
      if (this.replacedElsewhere(session, change.owner)) this.closeReplaced(session, change.owner);
      return;
    }
    await this.recheck(session, null);
  }

  /** Remembers a charger change for admissions under way; bounded: a crowd of them is forgotten at once, counting as stale. */
  private noteChargerChange(identity: string): void {
    const at = ++this.seq;
    if (this.chargerChangedAt.size >= MAX_REMEMBERED_CHANGES) {
      this.chargerChangedAt.clear();
      this.forgottenAt = at;
    }
    this.chargerChangedAt.set(identity, at);
  }

  /**
   * Reads the charger again and applies the rules: blocked or removed → close; a revoked certificate
   * → close; replaced elsewhere → close; else the fresh record goes to the interceptors.
   */
  private async recheck(session: Session, why: string | null): Promise<void> {
    const facts = admissionFacts(session.facts);
    const serial = facts?.certificate?.serialHex;
    const [record, revoked] = await Promise.all([this.store.getCharger(session.identity), serial ? this.store.isRevoked(serial) : false]);
    if (session.closed) return;
    if (!record && !(await this.recordGone())) return;
    if (session.closed) return;
    if (!record || record.status === 'blocked') {
      this.log.info({ event: record ? 'session_closed_blocked' : 'session_closed_removed', identity: session.identity, ...(why ? { why } : {}) });
      session.close(1008, record ? 'charger blocked' : 'charger removed');
      return;
    }
    if (revoked) {
      this.log.info({ event: 'session_closed_revoked', identity: session.identity, serial, ...(why ? { why } : {}) });
      session.close(1008, 'certificate revoked');
      return;
    }
    if (record.session && this.replacedElsewhere(session, record.session)) {
      this.closeReplaced(session, record.session);
      return;
    }
    if (!this.quiet) session.recordChanged(record, why === 'sweep');
  }

  /**
   * Whether a charger record found missing was removed, rather than lost with everything else: a Redis
   * restarted without its data would otherwise close every session (and their chargers would be
   * refused until it is restored). A loss found serves the rechecks of a few seconds; a store that
   * cannot say is taken as intact, so a removal still closes its session.
   */
  private async recordGone(): Promise<boolean> {
    if (Date.now() - this.wipedSeenAt > INTACT_CHECK_MS) {
      // Never a remembered "intact": a removal just before a wipe must not vouch for the records after it.
      this.intactCheck ??= this.store.intact().catch(() => true).finally(() => { this.intactCheck = null; });
      if (await this.intactCheck) return true;
      this.wipedSeenAt = Date.now();
    }
    if (Date.now() - this.wipedWarnedAt > WIPED_WARNING_MS) {
      this.wipedWarnedAt = Date.now();
      this.log.error({ event: 'store_wiped', sessions: this.sessions.all().length },
        'the store has lost its data (a Redis restarted without it?): live sessions are kept; chargers that reconnect are refused until it is restored from its backup');
    }
    return false;
  }

  /**
   * The change feed was disconnected and is back (or a sweep is due): what was published meanwhile
   * is lost, so every session held here is checked again, a batch at a time. One resync runs at a time (a flapping
   * connection asks for another meanwhile: it runs after). Sessions whose reads failed (the store's
   * own connection may come back after the feed's) are checked again with back-off.
   */
  private async resync(why: 'feed_resumed' | 'sweep'): Promise<void> {
    if (this.resyncing) {
      this.resyncAgain = true;
      return;
    }
    this.resyncing = true;
    let pass = why;
    try {
      do {
        this.resyncAgain = false;
        if (pass === 'feed_resumed') {
          // Changes were lost: admissions under way may have read a stale record (a sweep lost nothing).
          this.chargerChangedAt.clear();
          this.forgottenAt = ++this.seq;
        }
        let pending = this.sessions.all().filter((s) => !s.closed && admissionFacts(s.facts));
        // A sweep is routine: logged at debug, unless it finds something (its closes are logged).
        this.log[pass === 'sweep' ? 'debug' : 'info']({ event: 'coordination_resync', why: pass, sessions: pending.length });
        for (let attempt = 0; pending.length > 0 && this.unsubscribe; attempt++) {
          if (attempt >= RESYNC_ATTEMPTS) {
            this.log.warn({ event: 'coordination_resync_incomplete', failed: pending.length });
            break;
          }
          if (attempt > 0) await new Promise((r) => setTimeout(r, RESYNC_RETRY_MS * 2 ** (attempt - 1)).unref());
          if (this.resyncAgain || !this.unsubscribe) break; // the feed dropped again meanwhile: start a fresh pass now
          const failed: Session[] = [];
          for (let i = 0; i < pending.length; i += RESYNC_BATCH) {
            const batch = pending.slice(i, i + RESYNC_BATCH);
            const results = await Promise.allSettled(batch.map((s) => this.recheck(s, pass === 'sweep' ? 'sweep' : 'resync')));
            results.forEach((r, n) => { if (r.status === 'rejected' && !batch[n]!.closed) failed.push(batch[n]!); });
          }
          pending = failed;
        }
        pass = 'feed_resumed'; // only a feed that resumed asks for another pass (a sweep waits its turn)
      } while (this.resyncAgain && this.unsubscribe);
    } finally {
      this.resyncing = false;
    }
  }

  /**
   * Whether `owner` is a newer claim of this session's charger than this session's own. The store
   * numbers claims, so the higher number wins whatever the replicas' clocks say; the admission
   * times (`since`) decide only when a number is missing (our claim failed, or `owner` was stored
   * by an older version) or the same. While our claim is under way its number is unknown: `owner` is kept, to
   * be judged when the claim returns, and the answer meanwhile is no.
   */
  private replacedElsewhere(session: Session, owner: SessionOwner): boolean {
    const mine = this.nonces.get(session);
    if (!mine || owner.nonce === mine) return false;
    const pending = this.heardWhileClaiming.get(session);
    if (pending) {
      pending.push(owner);
      return false;
    }
    const ours = this.generations.get(session);
    const theirs = claimGeneration(owner);
    // Equal numbers with another nonce cannot happen unless the count went back (a Redis failover that
    // lost the last increment): then the admission times decide, as without numbers.
    if (ours !== undefined && theirs !== undefined && theirs !== ours) return theirs > ours;
    return owner.since >= session.startedAt;
  }

  private closeReplaced(session: Session, by: SessionOwner): void {
    this.log.info({ event: 'session_replaced', identity: session.identity, by: by.replica });
    session.close(REPLACED_CODE, 'replaced by a newer connection');
  }
}

/** Charger changes remembered for admissions under way (each lasts seconds at most). */
const MAX_REMEMBERED_CHANGES = 10_000;
/** How long a store found to have lost its data is taken as such without asking again. */
const INTACT_CHECK_MS = 2000;
/** The store_wiped error is repeated at most this often while it lasts. */
const WIPED_WARNING_MS = 60_000;

/** Sessions checked at once in a resync (their reads share round trips with auto-pipelining). */
const RESYNC_BATCH = 500;
/** Rounds of a resync for sessions whose reads failed, the first retry after RESYNC_RETRY_MS, doubling (~31 s in all). */
const RESYNC_ATTEMPTS = 6;
const RESYNC_RETRY_MS = 1000;
