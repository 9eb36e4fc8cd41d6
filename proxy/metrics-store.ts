/**
 * Wraps a credential store so that every method call is timed into
 * `ocpp_proxy_store_operation_duration_seconds` and every failure counted in
 * `ocpp_proxy_store_errors_total`, both labelled `operation` = method name.
 *
 * The store keeps no knowledge of metrics; the wiring wraps it once at start-up:
 * `const store = instrumentStore(new RedisCredentialStore(...), metrics)`.
 */
import type { ProxyMetrics } from './metrics';

/** The part of {@link ProxyMetrics} this wrapper records into. */
export type StoreMetrics = Pick<ProxyMetrics, 'storeOperationDuration' | 'storeErrors'>;

/**
 * Returns a Proxy over `store` with the same type. Each method call (own or inherited, except
 * `constructor`) is timed; a returned promise is timed until it settles and counted as an error if it
 * rejects, and a synchronous throw is counted too. The original error is re-thrown unchanged.
 * Non-function properties pass through; `this` inside methods is the original store, so private
 * fields (`#x`) keep working.
 */
export function instrumentStore<T extends object>(store: T, metrics: StoreMetrics): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'constructor' || typeof prop === 'symbol') return value;
      let fn = wrapped.get(prop);
      if (fn === undefined || (fn as { original?: unknown }).original !== value) {
        fn = timed(target, prop, value as (...args: unknown[]) => unknown, metrics);
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}

function timed(
  target: object, operation: string, method: (...args: unknown[]) => unknown, metrics: StoreMetrics,
): (...args: unknown[]) => unknown {
  // Children bound once per operation. prom-client still validates and hashes the labels on every
  // observation (a few µs; see metrics-tally.ts), which is acceptable here: a few per admission.
  const duration = metrics.storeOperationDuration.metric.labels(metrics.storeOperationDuration.clampLabels({ operation }));
  const errors = metrics.storeErrors.metric.labels(metrics.storeErrors.clampLabels({ operation }));
  const wrapper = (...args: unknown[]): unknown => {
    const stop = duration.startTimer();
    const failed = (err: unknown): never => {
      errors.inc();
      throw err;
    };
    let result: unknown;
    try {
      result = method.apply(target, args);
    } catch (err) {
      stop();
      return failed(err);
    }
    if (!isPromiseLike(result)) {
      stop();
      return result;
    }
    return Promise.resolve(result).then(
      (v) => { stop(); return v; },
      (err) => { stop(); return failed(err); },
    );
  };
  return Object.assign(wrapper, { original: method });
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
