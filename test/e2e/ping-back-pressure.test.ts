/**
 * Liveness pings under back-pressure: when the CSMS reads slower than a charger sends, the proxy
 * stops reading the charger, so the charger's pong waits unread behind its own frames. That charger
 * is alive, only held back: the session must stay up and deliver every frame, not close it as
 * "charger did not answer ping". Real CLI in its own process, a `ws` CSMS that reads at a bounded
 * rate (and answers pings as it reads), a `ws` charger over TLS with a large backlog.
 * The excuse holds only while the held-back leg still delivers frames: a leg that stalls (here
 * behind an interceptor that never decides) is still judged by its pong and the session closes.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { InterceptorFactory } from '../../policies/interceptors/types';
import { startLegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { startTestProxy } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';
import { seedShared, spawnProxy, startSharedRig } from '../helpers/proxy-process';

const PING_MS = 2000;
const FRAMES = 400;
const PAYLOAD = 'p'.repeat(200 * 1024); // 400 × 200 KiB ≈ 78 MiB: ~10 s at the CSMS's pace
/** The CSMS reads at most this much per 100 ms (8 MiB/s): the proxy's own queue to it drains within a ping interval. */
const BYTES_PER_TICK = 800 * 1024;

t.test('a charger held back by a slow CSMS is not declared dead', async (t) => {
  const rig = await startSharedRig(t, 'ping-bp-');
  const csmsServer = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'ocpp1.6' });
  await new Promise<void>((r) => csmsServer.once('listening', () => r()));
  t.teardown(() => new Promise<void>((r) => { for (const c of csmsServer.clients) c.terminate(); csmsServer.close(() => r()); }));

  const arrived: string[] = [];
  const allArrived = new Promise<void>((resolve) => {
    csmsServer.on('connection', (ws) => {
      // Reads BYTES_PER_TICK, then stops reading until the next 100 ms tick.
      let budget = BYTES_PER_TICK;
      const tick = setInterval(() => { budget = BYTES_PER_TICK; if (ws.isPaused) ws.resume(); }, 100);
      ws.once('close', () => clearInterval(tick));
      ws.on('message', (data: Buffer) => {
        arrived.push((JSON.parse(data.toString()) as [number, string])[1]);
        budget -= data.length;
        if (budget <= 0) ws.pause();
        if (arrived.length === FRAMES) resolve();
      });
    });
  });

  await seedShared(rig.creds, { identity: 'PING-BP-1', password: 'ping-bp-password-1234' });
  const proxy = await spawnProxy({
    dataDir: path.join(rig.dir, 'proxy'),
    flags: { redis: rig.redis.url, secretFile: rig.secretFile, pingIntervalMs: PING_MS, backend: `ws://127.0.0.1:${(csmsServer.address() as { port: number }).port}/ocpp` },
  });
  t.teardown(() => proxy.stop());

  const charger = new WebSocket(`${proxy.tlsUrl}/PING-BP-1`, ['ocpp1.6'], {
    ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false,
    headers: { authorization: 'Basic ' + Buffer.from('PING-BP-1:ping-bp-password-1234').toString('base64') },
  } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());
  let closed: { code: number; reason: string } | null = null;
  charger.once('close', (code, reason) => { closed = { code, reason: reason.toString() }; });

  // The whole backlog is queued at once: the charger's pong to the proxy's next ping waits behind it.
  const started = Date.now();
  for (let i = 0; i < FRAMES; i++) charger.send(JSON.stringify([2, `bp-${i}`, 'DataTransfer', { vendorId: 'bp', data: PAYLOAD }]));
  const outcome = await Promise.race([
    allArrived.then(() => 'all arrived'),
    new Promise<string>((resolve) => charger.once('close', () => resolve('charger closed'))),
  ]);
  const tookS = (Date.now() - started) / 1000;

  t.equal(outcome, 'all arrived', `the session stayed up (${closed ? `closed ${JSON.stringify(closed)}` : 'open'}) for ${tookS.toFixed(1)} s`);
  t.ok(tookS > 2 * (PING_MS / 1000), `the backlog took ${tookS.toFixed(1)} s, more than two ping intervals (${(2 * PING_MS) / 1000} s)`);
  t.same(arrived, Array.from({ length: FRAMES }, (_, i) => `bp-${i}`), 'every frame reached the CSMS, in order');
  t.notOk((await proxy.settledLogs()).some((l) => l.event === 'peer_dead'), 'no leg was declared dead');
});

