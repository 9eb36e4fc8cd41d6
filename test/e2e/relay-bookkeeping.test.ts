/**
 * The relay's bookkeeping, looked at inside a live session between a raw charger and a raw CSMS:
 * what it keeps of a charger call the CSMS has not answered, frames the call line held and released,
 * frames a leg delivers after the session ended, and a leg held back with no write left to release it.
 */
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { openRawCharger } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';
import type { Leg } from '../../proxy/leg';

const PASSWORD = 'relay-bookkeeping-password';

/** The session's private parts these tests look at. */
interface SessionInside {
  chargerCalls: Map<string, unknown>;
  line: { held: unknown[] };
  charger: Leg;
  csms: Leg;
  holdBack(leg: Leg): void;
  onChargerMessage(data: Buffer, isBinary: boolean): void;
  onCsmsMessage(data: Buffer, isBinary: boolean): void;
}

async function session(t: Test, identity: string, subprotocol = 'ocpp1.6', flags: Record<string, string> = {}) {
  let csmsLeg: WebSocket | null = null;
  const seenByCsms: string[] = [];
  const csms = await startRawCsms({ protocols: [subprotocol], onOpen: (ws) => { csmsLeg = ws; ws.on('message', (d) => seenByCsms.push(d.toString())); } });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false', ...flags });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity, password: PASSWORD });
  const { ws: charger, got } = await openRawCharger(t, proxy, identity, PASSWORD, subprotocol);
  await waitFor(() => csmsLeg !== null && proxy.server.sessions.get(identity) !== undefined, 'the session');
  const s = proxy.server.sessions.get(identity)!;
  return { proxy, s, inside: s as unknown as SessionInside, charger, csms: () => csmsLeg!, got, seenByCsms };
}

t.test('a charger call the CSMS has not answered is remembered by its action and time, not its payload', async (t) => {
  const { inside, charger, csms, got, seenByCsms } = await session(t, 'CP-BOOK-CALLS');
  charger.send(JSON.stringify([2, 'dt-1', 'DataTransfer', { vendorId: 'x', data: 'y'.repeat(100_000) }]));
  await waitFor(() => seenByCsms.length === 1, 'the call at the CSMS');
  t.strictSame(Object.keys(inside.chargerCalls.get('dt-1') as object), ['action', 'sentAt'], 'up to 256 of these per session: no payload of up to maxFrameBytes each');
  t.match(inside.chargerCalls.get('dt-1'), { action: 'DataTransfer' });
  csms().send('[3,"dt-1",{"status":"Accepted"}]');
  await waitFor(() => got.includes('[3,"dt-1",{"status":"Accepted"}]'), 'the answer at the charger');
  t.notOk(inside.chargerCalls.has('dt-1'), 'forgotten once answered');
});

t.test('a charger call id the CSMS left unanswered is refused as a duplicate, until callTimeoutMs has passed', async (t) => {
  const { proxy, charger, csms, got, seenByCsms } = await session(t, 'CP-BOOK-DUP', 'ocpp1.6', { callTimeoutMs: '400' });
  charger.send('[2,"7","Heartbeat",{}]');
  charger.send('[2,"7","Heartbeat",{}]'); // its first call with this id is still open
  await waitFor(() => proxy.logs.some((l) => l.event === 'frame_refused' && l.problem === 'duplicate_id'), 'the duplicate refused');
  t.same(seenByCsms, ['[2,"7","Heartbeat",{}]'], 'one call at the CSMS');
  await new Promise((r) => setTimeout(r, 500)); // the CSMS never answered: after callTimeoutMs the id is free
  charger.send('[2,"7","StatusNotification",{"connectorId":0,"errorCode":"NoError","status":"Available"}]');
  await waitFor(() => seenByCsms.length === 2, 'the call reusing the id at the CSMS');
  csms().send('[3,"7",{}]');
  await waitFor(() => got.includes('[3,"7",{}]'), 'its answer at the charger');
});

