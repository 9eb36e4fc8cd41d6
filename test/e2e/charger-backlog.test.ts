/**
 * While an interceptor is still deciding about a charger CALL, the charger's next frames wait in
 * order behind it. Past a few of them the proxy stops reading the charger, so a flood waits at the
 * charger (and in TCP), not in the proxy's memory; once the decision comes, every frame reaches the
 * CSMS, in order.
 */
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import type { InterceptorFactory } from '../../policies/interceptors/types';
import { startLegacyCsms } from '../helpers/csms';
import { sleep, waitFor } from '../helpers/net';
import { startTestProxy } from '../helpers/proxy';

const FRAMES = 300;
const DATA = 'y'.repeat(100 * 1024); // 300 × 100 KiB ≈ 29 MiB behind one pending decision

/** A CSMS, a proxy with `interceptor`, and a raw `ws` charger connected through it. */
async function rig(t: Test, interceptor: InterceptorFactory, identity: string) {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  // Report-only: admission has its own tests; these are about the relay.
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true' }, { interceptors: [interceptor] });
  t.teardown(() => proxy.stop());
  const charger = new WebSocket(`${proxy.tlsUrl}/${identity}`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());
  return { csms, proxy, charger };
}

t.test('a flood behind a pending interceptor decision waits at the charger and arrives in order', async (t) => {
  let decide: () => void = () => undefined;
  const decided = new Promise<void>((resolve) => { decide = resolve; });
  const slowDecider: InterceptorFactory = () => ({
    name: 'slow-decider',
    onChargerCall: (_s, call) => (call.action === 'Authorize' ? decided.then(() => undefined) : undefined),
  });
  const { csms, charger } = await rig(t, slowDecider, 'CP-BACKLOG');

  charger.send(JSON.stringify([2, 'first', 'Authorize', { idTag: 'T1' }]));
  for (let i = 0; i < FRAMES; i++) charger.send(JSON.stringify([2, `f-${i}`, 'DataTransfer', { vendorId: 'flood', data: DATA }]));
  await sleep(1500); // ample for the proxy to read all 29 MiB if it did not stop
  const waiting = charger.bufferedAmount;
  t.ok(waiting > 10 * 2 ** 20, `${(waiting / 2 ** 20).toFixed(0)} MiB still wait at the charger while the decision is pending`);
  t.equal(csms.received('CP-BACKLOG').length, 0, 'nothing overtook the pending call');

  decide();
  const ids = await waitFor(() => {
    const seen = csms.received('CP-BACKLOG').map((f) => f[1] as string);
    return seen.length === FRAMES + 1 ? seen : undefined;
  }, 'every frame at the CSMS', 30_000, 100);
  t.same(ids, ['first', ...Array.from({ length: FRAMES }, (_, i) => `f-${i}`)], 'all arrive, in the order sent');
});

t.test('a charger flooding calls the proxy answers asynchronously, reading none of the answers, is no longer read', async (t) => {
  const BIG = 'z'.repeat(16 * 1024);
  const asyncAnswerer: InterceptorFactory = () => ({
    name: 'async-answerer',
    // Like the proxy's own security-event answers, which wait for an audit write first.
    onChargerCall: (_s, call) => (call.action === 'DataTransfer' ? new Promise((r) => setImmediate(() => r({ answer: { status: 'Accepted', data: BIG } }))) : undefined),
  });
  const { csms, proxy, charger } = await rig(t, asyncAnswerer, 'CP-ASYNC');
  charger.pause();
  let answers = 0;
  charger.on('message', () => answers++);

  const CALLS = 4000; // 4,000 × 16 KiB ≈ 62 MiB of answers, far past the kernel's socket buffers
  for (let i = 0; i < CALLS; i++) charger.send(JSON.stringify([2, `a-${i}`, 'DataTransfer', { vendorId: 'v' }]));
  await sleep(2000);
  const session = proxy.server.sessions.get('CP-ASYNC') as unknown as { charger: WebSocket };
  const queuedAtProxy = session.charger.bufferedAmount;
  t.ok(queuedAtProxy < 2 * 2 ** 20, `${(queuedAtProxy / 2 ** 20).toFixed(1)} MiB of answers queued in the proxy (high-water mark 1 MiB)`);
  const answeredSoFar = Number(/ocpp_proxy_locally_answered_calls_total\{action="DataTransfer"\} (\d+)/.exec(await proxy.metrics.metricsText())?.[1] ?? 0);
  t.ok(answeredSoFar < CALLS / 2, `the proxy answered ${answeredSoFar} of ${CALLS} calls, then stopped reading the charger`);
  charger.resume();
  await waitFor(() => answers === CALLS || undefined, 'every call answered once the charger reads', 30_000, 100);
  t.equal(csms.received('CP-ASYNC').length, 0, 'none of them reached the CSMS');
});
