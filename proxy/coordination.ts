import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { admissionFacts } from '../policies/gates/facts';
import type { Logger } from './log';
import type { SessionRegistry } from './registry';
import { REPLACED_CODE } from './registry';
import type { Session } from './session';
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
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly store: CredentialStore, private readonly sessions: SessionRegistry, private readonly log: Logger) {}

  start(): void {
    this.unsubscribe = this.store.subscribeChanges((change) => {
      this.onChange(change).catch((err: unknown) => this.log.warn({ event: 'coordination_failed', err: String(err) }));
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Records this replica as the owner of a newly admitted session (best effort: the session runs regardless). */
  async claim(session: Session): Promise<void> {
    if (!admissionFacts(session.facts)) return; // admitted in report-only mode without a record
    const nonce = randomUUID();
    this.nonces.set(session, nonce);
    try {
      await this.store.claimSession(session.identity, { replica: this.replica, nonce, since: session.startedAt });
    } catch (err) {
      this.log.warn({ event: 'session_claim_failed', identity: session.identity, err: String(err) });
    }
  }

  private async onChange(change: StoreChange): Promise<void> {
    if (change.kind === 'revoked') {
      for (const s of this.sessions.all()) {
        if (admissionFacts(s.facts)?.certificate?.serialHex === change.serialHex) {
          this.log.info({ event: 'session_closed_revoked', identity: s.identity, serial: change.serialHex });
          s.close(1008, 'certificate revoked');
        }
      }
      return;
    }
    if (change.kind === 'factory') return;
    const session = this.sessions.get(change.identity);
    if (!session || session.closed) return;
    if (change.kind === 'session') {
      // The claim carries its owner: no read, and our own claim (same nonce) is not a change for us.
      if (this.replacedElsewhere(session, change.owner)) this.closeReplaced(session, change.owner);
      return;
    }
    const record = await this.store.getCharger(change.identity);
    if (!record || record.status === 'blocked') {
      this.log.info({ event: record ? 'session_closed_blocked' : 'session_closed_removed', identity: change.identity });
      session.close(1008, record ? 'charger blocked' : 'charger removed');
      return;
    }
    if (record.session && this.replacedElsewhere(session, record.session)) {
      this.closeReplaced(session, record.session);
      return;
    }
    session.recordChanged(record);
  }

  private replacedElsewhere(session: Session, owner: SessionOwner): boolean {
    const mine = this.nonces.get(session);
    return !!mine && owner.nonce !== mine && owner.since >= session.startedAt;
  }

  private closeReplaced(session: Session, by: SessionOwner): void {
    this.log.info({ event: 'session_replaced', identity: session.identity, by: by.replica });
    session.close(REPLACED_CODE, 'replaced by a newer connection');
  }
}
