/**
 * Errors raised by the credential store, the server secret and sealing. Each carries a short `reason`
 * label usable as a log field and metric label. Messages never contain a password, key or secret.
 */

/** Reason labels of `StoreError`. */
export type StoreErrorReason =
  | 'store_unavailable' // backing storage unreachable or timed out (callers fail closed)
  | 'store_corrupt' // persisted data cannot be parsed
  | 'store_closed' // used after close()
  | 'store_invalid_input' // caller passed something the store refuses
  | 'store_conflict' // optimistic update kept losing races
  | 'store_not_replicated' // no replica acknowledged a write that must survive a failover
  | 'secret_missing'
  | 'secret_invalid'
  | 'secret_mismatch' // the shared store was written with another server secret
  | 'seal_invalid' // sealed value malformed, tampered with, or sealed with another secret
  | 'redis_url_invalid'
  | 'store_missing'; // a read asked of a data dir that holds no store (a mistyped --data-dir)

/** An error from the credential store or its helpers. */
export class StoreError extends Error {
  /** Short machine label, see `StoreErrorReason`. */
  readonly reason: StoreErrorReason;

  constructor(reason: StoreErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.reason = reason;
  }
}
