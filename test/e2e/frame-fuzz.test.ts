/**
 * Hostile frames (issue 9, item 2): a bounded, seeded fuzz run per OCPP version through the real
 * TLS proxy to an ocpp-rpc CSMS that records every raw frame it receives.
 *
 * Per version: FUZZ_FRAMES (default 100,000) hostile frames — random text and bytes, truncated
 * frames, non-arrays, deep nesting, wrong element types and counts, ids over 36 characters,
 * unknown message types, answers to calls never made, duplicate ids — pipelined on one charger
 * connection with back-pressure, with a numbered valid CALL after every few. Invalid UTF-8 and
 * oversized frames close the WebSocket (1007 / 1009), so they go on their own short-lived
 * connections. Asserted: the CSMS received exactly the valid CALLs, in order, byte-identical, and
 * nothing else; every valid CALL was answered once; the proxy still relays afterwards.
 *
 * Reproduce a run with the same seeds: they derive from the subprotocol name (seedOf).
 */
import t from 'tap';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { createLogger } from '../../proxy/log';
import { startLegacyCsms } from '../helpers/csms';
import { HostileFrames, invalidUtf8, seededRandom, seedOf, validCall } from '../helpers/fuzz';
import { waitFor } from '../helpers/net';
import { startTestProxy, type TestProxy } from '../helpers/proxy';

const FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
/** One valid CALL after this many hostile frames (on average). */
const VALID_EVERY = 10;
const UTF8_CONNECTIONS = 40;
const MAX_FRAME_BYTES = 65536;
/** Bytes queued on the client before it waits for the socket to drain. */
const CLIENT_HIGH_WATER = 256 * 1024;
/**
 * Valid CALLs awaiting their answer at most. OCPP allows one outstanding CALL per direction; the
 * proxy remembers 256 (session.ts) and drops answers to older ones as unsolicited, so the fuzz
 * pipelines, but within that bound.
 */
const MAX_OUTSTANDING = 64;

t.setTimeout(Number(process.env.FUZZ_TIMEOUT_MS ?? 420_000));

/** Opens a charger WebSocket to the proxy and waits for it to be open. */
async function openCharger(proxy: TestProxy, identity: string, protocol: string): Promise<WebSocket> {
  // No permessage-deflate: compressing the large hostile frames would triple the run time (the
  // deflate path has its own relay tests).
  const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, [protocol], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** Resolves with the close code the proxy sent. */
function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(-1);
    ws.once('close', (code) => resolve(code));
  });
}

/** Frames written in one corked batch (one TLS write for many small frames). */
const BATCH = 64;

/**
 * Sends a batch of frames in one corked write, then waits for it to be flushed while more than
 * CLIENT_HIGH_WATER bytes are queued: the proxy pushes back through TCP, nothing overflows.
 */
async function sendBatch(ws: WebSocket, batch: { data: string | Buffer; binary: boolean }[]): Promise<void> {
  const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
  let flushed: Promise<void> = Promise.resolve();
  socket.cork();
  batch.forEach((f, i) => {
    if (i < batch.length - 1) ws.send(f.data, { binary: f.binary });
    else flushed = new Promise((resolve, reject) => ws.send(f.data, { binary: f.binary }, (err) => (err ? reject(err) : resolve())));
  });
  socket.uncork();
  if (ws.bufferedAmount > CLIENT_HIGH_WATER) await flushed;
}

