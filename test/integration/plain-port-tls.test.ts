/**
 * The plain listener answers TLS too (proxy/plain-port-tls.ts): a 1.6 charger moved from Profile 1
 * to 2 keeps its host and port and switches ws:// to wss://. Real sockets against the full proxy.
 */
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import { basicHeader, tryBasicLogin } from '../helpers/login';
import { sleep, waitFor } from '../helpers/net';
import { seedCharger, startProxyBeforeCsms } from '../helpers/proxy';

const PASSWORD = 'plain-port-password-1';

t.test('one plain port: ws:// for Profile 1, wss:// for Profile 2, each judged as on its own listener', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false', plainListen: '127.0.0.1:0' });
  await seedCharger(proxy, { identity: 'PP-1', password: PASSWORD, minProfile: 1 });
  await seedCharger(proxy, { identity: 'PP-2', password: PASSWORD });
  const plain = proxy.plainUrl!;
  const secure = plain.replace(/^ws:/, 'wss:');
  t.equal(await tryBasicLogin(plain, proxy.caPem, 'PP-1', PASSWORD, 'ocpp1.6'), 101, 'Profile 1 over plain ws');
  t.equal(await tryBasicLogin(secure, proxy.caPem, 'PP-2', PASSWORD, 'ocpp1.6'), 101, 'Profile 2 over TLS on the same port');
  t.equal(await tryBasicLogin(plain, proxy.caPem, 'PP-2', PASSWORD, 'ocpp1.6'), 401, 'a Profile 2 charger over plain ws is still refused');
  const started = proxy.logs.filter((l) => l.event === 'session_started').map((l) => [l.identity, l.profile]);
  t.same(started, [['PP-1', 1], ['PP-2', 2]], 'sessions on the profile each arrived with');
  const res = await fetch(`http://127.0.0.1:${new URL(plain).port}/ocpp/PP-1`);
  t.ok(res.status >= 400 && res.status < 500, `a plain HTTP request is still answered by the plain server (${res.status})`);
});

t.test('a connection that sends nothing is closed after the handshake timeout, and counts toward the per-address cap meanwhile', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false', plainListen: '127.0.0.1:0', handshakeTimeoutMs: '800', maxConnectionsPerAddress: '2' });
  await seedCharger(proxy, { identity: 'PP-CAP', password: PASSWORD, minProfile: 1 });
  const port = Number(new URL(proxy.plainUrl!).port);
  const idle = async () => {
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const closed = new Promise<number>((r) => { const at = Date.now(); s.once('close', () => r(Date.now() - at)); });
    s.on('error', () => undefined);
    return { s, closed };
  };
  const [a, b] = [await idle(), await idle()];
  const c = await idle();
  t.ok(await Promise.race([c.closed.then((ms) => ms < 500), sleep(600).then(() => false)]), 'a third silent connection from the address is refused at once');
  t.ok(proxy.logs.some((l) => l.event === 'connection_refused' && l.reason === 'too_many_connections_from_address'));
  const waited = await Promise.all([a.closed, b.closed]);
  t.ok(waited.every((ms) => ms >= 600 && ms < 3000), `the silent ones are closed after the timeout (${waited.join(', ')} ms)`);
  t.equal(await tryBasicLogin(proxy.plainUrl!, proxy.caPem, 'PP-CAP', PASSWORD, 'ocpp1.6'), 101, 'and their places are free again');
});

t.test('behind PROXY protocol, TLS on the plain port gets the announced client address', async (t) => {
  const proxy = await startProxyBeforeCsms(t, { rotation: 'false', plainListen: '127.0.0.1:0', proxyProtocol: 'true', trustedProxyCidrs: '127.0.0.0/8' });
  await seedCharger(proxy, { identity: 'PP-PROXY', password: PASSWORD });
  const port = Number(new URL(proxy.plainUrl!).port);
  const tcp = net.connect(port, '127.0.0.1');
  await new Promise((r) => tcp.once('connect', r));
  tcp.write('PROXY TCP4 10.9.8.7 127.0.0.1 40000 8080\r\n');
  const secure = tls.connect({ socket: tcp, ca: proxy.caPem, servername: 'localhost' });
  const ws = new WebSocket(`wss://127.0.0.1:${port}/ocpp/PP-PROXY`, ['ocpp1.6'], {
    createConnection: () => secure, headers: { authorization: basicHeader('PP-PROXY', PASSWORD) },
  } as WebSocket.ClientOptions);
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  await waitFor(() => proxy.logs.some((l) => l.event === 'session_started' && l.identity === 'PP-PROXY'), 'session started');
  t.match(proxy.logs.find((l) => l.event === 'session_started' && l.identity === 'PP-PROXY'), { profile: 2, remoteAddress: '10.9.8.7' });
});
