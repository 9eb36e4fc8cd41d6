/**
 * Back-pressure end to end: a peer that stops reading makes the proxy stop reading the other leg,
 * so the backlog waits in the sender (and TCP), not in the proxy's memory; when the reader resumes,
 * every frame arrives, in order. Both directions, against the real CLI in its own process (so its
 * resident memory is its own), a raw `ws` CSMS and a `ws` charger over TLS with Basic auth.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { sleep } from '../helpers/net';
import { seedShared, spawnProxy, startSharedRig } from '../helpers/proxy-process';

const FRAMES = 400;
const PAYLOAD = 'x'.repeat(120 * 1024); // 400 × 120 KiB ≈ 47 MiB in flight, under maxFrameBytes (256 KiB)
/** What the proxy may hold beyond its baseline: its 1 MiB high-water mark, a frame or two and allocator slack. */
const MAX_GROWTH_MIB = 24;
/**
 * The same for a flood of frames the proxy answers: before TCP pushes back, the kernel's socket
 * buffers (several MiB each way on loopback) let it read and answer some 50,000 of them, logging each
 * refusal. Measured 42–45 MiB for 200,000 and for 400,000 frames; without the hold-back it grew with
 * the flood (73 MiB for 200,000, and without bound).
 */
const MAX_ANSWER_FLOOD_GROWTH_MIB = 64;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const frame = (i: number) => JSON.stringify([2, `bp-${i}`, 'DataTransfer', { vendorId: 'bp', data: PAYLOAD }]);

/** Waits until `read()` has not changed for 600 ms (the flow has stopped or finished), and returns it. */
async function settled(read: () => number | Promise<number>, what: string): Promise<number> {
  let last = -1;
  let same = 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const v = await read();
    same = v === last ? same + 1 : 0;
    last = v;
    if (same >= 6) return v;
    await sleep(100);
  }
  throw new Error(`${what} still changing after 20 s`);
}

/** Collects frames in arrival order; resolves (and stops listening) when `n` have arrived. */
function collect(ws: WebSocket, n: number): Promise<string[]> {
  const ids: string[] = [];
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const msg = JSON.parse(data.toString()) as [number, string, string, { data: string }];
      ids.push(msg[3].data.length === PAYLOAD.length ? msg[1] : `${msg[1]}:truncated`);
      if (ids.length === n) { ws.off('message', onMessage); resolve(ids); }
    };
    ws.on('message', onMessage);
  });
}

