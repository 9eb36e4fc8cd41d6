/**
 * CallLine: the CSMS-to-charger line the proxy shares with the CSMS. An injected call waits for the
 * CSMS's outstanding call, but not for one the charger left unanswered past the timeout, whose late
 * answer still goes to the CSMS.
 */
import t, { type Test } from 'tap';
import { CallLine } from '../../proxy/call-line';
import { sleep, waitFor } from '../helpers/net';

const frameOf = (id: string) => Buffer.from(JSON.stringify([2, id, 'GetConfiguration', {}]));

function line(t: Test, csmsCallTimeoutMs: number) {
  const sent: string[] = [];
  const csmsReading: boolean[] = [];
  const l = new CallLine({
    sendToCharger: (f) => sent.push(f.toString()), relayToCharger: (d) => sent.push(d.toString()), lineOverflow: () => { throw new Error('overflow'); },
    holdBackCsms: () => csmsReading.push(false), releaseCsms: () => csmsReading.push(true),
  }, 16, csmsCallTimeoutMs);
  t.teardown(() => l.close());
  return { l, sent, csmsReading, injectedIds: () => sent.map((s) => JSON.parse(s) as unknown[]).filter((f) => f[2] === 'ChangeConfiguration').map((f) => f[1] as string) };
}

t.test('held CSMS frames past HOLD_PAUSE_BYTES stop the CSMS from being read until they go out', async (t) => {
  const { l, sent, csmsReading, injectedIds } = line(t, 5_000);
  void l.inject('ChangeConfiguration', { key: 'AuthorizationKey', value: 'x' }, 5_000);
  t.equal(injectedIds().length, 1, 'an injected call is in flight');
  const big = (id: string) => Buffer.from(JSON.stringify([3, id, { data: 'x'.repeat(300_000) }]));
  t.notOk(l.fromCsms(Buffer.from(JSON.stringify([2, 'c0', 'DataTransfer', { vendorId: 'v', data: 'x'.repeat(300_000) }])), 2, 'c0'), 'a CSMS CALL (300 KB) held: one call per direction');
  for (let i = 1; i < 3; i++) t.notOk(l.fromCsms(big(`a${i}`), 3, `a${i}`), `frame ${i + 1} (300 KB) held behind it`);
  t.same(csmsReading, [], '900 KB held: the CSMS is still read');
  t.notOk(l.fromCsms(big('a3'), 3, 'a3'), 'a fourth held');
  t.same(csmsReading, [false], 'past 1 MiB held: the CSMS is no longer read');
  t.notOk(l.fromCsms(big('a4'), 3, 'a4'), 'a frame already on its way is still held');
  t.same(csmsReading, [false], 'and not asked twice');
  t.ok(l.holdsCsmsBack, 'the line says it holds the CSMS back');
  l.answerFromCharger(injectedIds()[0]!, () => ({ kind: 'result', payload: { status: 'Accepted' } }) as never);
  t.equal(sent.length, 6, 'answered: the five held frames went out');
  t.same(csmsReading, [false, true], 'and the CSMS is read again');
  t.notOk(l.holdsCsmsBack);
});

t.test('an injected call waits while the CSMS call is answered in time', async (t) => {
  const { l, injectedIds } = line(t, 5_000);
  t.ok(l.fromCsms(frameOf('c1'), 2, 'c1'), 'the CSMS call goes to the charger');
  const injected = l.inject('ChangeConfiguration', { key: 'AuthorizationKey', value: 'x' }, 1_000);
  await sleep(30);
  t.same(injectedIds(), [], 'held: one call per direction');
  t.equal(l.answerFromCharger('c1', () => ({ kind: 'result', payload: {} }) as never), 'csms', 'the answer is the CSMS\'s');
  t.equal(injectedIds().length, 1, 'sent as soon as the CSMS call is answered');
  l.answerFromCharger(injectedIds()[0]!, () => ({ kind: 'result', payload: { status: 'Accepted' } }) as never);
  t.ok(await injected);
});

t.test('a CSMS call the charger never answers stops holding the line after the timeout', async (t) => {
  const { l, injectedIds } = line(t, 500);
  l.fromCsms(frameOf('stalled'), 2, 'stalled');
  const injected = l.inject('ChangeConfiguration', { key: 'AuthorizationKey', value: 'x' }, 5_000);
  await sleep(100);
  t.same(injectedIds(), [], 'still held before the timeout');
  await waitFor(() => injectedIds().length > 0 || undefined, 'the injection', 5_000, 10);
  t.equal(injectedIds().length, 1, 'sent once the CSMS call went stale');
  t.equal(l.answerFromCharger(injectedIds()[0]!, () => ({ kind: 'result', payload: {} }) as never), 'proxy');
  await injected;
  t.equal(l.answerFromCharger('stalled', () => ({ kind: 'result', payload: {} }) as never), 'csms', 'a late answer to it is still the CSMS\'s, relayed, not dropped');
});

