import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startLegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { seedCharger, startTestProxy, TEST_PKI_DIR, type TestProxy } from '../helpers/proxy';

const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

/** Opens TCP to the proxy, writes `header`, then speaks TLS + a WebSocket upgrade over it; resolves the HTTP status (0 if the socket was closed). */
function throughProxyHeader(proxy: TestProxy, header: Buffer, identity: string, password: string): Promise<number> {
  return new Promise((resolve) => {
    const raw = net.connect({ host: '127.0.0.1', port: proxy.addresses.tls.port }, () => {
      raw.write(header);
      const secure = tls.connect({ socket: raw, ca: proxy.caPem, servername: 'localhost' });
      secure.on('error', () => resolve(0));
      secure.on('close', () => resolve(0));
      secure.once('secureConnect', () => {
        secure.write([`GET /ocpp/${identity} HTTP/1.1`, 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: ocpp1.6',
          `Authorization: ${basic(identity, password)}`, '', ''].join('\r\n'));
      });
      secure.once('data', (d) => { resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(d.toString())?.[1] ?? 0)); secure.destroy(); });
    });
    raw.on('error', () => resolve(0));
  });
}

/** PROXY v2 header for TCP over IPv4. */
function proxyV2(src: string, dst: string, srcPort: number, dstPort: number): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const addr = Buffer.alloc(12);
  src.split('.').forEach((o, i) => addr.writeUInt8(Number(o), i));
  dst.split('.').forEach((o, i) => addr.writeUInt8(Number(o), 4 + i));
  addr.writeUInt16BE(srcPort, 8);
  addr.writeUInt16BE(dstPort, 10);
  const head = Buffer.from([0x21, 0x11, 0x00, 12]);
  return Buffer.concat([sig, head, addr]);
}

t.test('PROXY protocol: trusted balancer sets the logged and rate-limited address; others are refused', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, proxyProtocol: 'true', trustedProxyCidrs: '127.0.0.1/32', addressLockoutThreshold: '2', lockoutThreshold: '100' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'PP1', password: 'proxy-protocol-password' });

  t.equal(await throughProxyHeader(proxy, Buffer.from('PROXY TCP4 127.9.9.9 127.0.0.1 40000 8443\r\n'), 'PP1', 'proxy-protocol-password'), 101, 'v1 header then TLS: admitted');
  t.ok(proxy.logs.some((l) => l.event === 'session_started' && l.remoteAddress === '127.9.9.9'), 'session logged with the announced address');
  for (let i = 0; i < 2; i++) t.equal(await throughProxyHeader(proxy, proxyV2('127.8.8.8', '127.0.0.1', 40001, 8443), 'PP1', 'wrong-password-value'), 401, 'v2 header: wrong password');
  t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.remoteAddress === '127.8.8.8' && l.reason === 'bad_password'), 'rejection logged with the v2 address');
  t.equal(await throughProxyHeader(proxy, proxyV2('127.8.8.8', '127.0.0.1', 40002, 8443), 'PP1', 'proxy-protocol-password'), 401, 'that announced address is now locked out');
  t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.remoteAddress === '127.8.8.8' && l.reason === 'locked_out'), 'lockout applies to the announced address');
  t.equal(await throughProxyHeader(proxy, Buffer.from('PROXY TCP4 127.9.9.9 127.0.0.1 40003 8443\r\n'), 'PP1', 'proxy-protocol-password'), 101, 'another announced address is unaffected');
  t.equal(await throughProxyHeader(proxy, Buffer.from('GARBAGE\r\n'), 'PP1', 'proxy-protocol-password'), 0, 'no valid header: connection refused');

  const strict = await startTestProxy({ backend: csms.url, proxyProtocol: 'true', trustedProxyCidrs: '127.0.0.2/32' });
  t.teardown(() => strict.stop());
  await seedCharger(strict, { identity: 'PP1', password: 'proxy-protocol-password' });
  t.equal(await throughProxyHeader(strict, Buffer.from('PROXY TCP4 127.9.9.9 127.0.0.1 40000 8443\r\n'), 'PP1', 'proxy-protocol-password'), 0, 'header from an untrusted network: refused');
  await waitFor(() => strict.logs.some((l) => l.event === 'proxy_protocol_refused' && l.reason === 'untrusted_source'), 'refusal logged');
});

