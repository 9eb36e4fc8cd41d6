/**
 * Hostile handshakes (issue 9, item 1) against the real TLS charger port. Each input gets its
 * documented refusal, the CSMS is never dialled for it, the proxy keeps serving real chargers, and
 * memory returns to its baseline after a storm of all of them.
 *
 * | Hostile input                                              | Refusal                                                       |
 * |------------------------------------------------------------|---------------------------------------------------------------|
 * | random bytes / truncated TLS record, then the peer closes  | TLS handshake fails, socket closed at once (no HTTP answer)   |
 * | plaintext HTTP on the TLS port                             | socket closed without an HTTP answer                          |
 * | TCP open, nothing sent; ClientHello cut short, then silent | socket closed after handshakeTimeoutMs                        |
 * | TLS done, HTTP request never started or never finished     | 408 Request Timeout (or close) after handshakeTimeoutMs       |
 * | request head over 16 KiB (one huge header, header flood,   | 431 Request Header Fields Too Large                           |
 * |   huge Authorization: Basic)                               |                                                               |
 * | bad Basic header (not base64, no colon, wrong scheme, empty,| 401 + WWW-Authenticate: Basic                                 |
 * |   1-16 KiB long)                                           |                                                               |
 * | identity with traversal, control, non-UTF-8, ':' or >48 ch | 400 bad_identity                                              |
 * | raw control or non-ASCII bytes in the request line         | 400 Bad Request (HTTP parser)                                 |
 * | path over 2048 characters (e.g. 10,000)                    | 414 path_too_long                                             |
 * | more open connections from one address than                | new socket closed at once, before TLS; other addresses and    |
 * |   maxConnectionsPerAddress                                 |   later connections unaffected                                |
 * | more live sessions than maxSessions                        | 503 too_many_sessions, Retry-After: 10                        |
 * | more upgrades in flight than maxPendingUpgrades            | 503 too_many_pending_upgrades, Retry-After: 10                |
 */
import t from 'tap';
import net from 'node:net';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import WebSocket from 'ws';
import { createLogger } from '../../proxy/log';
import { startLegacyCsms } from '../helpers/csms';
import { tryBasicLogin } from '../helpers/login';
import { seededRandom } from '../helpers/fuzz';
import { sleep, waitFor } from '../helpers/net';
import { makeCharger, seedCharger, startTestProxy, type TestProxy } from '../helpers/proxy';

const TIMEOUT_MS = 1000;
const PER_ADDRESS = 20;

/** What a raw connection saw before it closed. */
interface Outcome {
  bytes: Buffer;
  ms: number;
}

/** Opens a TCP socket, writes `payload` (optionally half-closing), and resolves when the proxy closes it. */
function rawTcp(port: number, payload: Buffer | string | null, opts: { end?: boolean; localAddress?: string; limitMs?: number } = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const s = net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress });
    const guard = setTimeout(() => { s.destroy(); reject(new Error('proxy did not close the socket')); }, opts.limitMs ?? 10_000);
    s.on('connect', () => {
      if (payload !== null) s.write(payload);
      if (opts.end) s.end();
    });
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => { clearTimeout(guard); resolve({ bytes: Buffer.concat(chunks), ms: Date.now() - started }); });
  });
}

/** Completes TLS, writes a raw HTTP request, and resolves with the status line's code (0 = closed without one). */
function tlsRequest(proxy: TestProxy, request: Buffer | string, limitMs = 10_000): Promise<{ status: number; text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const s = tls.connect({ port: proxy.addresses.tls.port, host: '127.0.0.1', ca: proxy.caPem, servername: 'localhost' });
    const guard = setTimeout(() => { s.destroy(); reject(new Error('proxy did not close the connection')); }, limitMs);
    s.on('secureConnect', () => { if (request.length > 0) s.write(request); });
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(guard);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, ms: Date.now() - started });
    });
  });
}

