/**
 * A CSMS or a charger that sends a burst of pings (a keep-alive bug, a health check gone wild) gets
 * a pong for each, and the session carries on: nothing is cut, nothing is lost, on both framings.
 * On `ws` legs a burst of more than 60 pings used to end the session (1006): `ws`'s own pong
 * answering terminates a connection with 60 pongs unwritten (see proxy/pongs.ts).
 */
import t from 'tap';
import WebSocket from 'ws';
import { openRawCharger } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';

const PASSWORD = 'csms-ping-burst-password';
const BURST = 5000;

for (const framing of ['builtin', 'ws'] as const) {
  t.test(`${framing} framing: ${BURST} CSMS pings at once → ${BURST} pongs, the session goes on`, async (t) => {
    let pongs = 0;
    let csmsLeg: WebSocket | null = null;
    const csms = await startRawCsms({ onOpen: (ws) => {
      csmsLeg = ws;
      ws.on('pong', () => pongs++);
      for (let i = 0; i < BURST; i++) ws.ping(Buffer.from(String(i)));
      ws.send('[2,"after-burst","ClearCache",{}]');
    } });
    t.teardown(() => csms.stop());
    const proxy = await startTestProxy({ backend: csms.url, rotation: 'false', framing });
    t.teardown(() => proxy.stop());
    await seedCharger(proxy, { identity: 'CP-PINGS', password: PASSWORD });

    const { ws: charger, got } = await openRawCharger(t, proxy, 'CP-PINGS', PASSWORD, 'ocpp1.6', { perMessageDeflate: false });
    let closed: number | null = null;
    charger.on('close', (code) => { closed = code; });

    await waitFor(() => got.includes('[2,"after-burst","ClearCache",{}]'), 'the call sent after the burst', 10_000);
    await waitFor(() => pongs === BURST, `all ${BURST} pongs`, 10_000);
    const answered = new Promise<string>((r) => (csmsLeg as unknown as WebSocket).once('message', (d) => r(d.toString())));
    charger.send('[3,"after-burst",{"status":"Accepted"}]');
    t.equal(await answered, '[3,"after-burst",{"status":"Accepted"}]', 'the charger\'s answer reaches the CSMS');
    t.equal(closed, null, 'the charger\'s session stayed open');
    t.equal((csmsLeg as unknown as WebSocket).readyState, WebSocket.OPEN, 'the CSMS leg stayed open');
    t.notOk(proxy.logs.some((l) => l.event === 'session_closed' || l.event === 'session_ended'), 'no session end logged');
  });
}

for (const framing of ['builtin', 'ws'] as const) {
  t.test(`${framing} framing: ${BURST} charger pings at once → ${BURST} pongs, the session goes on`, async (t) => {
    const seenByCsms: string[] = [];
    const csms = await startRawCsms({ onOpen: (ws) => ws.on('message', (d) => seenByCsms.push(d.toString())) });
    t.teardown(() => csms.stop());
    const proxy = await startTestProxy({ backend: csms.url, rotation: 'false', framing });
    t.teardown(() => proxy.stop());
    await seedCharger(proxy, { identity: 'CP-PINGER', password: PASSWORD });

    const { ws: charger } = await openRawCharger(t, proxy, 'CP-PINGER', PASSWORD, 'ocpp1.6', { perMessageDeflate: framing === 'ws' });
    let pongs = 0;
    let closed: number | null = null;
    charger.on('pong', () => pongs++);
    charger.on('close', (code) => { closed = code; });
    for (let i = 0; i < BURST; i++) charger.ping(String(i));
    charger.send('[2,"hb-after-burst","Heartbeat",{}]');
    await waitFor(() => seenByCsms.includes('[2,"hb-after-burst","Heartbeat",{}]'), 'the call sent after the burst', 10_000);
    await waitFor(() => pongs === BURST, `all ${BURST} pongs`, 10_000);
    t.equal(closed, null, 'the charger\'s session stayed open');
  });
}