t.test('forwarded client certificate: honoured from a trusted front, ignored from anyone else', async (t) => {
  const pki = await makeTestPki(TEST_PKI_DIR);
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, plainListen: '127.0.0.1:0', trustedForwarderCidrs: '127.0.0.2/32', forwardedClientCertHeader: 'x-forwarded-client-cert' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'EDGE3', minProfile: 3, serial: 'SER-EDGE3' });
  const cert = await pki.charger('SER-EDGE3');
  const xfcc = `Hash=00;Cert="${encodeURIComponent(readFileSync(cert.certPath, 'utf8'))}"`;
  const attempt = (localAddress: string) => new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${proxy.plainUrl}/EDGE3`, ['ocpp1.6'], { localAddress, headers: { 'x-forwarded-client-cert': xfcc, 'x-forwarded-proto': 'https' } } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
  t.equal(await attempt('127.0.0.1'), 401, 'from an untrusted address the forwarded certificate is ignored (plain = Profile 1 < 3)');
  t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.identity === 'EDGE3' && l.reason === 'profile_too_low'), 'refused as profile_too_low');
  t.equal(await attempt('127.0.0.2'), 101, 'from the trusted front it counts as Profile 3');
  await waitFor(() => proxy.logs.some((l) => l.event === 'session_started' && l.identity === 'EDGE3' && l.profile === 3), 'session on Profile 3');

  // On the TLS listener the proxy terminated TLS itself: a forwarded certificate there came from the
  // client (or through a layer-4 balancer), never from a TLS-terminating front, even from its network.
  const overTls = () => new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${proxy.tlsUrl}/EDGE3`, ['ocpp1.6'], { localAddress: '127.0.0.2', ca: proxy.caPem, servername: 'localhost', headers: { 'x-forwarded-client-cert': xfcc, 'x-forwarded-proto': 'https' } } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
  const sessionsBefore = proxy.logs.filter((l) => l.event === 'session_started' && l.identity === 'EDGE3').length;
  t.equal(await overTls(), 401, 'TLS listener, trusted network, forwarded certificate but none in the handshake: not Profile 3');
  t.ok(proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.identity === 'EDGE3' && l.reason === 'profile_too_low').length >= 2, 'refused as profile_too_low (Profile 2)');
  t.equal(proxy.logs.filter((l) => l.event === 'session_started' && l.identity === 'EDGE3').length, sessionsBefore, 'no session');
});

