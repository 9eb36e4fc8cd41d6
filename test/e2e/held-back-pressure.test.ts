/**
 * While an injected call of the proxy's is in flight, CSMS frames are held (one CALL per direction,
 * and order kept). A CSMS that keeps sending meanwhile is no longer read once a mebibyte is held:
 * its frames wait in its own socket, not in the proxy's memory, and all arrive, in order, once the
 * charger answers. Before, the proxy read and held up to maxHeldFrames of them (up to ~250 MiB).
 */
import path from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import type { SessionApi } from '../../policies/interceptors/types';
import { basicHeader } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy, TEST_PKI_DIR, testServerTls } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';

const FRAMES = 150;
const FRAME_BYTES = 200_000;

// Over wss:// too: a TLS socket reports a write as queued for a tick after it is made, which the
// ping rounds must not take for the held-back CSMS's progress, nor for a backlog of its own.
for (const tlsCsms of [false, true]) t.test(`a ${tlsCsms ? 'wss://' : 'ws://'} CSMS sending 30 MB while the line is held is held back in its own socket, and loses nothing`, async (t) => {
  let csms: WebSocket | null = null;
  const raw = await startRawCsms({ onOpen: (ws) => { csms = ws; }, ...(tlsCsms ? { tls: testServerTls() } : {}) });
  t.teardown(() => raw.stop());
  let session: SessionApi | null = null;
  // Ping rounds every 300 ms: a CSMS the line holds back is not judged dead for its unread pongs.
  const proxy = await startTestProxy({ backend: raw.url, rotation: 'false', pingIntervalMs: '300', ...(tlsCsms ? { backendCa: path.join(TEST_PKI_DIR, 'ca.crt') } : {}) },
    { interceptors: [(s) => { session = s; return { name: 'test-session-handle' }; }] });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'HB-1', password: 'held-back-password' });
  const charger = new WebSocket(`${proxy.tlsUrl}/HB-1`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', headers: { authorization: basicHeader('HB-1', 'held-back-password') } } as WebSocket.ClientOptions);
  t.teardown(() => charger.terminate());
  const got: string[] = [];
  let injectedId: string | null = null;
  charger.on('message', (m) => {
    const text = m.toString();
    if (text.includes('"proxy.test.hold"')) injectedId = (JSON.parse(text) as unknown[])[1] as string;
    else got.push(text);
  });
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  await waitFor(() => csms && session, 'both legs');

  void session!.injectCall('DataTransfer', { vendorId: 'proxy.test.hold', messageId: 'hold' }, { timeoutMs: 60_000 }).catch(() => undefined);
  await waitFor(() => injectedId, 'the injected call at the charger (left unanswered for now)');
  const frame = (i: number) => JSON.stringify([2, `s${i}`, 'DataTransfer', { vendorId: 'csms', data: String(i).padEnd(FRAME_BYTES, '.') }]);
  for (let i = 0; i < FRAMES; i++) csms!.send(frame(i));
  await new Promise((r) => setTimeout(r, 1500)); // time enough to read it all, were it read
  t.ok(csms!.bufferedAmount > 10_000_000, `${(csms!.bufferedAmount / 1e6).toFixed(1)} MB wait unsent at the CSMS: the proxy stopped reading it`);
  t.equal(got.length, 0, 'nothing reached the charger yet: the line is held');

  charger.send(JSON.stringify([3, injectedId, { status: 'Accepted' }]));
  await waitFor(() => got.length >= 1, 'the held frames reach the charger once the injected call is answered', 10_000);
  // The CSMS's calls are answered as they come (it sent them without waiting: not the proxy's to police).
  charger.on('message', (m) => {
    const f = JSON.parse(m.toString()) as unknown[];
    if (f[0] === 2 && String(f[1]).startsWith('s')) charger.send(JSON.stringify([3, f[1], { status: 'Accepted' }]));
  });
  charger.send(JSON.stringify([3, 's0', { status: 'Accepted' }]));
  await waitFor(() => got.length === FRAMES || undefined, `all ${FRAMES} frames at the charger`, 60_000, 50)
    .catch((err: Error) => { throw new Error(`${err.message}: ${got.length} arrived, charger readyState ${charger.readyState}, logged ${JSON.stringify(proxy.logs.filter((l) => l.event === 'peer_dead' || l.event === 'session_ended'))}`); });
  t.ok(got.every((g, i) => g === frame(i)), 'every frame, byte for byte, in order');
  t.equal(csms!.bufferedAmount, 0, 'the CSMS is read again to the end');
  t.notOk(proxy.logs.some((l) => l.event === 'peer_dead'), 'no leg judged dead meanwhile');
  charger.close();
});
