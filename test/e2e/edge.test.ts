import t from 'tap';
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