/** A WebSocket upgrade request head for `path`, with extra header lines. */
function upgrade(path: string, extra: string[] = []): string {
  return [`GET ${path} HTTP/1.1`, 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: ocpp1.6', ...extra, '', ''].join('\r\n');
}

/** The first flight of a real TLS client (a ClientHello), captured from a local listener. */
async function captureClientHello(): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const hello = new Promise<Buffer>((resolve) => server.once('connection', (c) => c.once('data', (d: Buffer) => { resolve(d); c.destroy(); })));
  const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'localhost' });
  client.on('error', () => undefined);
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

/** Opens a real ocpp-rpc charger, sends a Heartbeat, closes: the proxy still serves chargers. */
async function realChargerWorks(proxy: TestProxy, identity: string, password?: string): Promise<boolean> {
  const c = makeCharger({ identity, endpoint: proxy.tlsUrl, ca: proxy.caPem, password });
  await c.connect();
  const answer = await c.call('Heartbeat', {});
  await c.close();
  return typeof answer.currentTime === 'string';
}

t.test('hostile handshakes get their documented refusals', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({
    backend: csms.url, handshakeTimeoutMs: String(TIMEOUT_MS), maxConnectionsPerAddress: String(PER_ADDRESS),
    lockoutThreshold: '100000', addressLockoutThreshold: '100000',
  });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'CP-GOOD', password: 'good-password-0123456789' });
  const port = proxy.addresses.tls.port;
  const rng = seededRandom(9001);
  const hello = await captureClientHello();
  const csmsHandshakes = () => csms.handshakes.length;

  t.test('random and truncated TLS records: closed at once', async (t) => {
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 100; i++) outcomes.push(await rawTcp(port, rng.bytes(rng.int(1, 2000)), { end: true }));
    for (let i = 0; i < 50; i++) outcomes.push(await rawTcp(port, hello.subarray(0, rng.int(1, hello.length - 1)), { end: true }));
    // A record header announcing a huge length, followed by garbage.
    outcomes.push(await rawTcp(port, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), rng.bytes(100)]), { end: true }));
    t.ok(outcomes.every((o) => o.ms < TIMEOUT_MS), `all ${outcomes.length} closed before the handshake timeout (slowest ${Math.max(...outcomes.map((o) => o.ms))} ms)`);
    t.ok(outcomes.every((o) => !o.bytes.includes('HTTP/')), 'no HTTP answer to a broken TLS handshake');
  });

  t.test('plaintext HTTP on the TLS port: closed without an HTTP answer', async (t) => {
    const o = await rawTcp(port, upgrade('/ocpp/CP-GOOD'));
    t.ok(o.ms < TIMEOUT_MS, `closed in ${o.ms} ms`);
    t.notOk(o.bytes.toString('latin1').includes('HTTP/1.1 101'), 'never upgraded');
    t.ok(proxy.logs.some((l) => l.event === 'tls_handshake_failed' && l.reason === 'plaintext_on_tls_port'), 'logged as plaintext_on_tls_port');
  });

  t.test('slow clients are cut after handshakeTimeoutMs', async (t) => {
    const [silent, halfHello, noRequest, slowHeaders] = await Promise.all([
      rawTcp(port, null),
      rawTcp(port, hello.subarray(0, Math.floor(hello.length / 2))),
      tlsRequest(proxy, ''),
      tlsRequest(proxy, upgrade('/ocpp/CP-GOOD').slice(0, 60)),
    ]);
    for (const [label, ms] of [['TCP open, nothing sent', silent.ms], ['half a ClientHello', halfHello.ms], ['TLS done, no request', noRequest.ms], ['request head never finished', slowHeaders.ms]] as const) {
      t.ok(ms >= TIMEOUT_MS * 0.8 && ms < TIMEOUT_MS * 3 + 1000, `${label}: closed after ${ms} ms`);
    }
    t.equal(slowHeaders.status, 408, 'an unfinished request head gets 408');
    // A slowloris that keeps trickling header bytes is cut too: the timeout is for the whole head.
    const trickle = await new Promise<{ status: number; ms: number }>((resolve) => {
      const started = Date.now();
      const s = tls.connect({ port, host: '127.0.0.1', ca: proxy.caPem, servername: 'localhost' });
      let text = '';
      s.on('secureConnect', () => s.write('GET /ocpp/CP-GOOD HTTP/1.1\r\n'));
      const drip = setInterval(() => { if (s.writable) s.write(`X-Drip-${Date.now()}: 1\r\n`); }, 100);
      s.on('data', (d) => { text += d.toString(); });
      s.on('error', () => undefined);
      s.on('close', () => { clearInterval(drip); resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), ms: Date.now() - started }); });
    });
    t.equal(trickle.status, 408, `slowloris header drip cut with 408 after ${trickle.ms} ms`);
    t.ok(trickle.ms < TIMEOUT_MS * 3 + 1000, 'within the bound');
  });

  t.test('oversized and flooded headers: 431', async (t) => {
    const before = csmsHandshakes();
    t.equal((await tlsRequest(proxy, upgrade('/ocpp/CP-GOOD', [`X-Big: ${'a'.repeat(20_000)}`]))).status, 431, 'one 20 KB header');
    t.equal((await tlsRequest(proxy, upgrade('/ocpp/CP-GOOD', Array.from({ length: 3000 }, (_v, i) => `X-H${i}: v`)))).status, 431, '3000 headers');
    t.equal((await tlsRequest(proxy, upgrade('/ocpp/CP-GOOD', [`Authorization: Basic ${Buffer.from('CP-GOOD:' + 'p'.repeat(30_000)).toString('base64')}`]))).status, 431, '40 KB Basic header');
    t.equal(csmsHandshakes(), before, 'CSMS never dialled');
  });

  t.test('bad Basic headers: 401 with a challenge', async (t) => {
    const before = csmsHandshakes();
    const bad = [
      'Basic !!!not-base64!!!', 'Basic', 'Basic ', `Basic ${Buffer.from('no-colon-here').toString('base64')}`, 'Bearer abc', 'Digest username="CP-GOOD"',
      `Basic ${Buffer.from('CP-GOOD:' + 'x'.repeat(1500)).toString('base64')}`, `Basic ${Buffer.from('CP-GOOD:' + 'y'.repeat(10_000)).toString('base64')}`,
      `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x00, 0x01]).toString('base64')}`, `Basic ${Buffer.from('OTHER:good-password-0123456789').toString('base64')}`,
      `Basic ${'A'.repeat(3000)}===`,
    ];
    for (const header of bad) {
      const r = await tlsRequest(proxy, upgrade('/ocpp/CP-GOOD', [`Authorization: ${header}`]));
      t.equal(r.status, 401, `${header.slice(0, 30)}… (${header.length} chars) → 401`);
      t.match(r.text, /WWW-Authenticate: Basic/i, 'challenge sent');
    }
    t.equal(csmsHandshakes(), before, 'CSMS never dialled');
    t.ok(await realChargerWorks(proxy, 'CP-GOOD', 'good-password-0123456789'), 'the right password still works');
  });

  t.test('malformed subprotocol and extension lists: 400 bad_handshake before the CSMS is dialled', async (t) => {
    const auth = `Authorization: Basic ${Buffer.from('CP-GOOD:good-password-0123456789').toString('base64')}`;
    const request = (protocolLines: string[], extra: string[] = []) => [`GET /ocpp/CP-GOOD HTTP/1.1`, 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', ...protocolLines, auth, ...extra, '', ''].join('\r\n');
    const before = csmsHandshakes();
    const rejectedBefore = proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.reason === 'bad_handshake').length;
    const cases: Array<[string, string]> = [
      ['an empty list element', request(['Sec-WebSocket-Protocol: ocpp1.6,,ocpp2.0.1'])],
      ['a space inside a name', request(['Sec-WebSocket-Protocol: ocpp1.6, bad proto'])],
      ['a name offered twice', request(['Sec-WebSocket-Protocol: ocpp1.6, ocpp1.6'])],
      ['a name offered twice on two header lines', request(['Sec-WebSocket-Protocol: ocpp1.6', 'Sec-WebSocket-Protocol: ocpp1.6'])],
      ['an extension list with empty parameters', request(['Sec-WebSocket-Protocol: ocpp1.6'], ['Sec-WebSocket-Extensions: permessage-deflate;;;'])],
      ['an extension list with a stray comma', request(['Sec-WebSocket-Protocol: ocpp1.6'], ['Sec-WebSocket-Extensions: permessage-deflate,'])],
    ];
    for (const [label, req] of cases) {
      const r = await tlsRequest(proxy, req);
      t.equal(r.status, 400, `${label} → 400`);
      t.match(r.text, /bad_handshake/, `${label}: the reason is ours, not ws's or a CSMS failure`);
    }
    t.equal(csmsHandshakes(), before, 'the CSMS was never dialled for them');
    // Well-formed, but a parameter value ws cannot accept: only ws knows, after the CSMS was dialled.
    const bits = await tlsRequest(proxy, request(['Sec-WebSocket-Protocol: ocpp1.6'], ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=7']));
    t.equal(bits.status, 400, 'an unacceptable deflate parameter → 400 from ws');
    await waitFor(() => proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.reason === 'bad_handshake').length === rejectedBefore + cases.length + 1 || undefined,
      'every one of them logged as upgrade_rejected bad_handshake');
    t.equal(csmsHandshakes(), before + 1, 'the CSMS was dialled for that one only');
    await waitFor(() => csms.clients.get('CP-GOOD')?.state === 3 || undefined, 'the CSMS leg dialled for it is closed again');
    const metrics = await proxy.metrics.metricsText();
    t.match(metrics, /reason="bad_handshake"[^\n]* [1-9]/, 'and counted');
    t.ok(await realChargerWorks(proxy, 'CP-GOOD', 'good-password-0123456789'), 'the charger with a proper handshake still gets in');
  });

  t.test('hostile identities and paths: 400 / 404 / 414', async (t) => {
    const before = csmsHandshakes();
    const identities = ['..%2F..%2Fetc%2Fpasswd', '%2e%2e', '..', '.', '%2E', '.%2F', 'a%00b', 'a%0Ab', 'a%0D%0AX-Injected:%201', '%1B%5B31m', 'a%7Fb', '%FF', '%C3%28', '%ED%A0%80',
      '%F0%9F%98%80', 'a%3Ab', 'a%20b', 'x'.repeat(49), 'a%', '%zz', '%25'];
    // '..' and '.' are identifierStrings but dot-segments: once dialled they would resolve to the CSMS's root.
    for (const id of identities) t.equal((await tlsRequest(proxy, upgrade(`/ocpp/${id}`))).status, 400, `/ocpp/${id.slice(0, 30)} → 400`);
    t.equal((await tlsRequest(proxy, upgrade('/ocpp/a/../CP-GOOD'))).status, 400, 'nested segments → 400');
    t.equal((await tlsRequest(proxy, upgrade('/ocpp///CP-GOOD'))).status, 400, 'two extra slashes → 400 (one is a charger adding "/" to a URL ending in "/")');
    t.equal((await tlsRequest(proxy, upgrade('/ocpp//'))).status, 400, 'an empty identity after the extra slash → 400');
    t.equal((await tlsRequest(proxy, upgrade('/../ocpp/CP-GOOD'))).status, 404, 'path outside the prefix → 404');
    for (const raw of [Buffer.from('a\x01b'), Buffer.from([0x61, 0xff, 0x62]), Buffer.from('a\x7fb')]) {
      const request = Buffer.concat([Buffer.from('GET /ocpp/'), raw, Buffer.from(upgrade('').slice('GET  '.length))]);
      t.equal((await tlsRequest(proxy, request)).status, 400, `raw bytes ${raw.toString('hex')} in the request line → 400`);
    }
    const long = await tlsRequest(proxy, upgrade(`/ocpp/${'A'.repeat(10_000)}`));
    t.equal(long.status, 414, '10,000-character path → 414');
    t.match(long.text, /path_too_long/);
    t.equal(csmsHandshakes(), before, 'CSMS never dialled');
    t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.reason === 'bad_identity'), 'refusals logged with their reason');
    t.equal(await tryBasicLogin(`${proxy.tlsUrl}/`, proxy.caPem, 'CP-GOOD', 'good-password-0123456789', 'ocpp1.6'), 101, 'one extra slash (/ocpp//CP-GOOD): the same charger, admitted');

  });

});