t.test('a held-back leg that stops delivering is still declared dead', async (t) => {
  // An interceptor that never decides: the charger's later frames queue behind it and the proxy
  // stops reading the charger for good, so its pong is never read.
  const never: InterceptorFactory = () => ({
    name: 'never-decides',
    onChargerCall: (_s, call) => (call.action === 'Authorize' ? new Promise<undefined>(() => undefined) : undefined),
  });
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true', pingIntervalMs: '200' }, { interceptors: [never] });
  t.teardown(() => proxy.stop());
  const charger = new WebSocket(`${proxy.tlsUrl}/CP-STALLED`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());
  const closed = new Promise<number>((resolve) => charger.once('close', (code) => resolve(code)));

  charger.send(JSON.stringify([2, 'first', 'Authorize', { idTag: 'T1' }]));
  for (let i = 0; i < 200; i++) charger.send(JSON.stringify([2, `s-${i}`, 'DataTransfer', { vendorId: 'stall', data: 'z'.repeat(100 * 1024) }]));
  const started = Date.now();
  const code = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('still open after 10 s'), 10_000))]);
  t.equal(code, 1006, `the stalled session was closed (terminated) after ${Date.now() - started} ms`);
  const dead = await waitFor(() => proxy.logs.find((l) => l.event === 'peer_dead'), 'the peer_dead log line');
  t.equal(dead?.leg, 'charger', 'the charger leg was the one judged dead');
});

t.test('a CSMS that stops reading is the leg judged dead, and the charger is told so with a close frame', async (t) => {
  const csmsServer = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'ocpp1.6' });
  await new Promise<void>((r) => csmsServer.once('listening', () => r()));
  t.teardown(() => new Promise<void>((r) => { for (const c of csmsServer.clients) c.terminate(); csmsServer.close(() => r()); }));
  // Reads the first frame, then nothing more (pings included): a CSMS hung behind a full socket.
  csmsServer.on('connection', (ws) => ws.once('message', () => ws.pause()));
  const port = (csmsServer.address() as { port: number }).port;
  const proxy = await startTestProxy({ backend: `ws://127.0.0.1:${port}/ocpp`, reportOnly: 'true', pingIntervalMs: '300' });
  t.teardown(() => proxy.stop());
  const charger = new WebSocket(`${proxy.tlsUrl}/CP-BEHIND-HUNG-CSMS`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());
  const closed = new Promise<number>((resolve) => charger.once('close', (code) => resolve(code)));
  // Enough to fill the socket buffers and the proxy's queue to the CSMS past its high-water mark, so the charger is held back.
  for (let i = 0; i < 200; i++) charger.send(JSON.stringify([2, `h-${i}`, 'DataTransfer', { vendorId: 'hung', data: 'z'.repeat(100 * 1024) }]));
  const code = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('still open after 10 s'), 10_000))]);
  t.equal(code, 1001, 'the charger got a close frame (1001: reconnect), not a cut connection (1006)');
  const dead = await waitFor(() => proxy.logs.find((l) => l.event === 'peer_dead'), 'the peer_dead log line');
  t.equal(dead?.leg, 'csms', 'the CSMS, which stopped reading, is the leg judged dead (not the charger it held back)');
});

t.test('a charger that keeps sending but never answers pings: excused three rounds (it may be reading a backlog), then declared dead', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true', pingIntervalMs: '300' });
  t.teardown(() => proxy.stop());
  const charger = new WebSocket(`${proxy.tlsUrl}/CP-NO-PONGS`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false, autoPong: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());
  const opened = Date.now();
  const closed = new Promise<number>((resolve) => charger.once('close', (code) => resolve(code)));
  let n = 0;
  const sender = setInterval(() => { if (charger.readyState === WebSocket.OPEN) charger.send(JSON.stringify([2, `hb-${n++}`, 'Heartbeat', {}])); }, 50);
  t.teardown(() => clearInterval(sender));
  const code = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('still open after 10 s'), 10_000))]);
  const ms = Date.now() - opened;
  t.equal(code, 1006, 'declared dead and cut');
  // Rounds every 300 ms: dead at the second without the excuse (about 600 ms), at the fifth with it.
  t.ok(ms > 1100 && ms < 4000, `after ${ms} ms: three rounds excused while it sent frames, and no more`);
  const dead = proxy.logs.find((l) => l.event === 'peer_dead');
  t.match(dead, { leg: 'charger' });
  t.ok(Number(dead?.queuedBytes) < 4096, `nothing, or an answer at most, waited for it (${String(dead?.queuedBytes)} bytes): it reads, it only never pongs`);
});

/** How fast the slow charger reads: 1 MB/s, kept to by elapsed time, so late timers do not slow it. */
const SLOW_BYTES_PER_MS = 1000;
/**
 * Rounds long enough for the kernel to take the proxy's whole queue (~1.1 MB, written as one batch:
 * progress shows only when a batch is done, every ~1.1 s here, up to twice that loaded) within three
 * rounds, and short enough that the pong, behind that queue and the kernel's buffers (~3.5 MB on
 * loopback, ~4.6 s), takes more than four: without progress counted, the charger is cut.
 */
