/** duplicateKeyIn: the first key written twice in one object of a JSON text, escapes undone. */
import t from 'tap';
import { duplicateKeyIn } from '../../proxy/ocpp/duplicate-keys';

t.test('finds a key written twice in one object, at any depth', async (t) => {
  t.equal(duplicateKeyIn('{"a":1,"a":2}'), 'a');
  t.equal(duplicateKeyIn('[2,"id","BootNotification",{"chargingStation":{"serialNumber":"x","model":"m","serialNumber":"y"}}]'), 'serialNumber');
  t.equal(duplicateKeyIn('{"serialNumber":1,"serial\\u004eumber":2}'), 'serialNumber', 'an escaped spelling is the same key');
  t.equal(duplicateKeyIn('[{"a":[{"b":1},{"c":{"d":1,"d":2}}]}]'), 'd', 'inside arrays of objects');
  t.equal(duplicateKeyIn(' { "a" : 1 , "a" : 2 } '), 'a', 'whitespace anywhere');
});

t.test('does not confuse values, strings and separate objects with keys', async (t) => {
  for (const ok of ['{"a":"a","b":"a"}', '[{"a":1},{"a":2}]', '{"a":{"a":{"a":1}}}', '{"a":"x\\",\\"a\\":1","b":2}', '{"a":["a","a"],"b":"{\\"a\\":1,\\"a\\":2}"}',
    '{}', '[]', '[2,"a","A",{}]', '{"a":[],"b":{},"c":[{}],"d":1}', '"a"', '1']) {
    t.equal(duplicateKeyIn(ok), null, ok);
  }
});

t.test('text that is not JSON ends the scan instead of running past the end', async (t) => {
  for (const bad of ['{"a', '{"a\\', '"', '{"a":"b']) t.equal(duplicateKeyIn(bad), null, JSON.stringify(bad));
});

t.test('foldCase: keys that differ only in case count as one (Go and .NET parsers bind either)', async (t) => {
  t.equal(duplicateKeyIn('{"key":"HeartbeatInterval","Key":"AuthorizationKey"}'), null, 'distinct without foldCase');
  t.equal(duplicateKeyIn('{"key":"HeartbeatInterval","Key":"AuthorizationKey"}', true), 'Key', 'the same with it (named as written)');
  t.equal(duplicateKeyIn('{"a":{"Name":1},"b":{"name":2}}', true), null, 'separate objects stay separate');
});
