/**
 * One password check per charger identity at a time, in this process.
 *
 * The lockout gates read an identity's lockout when its upgrade starts, and a failure is counted
 * once its check has finished: a thousand guesses sent at once would all find the identity
 * unlocked and all be checked before the first failure was counted, so `lockoutThreshold` would
 * hold only for guesses made one after another. Taking turns, a check that waited for another
 * looks at the lockout again first: once the threshold is reached the rest are refused unchecked.
 * A charger makes one connection at a time, so its own login seldom waits.
 */
export interface PasswordTurn {
  /** Another check of this identity went first: the lockout must be read again. */
  waited: boolean;
  /** Ends the turn (call exactly once, also when the check throws). */
  release(): void;
}

export class PasswordTurns {
  /** Per identity: settles when the last turn taken so far has ended. */
  private readonly tails = new Map<string, Promise<void>>();

  async take(identity: string): Promise<PasswordTurn> {
    const before = this.tails.get(identity);
    let end!: () => void;
    const mine = new Promise<void>((resolve) => { end = resolve; });
    const tail = before ? before.then(() => mine) : mine;
    this.tails.set(identity, tail);
    if (before) await before;
    return {
      waited: before !== undefined,
      release: () => {
        end();
        if (this.tails.get(identity) === tail) this.tails.delete(identity); // no one behind: forget the identity
      },
    };
  }

  /** Identities with a check under way or waiting (for tests). */
  get size(): number {
    return this.tails.size;
  }
}