t.test('a newer CSMS call holds the line again for its own timeout', async (t) => {
  const { l, injectedIds } = line(t, 600);
  l.fromCsms(frameOf('old'), 2, 'old');
  await sleep(300);
  l.fromCsms(frameOf('new'), 2, 'new');
  const newSentAt = performance.now();
  void l.inject('ChangeConfiguration', { key: 'AuthorizationKey', value: 'x' }, 5_000).catch(() => undefined);
  await waitFor(() => injectedIds().length > 0 || undefined, 'the injection', 5_000, 10);
  t.ok(performance.now() - newSentAt >= 590, 'sent only once the newer call went stale too, not when the older one did');
});

t.test('when the newest CSMS call is answered, an injection waits only for the older one to go stale', async (t) => {
  const { l, injectedIds } = line(t, 1_200);
  const started = performance.now();
  l.fromCsms(frameOf('old'), 2, 'old'); // never answered: stale at 1.2 s
  await sleep(600);
  l.fromCsms(frameOf('new'), 2, 'new'); // stale at 1.8 s
  void l.inject('ChangeConfiguration', { key: 'AuthorizationKey', value: 'x' }, 5_000).catch(() => undefined);
  await sleep(20);
  t.equal(l.answerFromCharger('new', () => ({ kind: 'result', payload: {} }) as never), 'csms');
  await waitFor(() => injectedIds().length > 0 || undefined, 'the injection', 5_000, 10);
  const at = performance.now() - started;
  t.ok(at >= 1_190, `not before the old call went stale (${at.toFixed(0)} ms)`);
  t.ok(at < 1_600, `but then, not when the answered newer one would have (1.8 s): ${at.toFixed(0)} ms`);
});

t.test('ids the CSMS wrote as numbers: a charger answers them with the number or its text, a string call only with text', async (t) => {
  const { l, sent, injectedIds } = line(t, 5_000);
  const result = () => ({ kind: 'result', payload: {} }) as never;
  l.fromCsms(frameOf('42'), 2, '42'); // the CSMS's string id "42"
  t.equal(l.answerFromCharger('42', result, true), 'unknown', 'a number never answers a string call: the CSMS would get an id type it never used');
  t.equal(l.answerFromCharger('42', result), 'csms', 'the text does');
  l.fromCsms(frameOf('7'), 2, '7', true);
  l.fromCsms(frameOf('8'), 2, '8', true);
  t.equal(l.answerFromCharger('7', result, true), 'csms', 'the number answers a numeric call');
  t.equal(l.answerFromCharger('8', result), 'csms', 'and so does its text (a valid OCPP-J id)');
  t.equal(l.answerFromCharger('8', result, true), 'unknown', 'answered once');

  l.fromCsms(frameOf('9'), 2, '9', true);
  l.fromCsms(frameOf('9'), 2, '9'); // the same text again, as a string: the call is a string call now
  t.equal(l.answerFromCharger('9', result, true), 'unknown');

  // Held behind an injected call, a numeric call keeps its kind when it is released.
  const injected = l.inject('ChangeConfiguration', { key: 'AuthorizationKey', value: 'x' }, 1_000);
  t.equal(l.answerFromCharger('9', result), 'csms', 'the line is free');
  await waitFor(() => injectedIds().length === 1, 'the injected call');
  t.notOk(l.fromCsms(frameOf('10'), 2, '10', true), 'held while the injected call is out');
  l.answerFromCharger(injectedIds()[0]!, () => ({ kind: 'result', payload: { status: 'Accepted' } }) as never);
  await injected;
  t.equal(sent.at(-1), frameOf('10').toString(), 'released to the charger');
  t.equal(l.answerFromCharger('10', result, true), 'csms', 'still a numeric call');
});

t.test('numeric calls the charger never answers: their marks stay bounded with the tracked calls', async (t) => {
  const { l } = line(t, 5_000);
  for (let i = 0; i < 1000; i++) l.fromCsms(frameOf(String(i)), 2, String(i), true);
  const marks = (l as unknown as { numericCalls: Set<string> }).numericCalls;
  t.equal(marks.size, 256, 'as many as the calls tracked (256), not one per call ever made');
  t.equal(l.answerFromCharger('999', () => ({ kind: 'result', payload: {} }) as never, true), 'csms', 'the newest still answerable');
});
