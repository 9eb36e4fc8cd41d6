/**
 * A leg the proxy holds before, or without, a session: the CSMS leg between its 101 and the session
 * starting, a CSMS leg closed because the charger left meanwhile, and a charger being closed after a
 * refusal. Frames on them are not lost, and their errors do not end the process (the proxy runs in
 * this test's process: an unhandled 'error' would fail the test).
 */
import type tls from 'node:tls';
import t from 'tap';
import WebSocket from 'ws';
import { basicHeader, tlsConnected, upgradeRequest } from '../helpers/login';
import { sleep, waitFor } from '../helpers/net';
import { seedCharger, startTestProxy, type TestProxy } from '../helpers/proxy';
import { startRawCsms as rawCsms } from '../helpers/raw-csms';

const PASSWORD = 'legs-before-session-pw';
/** An unmasked server text frame whose payload is not UTF-8: the proxy's CSMS leg must fail it. */
const BAD_UTF8_FRAME = Buffer.from([0x81, 0x02, 0xff, 0xfe]);

async function proxyFor(csmsUrl: string): Promise<TestProxy> {
  const proxy = await startTestProxy({ backend: csmsUrl, rotation: false });
  await seedCharger(proxy, { identity: 'CP1', password: PASSWORD });
  await seedCharger(proxy, { identity: 'BYSTANDER', password: PASSWORD });
  return proxy;
}

function charger(proxy: TestProxy, identity = 'CP1'): WebSocket {
  return new WebSocket(`${proxy.tlsUrl}/${identity}`, ['ocpp1.6'], {
    ca: proxy.caPem,
    servername: 'localhost',
    headers: { authorization: basicHeader(identity, PASSWORD) },
  } as WebSocket.ClientOptions);
}

/** A raw TLS upgrade request for CP1 offering `protocol`; resolves with the socket once the answer's head arrived. */
async function rawUpgrade(proxy: TestProxy, protocol: string, key: number): Promise<{ socket: tls.TLSSocket; head: string }> {
  const socket = await tlsConnected(proxy.addresses.tls.port, proxy.caPem);
  socket.write(upgradeRequest('CP1', PASSWORD, protocol, key));
  const head = await new Promise<string>((r) => socket.once('data', (d: Buffer) => r(d.toString('latin1'))));
  return { socket, head };
}

t.test('a frame the CSMS sends with its 101 reaches the charger, every time', async (t) => {
  const csms = await rawCsms({ onOpen: (ws) => ws.send(JSON.stringify([2, 'greet', 'TriggerMessage', { requestedMessage: 'StatusNotification' }])) });
  const proxy = await proxyFor(csms.url);
  t.teardown(async () => { await proxy.stop(); await csms.stop(); });
  const rounds = 20;
  let received = 0;
  for (let i = 0; i < rounds; i++) {
    const ws = charger(proxy);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(d.toString()));
      ws.once('error', reject);
      setTimeout(() => resolve(''), 2000);
    });
    if (first.includes('"greet"')) received++;
    ws.close(1000);
    await new Promise((r) => ws.once('close', r));
  }
  t.equal(received, rounds, `the greeting arrived in ${received} of ${rounds} sessions`);
});

t.test('a CSMS whose first frame is not UTF-8 ends that session only', async (t) => {
  const csms = await rawCsms({ onOpen: (ws) => { if (ws.protocol) (ws as unknown as { _socket: import('node:net').Socket })._socket.write(BAD_UTF8_FRAME); } });
  const proxy = await proxyFor(csms.url);
  t.teardown(async () => { await proxy.stop(); await csms.stop(); });
  const codes: number[] = [];
  for (let i = 0; i < 10; i++) {
    const ws = charger(proxy);
    ws.on('error', () => undefined);
    codes.push(await new Promise<number>((r) => ws.once('close', (code) => r(code))));
  }
  t.ok(codes.every((c) => c === 1012), `each charger got 1012 (service restart: reconnect), got ${codes.join(',')}`);
  t.ok(proxy.logs.some((l) => l.event === 'session_ended' && l.by === 'csms'), 'the end is logged as the CSMS leg\'s');
  t.ok(proxy.logs.some((l) => l.event === 'csms_socket_error' && l.level === 40 && /UTF-8/.test(String(l.err))), 'and why, as a warning (it is the operator\'s own system)');
});

