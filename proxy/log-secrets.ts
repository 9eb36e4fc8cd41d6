/**
 * Field names that must never reach a log line. They are removed wherever they appear at the top of
 * a logged object or one level down, so a careless `log.info({ headers })` cannot leak a Basic header.
 */
export const SECRET_FIELDS: ReadonlySet<string> = new Set(['password', 'authorization', 'secret', 'token', 'key', 'privateKey']);

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The logged object without secret fields (see SECRET_FIELDS). An object that holds none, which is
 * every line the proxy writes itself, is returned as it is: no copy, one pass over its keys and its
 * nested objects' keys. pino's `redact` option did the same job at about 6–15 µs a line (two lines per
 * admission), for its general path matching and the restore after each line. The logged object is
 * never changed: a copy is made when something must go.
 */
export function withoutSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  for (const k in obj) {
    if (!hasOwn.call(obj, k)) continue;
    if (SECRET_FIELDS.has(k) || holdsSecret(obj[k])) return copyWithoutSecrets(obj);
  }
  return obj;
}

function holdsSecret(v: unknown): boolean {
  // Arrays and byte arrays are not looked into (as pino's redact paths did not): a Buffer's indices are no field names.
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) return false;
  for (const k in v) if (SECRET_FIELDS.has(k) && hasOwn.call(v, k)) return true;
  return false;
}

function copyWithoutSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in obj) {
    if (!hasOwn.call(obj, k) || SECRET_FIELDS.has(k)) continue;
    const v = obj[k];
    put(out, k, holdsSecret(v) ? nestedWithoutSecrets(v as Record<string, unknown>) : v);
  }
  return out;
}

/**
 * One level down, for an object that holds a secret field:
 * - an Error stays an error of its class with every own property but the secret ones (message,
 *   stack, cause and AggregateError's errors are not enumerable), so pino's error serializer shows
 *   it as it would the original;
 * - an object with `toJSON` is logged as what that returns (as JSON.stringify would), less secret fields;
 * - anything else as a plain copy of its other fields.
 */
function nestedWithoutSecrets(v: Record<string, unknown>): unknown {
  if (v instanceof Error) {
    const copy = Object.create(Object.getPrototypeOf(v) as object) as Record<string, unknown>;
    for (const k of Object.getOwnPropertyNames(v)) {
      if (!SECRET_FIELDS.has(k)) Object.defineProperty(copy, k, Object.getOwnPropertyDescriptor(v, k)!);
    }
    return copy;
  }
  const shown: unknown = typeof v.toJSON === 'function' ? (v.toJSON as () => unknown)() : v;
  if (typeof shown !== 'object' || shown === null || Array.isArray(shown)) return shown;
  const copy: Record<string, unknown> = {};
  for (const k in shown) if (hasOwn.call(shown, k) && !SECRET_FIELDS.has(k)) put(copy, k, (shown as Record<string, unknown>)[k]);
  return copy;
}

/** Sets a field, `__proto__` included (an assignment would set the copy's prototype instead). */
function put(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}
