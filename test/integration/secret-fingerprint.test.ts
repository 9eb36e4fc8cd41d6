/**
 * Every process sharing a Redis store must use one server secret: a password hashed or sealed under
 * another verifies nowhere else. A replica or a `chargers` CLI started with another secret refuses
 * to start (exit 1, a message saying what to fix), before it writes anything; with the same secret
 * it starts as always.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import Redis from 'ioredis';
import { openCredentials } from '../../proxy/store-setup';
import { startLegacyCsms } from '../helpers/csms';
import { scratchDir, startTestProxy } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';

const CLI = path.resolve(__dirname, '../../proxy/cli.js');

function runCli(args: string[]): Promise<{ code: number; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, err }));
  });
}

t.test('a second secret on a shared Redis store is refused at start, by the proxy and by the CLI', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const dir = scratchDir(t, 'secret-fp-');
  const secretA = path.join(dir, 'secret-a');
  const secretB = path.join(dir, 'secret-b');
  writeFileSync(secretA, randomBytes(32).toString('hex'), { mode: 0o600 });
  writeFileSync(secretB, randomBytes(32).toString('hex'), { mode: 0o600 });
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());

  const probe = new Redis(redis.url);
  t.teardown(() => probe.quit());
  // A CLI run with Redis and no secret (a laptop, a forgotten --secret-file) makes none of its own:
  // hashes under it would verify on no replica.
  const early = await runCli(['chargers', 'list', '--redis', redis.url, '--data-dir', dir]);
  t.equal(early.code, 1, 'the CLI with Redis and no secret is refused');
  t.match(early.err, /with --redis, give the proxy's server secret/);
  t.equal(existsSync(path.join(dir, 'server-secret')), false, 'and generated none');
  // A proxy started without one (its data dir's own) never fixes the fleet's secret.
  const generated = await startTestProxy({ backend: csms.url, redis: redis.url });
  await generated.stop();
  t.equal(await probe.get('ocpp:server-secret-fingerprint'), null, 'no fingerprint stored by either');

  const first = await startTestProxy({ backend: csms.url, redis: redis.url, secretFile: secretA });
  t.teardown(() => first.stop());
  const stored = await probe.get('ocpp:server-secret-fingerprint');
  t.match(stored, /^[0-9a-f]{32}$/, 'the first process with a configured secret stored its fingerprint');
  t.notOk(readFileSync(secretA, 'utf8').includes(stored!), 'a fingerprint, not the secret');

  const keysBefore = (await probe.keys('*')).sort();
  await t.rejects(startTestProxy({ backend: csms.url, redis: redis.url, secretFile: secretB }), { reason: 'secret_mismatch', message: /same secretFile or OCPP_PROXY_SECRET/ },
    'a replica with another secret does not start');
  await t.rejects(openCredentials({ redis: redis.url, redisKeyPrefix: 'ocpp:', dataDir: dir, secretFile: null, credentialCacheTtlMs: 0 }), { reason: 'secret_mismatch', message: /generated in/ },
    'nor one with a secret generated in its own data dir');
  const cli = await runCli(['chargers', 'add', 'CP-SECRET', '--password', 'a-password-long-enough-123', '--redis', redis.url, '--secret-file', secretB, '--data-dir', dir]);
  t.equal(cli.code, 1, 'the chargers CLI with another secret exits 1');
  t.match(cli.err, /same secretFile or OCPP_PROXY_SECRET[\s\S]*secret_mismatch/, 'saying why and what to do');
  t.same((await probe.keys('*')).sort(), keysBefore, 'nothing was written by any of them');

  const same = await startTestProxy({ backend: csms.url, redis: redis.url, secretFile: secretA });
  t.teardown(() => same.stop());
  t.pass('a second replica with the same secret starts');
  const ok = await runCli(['chargers', 'add', 'CP-SECRET', '--password', 'a-password-long-enough-123', '--redis', redis.url, '--secret-file', secretA, '--data-dir', dir]);
  t.equal(ok.code, 0, `so does the CLI (${ok.err.trim()})`);

  // A CLI with a configured secret on a fresh store fixes it as a proxy would: a fleet started later
  // with another secret then refuses to start, instead of locking out what the CLI wrote.
  const fresh = await startRedis();
  t.teardown(() => fresh.stop());
  t.equal((await runCli(['chargers', 'add', 'CP-FIRST', '--password', 'a-password-long-enough-123', '--redis', fresh.url, '--secret-file', secretB, '--data-dir', dir])).code, 0, 'the CLI seeds a fresh store');
  await t.rejects(startTestProxy({ backend: csms.url, redis: fresh.url, secretFile: secretA }), { reason: 'secret_mismatch', message: /same secretFile/ }, 'a fleet with another secret does not start on it');
});
