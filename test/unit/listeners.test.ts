/** The listener slots FrameSocket and Session use instead of an EventEmitter: EventEmitter's semantics, in order. */
import t from 'tap';
import { addListener, callListeners, onceWrapper, removeListener, type Listener, type Listeners } from '../../proxy/listeners';

t.test('one listener is stored as itself, more in order; removal keeps the order', async (t) => {
  const calls: string[] = [];
  const a: Listener = (x) => calls.push(`a${x}`);
  const b: Listener = (x) => calls.push(`b${x}`);
  const c: Listener = (x) => calls.push(`c${x}`);
  let slot: Listeners = addListener(null, a);
  t.equal(slot, a, 'a single listener needs no array');
  slot = addListener(addListener(slot, b), c);
  t.ok(callListeners(slot, null, 1), 'true when someone listened');
  t.same(calls, ['a1', 'b1', 'c1'], 'called in the order added');
  slot = removeListener(slot, b);
  calls.length = 0;
  callListeners(slot, null, 2);
  t.same(calls, ['a2', 'c2']);
  slot = removeListener(removeListener(slot, a), c);
  t.equal(slot, null, 'empty again');
  t.notOk(callListeners(slot, null, 3), 'false when nobody listened');
  t.equal(removeListener(null, a), null, 'removing from nothing is fine');
});

t.test('a once listener runs once, can be removed by the original function, and sees `this`', async (t) => {
  let slot: Listeners = null;
  const seen: unknown[] = [];
  const fn: Listener = function (this: unknown, x: unknown) { seen.push([this, x]); };
  slot = addListener(slot, onceWrapper(fn, (w) => { slot = removeListener(slot, w); }));
  const self = { leg: 1 };
  callListeners(slot, self, 'first');
  callListeners(slot, self, 'second');
  t.same(seen, [[self, 'first']], 'once, with the emitter as this');
  slot = addListener(slot, onceWrapper(fn, (w) => { slot = removeListener(slot, w); }));
  slot = removeListener(slot, fn);
  t.equal(slot, null, 'removed by the function it wraps');
});

t.test('a listener that removes another during a call does not skip or repeat the rest of that call', async (t) => {
  const calls: string[] = [];
  let slot: Listeners = null;
  const b: Listener = () => calls.push('b');
  const a: Listener = () => { calls.push('a'); slot = removeListener(slot, b); };
  slot = addListener(addListener(slot, a), b);
  callListeners(slot, null);
  t.same(calls, ['a', 'b'], 'this call still reaches b (as EventEmitter)');
  calls.length = 0;
  callListeners(slot, null);
  t.same(calls, ['a'], 'the next does not');
});
