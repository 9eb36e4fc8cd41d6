/**
 * No secret reaches a log line: the fields named in SECRET_FIELDS are removed at the top of a logged
 * object and one level down, through the real logger, and an object without them is not copied.
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../proxy/log';
import { SECRET_FIELDS, withoutSecrets } from '../../proxy/log-secrets';

const SECRET = 'hunter2-must-not-leak';

/** A logger at debug level writing into an array of parsed lines. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) { raw.push(l); lines.push(JSON.parse(l) as Record<string, unknown>); }
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: sink }), lines, raw };
}

t.test('every secret field, at the top and one level down, never reaches the line', async (t) => {
  const { log, lines, raw } = capture();
  t.same([...SECRET_FIELDS].sort(), ['authorization', 'key', 'password', 'privateKey', 'secret', 'token']);
  for (const field of SECRET_FIELDS) {
    log.info({ event: 'top', [field]: SECRET, kept: 1 });
    log.info({ event: 'nested', headers: { [field]: SECRET, host: 'h' }, kept: 2 });
    log.info({ event: 'nested_object', headers: { [field]: { value: SECRET } } });
  }
  t.equal(lines.length, 3 * SECRET_FIELDS.size);
  t.notOk(raw.some((l) => l.includes(SECRET)), 'the secret is in no line');
  for (const l of lines.filter((l) => l.event === 'top')) t.equal(l.kept, 1, 'the other fields stay');
  for (const l of lines.filter((l) => l.event === 'nested')) t.same(l.headers, { host: 'h' }, 'the other nested fields stay');
});

t.test('a secret field inside an Error is removed; the error keeps its type, message and stack', async (t) => {
  const { log, lines, raw } = capture();
  const err = Object.assign(new TypeError('store refused'), { code: 'E_STORE', password: SECRET });
  log.warn({ event: 'with_error', err });
  t.notOk(raw.some((l) => l.includes(SECRET)));
  t.match(lines[0]!.err, { type: 'TypeError', message: 'store refused', code: 'E_STORE', stack: /TypeError: store refused/ });
  t.equal(err.password, SECRET, 'the logged error itself is not changed');
});

t.test('a child logger\'s bindings lose their secret fields too', async (t) => {
  const { log, lines, raw } = capture();
  log.child({ identity: 'CP-1', token: SECRET }).info({ event: 'from_child' });
  t.notOk(raw.some((l) => l.includes(SECRET)));
  t.match(lines[0], { identity: 'CP-1', event: 'from_child', service: 'ocpp-security-proxy' });
});

t.test('what is not a secret field, or lies deeper, is left alone', async (t) => {
  const clean = { event: 'e', identity: 'CP-1', passwordAgeDays: 3, list: [{ password: 'in-an-array' }], deep: { a: { password: 'two-down' } } };
  t.equal(withoutSecrets(clean), clean, 'no copy for an object without secret fields');
  const inherited = Object.create({ password: SECRET }) as Record<string, unknown>;
  inherited.event = 'e';
  t.equal(withoutSecrets(inherited), inherited, 'inherited fields are not logged by pino, and not looked at');
  const logged = { event: 'e', authorization: SECRET, headers: { authorization: SECRET, host: 'h' } };
  const out = withoutSecrets(logged);
  t.not(out, logged, 'a copy when something goes');
  t.same(out, { event: 'e', headers: { host: 'h' } });
  t.equal(logged.authorization, SECRET, 'the caller\'s object is not changed');
  t.equal(logged.headers.authorization, SECRET, 'nor its nested objects');
});

t.test('an error keeps its cause and its errors; an object with toJSON is logged as toJSON shows it', async (t) => {
  const { log, lines, raw } = capture();
  const inner = new Error('inner cause');
  log.warn({ event: 'caused', err: Object.assign(new Error('outer', { cause: inner }), { token: SECRET }) });
  log.warn({ event: 'aggregate', err: Object.assign(new AggregateError([new Error('first')], 'many'), { key: SECRET }) });
  class Credential {
    constructor(readonly identity: string, readonly password: string, readonly passwordHash: string) {}
    toJSON() { return { identity: this.identity, password: this.password }; }
  }
  log.info({ event: 'to_json', cred: new Credential('CP-1', SECRET, 'HASH-NOT-SHOWN') });
  t.notOk(raw.some((l) => l.includes(SECRET)), 'no secret');
  t.match(lines[0]!.err, { message: /outer: inner cause/, stack: /caused by: Error: inner cause/ }, 'the cause is still shown');
  t.match(lines[1]!.err, { type: 'AggregateError', message: 'many', aggregateErrors: [{ message: 'first' }] }, 'and the aggregated errors');
  t.strictSame(lines[2]!.cred, { identity: 'CP-1' }, 'toJSON\'s view, less its secret field; fields toJSON leaves out stay out');
});

t.test('a __proto__ field is kept as a field', async (t) => {
  const top = JSON.parse('{"__proto__":{"a":1},"password":"x","event":"e"}') as Record<string, unknown>;
  t.equal(JSON.stringify(withoutSecrets(top)), '{"__proto__":{"a":1},"event":"e"}', 'kept in the copy of the line');
  const nested = JSON.parse('{"event":"e","data":{"__proto__":{"a":1},"token":"x"}}') as Record<string, unknown>;
  t.equal(JSON.stringify(withoutSecrets(nested)), '{"event":"e","data":{"__proto__":{"a":1}}}', 'one level down too');
});

t.test('grandchildren and setBindings are covered', async (t) => {
  const { log, lines, raw } = capture();
  const grandchild = log.child({ worker: 2 }).child({ identity: 'CP-2', password: SECRET }, { level: 'debug' });
  grandchild.debug({ event: 'from_grandchild' });
  grandchild.setBindings({ secret: SECRET, phase: 'later' });
  grandchild.info({ event: 'after_set_bindings' });
  t.notOk(raw.some((l) => l.includes(SECRET)), 'no secret');
  t.match(lines[0], { worker: 2, identity: 'CP-2', event: 'from_grandchild' });
  t.match(lines[1], { phase: 'later', event: 'after_set_bindings' });
});
