/** BootWatch: when an interceptor may send a charger calls of its own, judged from its boot. */
import t from 'tap';
import { BootWatch, injectScope } from '../../policies/interceptors/boot-watch';
import type { CallOutcome } from '../../policies/interceptors/types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const boot = { id: 'b1', action: 'BootNotification' };
const answer = (status: string): CallOutcome => ({ kind: 'result', payload: { status, currentTime: '2026-01-01T00:00:00Z', interval: 300 } } as CallOutcome);

function bind(w: BootWatch) {
  return { chargerCall: w.chargerCall.bind(w), csmsAnswer: w.csmsAnswer.bind(w), allows: w.allows.bind(w), stop: w.stop.bind(w) };
}

function watch(stored: string | undefined, subprotocol = 'ocpp2.0.1', waitMs = 50) {
  const listener = { ready: 0, onBootReady() { this.ready++; } };
  const w = new BootWatch(listener, stored, subprotocol);
  return { listener, w: { ...bind(w), start: () => w.start(waitMs) } };
}

t.test('the scope of each boot state', async (t) => {
  t.equal(injectScope('Accepted', 'ocpp2.0.1'), 'all');
  t.equal(injectScope('Pending', 'ocpp1.6'), 'all', '1.6 Pending: configuration and certificates are what it is for');
  t.equal(injectScope('Pending', 'ocpp2.0.1'), 'variables', '2.x Pending: variables and triggers only');
  t.equal(injectScope('Pending', 'ocpp2.1'), 'variables');
  t.equal(injectScope('Rejected', 'ocpp1.6'), 'none');
  t.equal(injectScope(undefined, 'ocpp1.6'), 'none', 'never answered');
});

t.test('booted before: silent for waitMs, then ready', async (t) => {
  const { listener, w } = watch('Accepted');
  w.start();
  t.notOk(w.allows('variables'), 'not while a BootNotification may still come');
  await sleep(80);
  t.ok(w.allows('all'), 'after the wait');
  t.equal(listener.ready, 1, 'told once');
});

t.test('booted before: another call ends the wait at once; a BootNotification hands it to the answer', async (t) => {
  const a = watch('Accepted', 'ocpp2.0.1', 10_000);
  a.w.start();
  a.w.chargerCall('Heartbeat');
  t.ok(a.w.allows('all'), 'the Heartbeat ended the wait');
  await sleep(5);
  t.equal(a.listener.ready, 1);
  a.w.stop();

  const b = watch('Accepted', 'ocpp2.0.1', 30);
  b.w.start();
  b.w.chargerCall('BootNotification');
  await sleep(60);
  t.notOk(b.w.allows('variables'), 'nothing while the BootNotification is unanswered, past the wait too');
  t.equal(b.listener.ready, 0);
  b.w.chargerCall('StatusNotification');
  t.notOk(b.w.allows('variables'), 'nor after another call meanwhile');
  b.w.csmsAnswer(boot, answer('Pending'));
  t.ok(b.w.allows('variables'), 'Pending on 2.x: variables');
  t.notOk(b.w.allows('all'), 'but not every call');
  await sleep(5);
  t.equal(b.listener.ready, 1, 'told');
  b.w.chargerCall('BootNotification');
  b.w.csmsAnswer(boot, answer('Rejected'));
  t.notOk(b.w.allows('variables'), 'Rejected: nothing');
  await sleep(5);
  t.equal(b.listener.ready, 1, 'and not told');
});

t.test('an error or another call\'s answer sets nothing; never booted waits for an answer; stop cancels', async (t) => {
  const a = watch(undefined);
  a.w.start();
  await sleep(80);
  t.notOk(a.w.allows('variables'), 'never booted: no wait ends it, only an answer');
  a.w.chargerCall('BootNotification');
  a.w.csmsAnswer(boot, { kind: 'error', code: 'InternalError', description: '' } as CallOutcome);
  t.notOk(a.w.allows('variables'), 'a CALLERROR to the BootNotification sets nothing');
  a.w.csmsAnswer({ id: 'x', action: 'Heartbeat' }, answer('Accepted'));
  t.notOk(a.w.allows('variables'), 'nor an answer to another call');
  a.w.csmsAnswer(boot, answer('Accepted'));
  t.ok(a.w.allows('all'));

  const b = watch('Accepted', 'ocpp1.6', 30);
  b.w.start();
  b.w.stop();
  await sleep(60);
  t.equal(b.listener.ready, 0, 'stopped before the wait ended: never told');
});