const SLOW_PING_MS = 800;

/**
 * A charger on a slow link taking in a large backlog: silent (it only reads), so its pong comes only
 * once it has read everything queued ahead of the ping, which takes many ping rounds. It reads all the
 * while, which the proxy sees as the kernel taking more of its queue to it. Both legs must be let be:
 * the charger for reading, the CSMS held back behind the charger's queue. The charger reads at
 * SLOW_BYTES_PER_MS until it has `slowBytes`, then at full speed, or stops reading for good (`thenStop`).
 */
async function slowReader(t: Test, opts: { frames: number; slowBytes: number; thenStop?: boolean }) {
  let csms: WebSocket | null = null;
  const raw = await startRawCsms({ onOpen: (ws) => { csms = ws; } });
  t.teardown(() => raw.stop());
  const proxy = await startTestProxy({ backend: raw.url, reportOnly: 'true', pingIntervalMs: String(SLOW_PING_MS) });
  t.teardown(() => proxy.stop());
  const charger = new WebSocket(`${proxy.tlsUrl}/CP-SLOW-READER`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());
  await waitFor(() => csms, 'the CSMS leg');
  const got: string[] = [];
  charger.on('message', (m) => { got.push((JSON.parse(m.toString()) as [number, string])[1]); });
  const socket = (charger as unknown as { _socket: Duplex })._socket; // ws's own socket
  let read = 0;
  let slowUntil = 0;
  const started = Date.now();
  const pace = (chunk: Buffer) => {
    read += chunk.length;
    if (read >= opts.slowBytes) {
      socket.off('data', pace);
      slowUntil = Date.now();
      if (opts.thenStop) socket.pause();
      return;
    }
    const ahead = read / SLOW_BYTES_PER_MS - (Date.now() - started); // ms read ahead of the pace
    if (ahead > 0) {
      socket.pause();
      setTimeout(() => socket.resume(), ahead);
    }
  };
  socket.on('data', pace);
  for (let i = 0; i < opts.frames; i++) csms!.send(JSON.stringify([2, `slow-${i}`, 'DataTransfer', { vendorId: 'slow', data: 'q'.repeat(100 * 1024) }]));
  const closed = new Promise<number>((resolve) => charger.once('close', (code) => resolve(code)));
  return { proxy, got, closed, read: () => read, slowMs: () => slowUntil - started };
}

t.test('a silent charger reading a large backlog slowly is not declared dead while it reads, nor the CSMS held back for it', async (t) => {
  const FRAMES_SLOW = 150; // 15 MB; the first 7 MB read slowly (7 s), while more waits at the proxy for it
  const { proxy, got, closed, slowMs } = await slowReader(t, { frames: FRAMES_SLOW, slowBytes: 7_000_000 });
  const outcome = await Promise.race([
    waitFor(() => got.length === FRAMES_SLOW, 'every frame at the charger', 60_000, 20).then(() => 'all arrived'),
    closed.then((code) => `closed with ${code} after ${got.length} frames: ${JSON.stringify(proxy.logs.find((l) => l.event === 'peer_dead'))}`),
  ]);
  t.equal(outcome, 'all arrived', 'every frame arrived');
  t.ok(slowMs() > 5 * SLOW_PING_MS, `it read slowly for ${slowMs()} ms, more than five rounds (a leg without a pong and without progress is cut at the fourth)`);
  t.same(got, Array.from({ length: FRAMES_SLOW }, (_, i) => `slow-${i}`), 'in order, none lost');
  t.notOk(proxy.logs.some((l) => l.event === 'peer_dead'), 'no leg was declared dead');
});

t.test('a charger that stops reading halfway through a backlog is still declared dead', async (t) => {
  const { proxy, read } = await slowReader(t, { frames: 150, slowBytes: 1_000_000, thenStop: true });
  // The charger no longer reads its socket, so it would not see the cut: the proxy's log tells.
  const ended = await waitFor(() => proxy.logs.find((l) => l.event === 'session_ended'), 'the session to end', 15_000);
  t.match(ended, { code: 1001, reason: 'charger did not answer ping' }, `cut once its queue stopped draining (it read ${(read() / 1e6).toFixed(1)} MB)`);
  const dead = proxy.logs.find((l) => l.event === 'peer_dead');
  t.match(dead, { leg: 'charger' }, 'the charger, not the CSMS held back for it');
  t.ok(Number(dead?.queuedBytes) > 0, `the log says what still waited for it (${String(dead?.queuedBytes)} bytes)`);
});
