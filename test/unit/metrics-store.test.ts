/**
 * instrumentStore: times every method of a store and counts failures, without changing results,
 * errors, `this` or non-method properties.
 */
import t from 'tap';
import { ProxyMetrics } from '../../proxy/metrics';
import { instrumentStore } from '../../proxy/metrics-store';

class StoreFailure extends Error {
  readonly reason = 'unavailable';
}

/** A small store with a private field, inherited methods and sync/async failures. */
class BaseStore {
  async ping(): Promise<void> {}
}
class TinyStore extends BaseStore {
  #records = new Map<string, number>();
  readonly kind = 'tiny';
  async put(key: string, value: number): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    this.#records.set(key, value);
  }
  async get(key: string): Promise<number | null> {
    return this.#records.get(key) ?? null;
  }
  async broken(): Promise<never> {
    throw new StoreFailure('redis down');
  }
  syncThrow(): number {
    throw new StoreFailure('bad input');
  }
  size(): number {
    return this.#records.size;
  }
}

async function series(m: ProxyMetrics, name: string): Promise<Map<string, number>> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} not registered`);
  const out = new Map<string, number>();
  for (const v of (await metric.get()).values) {
    const key = `${String(v.labels.operation)}${'metricName' in v && v.metricName ? `|${v.metricName}` : ''}`;
    out.set(key, v.value);
  }
  return out;
}

t.test('times calls and counts failures', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  const store = instrumentStore(new TinyStore(), m);

  await store.put('a', 1);
  await store.put('b', 2);
  t.equal(await store.get('a'), 1, 'results unchanged, private fields work');
  t.equal(store.size(), 2, 'sync methods work');
  await store.ping();
  t.equal(store.kind, 'tiny', 'plain properties pass through');
  t.ok(store instanceof TinyStore, 'instanceof still holds');

  const err = await store.broken().catch((e: unknown) => e);
  t.ok(err instanceof StoreFailure, 'the original error is re-thrown');
  t.equal((err as StoreFailure).reason, 'unavailable');
  let syncErr: unknown;
  try {
    store.syncThrow();
  } catch (e) {
    syncErr = e;
  }
  t.ok(syncErr instanceof StoreFailure, 'sync throws are re-thrown unchanged');

  const durations = await series(m, 'ocpp_proxy_store_operation_duration_seconds');
  t.equal(durations.get('put|ocpp_proxy_store_operation_duration_seconds_count'), 2);
  t.equal(durations.get('get|ocpp_proxy_store_operation_duration_seconds_count'), 1);
  t.equal(durations.get('ping|ocpp_proxy_store_operation_duration_seconds_count'), 1, 'inherited methods timed');
  t.equal(durations.get('broken|ocpp_proxy_store_operation_duration_seconds_count'), 1, 'failures timed too');
  t.ok((durations.get('put|ocpp_proxy_store_operation_duration_seconds_sum') ?? 0) >= 0.008, 'put took ~2x5 ms');

  const errors = await series(m, 'ocpp_proxy_store_errors_total');
  t.same(Object.fromEntries(errors), { broken: 1, syncThrow: 1 }, 'only failures counted');
});

t.test('a method reassigned on the instance is timed as the new function', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  const raw = new TinyStore();
  const store = instrumentStore(raw, m);
  await store.get('x');
  raw.get = async () => 42;
  t.equal(await store.get('x'), 42);
  const durations = await series(m, 'ocpp_proxy_store_operation_duration_seconds');
  t.equal(durations.get('get|ocpp_proxy_store_operation_duration_seconds_count'), 2);
});
