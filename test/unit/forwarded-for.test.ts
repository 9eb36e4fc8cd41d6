import t from 'tap';
import { parseNetworks } from '../../proxy/cidr';
import { clientFromForwardedFor } from '../../proxy/forwarded-for';

// The operator's own fronts: an Envoy tier and a cloud balancer network.
const fronts = parseNetworks(['10.0.0.0/8', 'fd00::/8']);
const read = (header: string | string[] | undefined) => clientFromForwardedFor(header, fronts);

t.test('the rightmost address outside the trusted networks is the client', async (t) => {
  t.equal(read('198.51.100.7'), '198.51.100.7', 'one hop: the front appended the charger');
  t.equal(read('198.51.100.7, 10.1.2.3'), '198.51.100.7', 'a trusted hop to its right is skipped');
  t.equal(read('203.0.113.9, 198.51.100.7, 10.1.2.3, 10.4.5.6'), '198.51.100.7', 'what the client wrote (left) is never read');
  t.equal(read('1.1.1.1,198.51.100.7'), '198.51.100.7', 'no space after the comma');
  t.equal(read(['203.0.113.9', '198.51.100.7']), '198.51.100.7', 'repeated headers: the last one is the rightmost');
});

t.test('ports and IPv6 spellings balancers write', async (t) => {
  t.equal(read('198.51.100.7:4711'), '198.51.100.7', 'IPv4 with a port');
  t.equal(read('[2001:DB8::1]:4711'), '2001:db8::1', 'bracketed IPv6 with a port, in the form Node reports peers in');
  t.equal(read('2001:0db8:0::0001'), '2001:db8::1', 'one address, one spelling (one lockout key)');
  t.equal(read('::ffff:c633:6407'), '::ffff:198.51.100.7', 'IPv4-mapped written in hex: the dotted form Node reports');
  t.equal(read('[2001:db8::1]'), '2001:db8::1', 'bracketed IPv6 without a port');
  t.equal(read('2001:db8::2, fd00::5'), '2001:db8::2', 'bare IPv6, trusted IPv6 hop skipped');
  t.equal(read('::ffff:198.51.100.7'), '::ffff:198.51.100.7', 'IPv4-mapped IPv6 kept as Node reports it on a dual-stack listener');
});

t.test('doubt gives no address (the caller keeps the front\'s own)', async (t) => {
  t.equal(read(undefined), null, 'no header');
  t.equal(read(''), null, 'empty header');
  t.equal(read('unknown'), null, '"unknown" (RFC 7239 style) is not an address');
  t.equal(read('198.51.100.7, _hidden'), null, 'a malformed rightmost entry: not skipped over to an address the client may have written');
  t.equal(read('198.51.100.7, , 10.1.2.3'), null, 'an empty entry met on the way');
  t.equal(read('198.51.100.7, 10.1.2.3:99999x'), null, 'a bad port');
  t.equal(read('[2001:db8::1'), null, 'unclosed bracket');
  t.equal(read('[2001:db8::1]x'), null, 'garbage after the bracket');
  t.equal(read('fe80::1%eth0'), null, 'zone ids are not client addresses');
  t.equal(read('999.1.1.1'), null, 'not an IPv4 address');
  t.equal(read('999.1.1.1:80'), null, 'not an IPv4 address, with a port');
  t.equal(read('198.51.100.7 10.1.2.3'), null, 'two addresses without a comma');
});

t.test('only trusted hops', async (t) => {
  t.equal(read('10.1.2.3'), '10.1.2.3', 'a client inside the operator\'s networks, one front: what the front saw');
  t.equal(read('10.9.9.9, 10.1.2.3'), '10.1.2.3', 'all trusted: the rightmost (the left one may be the client\'s own writing)');
  const many = Array.from({ length: 20 }, (_, i) => `10.0.0.${i + 1}`).join(', ');
  t.equal(read(`198.51.100.7, ${many}`), null, 'more trusted hops than any real chain: no address');
  const sixteen = Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}`).join(', ');
  t.equal(read(`198.51.100.7, ${sixteen}`), null, 'the client behind sixteen trusted hops is past the bound');
  const fifteen = Array.from({ length: 15 }, (_, i) => `10.0.0.${i + 1}`).join(', ');
  t.equal(read(`198.51.100.7, ${fifteen}`), '198.51.100.7', 'fifteen trusted hops: still read');
});
