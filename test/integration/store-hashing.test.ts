/**
 * Server secret, sealing, password hashing and the verified-password cache. Prints timings of
 * hashGenerated+verify and scrypt verify (no timed assertions).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreError } from '../../proxy/store/errors';
import { DEFAULT_SCRYPT, PasswordHasher } from '../../proxy/store/hashing';
import { Sealer } from '../../proxy/store/sealed';
import { GENERATED_SECRET_FILE, deriveServerSecret, loadServerSecret, openToOthers, parseSecretText } from '../../proxy/store/secret';
import { VerifiedCache, verifyWithCache } from '../../proxy/store/verified-cache';

const FAST_SCRYPT = { N: 1 << 10, r: 8, p: 1 };
const secretA = deriveServerSecret(Buffer.alloc(32, 1), 'env');
const secretB = deriveServerSecret(Buffer.alloc(32, 2), 'env');

async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return null;
}

t.test('server secret', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'store-secret-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));

  const hex = randomBytes(32).toString('hex');
  const fromEnv = await loadServerSecret({ env: { OCPP_PROXY_SECRET: hex } });
  t.equal(fromEnv.source, 'env');
  t.equal(fromEnv.passwordKey.length, 32);
  t.notSame(fromEnv.passwordKey, fromEnv.sealKey, 'subkeys differ');
  t.notSame(fromEnv.sealKey, fromEnv.cacheKey, 'subkeys differ');
  const b64 = await loadServerSecret({ env: { OCPP_PROXY_SECRET: Buffer.from(hex, 'hex').toString('base64') } });
  t.same(b64.passwordKey, fromEnv.passwordKey, 'hex and base64 of the same bytes give the same keys');

  const file = path.join(dir, 'explicit');
  await fs.writeFile(file, `  ${hex}\n`, { mode: 0o600 });
  const fromFile = await loadServerSecret({ file, env: { OCPP_PROXY_SECRET: randomBytes(32).toString('hex') } });
  t.equal(fromFile.source, 'file', 'explicit file wins over env');
  t.same(fromFile.passwordKey, fromEnv.passwordKey);
  t.same(fromFile.warnings, []);
  await fs.chmod(file, 0o644);
  t.match((await loadServerSecret({ file })).warnings[0], /group\/others/, 'open mode is reported');
  await fs.chmod(file, 0o640);
  t.match((await loadServerSecret({ file })).warnings[0], /group\/others/, 'group-readable, owned by this user: reported (the group may be shared)');

  // Who may read: the rule itself, for users a test run cannot switch to.
  const pod = { uid: 65532, gid: 65532, groups: [65532] };
  t.equal(openToOthers({ mode: 0o100440, uid: 0, gid: 65532 }, pod), false, 'a Kubernetes Secret for the pod\'s fsGroup (root-owned, 0440): fine');
  t.equal(openToOthers({ mode: 0o100440, uid: 0, gid: 100 }, { uid: 1000, gid: 1000, groups: [1000] }), true, 'root-owned for a group the process is not in: reported');
  t.equal(openToOthers({ mode: 0o100640, uid: 1000, gid: 100 }, { uid: 1000, gid: 100, groups: [100] }), true, 'the user\'s own file readable by its shared primary group: reported');
  t.equal(openToOthers({ mode: 0o100460, uid: 0, gid: 65532 }, pod), true, 'group-writable: reported');
  t.equal(openToOthers({ mode: 0o100444, uid: 0, gid: 65532 }, pod), true, 'readable by others: reported');
  t.equal(openToOthers({ mode: 0o100400, uid: 0, gid: 0 }, pod), false, 'owner only: fine');
  t.equal(openToOthers({ mode: 0o100440, uid: 0, gid: 0 }, { uid: 0, gid: 0, groups: [0] }), true, 'a root process gets no exception');

  const dataDir = path.join(dir, 'data');
  const gen = await loadServerSecret({ generateIn: dataDir, env: {} });
  t.equal(gen.source, 'generated');
  t.equal((await fs.stat(path.join(dataDir, GENERATED_SECRET_FILE))).mode & 0o777, 0o600, 'generated file is 0600');
  const again = await loadServerSecret({ generateIn: dataDir, env: {} });
  t.same(again.passwordKey, gen.passwordKey, 'generated secret is reused');
  t.equal(again.source, 'generated', 'and still reported as generated (a replica\'s own)');

  const missing = await errorOf(() => loadServerSecret({ env: {} }));
  t.ok(missing instanceof StoreError && missing.reason === 'secret_missing', 'no source: secret_missing');
  const short = await errorOf(() => loadServerSecret({ env: { OCPP_PROXY_SECRET: 'abcd1234' } }));
  t.ok(short instanceof StoreError && short.reason === 'secret_invalid' && /too short/.test(short.message));
  t.notMatch(String((short as Error).message), /abcd1234/, 'value not in message');
  const junk = await errorOf(() => parseSecretText('not a secret!', 'test'));
  t.ok(junk instanceof StoreError && junk.reason === 'secret_invalid');
  const nofile = await errorOf(() => loadServerSecret({ file: path.join(dir, 'nope') }));
  t.ok(nofile instanceof StoreError && nofile.reason === 'secret_missing' && nofile.message.includes('nope'));
});

t.test('sealing', async (t) => {
  const sealer = new Sealer(secretA.sealKey);
  const secretText = 'pending-PASSWORD-1234567890';
  const sealed = sealer.seal(secretText, 'CP1');
  t.notMatch(sealed, new RegExp(secretText), 'ciphertext does not show the value');
  t.not(sealer.seal(secretText, 'CP1'), sealed, 'random IV: sealing twice differs');
  t.equal(sealer.open(sealed, 'CP1').toString(), secretText);
  const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]);
  t.same(sealer.open(sealer.seal(binary)), binary, 'binary round trip');

  const raw = Buffer.from(sealed.slice(3), 'base64url');
  const cases: [string, string][] = [];
  for (const at of [0, 13, 30, raw.length - 1]) {
    const copy = Buffer.from(raw);
    copy[at] ^= 1;
    cases.push([`bit flipped at ${at}`, 'v1.' + copy.toString('base64url')]);
  }
  cases.push(['truncated', sealed.slice(0, 20)], ['unknown format', 'v2.' + sealed.slice(3)], ['empty', '']);
  for (const [name, bad] of cases) {
    const err = await errorOf(() => sealer.open(bad, 'CP1'));
    t.ok(err instanceof StoreError && err.reason === 'seal_invalid', `${name}: seal_invalid`);
    t.notMatch(String((err as Error).message), secretText, `${name}: no value in message`);
  }
  const otherAad = await errorOf(() => sealer.open(sealed, 'CP2'));
  t.ok(otherAad instanceof StoreError && otherAad.reason === 'seal_invalid', 'bound to its identity');
  const otherKey = await errorOf(() => new Sealer(secretB.sealKey).open(sealed, 'CP1'));
  t.ok(otherKey instanceof StoreError && /different server secret/.test(otherKey.message), 'other secret fails closed');
  const shortKey = await errorOf(() => new Sealer(Buffer.alloc(16)));
  t.ok(shortKey instanceof StoreError && shortKey.reason === 'secret_invalid', 'seal key must be 32 bytes');
});

t.test('password hashing', async (t) => {
  const hasher = new PasswordHasher(secretA.passwordKey, FAST_SCRYPT);
  const pw = Buffer.from('Abcdefghijklmnop-1234');

  const g = hasher.hashGenerated(pw);
  t.equal(g.scheme, 'hmac-sha256');
  t.notMatch(JSON.stringify(g), /Abcdefghijklmnop/, 'hash does not contain the password');
  t.not(hasher.hashGenerated(pw).hash, g.hash, 'salted: same password, different hash');
  t.equal(await hasher.verify(pw, g), true);
  t.equal(await hasher.verify(Buffer.from('Abcdefghijklmnop-1235'), g), false, 'wrong password');
  t.equal(await hasher.verify(Buffer.alloc(0), g), false, 'empty password');
  t.equal(await new PasswordHasher(secretB.passwordKey).verify(pw, g), false, 'wrong server secret fails');

  const o = await hasher.hashOperator(pw);
  t.equal(o.scheme, 'scrypt');
  t.same(o.params, FAST_SCRYPT);
  t.equal(await hasher.verify(pw, o), true);
  t.equal(await hasher.verify(Buffer.from('wrong'), o), false);
  t.equal(await new PasswordHasher(secretB.passwordKey).verify(pw, o), true, 'scrypt hashes do not depend on the secret');

  // OCPP 1.6 AuthorizationKey: 20 raw bytes, not valid UTF-8.
  const binary = Buffer.from('0001020304050607ffff0001020304050607ffff', 'hex');
  for (const h of [hasher.hashGenerated(binary), await hasher.hashOperator(binary)]) {
    t.equal(await hasher.verify(binary, h), true, `${h.scheme}: binary password verifies`);
    t.equal(await hasher.verify(Buffer.from(binary.toString('utf8')), h), false, `${h.scheme}: lossy UTF-8 copy does not`);
    t.equal(await hasher.verify(Buffer.from(binary.toString('hex')), h), false, `${h.scheme}: hex text is a different password`);
  }

  const malformed = [
    { ...g, hash: 'AAAA' },
    { ...g, hash: '***' },
    { ...g, scheme: 'md5' as 'scrypt' },
    { ...o, params: undefined },
    { ...o, params: { N: 1000, r: 8, p: 1 } },
    { ...o, params: { N: 1 << 30, r: 8, p: 1 } },
    null as unknown as typeof g,
  ];
  for (const m of malformed) t.equal(await hasher.verify(pw, m), false, `malformed never verifies: ${JSON.stringify(m)}`);
  t.equal(await hasher.verify('text' as unknown as Buffer, g), false, 'non-Buffer candidate');
  t.equal(await hasher.verify(Buffer.alloc(5000, 1), g), false, 'oversized candidate');
});

t.test('verified cache', async (t) => {
  let now = 1_000;
  const hasher = new PasswordHasher(secretA.passwordKey, FAST_SCRYPT);
  const cache = new VerifiedCache({ key: secretA.cacheKey, maxEntries: 3, ttlMs: 100, now: () => now });
  const pw = Buffer.from('operator-password-1');
  const stored = await hasher.hashOperator(pw);

  t.equal(cache.has('CP1', pw, stored), false);
  t.equal(await verifyWithCache(hasher, cache, 'CP1', Buffer.from('wrong'), stored), false);
  t.equal(cache.size, 0, 'failures are not cached');
  t.equal(await verifyWithCache(hasher, cache, 'CP1', pw, stored), true);
  t.equal(cache.has('CP1', pw, stored), true, 'success cached');
  t.equal(cache.has('CP1', Buffer.from('wrong'), stored), false, 'other candidate misses');
  t.equal(cache.has('CP2', pw, stored), false, 'other identity misses');
  const changed = await hasher.hashOperator(pw);
  t.equal(cache.has('CP1', pw, changed), false, 'changed stored hash misses without invalidate');

  const pending = hasher.hashGenerated(Buffer.from('pending-password-xyz'));
  cache.remember('CP1', Buffer.from('pending-password-xyz'), pending);
  t.ok(cache.has('CP1', pw, stored) && cache.has('CP1', Buffer.from('pending-password-xyz'), pending), 'current and pending both cached');

  cache.invalidate('CP1');
  t.equal(cache.has('CP1', pw, stored), false, 'invalidate');

  cache.remember('CP1', pw, stored);
  now += 101;
  t.equal(cache.has('CP1', pw, stored), false, 'expired after ttl');

  for (const id of ['A', 'B', 'C']) cache.remember(id, pw, stored);
  t.ok(cache.has('A', pw, stored), 'touch A so B is least recently used');
  cache.remember('D', pw, stored);
  t.equal(cache.size, 3, 'bounded');
  t.equal(cache.has('B', pw, stored), false, 'LRU evicted');
  t.ok(cache.has('A', pw, stored) && cache.has('D', pw, stored));
});

t.test('a generated password is checked directly, never cached', async (t) => {
  const hasher = new PasswordHasher(secretA.passwordKey, FAST_SCRYPT);
  const cache = new VerifiedCache({ key: secretA.cacheKey });
  const pw = Buffer.from('generated-password-0123456789');
  const stored = hasher.hashGenerated(pw);
  t.equal(await verifyWithCache(hasher, cache, 'CP1', pw, stored), true, 'the right password passes');
  t.equal(await verifyWithCache(hasher, cache, 'CP1', Buffer.from('wrong'), stored), false, 'a wrong one fails');
  t.equal(cache.size, 0, 'nothing cached for an HMAC hash');
  const operator = await hasher.hashOperator(pw);
  t.equal(await verifyWithCache(hasher, cache, 'CP1', pw, operator), true);
  t.equal(cache.size, 1, 'an scrypt hash still is');
});

t.test('timings (printed, not asserted)', async (t) => {
  const hasher = new PasswordHasher(secretA.passwordKey, DEFAULT_SCRYPT);
  const pw = Buffer.from(randomBytes(30).toString('base64').slice(0, 40));
  const n = 2000;
  let start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await hasher.verify(pw, hasher.hashGenerated(pw));
  const hmacUs = Number(process.hrtime.bigint() - start) / 1000 / n;
  const scryptHash = await hasher.hashOperator(pw);
  const m = 5;
  start = process.hrtime.bigint();
  for (let i = 0; i < m; i++) await hasher.verify(pw, scryptHash);
  const scryptMs = Number(process.hrtime.bigint() - start) / 1e6 / m;
  const cache = new VerifiedCache({ key: secretA.cacheKey });
  cache.remember('CP1', pw, scryptHash);
  start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await verifyWithCache(hasher, cache, 'CP1', pw, scryptHash);
  const cachedUs = Number(process.hrtime.bigint() - start) / 1000 / n;
  const line = `hashGenerated+verify ${hmacUs.toFixed(1)} us; scrypt verify (N=2^15,r=8,p=1) ${scryptMs.toFixed(1)} ms; cached verify ${cachedUs.toFixed(1)} us`;
  t.comment(line);
  console.log('# timing: ' + line);
  t.pass('measured');
});