t.test('a CSMS that answers after the charger left, then sends garbage, is closed quietly', async (t) => {
  const csms = await rawCsms({ delayMs: 600, onOpen: (ws) => (ws as unknown as { _socket: import('node:net').Socket })._socket.write(BAD_UTF8_FRAME) });
  const proxy = await proxyFor(csms.url);
  t.teardown(async () => { await proxy.stop(); await csms.stop(); });
  for (let i = 0; i < 3; i++) {
    // The charger gives up before the CSMS's 101 (a raw TLS request, destroyed once the CSMS has it).
    const s = await tlsConnected(proxy.addresses.tls.port, proxy.caPem);
    s.write(upgradeRequest('CP1', PASSWORD, 'ocpp1.6', i));
    await waitFor(() => csms.upgrades() === i + 1, `dial ${i + 1} reached the CSMS`, 5000);
    s.destroy();
  }
  await waitFor(() => proxy.logs.filter((l) => l.reason === 'client_gone').length === 3, 'three client_gone refusals', 5000);
  await sleep(1000); // the CSMS answers and sends its bad frame meanwhile
  t.equal(csms.upgrades(), 3, `the CSMS was dialled for each (${csms.upgrades()})`);
  const bystander = charger(proxy, 'BYSTANDER');
  await new Promise((r, j) => { bystander.once('open', r); bystander.once('error', j); });
  t.pass('the proxy still admits chargers');
  bystander.close(1000);
});

t.test('a charger refused after its handshake (no common subprotocol) that sends garbage is closed quietly', async (t) => {
  const csms = await rawCsms({});
  const proxy = await proxyFor(csms.url);
  t.teardown(async () => { await proxy.stop(); await csms.stop(); });
  const bystander = charger(proxy, 'BYSTANDER');
  await new Promise((r, j) => { bystander.once('open', r); bystander.once('error', j); });
  for (let i = 0; i < 3; i++) {
    const { socket, head } = await rawUpgrade(proxy, 'ocpp9.9', i);
    t.match(head, /^HTTP\/1\.1 101 /, 'the handshake completes (OCPP-J: then closed with 1002)');
    // A masked text frame whose payload is not UTF-8: ws fails it on the proxy's side.
    socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]));
    await new Promise((r) => socket.once('close', r));
  }
  await sleep(200);
  t.equal(bystander.readyState, WebSocket.OPEN, 'another charger\'s session is untouched');
  t.ok(proxy.logs.filter((l) => l.reason === 'no_common_subprotocol').length >= 3, 'each refusal logged');
  bystander.close(1000);
});

t.test('a malformed WebSocket handshake is refused by the first gate: no CSMS dial, no rotation settled', async (t) => {
  const csms = await rawCsms({});
  const proxy = await proxyFor(csms.url);
  t.teardown(async () => { await proxy.stop(); await csms.stop(); });
  for (const [what, request] of [
    ['a key that is not 16 bytes of base64', upgradeRequest('CP1', PASSWORD, 'ocpp1.6').replace(/Sec-WebSocket-Key: .*\r\n/, 'Sec-WebSocket-Key: short\r\n')],
    ['version 12', upgradeRequest('CP1', PASSWORD, 'ocpp1.6').replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 12')],
  ] as const) {
    const socket = await tlsConnected(proxy.addresses.tls.port, proxy.caPem);
    socket.write(request);
    const head = await new Promise<string>((r) => socket.once('data', (d: Buffer) => r(d.toString('latin1'))));
    socket.destroy();
    t.match(head, /^HTTP\/1\.1 400 /, `${what}: 400`);
  }
  await waitFor(() => proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.reason === 'bad_handshake').length === 2, 'both logged as bad_handshake');
  t.equal(csms.upgrades(), 0, 'the CSMS was never dialled');
});
