/** The interceptor chain: a hook that throws or rejects counts as "no opinion"; the next one decides. */
import t from 'tap';
import { createLogger } from '../../proxy/log';
import { logCapture } from '../helpers/proxy';
import { InterceptorChain } from '../../proxy/interceptor-chain';
import type { Interceptor, SessionApi } from '../../policies/interceptors/types';

const call = { id: '1', action: 'Heartbeat', payload: {} };
const answering: Interceptor = { name: 'answers', onChargerCall: () => ({ answer: { currentTime: 'now' } }) };

t.test('a throwing hook is logged and skipped, synchronously', async (t) => {
  const { logs, sink } = logCapture();
  const throwing: Interceptor = { name: 'throws', onChargerCall: () => { throw new Error('bug'); } };
  const chain = new InterceptorChain({ log: createLogger({ destination: sink }) } as unknown as SessionApi, [() => throwing, () => answering]);
  const d = chain.chargerCall(call, Buffer.from(JSON.stringify([2, call.id, call.action, call.payload])));
  t.notOk(d instanceof Promise, 'still the synchronous path');
  t.same(d, { answer: { currentTime: 'now' } }, 'the next interceptor decides');
  await new Promise((r) => setImmediate(r));
  t.ok(logs.some((l) => l.event === 'interceptor_failed' && l.interceptor === 'throws'), 'logged with its name');
});

t.test('a rejecting hook is logged and the rest of the chain decides', async (t) => {
  const { logs, sink } = logCapture();
  const rejecting: Interceptor = { name: 'rejects', onChargerCall: () => Promise.reject(new Error('bug')) };
  const chain = new InterceptorChain({ log: createLogger({ destination: sink }) } as unknown as SessionApi, [() => rejecting, () => answering]);
  t.same(await chain.chargerCall(call, Buffer.from(JSON.stringify([2, call.id, call.action, call.payload]))), { answer: { currentTime: 'now' } });
  t.ok(logs.some((l) => l.event === 'interceptor_failed' && l.interceptor === 'rejects'));
});

t.test('a CSMS answer reaches every interceptor, past one that throws', async (t) => {
  const { logs, sink } = logCapture();
  const seen: string[] = [];
  const throwing: Interceptor = { name: 'throws', onCsmsAnswer: () => { seen.push('throws'); throw new Error('bug'); } };
  const listening: Interceptor = { name: 'listens', onCsmsAnswer: (_s, c, a) => { seen.push(`${c.id}:${a.kind}`); } };
  const chain = new InterceptorChain({ log: createLogger({ destination: sink }) } as unknown as SessionApi, [() => throwing, () => listening]);
  chain.csmsAnswer(call, { kind: 'result', payload: {} });
  t.same(seen, ['throws', '1:result'], 'both ran, in order');
  await new Promise((r) => setImmediate(r));
  t.ok(logs.some((l) => l.event === 'interceptor_failed' && l.interceptor === 'throws'), 'logged with its name');
});

t.test('an async hook that rejects is logged, and nothing is left unhandled to end the process', async (t) => {
  const { logs, sink } = logCapture();
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => { process.off('unhandledRejection', onUnhandled); });
  const bug = () => Promise.reject(new Error('store write failed'));
  const rejecting = {
    name: 'async-bug', onOpen: bug, onCsmsAnswer: bug, onRecordChanged: bug, onClose: bug,
  } as unknown as Interceptor;
  const chain = new InterceptorChain({ log: createLogger({ destination: sink }) } as unknown as SessionApi, [() => rejecting]);
  chain.open();
  chain.csmsAnswer(call, { kind: 'result', payload: {} });
  chain.recordChanged({} as never, false);
  chain.close({ code: 1000, reason: 'done' } as never);
  await new Promise((r) => setTimeout(r, 50));
  t.same(unhandled, [], 'no unhandled rejection');
  t.equal(logs.filter((l) => l.event === 'interceptor_failed' && l.interceptor === 'async-bug').length, 4, 'each of the four logged');
});