t.test(`connection flood from one address: over ${PER_ADDRESS} closed at once, other addresses unaffected`, async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  // A long handshake timeout keeps the held connections open for the whole test, even on a busy machine.
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true', handshakeTimeoutMs: '15000', maxConnectionsPerAddress: String(PER_ADDRESS) });
  t.teardown(() => proxy.stop());
  const port = proxy.addresses.tls.port;
  const sockets: net.Socket[] = [];
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  const closedAt: number[] = [];
  const started = Date.now();
  await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve());
    s.on('error', () => resolve());
    s.on('close', () => closedAt.push(Date.now() - started));
    sockets.push(s);
  })));
  await waitFor(() => closedAt.length >= 100 - PER_ADDRESS, 'the excess connections to close', 10_000);
  await sleep(200);
  t.equal(closedAt.length, 100 - PER_ADDRESS, `exactly ${100 - PER_ADDRESS} refused (within ${Math.max(...closedAt)} ms), ${PER_ADDRESS} held`);
  const extra = await rawTcp(port, null, { limitMs: 5000 });
  t.ok(extra.bytes.length === 0, `one more from 127.0.0.1 closed at once (${extra.ms} ms), no TLS bytes`);
  t.ok(proxy.logs.some((l) => l.event === 'connection_refused' && l.reason === 'too_many_connections_from_address'), 'refusal logged');
  // Another source address still gets a full session while 127.0.0.1 is at its cap.
  const other = new WebSocket(`${proxy.tlsUrl}/CP-OTHER`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', localAddress: '127.0.0.2' } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => { other.once('open', () => resolve()); other.once('error', reject); });
  t.pass('127.0.0.2 admitted while 127.0.0.1 is at its cap');
  other.close();
  t.equal(closedAt.length, 100 - PER_ADDRESS, 'the held connections were still open meanwhile');
  for (const s of sockets) s.destroy();
  await sleep(200);
  t.ok(await realChargerWorks(proxy, 'CP-AGAIN'), 'after the flood 127.0.0.1 connects again');
});

