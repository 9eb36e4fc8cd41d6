import net from 'node:net';
import t from 'tap';
import { isInNetworks, parseNetworks, CidrError } from '../../proxy/cidr';
import { parseProxyHeader, ProxyProtocolError, V1_MAX_BYTES } from '../../proxy/proxy-protocol';

/** A v2 header built byte by byte from proxy-protocol.txt section 2.2 (independent of the parser). */
function v2(opts: { command?: number; family?: number; transport?: number; body?: Buffer; version?: number }): Buffer {
  const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  const body = opts.body ?? Buffer.alloc(0);
  const fixed = Buffer.alloc(4);
  fixed[0] = ((opts.version ?? 2) << 4) | (opts.command ?? 1);
  fixed[1] = ((opts.family ?? 1) << 4) | (opts.transport ?? 1);
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([sig, fixed, body]);
}

function ipv4Body(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

function ipv6Body(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  Buffer.from(src, 'hex').copy(b, 0);
  Buffer.from(dst, 'hex').copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProxyProtocolError) return err.reason;
    throw err;
  }
  return 'no error';
}

t.test('v1 TCP4 and TCP6 lines give the source endpoint and the header length', async (t) => {
  const line = 'PROXY TCP4 198.51.100.22 203.0.113.7 35646 443\r\n';
  const h = parseProxyHeader(Buffer.from(line + '\x16\x03\x01'));
  t.same(h, {
    version: 1,
    command: 'proxy',
    source: { address: '198.51.100.22', port: 35646, family: 'IPv4' },
    destination: { address: '203.0.113.7', port: 443, family: 'IPv4' },
    length: line.length,
  });
  const h6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0001 2001:db8::2 65535 0\r\n'));
  t.same(h6?.source, { address: '2001:db8::1', port: 65535, family: 'IPv6' }, 'IPv6 is compressed the way Node reports peers');
  t.equal(h6?.destination?.port, 0);
});

