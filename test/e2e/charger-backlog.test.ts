/**
 * While an interceptor is still deciding about a charger CALL, the charger's next frames wait in
 * order behind it. Past a few of them the proxy stops reading the charger, so a flood waits at the
 * charger (and in TCP), not in the proxy's memory; once the decision comes, every frame reaches the
 * CSMS, in order.
 */
import t from 'tap';
import WebSocket from 'ws';
import type { InterceptorFactory } from '../../policies/interceptors/types';
import { startLegacyCsms } from '../helpers/csms';
import { sleep, waitFor } from '../helpers/net';
import { startTestProxy } from '../helpers/proxy';

const FRAMES = 300;
const DATA = 'y'.repeat(100 * 1024); // 300 × 100 KiB ≈ 29 MiB behind one pending decision

t.test('a flood behind a pending interceptor decision waits at the charger and arrives in order', async (t) => {
  let decide: () => void = () => undefined;
  const decided = new Promise<void>((resolve) => { decide = resolve; });
  const slowDecider: InterceptorFactory = () => ({
    name: 'slow-decider',
    onChargerCall: (_s, call) => (call.action === 'Authorize' ? decided.then(() => undefined) : undefined),
  });
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  // Report-only: admission has its own tests; this one is about the relay.
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true' }, { interceptors: [slowDecider] });
  t.teardown(() => proxy.stop());
  const charger = new WebSocket(`${proxy.tlsUrl}/CP-BACKLOG`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());

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