t.test('capacity limits: maxSessions and maxPendingUpgrades answer 503', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true', maxSessions: '2' });
  t.teardown(() => proxy.stop());
  const open = [makeCharger({ identity: 'S1', endpoint: proxy.tlsUrl, ca: proxy.caPem }), makeCharger({ identity: 'S2', endpoint: proxy.tlsUrl, ca: proxy.caPem })];
  for (const c of open) await c.connect();
  const third = await tlsRequest(proxy, upgrade('/ocpp/S3'));
  t.equal(third.status, 503, 'third session → 503');
  t.match(third.text, /Retry-After: 10/);
  t.match(third.text, /too_many_sessions/);
  for (const c of open) await c.close();

  // A CSMS that accepts TCP and never answers keeps upgrades pending.
  const held: net.Socket[] = [];
  const silent = net.createServer((s) => held.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => { for (const s of held) s.destroy(); silent.close(); });
  const slow = await startTestProxy({ backend: `ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/ocpp`, reportOnly: 'true', maxPendingUpgrades: '2', backendTimeoutMs: '3000' });
  t.teardown(() => slow.stop());
  const pending = [tlsRequest(slow, upgrade('/ocpp/P1')), tlsRequest(slow, upgrade('/ocpp/P2'))];
  await waitFor(() => held.length >= 2, 'two upgrades dialling the CSMS');
  const refused = await tlsRequest(slow, upgrade('/ocpp/P3'));
  t.equal(refused.status, 503, 'third pending upgrade → 503');
  t.match(refused.text, /too_many_pending_upgrades/);
  t.same((await Promise.all(pending)).map((r) => r.status), [503, 503], 'the pending ones end when the CSMS times out');
});