// Both framings: the proxy's own (every charger without permessage-deflate) and ws (`framing: ws`,
// as every charger with it): back-pressure rests on each one's pause/resume and bufferedAmount.
for (const framing of ['builtin', 'ws'] as const) t.test(`a reader that stops: the proxy pushes back instead of buffering, and loses nothing (${framing} framing)`, async (t) => {
  const rig = await startSharedRig(t, 'backpressure-');
  const csmsServer = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'ocpp1.6' });
  await new Promise<void>((r) => csmsServer.once('listening', () => r()));
  t.teardown(() => new Promise<void>((r) => { for (const c of csmsServer.clients) c.terminate(); csmsServer.close(() => r()); }));
  const csmsLeg = new Promise<WebSocket>((r) => csmsServer.once('connection', (ws) => r(ws)));

  await seedShared(rig.creds, { identity: 'BP-1', password: 'bp-password-123456' });
  const proxy = await spawnProxy({
    dataDir: path.join(rig.dir, 'proxy'),
    flags: { redis: rig.redis.url, secretFile: rig.secretFile, backend: `ws://127.0.0.1:${(csmsServer.address() as { port: number }).port}/ocpp`, framing },
  });
  t.teardown(() => proxy.stop());

  const charger = new WebSocket(`${proxy.tlsUrl}/BP-1`, ['ocpp1.6'], {
    ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false,
    headers: { authorization: 'Basic ' + Buffer.from('BP-1:bp-password-123456').toString('base64') },
  } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { charger.once('open', () => resolve()); charger.once('error', reject); });
  t.teardown(() => charger.terminate());
  const csms = await csmsLeg;
  const expected = Array.from({ length: FRAMES }, (_, i) => `bp-${i}`);

  /** `sender` floods while `reader` does not read; the backlog must stay with the sender, then all arrive. */
  const flood = async (t: Test, sender: WebSocket, reader: WebSocket, names: [string, string]) => {
    // Measured from just before each flood: an earlier one's frames passed through as strings, some uncollected.
    const before = rssMiB(proxy.pid);
    reader.pause();
    const arrived = collect(reader, FRAMES);
    for (let i = 0; i < FRAMES; i++) sender.send(frame(i));
    // Once the flow stops, the backlog must be with the sender: the proxy stopped reading that leg.
    const held = await settled(() => sender.bufferedAmount, `the ${names[0]} backlog`);
    t.ok(held > 30 * 2 ** 20, `${(held / 2 ** 20).toFixed(0)} MiB of ${FRAMES * 120 / 1024 | 0} MiB still wait at the ${names[0]}`);
    const growth = rssMiB(proxy.pid) - before;
    t.ok(growth < MAX_GROWTH_MIB, `proxy RSS grew ${growth.toFixed(1)} MiB (limit ${MAX_GROWTH_MIB})`);
    reader.resume();
    t.same(await arrived, expected, `every frame arrives whole and in order once the ${names[1]} reads again`);
  };

  t.test('CSMS → charger while the charger does not read', (t) => flood(t, csms, charger, ['CSMS', 'charger']));
  t.test('charger → CSMS while the CSMS does not read', (t) => flood(t, charger, csms, ['charger', 'CSMS']));

  // Frames the proxy answers itself (here malformed CALLs, answered with a CALLERROR) must hold back
  // the charger that sends them when it does not read the answers, not the CSMS.
  t.test('a charger that sends frames the proxy answers, and reads none of the answers', async (t) => {
    // Enough that the answers (about 120 bytes each, 72 MB) cannot all wait in the kernel's socket
    // buffers (loopback autotunes a receive buffer up to tcp_rmem's 32 MiB): a proxy that kept reading
    // the charger would have to hold them itself.
    const BAD = 600_000;
    const id = (i: number) => `bad-${String(i).padStart(30, '0')}`; // answers echo the id: about 3 bytes out per byte in
    const refusedSoFar = async () => Number(/ocpp_proxy_frames_refused_total\{direction="charger_to_csms",problem="bad_shape"\} (\d+)/.exec(await (await fetch(`${proxy.adminUrl}/metrics`)).text())?.[1] ?? 0);
    const before = rssMiB(proxy.pid);
    charger.pause();
    let answers = 0;
    let wrong = 0;
    const answered = new Promise<void>((resolve) => {
      const onMessage = (data: WebSocket.RawData) => {
        const msg = JSON.parse(data.toString()) as unknown[];
        if (msg[0] !== 4 || msg[1] !== id(answers)) wrong++;
        if (++answers === BAD) { charger.off('message', onMessage); resolve(); }
      };
      charger.on('message', onMessage);
    });
    for (let i = 0; i < BAD; i++) charger.send(`[2,"${id(i)}","A",1]`);
    await settled(() => charger.bufferedAmount, 'the charger backlog');
    const read = await settled(refusedSoFar, 'the frames the proxy reads');
    const held = charger.bufferedAmount;
    t.ok(read < BAD, `the proxy stopped reading the charger after ${read} of ${BAD} frames (the rest wait in the kernel and at the charger: ${(held / 2 ** 20).toFixed(1)} MiB)`);
    const growth = rssMiB(proxy.pid) - before;
    t.ok(growth < MAX_ANSWER_FLOOD_GROWTH_MIB, `proxy RSS grew ${growth.toFixed(1)} MiB (limit ${MAX_ANSWER_FLOOD_GROWTH_MIB})`);
    charger.resume();
    await answered;
    t.equal(wrong, 0, `all ${BAD} answers arrive, each a CALLERROR with its call's id, in order`);
    t.equal(csms.readyState, WebSocket.OPEN, 'the CSMS leg is untouched');
    const refusedLines = (await proxy.settledLogs()).filter((l) => l.event === 'frame_refused');
    t.ok(refusedLines.length <= 20, `${refusedLines.length} frame_refused log lines for ${BAD} refused frames: the rest counted, not logged one by one`);
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    const counted = Number(/ocpp_proxy_frames_refused_total\{direction="charger_to_csms",problem="bad_shape"\} (\d+)/.exec(metrics)?.[1]);
    t.ok(counted >= BAD, `every one counted in frames_refused_total (${counted})`);
  });
});