t.test('hostile frames never reach the CSMS; valid frames around them arrive in order', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  // Refused frames are logged at warn: keep the fuzz's log lines out of memory (errors still kept).
  const errors: string[] = [];
  const log = createLogger({ level: 'error', destination: new Writable({ write(c, _e, cb) { errors.push(c.toString()); cb(); } }) });
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true', maxFrameBytes: String(MAX_FRAME_BYTES) }, { log });
  t.teardown(() => proxy.stop());

  for (const protocol of ['ocpp1.6', 'ocpp2.0.1', 'ocpp2.1']) {
    t.test(protocol, async (t) => {
      const started = Date.now();
      const rng = seededRandom(seedOf(protocol));
      const hostile = new HostileFrames(rng, protocol);
      const identity = `FUZZ-${protocol.replace(/\./g, '')}`;
      const ws = await openCharger(proxy, identity, protocol);
      const answered = new Map<string, number>();
      const unexpected: string[] = [];
      let onAnswer: (() => void) | null = null;
      ws.on('message', (data: Buffer, isBinary) => {
        const v = isBinary ? null : (JSON.parse(data.toString()) as unknown[]);
        if (v && v[0] === 3 && typeof v[1] === 'string' && v[1].startsWith('v-')) {
          answered.set(v[1], (answered.get(v[1]) ?? 0) + 1);
          onAnswer?.();
        } else if (!v || v[0] !== 4) unexpected.push(data.toString().slice(0, 200));
      });
      const expected: string[] = [];
      const kinds: Record<string, number> = {};
      let sent = 0;
      let batch: { data: string | Buffer; binary: boolean }[] = [];
      while (sent < FRAMES) {
        const f = hostile.next();
        kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
        batch.push(f);
        sent++;
        if (rng.int(1, VALID_EVERY) === 1) {
          if (expected.length - answered.size >= MAX_OUTSTANDING) {
            await sendBatch(ws, batch);
            batch = [];
            await new Promise<void>((resolve) => {
              onAnswer = () => { if (expected.length - answered.size < MAX_OUTSTANDING / 2) { onAnswer = null; resolve(); } };
              onAnswer();
            });
          }
          const v = validCall(expected.length);
          expected.push(v);
          batch.push({ data: v, binary: false });
        }
        if (batch.length >= BATCH) {
          await sendBatch(ws, batch);
          batch = [];
        }
      }
      const last = validCall(expected.length);
      expected.push(last);
      await sendBatch(ws, [...batch, { data: last, binary: false }]);
      const lastId = `v-${expected.length - 1}`;
      await waitFor(() => answered.has(lastId), `answer to ${lastId}`, 120_000, 50);
      const fuzzSeconds = (Date.now() - started) / 1000;
      t.comment(`${protocol}: ${sent} hostile + ${expected.length} valid frames in ${fuzzSeconds.toFixed(1)} s; kinds ${JSON.stringify(kinds)}`);

      const seen = csms.frames.filter((f) => f.identity === identity && !f.outbound).map((f) => f.raw);
      t.equal(seen.length, expected.length, 'the CSMS received as many frames as valid CALLs were sent');
      const firstDiff = seen.findIndex((s, i) => s !== expected[i]);
      t.equal(firstDiff, -1, firstDiff < 0 ? 'exactly the valid CALLs, in order, byte-identical' : `first difference at ${firstDiff}: ${seen[firstDiff]?.slice(0, 200)}`);
      t.equal(answered.size, expected.length, 'every valid CALL got its CALLRESULT');
      t.ok([...answered.values()].every((n) => n === 1), 'each exactly once');
      t.same(unexpected, [], 'the charger got nothing but CALLRESULTs to its calls and CALLERRORs');
      t.ok(ws.readyState === WebSocket.OPEN, 'the fuzzed connection is still open');
      ws.close();
      await closeCode(ws);

      // Invalid UTF-8 and oversized frames end a connection: one short-lived connection each.
      const utf8Started = Date.now();
      const codes: number[] = [];
      for (let batch = 0; batch < UTF8_CONNECTIONS; batch += 10) {
        codes.push(...(await Promise.all(Array.from({ length: Math.min(10, UTF8_CONNECTIONS - batch) }, async (_v, i) => {
          const id = `U8-${protocol.replace(/\./g, '')}-${batch + i}`;
          const c = await openCharger(proxy, id, protocol);
          const closed = closeCode(c);
          c.send(invalidUtf8(rng), { binary: false });
          return closed;
        }))));
      }
      t.same(codes.filter((c) => c !== 1007), [], `invalid UTF-8 closes with 1007 (${UTF8_CONNECTIONS} connections, ${Date.now() - utf8Started} ms)`);
      const big = await openCharger(proxy, `BIG-${protocol.replace(/\./g, '')}`, protocol);
      const bigClosed = closeCode(big);
      big.send(`[2,"big","DataTransfer",{"vendorId":"x","data":"${'A'.repeat(MAX_FRAME_BYTES)}"}]`);
      t.equal(await bigClosed, 1009, 'a frame over maxFrameBytes closes with 1009');
      const leaked = csms.frames.filter((f) => /^(U8|BIG)-/.test(f.identity) && !f.outbound);
      t.same(leaked, [], 'nothing from the invalid-UTF-8 or oversized connections reached the CSMS');

      // The proxy still relays for a fresh charger.
      const after = await openCharger(proxy, `AFTER-${protocol.replace(/\./g, '')}`, protocol);
      const reply = new Promise<string>((resolve) => after.once('message', (d: Buffer) => resolve(d.toString())));
      after.send('[2,"after-1","Heartbeat",{}]');
      t.match(await reply, /^\[3,"after-1",\{"currentTime":/, 'a fresh charger is relayed and answered afterwards');
      after.close();
      t.comment(`${protocol}: total ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  }

  t.test('duplicate ids around a real CSMS call', async (t) => {
    const identity = 'DUP-16';
    const ws = await openCharger(proxy, identity, 'ocpp1.6');
    ws.on('message', (data: Buffer) => {
      const v = JSON.parse(data.toString()) as unknown[];
      if (v[0] === 2) for (let i = 0; i < 3; i++) ws.send(`[3,"${v[1] as string}",{"configurationKey":[],"n":${i}}]`);
    });
    const client = await waitFor(() => csms.clients.get(identity), 'CSMS client');
    const answer = await client.call('GetConfiguration', {});
    t.same(answer, { configurationKey: [], n: 0 }, 'the CSMS got the first answer');
    ws.send('[2,"after-dup","Heartbeat",{}]');
    await waitFor(() => csms.frames.some((f) => f.identity === identity && f.raw.includes('after-dup')), 'a later CALL to arrive');
    const answers = csms.frames.filter((f) => f.identity === identity && !f.outbound && f.raw.startsWith('[3,'));
    t.equal(answers.length, 1, 'the second and third answer with the same id never reached the CSMS');
    ws.close();
  });

  t.test('a CALL reusing the id of an outstanding CALL is not forwarded', async (t) => {
    const csmsSlow = await startLegacyCsms({ onClient: (c) => c.handle('DataTransfer', () => new Promise((r) => setTimeout(() => r({ status: 'Accepted' }), 300))) });
    t.teardown(() => csmsSlow.stop());
    const p2 = await startTestProxy({ backend: csmsSlow.url, reportOnly: 'true' }, { log });
    t.teardown(() => p2.stop());
    const ws = await openCharger(p2, 'DUP-CALL', 'ocpp1.6');
    ws.send('[2,"same","DataTransfer",{"vendorId":"a"}]');
    ws.send('[2,"same","DataTransfer",{"vendorId":"b"}]');
    ws.send('[2,"marker","Heartbeat",{}]');
    await waitFor(() => csmsSlow.frames.some((f) => f.raw.includes('marker')), 'the marker');
    t.equal(csmsSlow.frames.filter((f) => !f.outbound && f.raw.includes('"same"')).length, 1, 'only the first CALL with id "same" reached the CSMS');
    ws.close();
  });

  t.test('2.1: a CALLRESULTERROR for a CALLRESULT never sent is not forwarded', async (t) => {
    const ws = await openCharger(proxy, 'CRE-21', 'ocpp2.1');
    ws.send('[5,"never-sent","GenericError","",{}]');
    ws.send('[2,"marker","Heartbeat",{}]');
    await waitFor(() => csms.frames.some((f) => f.identity === 'CRE-21' && f.raw.includes('marker')), 'the marker');
    t.same(csms.frames.filter((f) => f.identity === 'CRE-21' && !f.outbound).map((f) => f.raw), ['[2,"marker","Heartbeat",{}]'], 'only the marker reached the CSMS');
    ws.close();
  });

  t.test('the proxy logged no errors during the fuzz', async (t) => {
    t.same(errors, []);
  });
});