t.test('v1 UNKNOWN keeps the peer address', async (t) => {
  t.same(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { version: 1, command: 'proxy', source: null, destination: null, length: 15 });
  t.equal(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 1 2\r\nxyz'))?.source, null);
});

t.test('v1 incomplete input asks for more bytes', async (t) => {
  for (const partial of ['P', 'PROXY', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r']) {
    t.equal(parseProxyHeader(Buffer.from(partial)), null, JSON.stringify(partial));
  }
  t.equal(parseProxyHeader(Buffer.alloc(0)), null);
});

t.test('v1 malformed lines are refused with header_invalid', async (t) => {
  for (const bad of [
    'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n',
    'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n',
    'PROXY TCP4 ::1 ::1 1 2\r\n',
    'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n',
    'PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n',
    'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
    'GET / HTTP/1.1\r\n',
    '\x16\x03\x01\x02\x00',
  ]) {
    t.equal(failure(() => parseProxyHeader(Buffer.from(bad, 'latin1'))), 'header_invalid', JSON.stringify(bad));
  }
});

t.test('v1 lines longer than 107 bytes are refused as too large', async (t) => {
  const long = Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(V1_MAX_BYTES));
  t.equal(failure(() => parseProxyHeader(long)), 'header_too_large');
  const exact = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES - 16)}\r\n`);
  t.equal(exact.length, V1_MAX_BYTES);
  t.equal(parseProxyHeader(exact)?.length, V1_MAX_BYTES, 'exactly 107 bytes is fine');
});

t.test('v2 PROXY over IPv4 and IPv6, TLVs skipped, trailing bytes left alone', async (t) => {
  const h4 = parseProxyHeader(Buffer.concat([v2({ body: ipv4Body([192, 0, 2, 10], [10, 0, 0, 1], 40000, 8443) }), Buffer.from('rest')]));
  t.same(h4, {
    version: 2,
    command: 'proxy',
    source: { address: '192.0.2.10', port: 40000, family: 'IPv4' },
    destination: { address: '10.0.0.1', port: 8443, family: 'IPv4' },
    length: 28,
  });
  const tlvs = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32, 0x04, 0x00, 0x00]); // ALPN "h2", NOOP empty
  const body6 = Buffer.concat([ipv6Body('20010db8000000000000000000000abc', '00000000000000000000000000000001', 1, 2), tlvs]);
  const h6 = parseProxyHeader(v2({ family: 2, body: body6 }));
  t.same(h6?.source, { address: '2001:db8::abc', port: 1, family: 'IPv6' });
  t.equal(h6?.destination?.address, '::1');
  t.equal(h6?.length, 16 + 36 + tlvs.length);
});

t.test('v2 LOCAL, UNSPEC and UNIX keep the peer address', async (t) => {
  const local = parseProxyHeader(v2({ command: 0, family: 0, transport: 0 }));
  t.same(local, { version: 2, command: 'local', source: null, destination: null, length: 16 });
  t.equal(parseProxyHeader(v2({ command: 0, body: ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2) }))?.source, null, 'LOCAL ignores an address block');
  t.equal(parseProxyHeader(v2({ family: 0, transport: 0 }))?.source, null);
  t.equal(parseProxyHeader(v2({ family: 3, body: Buffer.alloc(216) }))?.source, null);
});

t.test('v2 incomplete input asks for more bytes', async (t) => {
  const full = v2({ body: ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2) });
  for (let n = 1; n < full.length; n++) t.equal(parseProxyHeader(full.subarray(0, n)), null, `${n} bytes`);
  t.equal(parseProxyHeader(full)?.length, full.length);
});

t.test('v2 malformed headers are refused', async (t) => {
  const addr = ipv4Body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
  const cases: Array<[string, Buffer, string]> = [
    ['version 1 in the binary form', v2({ version: 1, body: addr }), 'header_invalid'],
    ['command 2', v2({ command: 2, body: addr }), 'header_invalid'],
    ['family 4', v2({ family: 4, body: addr }), 'header_invalid'],
    ['transport 3', v2({ transport: 3, body: addr }), 'header_invalid'],
    ['INET with a short address block', v2({ body: addr.subarray(0, 8) }), 'header_invalid'],
    ['INET6 with an IPv4-sized block', v2({ family: 2, body: addr }), 'header_invalid'],
    ['UDP on a TCP listener', v2({ transport: 2, body: addr }), 'header_invalid'],
    ['truncated TLV', v2({ body: Buffer.concat([addr, Buffer.from([0x04, 0x00])]) }), 'header_invalid'],
    ['TLV overrunning the header', v2({ body: Buffer.concat([addr, Buffer.from([0x04, 0x00, 0x09, 0x00])]) }), 'header_invalid'],
    ['length beyond the cap', v2({ body: Buffer.concat([addr, Buffer.from([0x04, 0x10, 0x00]), Buffer.alloc(0x1000)]) }), 'header_too_large'],
  ];
  for (const [name, buf, reason] of cases) t.equal(failure(() => parseProxyHeader(buf)), reason, name);
  const bigButAllowed = v2({ body: Buffer.concat([addr, Buffer.from([0x04, 0x03, 0x00]), Buffer.alloc(0x300)]) });
  t.equal(parseProxyHeader(bigButAllowed, 4096)?.length, bigButAllowed.length, 'a larger cap admits it');
  t.equal(failure(() => parseProxyHeader(bigButAllowed, 256)), 'header_too_large');
  t.equal(failure(() => parseProxyHeader(Buffer.from('0d0a0d0a000d0a5155495400', 'hex'))), 'header_invalid', 'near-miss signature');
});

t.test('parseNetworks and isInNetworks', async (t) => {
  const nets = parseNetworks(['10.0.0.0/8', ' 192.0.2.7 ', 'fd00::/8', '::1']);
  t.ok(isInNetworks(nets, '10.20.30.40'));
  t.ok(isInNetworks(nets, '::ffff:10.20.30.40'), 'IPv4-mapped peers match IPv4 networks');
  t.ok(isInNetworks(nets, '192.0.2.7'));
  t.notOk(isInNetworks(nets, '192.0.2.8'));
  t.ok(isInNetworks(nets, 'fd12:3456::1'));
  t.ok(isInNetworks(nets, '::1'));
  t.notOk(isInNetworks(nets, '127.0.0.1'));
  t.notOk(isInNetworks(nets, ''));
  t.notOk(isInNetworks(nets, undefined));
  t.notOk(isInNetworks(parseNetworks([]), '10.0.0.1'), 'an empty list trusts nobody');
  t.type(parseNetworks([]), net.BlockList);
  for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0.0/', '10.0.0.0/x', '']) {
    t.throws(() => parseNetworks([bad]), CidrError, JSON.stringify(bad));
  }
  t.throws(() => parseNetworks(['10.0.0.0/33']), { reason: 'cidr_invalid', message: /10\.0\.0\.0\/33/ });
});