/** Opens a WebSocket to the plain listener from `localAddress` with the given headers; the socket stays open on 101. */
function openPlain(proxy: TestProxy, localAddress: string, identity: string, password: string, headers: Record<string, string>): Promise<{ status: number; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${proxy.plainUrl}/${identity}`, ['ocpp1.6'], { localAddress, headers: { ...headers, authorization: basic(identity, password) } } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => { res.resume(); resolve({ status: res.statusCode ?? 0, ws }); });
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('error', (e) => {
      if (/Unexpected server response/.test(e.message)) return;
      if (/socket hang up|ECONNRESET/.test(e.message)) resolve({ status: 0, ws });
      else reject(e);
    });
  });
}

t.test('X-Forwarded-For from a trusted front: each charger behind it has its own address; the front itself is never locked out', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({
    backend: csms.url, plainListen: '127.0.0.1:0', trustedForwarderCidrs: '127.0.0.2/32',
    addressLockoutThreshold: '2', lockoutThreshold: '100', maxConnectionsPerAddress: '2',
  });
  t.teardown(() => proxy.stop());
  for (const id of ['XF1', 'XF2', 'XF3', 'XF4']) await seedCharger(proxy, { identity: id, password: `password-of-${id}` });
  await seedCharger(proxy, { identity: 'XF6', password: 'password-of-XF6', minProfile: 1 }); // reaches the plain port directly
  const open: WebSocket[] = [];
  t.teardown(() => open.forEach((ws) => ws.terminate()));
  const via = (localAddress: string, identity: string, password: string, xff?: string) =>
    openPlain(proxy, localAddress, identity, password, { 'x-forwarded-proto': 'https', ...(xff ? { 'x-forwarded-for': xff } : {}) }).then((r) => {
      if (r.status === 101) open.push(r.ws);
      return r.status;
    });
  const rejectedFrom = (address: string, reason: string) => proxy.logs.filter((l) => l.event === 'upgrade_rejected' && l.remoteAddress === address && l.reason === reason).length;

  // The client wrote an address of its own on the left; the front appended the one it saw.
  for (let i = 0; i < 2; i++) t.equal(await via('127.0.0.2', 'XF1', 'wrong-guess', '203.0.113.50, 198.51.100.7'), 401, 'wrong password through the front');
  t.equal(rejectedFrom('198.51.100.7', 'bad_password'), 2, 'failures logged with the address the front saw, not the one the client wrote');
  t.equal(await via('127.0.0.2', 'XF1', 'password-of-XF1', '198.51.100.7'), 401, 'that charger address is locked out');
  t.equal(rejectedFrom('198.51.100.7', 'locked_out'), 1, 'as locked_out');
  t.equal(await via('127.0.0.2', 'XF2', 'password-of-XF2', '198.51.100.8'), 101, 'another charger through the same front is admitted');
  const seen = csms.handshakes.find((h) => h.identity === 'XF2');
  t.equal(seen?.headers['x-forwarded-for'], '198.51.100.8', 'the CSMS hears the charger\'s address');
  t.equal(seen?.headers['x-forwarded-proto'], 'https', 'and that TLS was terminated at the front');
  const appended = await openPlain(proxy, '127.0.0.2', 'XF2', 'password-of-XF2', { 'x-forwarded-proto': 'https, http', 'x-forwarded-for': '198.51.100.40' });
  t.equal(appended.status, 401, 'X-Forwarded-Proto is read from the right: a client\'s "https" before the front\'s "http" is no TLS');
  t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.remoteAddress === '198.51.100.40' && l.reason === 'profile_too_low'), 'refused as Profile 1');

  // A front that names no address: failures count for the identity only, never for the front.
  for (let i = 0; i < 3; i++) t.equal(await via('127.0.0.2', 'XF1', 'wrong-guess'), 401, 'wrong password, no X-Forwarded-For');
  t.equal(rejectedFrom('127.0.0.2', 'bad_password'), 3, 'logged with the front\'s own address');
  t.equal(await via('127.0.0.2', 'XF3', 'password-of-XF3'), 101, 'past the address threshold, the front still lets chargers in');
  t.equal(await via('127.0.0.2', 'XF4', 'password-of-XF4', 'not-an-address'), 101, 'an unreadable X-Forwarded-For counts as none');
  const warned = proxy.logs.filter((l) => l.event === 'edge_address_missing');
  t.equal(warned.length, 1, 'the operator is told, once a minute at most, that the front names no address');
  t.equal(warned[0]?.header, 'absent', 'and why');
  t.equal(open.length, 3, 'three sessions open through the front, over the per-address cap of 2: the front\'s connections are not capped');
  // The cap applies to the charger addresses the front names instead.
  for (const id of ['XF8', 'XF9', 'XF10']) await seedCharger(proxy, { identity: id, password: `password-of-${id}` });
  t.equal(await via('127.0.0.2', 'XF8', 'password-of-XF8', '198.51.100.60'), 101, 'first connection of a named address');
  t.equal(await via('127.0.0.2', 'XF9', 'password-of-XF9', '198.51.100.60'), 101, 'second');
  t.equal(await via('127.0.0.2', 'XF10', 'password-of-XF10', '198.51.100.60'), 503, 'a third from the same named address: over the cap');
  t.equal(rejectedFrom('198.51.100.60', 'too_many_connections_from_address'), 1, 'logged with the named address');
  t.equal(await via('127.0.0.2', 'XF10', 'password-of-XF10', '198.51.100.61'), 101, 'another named address is not affected');
  open.splice(open.length - 3, 1)[0]!.terminate(); // XF8 leaves
  await waitFor(() => proxy.server.sessions.get('XF8') === undefined, 'XF8 gone');
  t.equal(await via('127.0.0.2', 'XF8', 'password-of-XF8', '198.51.100.60'), 101, 'a slot freed by a closed connection is free again');

  // From anywhere else the header is the client's own claim: ignored, and the per-address cap holds.
  for (let i = 0; i < 2; i++) t.equal(await via('127.0.0.3', 'XF6', 'wrong-guess', `198.51.100.${30 + i}`), 401, 'untrusted peer, forged X-Forwarded-For');
  t.equal(rejectedFrom('127.0.0.3', 'bad_password'), 2, 'failures counted for the real peer');
  t.equal(await via('127.0.0.3', 'XF6', 'password-of-XF6', '198.51.100.99'), 401, 'the real peer is locked out whatever it claims');
  t.equal(rejectedFrom('127.0.0.3', 'locked_out'), 1, 'as locked_out');
  const held = await Promise.all([1, 2].map(() => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: proxy.addresses.plain!.port, localAddress: '127.0.0.4' }, () => resolve(s));
    s.on('error', reject);
  })));
  t.teardown(() => held.forEach((s) => s.destroy()));
  t.equal((await openPlain(proxy, '127.0.0.4', 'XF6', 'password-of-XF6', {})).status, 0, 'an untrusted peer holding two connections has its third cut: the per-address cap holds there');
});

t.test('familiar address through a front: the charger address it names, never the front\'s own', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, plainListen: '127.0.0.1:0', trustedForwarderCidrs: '127.0.0.2/32', lockoutThreshold: '2', addressLockoutThreshold: '100' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'XF5', password: 'password-of-XF5' });
  const via = async (identity: string, password: string, xff?: string) => {
    const r = await openPlain(proxy, '127.0.0.2', identity, password, { 'x-forwarded-proto': 'https', ...(xff ? { 'x-forwarded-for': xff } : {}) });
    r.ws.terminate();
    return r.status;
  };
  t.equal(await via('XF5', 'password-of-XF5', '198.51.100.20'), 101, 'admitted from 198.51.100.20 (now its familiar address)');
  await waitFor(() => proxy.logs.some((l) => l.event === 'session_ended' && l.identity === 'XF5'), 'first session over');
  for (let i = 0; i < 2; i++) t.equal(await via('XF5', 'wrong-guess', '198.51.100.21'), 401, 'guesses from elsewhere');
  t.equal(await via('XF5', 'password-of-XF5', '198.51.100.21'), 401, 'the identity is locked out from there');
  t.equal(await via('XF5', 'password-of-XF5'), 401, 'and through the front naming no address');
  t.equal(await via('XF5', 'password-of-XF5', '198.51.100.20'), 101, 'from its familiar address it still gets in');
  t.ok(proxy.logs.some((l) => l.event === 'lockout_spared' && l.remoteAddress === '198.51.100.20'), 'lockout_spared logged with that address');

  // Last admitted through the front naming no address: the front's own address is not recorded as
  // familiar, so a connection from the front's host straight to the TLS listener is not spared.
  await seedCharger(proxy, { identity: 'XF7', password: 'password-of-XF7' });
  t.equal(await via('XF7', 'password-of-XF7'), 101, 'admitted through the front, no X-Forwarded-For');
  await waitFor(() => proxy.logs.some((l) => l.event === 'session_ended' && l.identity === 'XF7'), 'that session over');
  for (let i = 0; i < 2; i++) t.equal(await via('XF7', 'wrong-guess', '198.51.100.22'), 401, 'guesses lock the identity out');
  const direct = await new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(`${proxy.tlsUrl}/XF7`, ['ocpp1.6'], { localAddress: '127.0.0.2', ca: proxy.caPem, servername: 'localhost', headers: { authorization: basic('XF7', 'password-of-XF7') } } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
  t.equal(direct, 401, 'from the front\'s host to the TLS listener, the right password is still locked out (not spared)');
});

t.test('HTTP passthrough through a front: the CSMS hears what the front vouches for, never what a client claims', async (t) => {
  const seen: Record<string, string | undefined>[] = [];
  const origin = http.createServer((req, res) => {
    seen.push({ xff: req.headers['x-forwarded-for'] as string | undefined, proto: req.headers['x-forwarded-proto'] as string | undefined, xfcc: req.headers['x-forwarded-client-cert'] as string | undefined, forwarded: req.headers.forwarded });
    res.end('ok');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  t.teardown(() => origin.close());
  const port = (origin.address() as { port: number }).port;
  const proxy = await startTestProxy({ backend: `ws://127.0.0.1:${port}/ocpp`, plainListen: '127.0.0.1:0', httpPassthrough: 'true', trustedForwarderCidrs: '127.0.0.2/32', forwardedClientCertHeader: 'x-forwarded-client-cert' });
  t.teardown(() => proxy.stop());
  const claims = { 'x-forwarded-for': '203.0.113.5, 198.51.100.70', 'x-forwarded-proto': 'https', 'x-forwarded-client-cert': 'Hash=00', forwarded: 'for=203.0.113.5' };
  const get = (localAddress: string, headers: Record<string, string> = claims) => new Promise<void>((resolve, reject) => {
    http.get(`${proxy.plainUrl!.replace(/^ws/, 'http')}/status`, { localAddress, headers }, (res) => { res.resume(); res.on('end', () => resolve()); }).on('error', reject);
  });
  await get('127.0.0.2');
  t.same(seen[0], { xff: '198.51.100.70', proto: 'https', xfcc: undefined, forwarded: undefined }, 'from the trusted front: the charger address it names and its TLS; no forwarded certificate or Forwarded passed on');
  await get('127.0.0.3');
  t.same(seen[1], { xff: '127.0.0.3', proto: 'http', xfcc: undefined, forwarded: undefined }, 'from anyone else: the peer, plain HTTP; none of its claims');
  await get('127.0.0.2', {});
  t.same(seen[2], { xff: '127.0.0.2', proto: 'http', xfcc: undefined, forwarded: undefined }, 'the front\'s own request (a health check): its address');
  t.notOk(proxy.logs.some((l) => l.event === 'edge_address_missing'), 'no warning for it: it is no charger');
});