t.test('memory returns to its baseline after a hostile storm', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write(_c, _e, cb) { cb(); } }) });
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true', handshakeTimeoutMs: '500', maxConnectionsPerAddress: '30' }, { log: quiet });
  t.teardown(() => proxy.stop());
  const port = proxy.addresses.tls.port;
  const rng = seededRandom(77);
  const hello = await captureClientHello();
  const storm = async () => {
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) work.push(rawTcp(port, rng.bytes(rng.int(1, 3000)), { end: true }));
    for (let i = 0; i < 10; i++) work.push(rawTcp(port, hello.subarray(0, rng.int(1, hello.length - 1))));
    await Promise.all(work.splice(0));
    for (let i = 0; i < 10; i++) work.push(rawTcp(port, upgrade('/ocpp/X')));
    for (let i = 0; i < 10; i++) work.push(tlsRequest(proxy, upgrade('/ocpp/X', [`X-Big: ${'a'.repeat(20_000)}`])));
    await Promise.all(work.splice(0));
    for (let i = 0; i < 10; i++) work.push(tlsRequest(proxy, upgrade(`/ocpp/${'A'.repeat(10_000)}`)));
    for (let i = 0; i < 10; i++) work.push(tlsRequest(proxy, upgrade('/ocpp/..%2F%00')));
    await Promise.all(work.splice(0));
    for (let i = 0; i < 60; i++) work.push(rawTcp(port, null).catch(() => undefined)); // 30 over the per-address cap
    for (let i = 0; i < 5; i++) work.push(tlsRequest(proxy, upgrade('/ocpp/X').slice(0, 40)));
    await Promise.all(work.splice(0));
    for (let i = 0; i < 10; i++) work.push(realChargerWorks(proxy, `MEM-${i}`));
    await Promise.all(work);
  };
  const settle = async () => {
    await waitFor(() => proxy.server.sessions.size === 0, 'sessions to end');
    await sleep(300);
    for (let i = 0; i < 4; i++) { gc(); await sleep(50); }
    return process.memoryUsage();
  };
  await storm(); // warm-up: JIT, TLS contexts, metric label sets
  const baseline = await settle();
  const rounds = 4;
  for (let i = 0; i < rounds; i++) await storm();
  const after = await settle();
  const heapGrowth = (after.heapUsed - baseline.heapUsed) / 1048576;
  const externalGrowth = (after.external - baseline.external) / 1048576;
  t.comment(`heapUsed ${(baseline.heapUsed / 1048576).toFixed(1)} → ${(after.heapUsed / 1048576).toFixed(1)} MiB, external ${externalGrowth.toFixed(1)} MiB, rss ${(baseline.rss / 1048576).toFixed(0)} → ${(after.rss / 1048576).toFixed(0)} MiB after ${rounds} storms`);
  t.ok(heapGrowth < 4, `heap back to baseline (+${heapGrowth.toFixed(2)} MiB, tolerance 4)`);
  t.ok(externalGrowth < 4, `external memory back to baseline (+${externalGrowth.toFixed(2)} MiB, tolerance 4)`);
  t.ok(await realChargerWorks(proxy, 'MEM-LAST'), 'the proxy still serves chargers');
});
