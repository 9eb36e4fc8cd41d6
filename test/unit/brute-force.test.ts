/**
 * BruteForceGuard.recordSuccess on a real (embedded) store: the failure count read when the login
 * started decides whether it is cleared. 0 read: nothing to clear, so failures counted since (a
 * concurrent guesser's) stay; not known, or some read: cleared.
 */
import t from 'tap';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BruteForceGuard, addressSpellings } from '../../policies/brute-force';
import { LocalFailures } from '../../policies/local-failures';
import { EmbeddedStore } from '../../proxy/store/embedded';

const SETTINGS = { identityThreshold: 5, addressThreshold: 50, windowMs: 60_000, baseMs: 1000, maxMs: 10_000 };

t.test('recordSuccess clears the count unless the login read none', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brute-force-'));
  const store = await EmbeddedStore.open({ dataDir: dir });
  t.teardown(async () => { await store.close(); await fs.rm(dir, { recursive: true, force: true }); });
  const guard = new BruteForceGuard(store, SETTINGS);
  const failures = async () => (await store.readAdmission('CP1')).failures;

  await guard.recordFailure('CP1', '10.0.0.1');
  await guard.recordFailure('CP1', '10.0.0.1');
  await guard.recordSuccess('CP1', 0);
  t.equal(await failures(), 2, 'read 0 at the start: failures counted since then stay');
  await guard.recordSuccess('CP1', 2);
  t.equal(await failures(), 0, 'read 2: cleared');

  await guard.recordFailure('CP1', '10.0.0.1');
  await guard.recordSuccess('CP1');
  t.equal(await failures(), 0, 'not known (no prefetch): cleared');
});

t.test('stillLocked keeps only a lockout that lies ahead, on the guard\'s clock', async (t) => {
  let now = 1_000_000;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brute-force-'));
  const store = await EmbeddedStore.open({ dataDir: dir });
  t.teardown(async () => { await store.close(); await fs.rm(dir, { recursive: true, force: true }); });
  const guard = new BruteForceGuard(store, SETTINGS, () => now);
  t.equal(guard.stillLocked(now + 1), now + 1);
  t.equal(guard.stillLocked(now), 0, 'ending now: not locked');
  t.equal(guard.stillLocked(0), 0);
  now += 10;
  t.equal(guard.stillLocked(1_000_001), 0, 'the clock moved past it');
});

t.test('addressSpellings: every spelling the proxy may have counted an operator-given address under', async (t) => {
  t.same(addressSpellings('10.0.0.5'), ['10.0.0.5', '::ffff:10.0.0.5']);
  t.same(addressSpellings(' ::FFFF:10.0.0.5 '), ['10.0.0.5', '::ffff:10.0.0.5'], 'IPv4-mapped, any case, trimmed');
  t.same(addressSpellings('2001:DB8:0:0:0:0:0:7'), ['2001:db8::7'], 'IPv6 in canonical compressed lower case, as Node reports it');
  t.same(addressSpellings('::1'), ['::1']);
  t.same(addressSpellings('::ffff:a00:5'), ['10.0.0.5', '::ffff:10.0.0.5'], 'IPv4-mapped written in hex is the same address');
  t.same(addressSpellings('::10.0.0.5'), ['::10.0.0.5'], 'IPv4-compatible kept as Node writes it');
  t.same(addressSpellings('fe80::1%eth0'), ['fe80::1%eth0'], 'a zone index kept');
  for (const bad of ['', 'localhost', '10.0.0.300', '10.0.0', '1.2.3.4/24', '::ffff:10.0.0.300']) t.equal(addressSpellings(bad), null, `refused: "${bad}"`);
});

t.test('LocalFailures: counts per window, keeps lockouts until they end, stays bounded', async (t) => {
  const local = new LocalFailures(2);
  t.equal(local.record('a', 1000, 0), 1);
  t.equal(local.record('a', 1000, 500), 2, 'same window: counted on');
  t.equal(local.record('a', 1000, 1000), 1, 'a new window starts the count again');
  local.lock('a', 5000);
  t.equal(local.lockedUntil('a', 4999), 5000, 'locked until its end');
  t.equal(local.lockedUntil('a', 5000), 0, 'then not');
  local.lock('x', 9000); // counted in the store, whose lockout write then failed
  t.equal(local.lockedUntil('x', 0), 9000, 'a key locked but never counted here is kept');
  local.record('b', 1000, 0); // a third key over a bound of 2: the least recently counted goes
  t.equal(local.lockedUntil('a', 4000), 0, 'a, the least recently counted, was forgotten');
  t.equal(local.lockedUntil('x', 0), 9000, 'x was not');
  t.equal(local.record('b', 1000, 10), 2, 'b counts on');
  local.forget(['x']);
  t.equal(local.size, 1, 'an unlock forgets one key');
  local.forget();
  t.equal(local.size, 0, 'the store counting again forgets everything');
});
