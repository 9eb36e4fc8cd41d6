/**
 * PROXY protocol through real sockets: a TCP client plays the load balancer, writing the header and
 * then the TLS ClientHello / HTTP request in the same write, into a real https and http server
 * behind acceptProxyProtocol. The handler reports what clientAddressOf(req.socket) says.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import t from 'tap';
import { parseNetworks } from '../../proxy/cidr';
import { announcedEndpointOf, clientAddressOf } from '../../proxy/client-address';
import { acceptProxyProtocol, type ProxyRefusalReason } from '../../proxy/proxy-protocol';
import { serverTlsOptions } from '../../proxy/tls';
import { sleep, waitFor } from '../helpers/net';
import { makeTestPki, tempDir } from '../helpers/pki';

/** v2 header from proxy-protocol.txt 2.2: signature, ver/cmd, fam/proto, length, addresses. */
function v2Header(family: 'IPv4' | 'IPv6' | 'local', src = '', dst = '', sport = 0, dport = 0): Buffer {
  const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  if (family === 'local') return Buffer.concat([sig, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const raw = (a: string) => (family === 'IPv4' ? Buffer.from(a.split('.').map(Number)) : Buffer.from(expand6(a), 'hex'));
  const body = Buffer.concat([raw(src), raw(dst), Buffer.alloc(4)]);
  body.writeUInt16BE(sport, body.length - 4);
  body.writeUInt16BE(dport, body.length - 2);
  const fixed = Buffer.from([0x21, family === 'IPv4' ? 0x11 : 0x21, 0, 0]);
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([sig, fixed, body]);
}

function expand6(a: string): string {
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** A duplex over `tcp` whose first write is prefixed with `prefix` (header + ClientHello in one write). */
function prefixedDuplex(tcp: net.Socket, prefix: Buffer): Duplex {
  let first = true;
  const d = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      const data = first ? Buffer.concat([prefix, chunk]) : chunk;
      first = false;
      tcp.write(data, cb);
    },
    read() {
      tcp.resume();
    },
    final(cb) {
      tcp.end();
      cb();
    },
    destroy(err, cb) {
      tcp.destroy();
      cb(err);
    },
  });
  tcp.on('data', (c) => {
    if (!d.push(c)) tcp.pause();
  });
  tcp.on('end', () => d.push(null));
  tcp.on('error', (e) => d.destroy(e));
  return d;
}

interface Seen {
  address: string;
  port: number | null;
  peer: string;
}

function bodyOf(response: string): Seen {
  return JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as Seen;
}

