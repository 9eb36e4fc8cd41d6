/**
 * The listener side of the store's change feed, shared by both implementations: a set of
 * subscriptions that a faulty listener cannot break (its throws and rejections are swallowed).
 */
import { claimGeneration } from './transitions';
import type { SessionOwner, StoreChange, StoreChangeListener } from './types';

/** A set of change listeners with safe fan-out. */
export class ChangeListeners {
  readonly #subs = new Set<{ fn: StoreChangeListener }>();
  readonly #onCountChange: (count: number) => void;

  /** @param onCountChange told the new number of subscriptions after each add / remove (e.g. to start polling). */
  constructor(onCountChange: (count: number) => void = () => undefined) {
    this.#onCountChange = onCountChange;
  }

  /** Number of live subscriptions. */
  get size(): number {
    return this.#subs.size;
  }

  /** Subscribe; the same function added twice is two subscriptions. Returns an idempotent unsubscribe. */
  add(fn: StoreChangeListener): () => void {
    if (typeof fn !== 'function') throw new TypeError('change listener must be a function');
    const sub = { fn };
    this.#subs.add(sub);
    this.#onCountChange(this.#subs.size);
    return () => {
      if (this.#subs.delete(sub)) this.#onCountChange(this.#subs.size);
    };
  }

  /** Call every listener with `change` (its own copy); errors are caught and ignored. */
  emit(change: StoreChange): void {
    for (const sub of [...this.#subs]) {
      try {
        const out: unknown = sub.fn({ ...change });
        // An async listener's rejection would otherwise become an unhandled rejection and crash the process.
        if (out && typeof (out as PromiseLike<unknown>).then === 'function') {
          (out as PromiseLike<unknown>).then(undefined, () => undefined);
        }
      } catch {
        /* a listener's failure is its own business */
      }
    }
  }
}

/** Parse a change received from another process; null when it is not a well-formed change. */
export function parseChange(value: unknown): StoreChange | null {
  if (!value || typeof value !== 'object') return null;
  const v = value as Record<string, unknown>;
  if (v.kind === 'charger' && typeof v.identity === 'string') return { kind: 'charger', identity: v.identity };
  if (v.kind === 'revoked' && typeof v.serialHex === 'string') return { kind: 'revoked', serialHex: v.serialHex };
  if (v.kind === 'factory') return { kind: 'factory' };
  if (v.kind === 'session' && typeof v.identity === 'string') {
    const owner = parseOwner(v.owner);
    if (owner) return { kind: 'session', identity: v.identity, owner };
  }
  return null;
}

function parseOwner(value: unknown): SessionOwner | null {
  if (!value || typeof value !== 'object') return null;
  const o = value as Record<string, unknown>;
  if (typeof o.replica !== 'string' || typeof o.nonce !== 'string' || typeof o.since !== 'number' || !Number.isFinite(o.since)) return null;
  const generation = claimGeneration(o);
  return {
    replica: o.replica, nonce: o.nonce, since: o.since,
    ...(typeof o.address === 'string' ? { address: o.address } : {}),
    ...(generation !== undefined ? { generation } : {}),
  };
}
