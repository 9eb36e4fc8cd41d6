/**
 * Frames the proxy accepted before a peer closed still reach the other peer, before its close frame:
 * - the CSMS's answers to the charger's calls, held while an injected call of the proxy's was in
 *   flight (its held CALLs are not sent: their answers would reach no one);
 * - the charger's frames waiting behind an interceptor's asynchronous decision.
 * Both were dropped: the close went out first.
 */
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import type { InterceptorFactory, SessionApi } from '../../policies/interceptors/types';
import { basicHeader } from '../helpers/login';
import { opensslCsr } from '../helpers/certificate-harness';
import { waitFor } from '../helpers/net';
import { tempDir } from '../helpers/pki';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';

const PASSWORD = 'close-flush-password';

interface Peer { ws: WebSocket; got: string[]; closed: Promise<number> }

function watch(ws: WebSocket): Peer {
  const got: string[] = [];
  ws.on('message', (m) => got.push(m.toString()));
  return { ws, got, closed: new Promise((r) => ws.on('close', (code) => r(code))) };
}

async function setup(t: Test, interceptor: InterceptorFactory, identity: string) {
  let csms: Peer | null = null;
  const raw = await startRawCsms({ onOpen: (ws) => { csms = watch(ws); } });
  t.teardown(() => raw.stop());
  const proxy = await startTestProxy({ backend: raw.url, rotation: 'false' }, { interceptors: [interceptor] });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity, password: PASSWORD });
  const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', headers: { authorization: basicHeader(identity, PASSWORD) } } as WebSocket.ClientOptions);
  const charger = watch(ws);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  await waitFor(() => csms, 'CSMS leg open');
  return { charger, csms: csms! as Peer, proxy };
}

t.test('the CSMS closes while its answer is held behind an injected call: the charger still gets the answer', async (t) => {
  let session: SessionApi | null = null;
  const { charger, csms } = await setup(t, (s) => { session = s; return { name: 'test-session-handle' }; }, 'CF-CSMS');

  charger.ws.send('[2,"c1","Heartbeat",{}]');
  await waitFor(() => csms.got.includes('[2,"c1","Heartbeat",{}]'), 'the charger\'s call reached the CSMS');
  void session!.injectCall('DataTransfer', { vendorId: 'proxy.test', messageId: 'hold' }, { timeoutMs: 20_000 }).catch(() => undefined);
  await waitFor(() => charger.got.some((f) => f.includes('proxy.test')), 'the injected call reached the charger (left unanswered)');
  csms.ws.send('[2,"s1","GetConfiguration",{}]'); // held: a call is in flight to the charger
  csms.ws.send('[3,"c1",{"currentTime":"2026-11-27T00:00:00Z"}]'); // held behind it, to keep the order
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(charger.got.some((f) => f.startsWith('[3,"c1"')), 'the answer is held while the injected call is in flight');
  csms.ws.close(1000, 'csms going away');

  const code = await charger.closed;
  t.ok(charger.got.includes('[3,"c1",{"currentTime":"2026-11-27T00:00:00Z"}]'), 'the held answer reached the charger before the close, byte for byte');
  t.notOk(charger.got.some((f) => f.includes('"s1"')), 'the held CALL did not (its answer would reach no one)');
  t.ok(code > 0, `then the charger's leg closed (${code})`);
});

t.test('the charger closes while its frames wait for an interceptor: the CSMS still gets them, then the close', async (t) => {
  const { charger, csms } = await setup(t, () => ({
    name: 'test-slow-decision',
    onChargerCall: (_s, call) => (call.action === 'DataTransfer' ? new Promise((r) => setTimeout(() => r(undefined), 300)) : undefined),
  }), 'CF-CHARGER');

  const frames = ['[2,"a","DataTransfer",{"vendorId":"slow"}]', '[2,"b","Heartbeat",{}]', '[2,"c","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]'];
  for (const f of frames) charger.ws.send(f);
  charger.ws.close(1000, 'charger going away');
  const code = await csms.closed;
  t.same(csms.got, frames, 'every frame the charger sent before its close reached the CSMS, in order');
  t.ok(code > 0, `then the CSMS leg closed (${code})`);
});

