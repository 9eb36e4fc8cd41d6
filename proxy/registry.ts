import type { Session } from './session';

/** Close code for a session replaced by a newer connection of the same charger. */
export const REPLACED_CODE = 1008;

/**
 * Live sessions of this process, one per charger identity: the newest connection wins (a charger
 * that reconnects after a dirty disconnect must not be refused because its stale socket lingers).
 */
export class SessionRegistry {
  private readonly byIdentity = new Map<string, Session>();
  /** Every session's 'close' listener (the session is `this`): one function, not a closure per session. */
  private readonly forget: (this: Session) => void;

  constructor() {
    const byIdentity = this.byIdentity;
    this.forget = function (this: Session) {
      if (byIdentity.get(this.identity) === this) byIdentity.delete(this.identity);
    };
  }

  /** Registers a session; an older one for the same identity is closed and returned. */
  add(session: Session): Session | undefined {
    const older = this.byIdentity.get(session.identity);
    this.byIdentity.set(session.identity, session);
    session.on('close', this.forget);
    if (older && older !== session) older.close(REPLACED_CODE, 'replaced by a newer connection');
    return older;
  }

  get(identity: string): Session | undefined {
    return this.byIdentity.get(identity);
  }

  get size(): number {
    return this.byIdentity.size;
  }

  all(): Session[] {
    return [...this.byIdentity.values()];
  }
}