t.test('a broken CALL reusing the id of one still awaiting the CSMS gets no CALLERROR (it would answer the first)', async (t) => {
  const { proxy, charger, csms, got, seenByCsms } = await session(t, 'CP-BOOK-BROKEN-DUP', 'ocpp1.6', { callTimeoutMs: '400' });
  charger.send('[2,"9","Heartbeat",{}]');
  await waitFor(() => seenByCsms.length === 1, 'the call at the CSMS');
  charger.send('[2,"9","Heartbeat","not an object"]'); // broken, same id
  await waitFor(() => proxy.logs.some((l) => l.event === 'frame_refused' && l.problem === 'bad_shape'), 'the broken call refused');
  charger.send('[2,"10","Heartbeat","not an object"]'); // broken, a free id: answered as always
  await waitFor(() => got.some((g) => g.startsWith('[4,"10"')), 'a broken call with a free id gets its CALLERROR');
  t.notOk(got.some((g) => g.startsWith('[4,"9"')), 'none for the id still awaiting the CSMS');
  csms().send('[3,"9",{"currentTime":"2026-11-27T00:00:00Z"}]');
  await waitFor(() => got.some((g) => g.startsWith('[3,"9"')), 'the real answer reaches the charger');
  t.equal(got.filter((g) => /^\[[34],"9"/.test(g)).length, 1, 'exactly one answer for id 9');
  t.same(seenByCsms, ['[2,"9","Heartbeat",{}]'], 'the CSMS saw only the good call');
});

t.test('frames the call line held are counted as relayed when released; in 2.1 a released CALLRESULT can be answered with CALLRESULTERROR', async (t) => {
  const { s, inside, charger, csms, got, seenByCsms } = await session(t, 'CP-BOOK-HELD', 'ocpp2.1');
  charger.send('[2,"k1","Heartbeat",{}]');
  await waitFor(() => seenByCsms.includes('[2,"k1","Heartbeat",{}]'), 'the charger call at the CSMS');
  const injected = s.injectCall('GetVariables', { getVariableData: [] });
  await waitFor(() => got.some((g) => g.includes('"GetVariables"')), 'the injected call at the charger');
  const injectedId = (JSON.parse(got.find((g) => g.includes('"GetVariables"'))!) as unknown[])[1] as string;
  csms().send('[2,"c1","Reset",{"type":"Immediate"}]'); // held: one call per direction
  csms().send('[3,"k1",{"currentTime":"2026-11-27T00:00:00Z"}]'); // held behind it, in order
  await waitFor(() => inside.line.held.length === 2, 'both CSMS frames held by the line');
  t.equal(s.frames.csms_to_charger, 0, 'nothing relayed yet');
  charger.send(JSON.stringify([3, injectedId, { getVariableResult: [] }]));
  await injected;
  await waitFor(() => got.length === 3, 'the held frames at the charger');
  t.same(got.slice(1), ['[2,"c1","Reset",{"type":"Immediate"}]', '[3,"k1",{"currentTime":"2026-11-27T00:00:00Z"}]'], 'released in order');
  t.equal(s.frames.csms_to_charger, 2, 'both counted as relayed');
  charger.send('[5,"k1","InternalError","could not use the time",{}]');
  await waitFor(() => seenByCsms.some((f) => f.startsWith('[5,"k1"')), 'the CALLRESULTERROR for the released CALLRESULT at the CSMS');
});

t.test('frames a leg delivers after the session ended are neither relayed nor acted on', async (t) => {
  const { proxy, s, inside } = await session(t, 'CP-BOOK-ENDED');
  s.close(1001, 'ending for the test');
  t.ok(s.closed);
  inside.onChargerMessage(Buffer.from('[3,"never-asked",{}]'), false);
  inside.onCsmsMessage(Buffer.from('[2,"late","Reset",{"type":"Soft"}]'), false);
  t.same(s.frames, { charger_to_csms: 0, csms_to_charger: 0 }, 'none counted as relayed');
  t.notOk(proxy.logs.some((l) => l.event === 'frame_refused' && l.identity === 'CP-BOOK-ENDED'), 'none judged (the unsolicited answer would have been refused)');
});

t.test('a charger held back with no write left to release it is read again at the next ping round', async (t) => {
  const { s, inside, charger, seenByCsms } = await session(t, 'CP-BOOK-PAUSED');
  // As when a ping took the CSMS queue over the mark: paused, and no write callback will resume it.
  inside.holdBack(inside.charger);
  t.ok(inside.charger.isPaused);
  charger.send('[2,"hb-1","Heartbeat",{}]');
  s.ping();
  t.notOk(inside.charger.isPaused, 'resumed: the CSMS queue is under the mark');
  await waitFor(() => seenByCsms.includes('[2,"hb-1","Heartbeat",{}]'), 'the charger\'s frame at the CSMS');
  inside.holdBack(inside.csms);
  s.ping();
  t.notOk(inside.csms.isPaused, 'and the CSMS leg, likewise');
  t.notOk(s.closed, 'the session lives on');
});
