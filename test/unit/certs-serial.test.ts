import t from 'tap';
import { normaliseSerial, parseNodeName, parseRevokeArgs, SerialError, UsageError } from '../../certs';

t.test('normaliseSerial maps every spelling to lowercase hex without leading zeros', async (t) => {
  const canonical = '3e13400426e1441bf74bf1d18bc08db';
  for (const input of [
    '03E13400426E1441BF74BF1D18BC08DB', // Node TLS getPeerCertificate().serialNumber
    '03:e1:34:00:42:6e:14:41:bf:74:bf:1d:18:bc:08:db', // openssl -text
    '0x3E13400426E1441BF74BF1D18BC08DB',
    ' 0003e13400426e1441bf74bf1d18bc08db ',
    '03 E1 34 00 42 6E 14 41 BF 74 BF 1D 18 BC 08 DB',
  ]) {
    t.equal(normaliseSerial(input), canonical, input);
  }
  t.equal(normaliseSerial('00'), '0');
  t.equal(normaliseSerial('7F'), '7f');
  t.equal(normaliseSerial(normaliseSerial('0A0B')), 'a0b', 'idempotent');
});

t.test('normaliseSerial rejects input that is not hex', async (t) => {
  for (const bad of ['', '   ', 'xyz', '12g4', '::']) t.throws(() => normaliseSerial(bad), SerialError, JSON.stringify(bad));
  try {
    normaliseSerial('nope');
  } catch (err) {
    t.equal((err as SerialError).reason, 'serial_invalid');
  }
});

t.test('parseNodeName reads Node distinguished-name text', async (t) => {
  t.same(parseNodeName('C=DE\nO=Acme GmbH\nCN=SER123'), { C: 'DE', O: 'Acme GmbH', CN: 'SER123' });
  t.same(parseNodeName('CN=a+O=b\nCN=second'), { CN: 'a', O: 'b' }, 'first value wins, multi-valued RDNs split');
  t.same(parseNodeName(''), {});
});

t.test('parseRevokeArgs', async (t) => {
  t.same(parseRevokeArgs(['0A:FF']), { serialHex: 'aff' });
  t.throws(() => parseRevokeArgs([]), UsageError);
  t.throws(() => parseRevokeArgs(['zz']), UsageError);
  t.throws(() => parseRevokeArgs(['01', '02']), UsageError);
  t.throws(() => parseRevokeArgs(['01', '--force']), UsageError);
});