t.test('the charger closes with a SignCertificate waiting behind a decision: nothing is signed for it', async (t) => {
  const identity = 'CF-CSR';
  const csr = opensslCsr(await tempDir(t), { CN: identity });
  const { charger, csms, proxy } = await setup(t, () => ({
    name: 'test-slow-decision',
    onChargerCall: (_s, call) => (call.action === 'DataTransfer' ? new Promise((r) => setTimeout(() => r(undefined), 300)) : undefined),
  }), identity);

  const held = '[2,"a","DataTransfer",{"vendorId":"slow"}]';
  charger.ws.send(held);
  charger.ws.send(JSON.stringify([2, 'b', 'SignCertificate', { csr }]));
  charger.ws.close(1000, 'charger going away');
  await csms.closed;
  t.same(csms.got, [held], 'the held frame reached the CSMS; the SignCertificate, ours to answer, did not');
  await waitFor(() => proxy.logs.some((l) => l.event === 'csr_rejected'), 'the CSR refused');
  t.match(proxy.logs.find((l) => l.event === 'csr_rejected'), { reason: 'session_closed', identity }, 'as arriving after the charger left');
  t.notOk(proxy.logs.some((l) => l.event === 'certificate_issued'), 'no certificate issued for a charger that had gone');
});

t.test('ws framing: a charger leg held back when the CSMS closes still completes its close at once', async (t) => {
  // The charger's frames wait behind a decision that takes long: past 16 of them its leg is paused.
  let csms: Peer | null = null;
  const raw = await startRawCsms({ onOpen: (ws) => { csms = watch(ws); } });
  t.teardown(() => raw.stop());
  const proxy = await startTestProxy({ backend: raw.url, rotation: 'false', framing: 'ws' }, {
    interceptors: [() => ({ name: 'test-slow-decision', onChargerCall: (_s, call) => (call.action === 'DataTransfer' ? new Promise((r) => setTimeout(() => r(undefined), 20_000).unref()) : undefined) })],
  });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'CF-PAUSED', password: PASSWORD });
  const ws = new WebSocket(`${proxy.tlsUrl}/CF-PAUSED`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', headers: { authorization: basicHeader('CF-PAUSED', PASSWORD) } } as WebSocket.ClientOptions);
  const charger = watch(ws);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  await waitFor(() => csms, 'CSMS leg open');
  ws.send('[2,"a","DataTransfer",{"vendorId":"slow"}]');
  for (let i = 0; i < 30; i++) ws.send(`[2,"h${i}","Heartbeat",{}]`);
  await new Promise((r) => setTimeout(r, 200));
  const closedAt = Date.now();
  csms!.ws.close(1000, 'csms going away');
  const code = await Promise.race([charger.closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000).unref())]);
  t.not(code, -1, `the charger's close handshake completed (${code}) in ${Date.now() - closedAt} ms, not after ws's 30 s close timer`);
});

t.test('the charger back on a new session ends the old CSMS leg kept open for its last frames', async (t) => {
  const csmsLegs: Peer[] = [];
  const raw = await startRawCsms({ onOpen: (ws) => { csmsLegs.push(watch(ws)); } });
  t.teardown(() => raw.stop());
  const proxy = await startTestProxy({ backend: raw.url, rotation: 'false', callTimeoutMs: '10000' }, {
    interceptors: [() => ({ name: 'test-slow-decision', onChargerCall: (_s, call) => (call.action === 'DataTransfer' ? new Promise((r) => setTimeout(() => r(undefined), 8000).unref()) : undefined) })],
  });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'CF-BACK', password: PASSWORD });
  const open = async () => {
    const ws = new WebSocket(`${proxy.tlsUrl}/CF-BACK`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', headers: { authorization: basicHeader('CF-BACK', PASSWORD) } } as WebSocket.ClientOptions);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    return ws;
  };
  const first = await open();
  await waitFor(() => csmsLegs.length === 1, 'first CSMS leg');
  first.send('[2,"a","DataTransfer",{"vendorId":"slow"}]');
  first.send('[2,"b","Heartbeat",{}]');
  first.close(1000, 'charger going away');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(csmsLegs[0]!.ws.readyState, WebSocket.OPEN, 'the old CSMS leg waits for the charger\'s last frames');
  const reconnectedAt = Date.now();
  const second = await open();
  await waitFor(() => csmsLegs.length === 2, 'second CSMS leg');
  const code = await Promise.race([csmsLegs[0]!.closed, new Promise<number>((r) => setTimeout(() => r(-1), 3000).unref())]);
  t.not(code, -1, `the old CSMS leg closed (${code}) ${Date.now() - reconnectedAt} ms after the charger came back, not after the decision`);
  t.equal(csmsLegs[1]!.ws.readyState, WebSocket.OPEN, 'the new one is open');
  second.close();
});