t.test('PROXY protocol in front of real https and http servers', async (t) => {
  const dir = await tempDir(t, 'ocpp-pp-');
  const pki = await makeTestPki(dir);
  const caPem = readFileSync(pki.caCert);
  let handled = 0;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handled++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ address: clientAddressOf(req.socket), port: announcedEndpointOf(req.socket)?.port ?? null, peer: req.socket.remoteAddress }));
  };
  const httpsServer = https.createServer(serverTlsOptions({ certs: [pki.rsaCert, pki.ecCert], keys: [pki.rsaKey, pki.ecKey], clientCa: null }, 5000), handler);
  const httpServer = http.createServer({ connectionsCheckingInterval: 100 }, handler);
  httpServer.headersTimeout = 400;
  httpServer.requestTimeout = 400;
  const refused: Array<{ peer: string; reason: ProxyRefusalReason }> = [];
  const onRefused = (peer: string, reason: ProxyRefusalReason) => refused.push({ peer, reason });
  const trusted = parseNetworks(['127.0.0.1/32', '::1']);
  const fronts: net.Server[] = [];
  const listen = async (target: net.Server, host: string, trust = trusted): Promise<number> => {
    const front = acceptProxyProtocol(target, { trusted: trust, timeoutMs: 300, onRefused });
    fronts.push(front);
    front.listen(0, host);
    await once(front, 'listening');
    return (front.address() as net.AddressInfo).port;
  };
  const tlsPort = await listen(httpsServer, '127.0.0.1');
  const tlsPort6 = await listen(httpsServer, '::1');
  const plainPort = await listen(httpServer, '127.0.0.1');
  const plainPort6 = await listen(httpServer, '::1');
  const untrustedPort = await listen(httpsServer, '127.0.0.1', parseNetworks(['10.0.0.0/8', 'fd00::/8']));
  t.teardown(async () => {
    for (const f of fronts) f.close();
    httpsServer.closeAllConnections();
    httpServer.closeAllConnections();
  });

  const viaTls = async (port: number, host: string, header: Buffer): Promise<Seen> => {
    const tcp = net.connect(port, host);
    await once(tcp, 'connect');
    const socket = tls.connect({ socket: prefixedDuplex(tcp, header), ca: caPem, servername: 'localhost' });
    await once(socket, 'secureConnect');
    socket.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of socket) text += String(chunk);
    return bodyOf(text);
  };
  /** Writes `bytes` in one go and collects what comes back until the server closes. */
  const exchange = async (port: number, host: string, bytes: Buffer | string[], gapMs = 0): Promise<string> => {
    const tcp = net.connect(port, host);
    await once(tcp, 'connect');
    let text = '';
    tcp.on('data', (c) => (text += String(c)));
    tcp.on('error', () => undefined);
    const closed = once(tcp, 'close');
    if (Buffer.isBuffer(bytes)) tcp.write(bytes);
    else for (const piece of bytes) {
      if (tcp.destroyed) break;
      tcp.write(piece);
      await sleep(gapMs);
    }
    await closed;
    return text;
  };
  const get = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

  await t.test('v1 TCP4 header then the ClientHello: the https handler sees the announced address', async (t) => {
    const seen = await viaTls(tlsPort, '127.0.0.1', Buffer.from('PROXY TCP4 198.51.100.22 203.0.113.7 35646 443\r\n'));
    t.same(seen, { address: '198.51.100.22', port: 35646, peer: '127.0.0.1' });
  });

  await t.test('v2 IPv4 and IPv6 headers into https', async (t) => {
    t.same(await viaTls(tlsPort, '127.0.0.1', v2Header('IPv4', '192.0.2.55', '10.0.0.1', 50123, 443)), { address: '192.0.2.55', port: 50123, peer: '127.0.0.1' });
    const seen = await viaTls(tlsPort6, '::1', v2Header('IPv6', '2001:db8::42', '2001:db8::1', 41000, 443));
    t.same(seen, { address: '2001:db8::42', port: 41000, peer: '::1' }, 'over an IPv6 peer too');
  });

  await t.test('v1 TCP6 and v2 headers into plain http, request in the same write', async (t) => {
    const r1 = await exchange(plainPort6, '::1', Buffer.from(`PROXY TCP6 2001:db8::7 2001:db8::1 1234 80\r\n${get}`));
    t.match(r1, /^HTTP\/1\.1 200/);
    t.same(bodyOf(r1), { address: '2001:db8::7', port: 1234, peer: '::1' });
    const r2 = await exchange(plainPort, '127.0.0.1', Buffer.concat([v2Header('IPv4', '203.0.113.9', '10.0.0.1', 999, 80), Buffer.from(get)]));
    t.same(bodyOf(r2), { address: '203.0.113.9', port: 999, peer: '127.0.0.1' });
  });

  await t.test('keep-alive: every request on the connection carries the announced address', async (t) => {
    const keep = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
    const text = await exchange(plainPort, '127.0.0.1', Buffer.from(`PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n${keep}${keep}${get}`));
    const bodies = text.match(/\{[^}]*\}/g) ?? [];
    t.equal(bodies.length, 3);
    for (const b of bodies) t.equal((JSON.parse(b) as Seen).address, '192.0.2.1');
  });

  await t.test('a header trickled in small pieces still works', async (t) => {
    const header = 'PROXY TCP4 192.0.2.77 192.0.2.2 4242 443\r\n';
    const pieces = [...header.match(/.{1,5}/gs)!, get];
    t.equal(bodyOf(await exchange(plainPort, '127.0.0.1', pieces, 10)).address, '192.0.2.77');
    // TLS with the header in its own segment and the ClientHello later.
    const tcp = net.connect(tlsPort, '127.0.0.1');
    await once(tcp, 'connect');
    tcp.write(v2Header('IPv4', '192.0.2.78', '10.0.0.1', 4343, 443));
    await sleep(50);
    const socket = tls.connect({ socket: tcp, ca: caPem, servername: 'localhost' });
    await once(socket, 'secureConnect');
    socket.end(get);
    let text = '';
    for await (const chunk of socket) text += String(chunk);
    t.equal(bodyOf(text).address, '192.0.2.78');
  });

  await t.test('LOCAL (health checks) and UNKNOWN keep the balancer address', async (t) => {
    t.same(await viaTls(tlsPort, '127.0.0.1', v2Header('local')), { address: '127.0.0.1', port: null, peer: '127.0.0.1' });
    t.equal(bodyOf(await exchange(plainPort, '127.0.0.1', Buffer.from(`PROXY UNKNOWN\r\n${get}`))).address, '127.0.0.1');
  });

  await t.test('a peer outside the trusted networks is refused, even with a valid header', async (t) => {
    const before = handled;
    refused.length = 0;
    const tcp = net.connect(untrustedPort, '127.0.0.1');
    await once(tcp, 'connect');
    const socket = tls.connect({ socket: prefixedDuplex(tcp, Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')), ca: caPem, servername: 'localhost' });
    const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    t.match(err.code, /ECONNRESET|EPIPE/, 'the TLS handshake never happens');
    t.same(refused, [{ peer: '127.0.0.1', reason: 'untrusted_source' }]);
    t.equal(await exchange(untrustedPort, '127.0.0.1', Buffer.from(`PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n${get}`)), '');
    t.equal(handled, before, 'the handler never ran');
  });

  await t.test('missing, garbage, oversized and slow headers are refused', async (t) => {
    const cases: Array<[string, () => Promise<string>, ProxyRefusalReason]> = [
      ['plain HTTP without a header', () => exchange(plainPort, '127.0.0.1', Buffer.from(get)), 'header_invalid'],
      ['a TLS ClientHello without a header', () => exchange(tlsPort, '127.0.0.1', Buffer.from('160301020001', 'hex')), 'header_invalid'],
      ['a bad v1 address', () => exchange(plainPort, '127.0.0.1', Buffer.from(`PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n${get}`)), 'header_invalid'],
      ['a v1 line without CRLF for 200 bytes', () => exchange(plainPort, '127.0.0.1', Buffer.from(`PROXY UNKNOWN ${'a'.repeat(200)}`)), 'header_too_large'],
      ['a v2 header declaring 60000 bytes', () => exchange(plainPort, '127.0.0.1', Buffer.concat([v2Header('local').subarray(0, 14), Buffer.from([0xea, 0x60])])), 'header_too_large'],
      ['half a header, then silence', () => exchange(tlsPort, '127.0.0.1', Buffer.from('PROXY TCP4 192.0.2.1 ')), 'header_timeout'],
      ['connect and close', () => exchange(plainPort, '127.0.0.1', [''], 0).then(() => ''), 'closed_before_header'],
    ];
    for (const [name, run, reason] of cases) {
      refused.length = 0;
      const before = handled;
      const started = Date.now();
      if (reason === 'closed_before_header') {
        const tcp = net.connect(plainPort, '127.0.0.1');
        await once(tcp, 'connect');
        tcp.end();
        await waitFor(() => refused.length > 0, 'the refusal');
      } else {
        t.equal(await run(), '', `${name}: nothing answered`);
      }
      t.same(refused.map((r) => r.reason), [reason], name);
      t.equal(handled, before, `${name}: handler not reached`);
      if (reason === 'header_timeout') t.ok(Date.now() - started >= 250, 'refused only after the timeout');
    }
  });

  await t.test('http header/request timeouts still apply after the hand-off, and closeAllConnections reaches handed-off sockets', async (t) => {
    const started = Date.now();
    const answer = await exchange(plainPort, '127.0.0.1', Buffer.from('PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n'));
    t.match(answer, /^HTTP\/1\.1 408/, 'a slow request is timed out by the http server');
    t.ok(Date.now() - started < 3000);
    const tcp = net.connect(plainPort, '127.0.0.1');
    await once(tcp, 'connect');
    tcp.write(`PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`);
    await once(tcp, 'data');
    const closed = once(tcp, 'close');
    httpServer.closeAllConnections();
    await closed;
    t.pass('kept-alive connection closed by closeAllConnections');
  });
});
