/** A listener of one of a leg's events. */
export type Listener = (...args: any[]) => void;

/**
 * The listeners of one event: none, one function, or several in order. Most events of a leg have
 * exactly one (the session's), so this costs a field, where an EventEmitter costs each instance a
 * dictionary-mode object of a few hundred bytes (thousands of sessions, two legs each).
 */
export type Listeners = Listener | Listener[] | null;

/** A `once` wrapper remembers what it wraps, so removeListener finds it by the original. */
type OnceWrapper = Listener & { listener: Listener };

export function addListener(slot: Listeners, fn: Listener): Listeners {
  if (slot === null) return fn;
  // concat: an array of exactly the listeners (a spread or push leaves room for 17, 150 bytes a session).
  return typeof slot === 'function' ? [slot, fn] : slot.concat(fn);
}

export function removeListener(slot: Listeners, fn: Listener): Listeners {
  if (slot === null) return null;
  const matches = (l: Listener) => l === fn || (l as OnceWrapper).listener === fn;
  if (typeof slot === 'function') return matches(slot) ? null : slot;
  const i = slot.findIndex(matches);
  if (i < 0) return slot;
  const rest = slot.filter((_, j) => j !== i);
  return rest.length === 0 ? null : rest.length === 1 ? rest[0]! : rest;
}

/** A listener that removes itself (through `remove`) before its first call. */
export function onceWrapper(fn: Listener, remove: (w: Listener) => void): Listener {
  const wrapper = function (this: unknown, ...args: unknown[]) {
    remove(wrapper);
    fn.apply(this, args);
  } as OnceWrapper;
  wrapper.listener = fn;
  return wrapper;
}

/** Calls the listeners with `self` as `this` (as EventEmitter does); false when there were none. */
export function callListeners(slot: Listeners, self: unknown, a?: unknown, b?: unknown): boolean {
  if (slot === null) return false;
  if (typeof slot === 'function') slot.call(self, a, b);
  else for (const fn of slot) fn.call(self, a, b); // never changed in place (add and remove make new arrays): no copy needed
  return true;
}
