/**
 * The `chargers` CLI over real stores: the embedded store in a temp dir and a real redis-server.
 * Most commands run in-process through `runChargersCommand`; one runs as a real child process.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import Redis from 'ioredis';
import { runChargersCommand } from '../../proxy/chargers-cli';
import { loadConfig } from '../../proxy/config';
import { openCredentials } from '../../proxy/store-setup';
import { startRedis } from '../helpers/redis';

const PW = 'correct-horse-battery-1';
const PW2 = 'second-password-0123456';
const BACKEND_PW = 'backend-secret-xyz-987';

interface Run { code: number; out: string; err: string }

/** Runs one CLI command in-process against the store chosen by `storeArgs`. */
function cliFor(storeArgs: string[]) {
  return async (args: string[], stdin?: string): Promise<Run> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runChargersCommand([...args, ...storeArgs], (l) => out.push(l), {
      env: {}, err: (l) => err.push(l), stdin: Readable.from([Buffer.from(stdin ?? '')]),
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
}

/** No output may contain a password, a hash, a salt or a sealed value. */
function noSecrets(t: Test, text: string, what: string): void {
  for (const s of [PW, PW2, BACKEND_PW, 'v1.', '"salt"', '"hash"', 'passwordEncrypted', 'encrypted']) {
    t.notOk(text.includes(s), `${what} does not contain ${s.startsWith('"') || s.length < 8 ? s : 'a password'}`);
  }
}

async function suite(t: Test, storeArgs: string[], dataDir: string, rawStore: () => Promise<string>): Promise<void> {
  const cli = cliFor(storeArgs);
  const transcript: string[] = [];
  const run = async (args: string[], stdin?: string) => {
    const r = await cli(args, stdin);
    transcript.push(r.out, r.err);
    return r;
  };

  t.test('add and show', async (t) => {
    const pwFile = path.join(dataDir, 'pw.txt');
    await fs.writeFile(pwFile, PW + '\n');
    const beFile = path.join(dataDir, 'be.txt');
    await fs.writeFile(beFile, BACKEND_PW);
    let r = await run(['add', 'CP001', '--password-file', pwFile, '--profile', '3', '--serial', 'SN-0001', '--organization', 'ACME',
      '--backend-username', 'legacy', '--backend-password-file', beFile, '--report-only']);
    t.equal(r.code, 0, r.err);
    t.match(r.out, /added CP001/);
    r = await run(['show', 'CP001', '--json']);
    t.equal(r.code, 0);
    const v = JSON.parse(r.out);
    t.match(v, { identity: 'CP001', status: 'active', minProfile: 3, hasPassword: true, passwordSource: 'operator', pending: null,
      certificate: { serialNumber: 'SN-0001' }, organization: 'ACME', backend: { username: 'legacy', hasPassword: true }, reportOnly: true,
      rotation: { disabled: false, requestedAt: null }, lastSeen: null });
    r = await run(['show', 'CP001']);
    t.match(r.out, /pending rotation:\s+none/);
    t.match(r.out, /serial number SN-0001/);

    // The stored hash really is of the password read from the file (trailing newline dropped).
    const creds = await openCredentials(loadConfig({ env: {}, flags: storeFlags(storeArgs) }));
    try {
      const rec = await creds.store.getCharger('CP001');
      t.equal(rec?.password?.scheme, 'scrypt', 'operator passwords use scrypt');
      t.ok(await creds.hasher.verify(Buffer.from(PW), rec!.password!), 'stored hash verifies the password');
      t.equal(creds.sealer.open(rec!.backendCredentials!.passwordEncrypted, 'CP001').toString(), BACKEND_PW, 'backend password sealed to the identity');
    } finally {
      await creds.store.close();
    }
  });

  t.test('password from stdin; set, rotation, upgrade', async (t) => {
    let r = await run(['add', 'CP002', '--password-stdin'], PW2 + '\r\n');
    t.equal(r.code, 0, r.err);
    r = await run(['set', 'CP002', '--rotation', 'off']);
    t.equal(r.code, 0, r.err);
    r = await run(['rotate', 'CP002']);
    t.equal(r.code, 1, 'rotation refused while disabled');
    t.match(r.err, /rotation_disabled/);
    r = await run(['set', 'CP002', '--rotation', 'on', '--clear', 'password', '--serial', 'SN-2']);
    t.equal(r.code, 0, r.err);
    r = await run(['rotate', 'CP002', '--json']);
    t.equal(r.code, 0, r.err);
    const v = JSON.parse(r.out);
    t.equal(v.hasPassword, false, '--clear password removed it');
    t.ok(Date.parse(v.rotation.requestedAt) > 0, 'rotation request recorded');
    t.equal(v.certificate.serialNumber, 'SN-2');
    r = await run(['upgrade', 'CP002', '--profile', '3', '--json']);
    t.equal(JSON.parse(r.out).targetProfile, 3);
    r = await run(['upgrade', 'CP002', '--profile', '2']);
    t.equal(r.code, 1, 'upgrade to a profile not above the current one is refused');
    r = await run(['show', 'CP002']);
    t.match(r.out, /upgrade to 3 requested/);
    r = await run(['upgrade', 'CP002', '--cancel', '--profile', '3']);
    t.equal(r.code, 2, '--cancel with --profile is a usage error');
    r = await run(['upgrade', 'CP002', '--cancel', '--json']);
    t.equal(r.code, 0, r.err);
    t.equal(JSON.parse(r.out).targetProfile, null, '--cancel withdraws the requested upgrade');
    r = await run(['upgrade', 'CP002', '--profile', '3']);
    t.equal(r.code, 0, 'and it can be asked for again');
    t.match(r.out, /rotation:\s+enabled, requested /);
    const listed = (await run(['list'])).out.split('\n');
    t.match(listed.find((l) => l.startsWith('CP002\t')), /\tlast seen never\tupgrade to profile 3: requested\trotation: requested$/, 'list names the upgrade and the rotation under way');
    t.match(listed.find((l) => l.startsWith('CP001\t')), /\tlast seen never$/, 'and nothing for a charger with none');
    t.match(r.out, /profile upgrade:\s+requested \S+, failures 0/, 'the upgrade shown');
    r = await run(['upgrade', 'CP002', '--profile', '3', '--ocpp-interface', 'Wireless1']);
    t.equal(r.code, 0, r.err);
    t.match(r.out, /profile upgrade:\s+requested \S+, interface Wireless1, failures 0/, 'with the 2.x interface asked for');
    r = await run(['upgrade', 'CP002', '--profile', '3', '--ocpp-interface', 'LTE']);
    t.equal(r.code, 2, 'an unknown interface is a usage error');
    t.match(r.err, /--ocpp-interface must be one of Wired0, .*Wireless3, Any/);
    r = await run(['upgrade', 'CP002', '--cancel', '--ocpp-interface', 'Any']);
    t.equal(r.code, 2, '--cancel with --ocpp-interface is a usage error');
    r = await run(['show', 'CP002']);
    t.match(r.out, /interface Wireless1/, 'a refused request changed nothing');
    r = await run(['upgrade', 'CP002', '--cancel']);
    t.equal(r.code, 0, r.err);
    const cancels = async () => JSON.parse((await run(['audit', '--limit', '200', '--json'])).out).filter((e: any) => e.type === 'profile_upgrade_cancelled' && e.identity === 'CP002').length;
    const before = await cancels();
    r = await run(['upgrade', 'CP002', '--cancel']);
    t.equal(r.code, 0, 'cancelling again is fine');
    t.equal(await cancels(), before, 'and changes (and audits) nothing');
  });

  t.test('refusals', async (t) => {
    let r = await run(['add', 'CP001', '--password', PW]);
    t.equal(r.code, 1);
    t.match(r.err, /already_exists/);
    r = await run(['add', 'bad id', '--password', PW]);
    t.equal(r.code, 1);
    t.match(r.err, /bad_identity/);
    r = await run(['add', 'CP003', '--password', 'short']);
    t.equal(r.code, 1);
    t.match(r.err, /password_too_short/);
    t.notOk(r.err.includes('short\n') || /"short"/.test(r.err), 'the refused password is not echoed');
    r = await run(['add', 'CP003', '--password', 'short-legacy', '--allow-short-password']);
    t.equal(r.code, 0, 'a short password is allowed explicitly');
    t.match(r.err, /warning: the password is shorter/);
    r = await run(['add', 'CP004', '--password', 'x'.repeat(65)]);
    t.match(r.err, /password_too_long/);
    r = await run(['add', 'CP004', '--backend-username', 'u']);
    t.equal(r.code, 1);
    t.match(r.err, /needs a backend password/);
    r = await run(['show', 'NOPE']);
    t.equal(r.code, 1);
    t.match(r.err, /not_found/);
    r = await run(['block', 'NOPE']);
    t.equal(r.code, 1);
  });

  t.test('usage errors exit 2', async (t) => {
    for (const args of [[], ['bogus'], ['show'], ['add', 'CPX', '--profile', '7'], ['add', 'CPX', '--password', 'a', '--password-stdin'],
      ['list', '--limit', 'x'], ['show', 'CP001', '--prefix', 'x'], ['upgrade', 'CP001'], ['set', 'CP001', '--rotation', 'maybe'],
      ['add', 'CPX', '--frobnicate'], ['block', 'CP001', '--organization', 'X'], ['set', 'CP001', '--clear', 'everything']]) {
      const r = await run(args);
      t.equal(r.code, 2, `chargers ${args.join(' ')} is a usage error`);
      t.ok(r.err.length > 0, 'with a message');
    }
    const r = await run(['add', '--help']);
    t.equal(r.code, 0);
    t.match(r.out, /--password-stdin/);
  });

  t.test('block, unblock, list paging, remove', async (t) => {
    t.equal((await run(['block', 'CP001'])).code, 0);
    t.equal(JSON.parse((await run(['show', 'CP001', '--json'])).out).status, 'blocked');
    t.equal((await run(['unblock', 'CP001'])).code, 0);
    t.equal(JSON.parse((await run(['show', 'CP001', '--json'])).out).status, 'active');
    let r = await run(['list', '--limit', '2', '--json']);
    const page = JSON.parse(r.out);
    t.same(page.items.map((v: { identity: string }) => v.identity), ['CP001', 'CP002']);
    t.equal(page.cursor, 'CP002');
    r = await run(['list', '--cursor', 'CP002']);
    t.match(r.out, /^CP003\tactive\tprofile 2\tpassword/);
    r = await run(['remove', 'CP003']);
    t.equal(r.code, 0);
    t.equal((await run(['show', 'CP003'])).code, 1, 'removed');
  });

  t.test('import is all or nothing, then creates and updates', async (t) => {
    const bad = path.join(dataDir, 'bad.csv');
    await fs.writeFile(bad, `identity,password,profile\nCP100,${PW},2\nbad id,${PW},2\nCP101,${PW},9\nCP100,,\n`);
    let r = await run(['import', bad]);
    t.equal(r.code, 1);
    t.match(r.err, /import_invalid/);
    t.match(r.err, /line 3: an identity/);
    t.match(r.err, /line 4: profile must be 1, 2 or 3/);
    t.match(r.err, /line 5: identity CP100 already appears on line 2/);
    t.equal((await run(['show', 'CP100'])).code, 1, 'nothing imported');
    r = await run(['import', path.join(dataDir, 'missing.csv')]);
    t.equal(r.code, 1, 'missing file');
    const noHeader = path.join(dataDir, 'noheader.csv');
    await fs.writeFile(noHeader, `CP100,${PW},2\n`);
    r = await run(['import', noHeader]);
    t.match(r.err, /line 1: the first line must be a header.*unknown column\(s\) at position 1, 2, 3/);

    const good = `\ufeffidentity,password,profile,serial,organization,backend_username,backend_password\r\n` +
      `CP100,${PW},2,,,,\r\n"CP101","${PW2}",3,"SN,101",ACME,legacy,${BACKEND_PW}\r\nCP001,,3,,,,\r\n\r\n`;
    r = await run(['import', '-', '--json'], good);
    t.equal(r.code, 0, r.err);
    t.same(JSON.parse(r.out), { created: ['CP100', 'CP101'], updated: ['CP001'], warnings: [] });
    const v = JSON.parse((await run(['show', 'CP101', '--json'])).out);
    t.match(v, { minProfile: 3, certificate: { serialNumber: 'SN,101' }, backend: { username: 'legacy' }, hasPassword: true });
    const cp1 = JSON.parse((await run(['show', 'CP001', '--json'])).out);
    t.equal(cp1.minProfile, 3, 'existing charger updated');
    t.equal(cp1.hasPassword, true, 'an empty password cell keeps the password');
  });

  t.test('factory defaults, revocations, audit', async (t) => {
    let r = await run(['factory', 'add', '--prefix', 'ACME-', '--password', 'factory', '--json']);
    t.equal(r.code, 0, r.err);
    const id = JSON.parse(r.out).id;
    r = await run(['factory', 'add', '--password', 'factory']);
    t.equal(r.code, 1, 'needs a prefix or batch');
    r = await run(['factory', 'list', '--json']);
    t.match(JSON.parse(r.out), [{ id, match: { prefix: 'ACME-' } }]);
    t.notOk(r.out.includes('hash'), 'no hash listed');
    t.equal((await run(['factory', 'remove', id])).code, 0);
    t.equal((await run(['factory', 'remove', id])).code, 1, 'second remove: not found');
    r = await run(['revoke', '0A:1B', '--reason', 'stolen', '--json']);
    t.same(JSON.parse(r.out), { revoked: 'a1b' });
    t.match(JSON.parse((await run(['revocations', '--json'])).out), [{ serialHex: 'a1b', reason: 'stolen' }]);
    t.equal((await run(['revoke', 'xyz'])).code, 1, 'non-hex serial refused');
    t.equal((await run(['unrevoke', '0a1b'])).code, 0);
    t.equal((await run(['unrevoke', 'a1b'])).code, 1);
    r = await run(['audit', '--limit', '200', '--json']);
    const types = JSON.parse(r.out).map((e: { type: string }) => e.type);
    for (const ty of ['charger_added', 'charger_updated', 'charger_blocked', 'charger_unblocked', 'charger_removed', 'rotation_requested',
      'profile_upgrade_requested', 'chargers_imported', 'factory_default_added', 'factory_default_removed', 'certificate_revoked', 'certificate_unrevoked']) {
      t.ok(types.includes(ty), `audit has ${ty}`);
    }
    t.match(JSON.parse(r.out)[0].detail, { actor: 'cli' });
  });

  t.test('no secret in any output or in the store in clear', async (t) => {
    noSecrets(t, transcript.join('\n'), 'CLI output');
    const raw = await rawStore();
    for (const s of [PW, PW2, BACKEND_PW, 'factory"']) t.notOk(raw.includes(s), 'store holds no clear password');
  });
}

/** `--data-dir D --redis U` → config flags for loadConfig. */
function storeFlags(args: string[]): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i += 2) flags[args[i]!.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = args[i + 1];
  return flags;
}

async function tempDir(t: Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'chargers-cli-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('embedded store', async (t) => {
  const dir = await tempDir(t);
  await suite(t, ['--data-dir', dir], dir, async () => {
    const files = await fs.readdir(dir);
    return (await Promise.all(files.filter((f) => !f.endsWith('.csv') && !f.endsWith('.txt')).map((f) => fs.readFile(path.join(dir, f), 'utf8')))).join('\n');
  });
});

t.test('redis store', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const dir = await tempDir(t);
  // The replicas' shared secret, as an operator gives it (a CLI with Redis generates none of its own).
  const secretFile = path.join(await tempDir(t), 'secret');
  await fs.writeFile(secretFile, 'cd'.repeat(32), { mode: 0o600 });
  await suite(t, ['--data-dir', dir, '--redis', redis.url, '--redis-key-prefix', 'clitest:', '--secret-file', secretFile], dir, async () => {
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys('clitest:*');
      t.ok(keys.length > 0, 'data lives under the key prefix');
      const dump: string[] = [];
      for (const k of keys) {
        const type = await client.type(k);
        if (type === 'string') dump.push(String(await client.get(k)));
        else if (type === 'hash') dump.push(JSON.stringify(await client.hgetall(k)));
        else if (type === 'list') dump.push(JSON.stringify(await client.lrange(k, 0, -1)));
        else if (type === 'zset') dump.push(JSON.stringify(await client.zrange(k, 0, -1)));
        else if (type === 'set') dump.push(JSON.stringify(await client.smembers(k)));
        else if (type === 'stream') dump.push(JSON.stringify(await client.xrange(k, '-', '+')));
      }
      return dump.join('\n');
    } finally {
      client.disconnect();
    }
  });
});

t.test('lockouts: shown and lifted with Redis, refused with a pointer to the admin API on the embedded store', async (t) => {
  const dir = await tempDir(t);
  const embedded = cliFor(['--data-dir', dir]);
  t.equal((await embedded(['add', 'CPL', '--password', PW])).code, 0);
  let r = await embedded(['unlock', 'CPL']);
  t.equal(r.code, 1, 'refused: this process cannot reach the serving proxy\'s lockouts');
  t.match(r.err, /lockouts_elsewhere/);
  t.match(r.err, /POST \/api\/v1\/chargers\/CPL\/unlock/, 'names the admin API call that can');
  t.notMatch((await embedded(['show', 'CPL'])).out, /lockout:/, 'show claims nothing it cannot see');

  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const storeArgs = ['--data-dir', dir, '--redis', redis.url, '--redis-key-prefix', 'lockcli:'];
  const cli = cliFor(storeArgs);
  const bare = path.join(await tempDir(t), 'no-secret');
  r = await cliFor(['--data-dir', bare, '--redis', redis.url, '--redis-key-prefix', 'lockcli:'])(['add', 'CPX', '--password', PW]);
  t.equal(r.code, 1, 'Redis without the replicas\' secret: refused');
  t.match(r.err, /with --redis, give the proxy's server secret \(--secret-file or OCPP_PROXY_SECRET\)[\s\S]*\(nothing was created\) \(secret_missing\)/);
  t.equal(existsSync(path.join(bare, 'server-secret')), false, 'no secret of its own generated (it could never match the store)');
  t.equal((await cli(['add', 'CPL', '--password', PW])).code, 0);
  const creds = await openCredentials(loadConfig({ env: {}, flags: { dataDir: dir, redis: redis.url, redisKeyPrefix: 'lockcli:' } }));
  t.teardown(() => creds.store.close());
  const until = Date.now() + 60_000;
  await creds.store.recordFailure('id:CPL', 60_000);
  await creds.store.setLockout('id:CPL', until);
  r = await cli(['show', 'CPL']);
  t.match(r.out, new RegExp(`lockout:\\s+locked until ${new Date(until).toISOString().slice(0, 19)}`), 'show tells until when');
  t.match(r.out, /1 failed login\(s\)/);
  r = await cli(['unlock', 'CPL']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /lockout:\s+none \(0 failed/);
  t.equal(await creds.store.getLockout('id:CPL'), 0, 'the lockout is gone from the store');
  t.equal((await creds.store.readAdmission('CPL')).failures, 0, 'and the failure count');
  t.equal((await cli(['unlock', 'NOPE'])).code, 1, 'unknown charger');

  for (const spelling of ['10.0.0.5', '::ffff:10.0.0.5']) await creds.store.setLockout(`ip:${spelling}`, until);
  await creds.store.setLockout('ip:2001:db8::7', until);
  r = await cli(['unlock-address', '::FFFF:10.0.0.5']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /unlocked 10\.0\.0\.5 \(was locked until/);
  t.equal(await creds.store.getLockout('ip:10.0.0.5'), 0, 'the IPv4 spelling is cleared');
  t.equal(await creds.store.getLockout('ip:::ffff:10.0.0.5'), 0, 'and the IPv4-mapped one');
  t.equal((await cli(['unlock-address', '2001:DB8:0:0::7'])).code, 0);
  t.equal(await creds.store.getLockout('ip:2001:db8::7'), 0, 'IPv6 matched in its canonical spelling');
  r = await cli(['unlock-address', 'not-an-address']);
  t.equal(r.code, 1);
  t.match(r.err, /bad_input/);
  t.match((await cli(['audit', '--limit', '5'])).out, /address_unlocked[\s\S]*identity_unlocked|identity_unlocked[\s\S]*address_unlocked/, 'both audited');
});

t.test('a real process: password on stdin, JSON out, exit codes', async (t) => {
  const dir = await tempDir(t);
  const main = path.join(__dirname, '..', 'helpers', 'chargers-main.js');
  const spawnCli = (args: string[], stdin: string) => new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args, '--data-dir', dir], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
    child.stdin.end(stdin);
  });
  let r = await spawnCli(['add', 'CP-SPAWN', '--password-stdin', '--json'], PW + '\n');
  t.equal(r.code, 0, r.err);
  t.equal(JSON.parse(r.out).identity, 'CP-SPAWN');
  noSecrets(t, r.out + r.err, 'process output');
  r = await spawnCli(['show', 'NOPE'], '');
  t.equal(r.code, 1);
  t.match(r.err, /no charger with identity NOPE/);
  r = await spawnCli(['add'], '');
  t.equal(r.code, 2);
  t.equal((await fs.stat(path.join(dir, 'server-secret'))).mode & 0o777, 0o600, 'generated secret is private');
});

t.test('operator slips get a clear word: a new store, no password, --rotation, empty reasons', async (t) => {
  const dir = path.join(await tempDir(t), 'not-yet');
  const cli = cliFor(['--data-dir', dir]);
  const escaped = dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  for (const read of [['list'], ['show', 'CP-NOTE'], ['audit'], ['factory', 'list'], ['revocations']]) {
    const refused = await cli(read);
    t.equal(refused.code, 1, `${read.join(' ')} on a data dir without a store: refused`);
    t.match(refused.err, new RegExp(`no store in ${escaped} \\(no store\\.json\\): is --data-dir the proxy's\\? Nothing was created \\(store_missing\\)`));
  }
  t.equal(existsSync(dir), false, 'reading created nothing (a mistyped --data-dir leaves no second store behind)');
  let r = await cli(['add', 'CP-NOTE', '--password', PW]);
  t.equal(r.code, 0, r.err);
  t.match(r.err, new RegExp(`note: no store in ${escaped} yet: this command created a new one there`), 'a store made by this command is pointed out');
  r = await cli(['list']);
  t.notMatch(r.err, /note:/, 'not once the store exists');

  // A proxy with a secret file of its own (as the chart runs it) writes nothing but its store there.
  const proxyRan = path.join(await tempDir(t), 'proxy-ran');
  const secretFile = path.join(await tempDir(t), 'secret');
  await fs.writeFile(secretFile, 'ab'.repeat(32), { mode: 0o600 });
  const opened = await openCredentials(loadConfig({ env: {}, flags: { dataDir: proxyRan, secretFile } }));
  await opened.store.close();
  const ran = cliFor(['--data-dir', proxyRan, '--secret-file', secretFile]);
  r = await ran(['list']);
  t.equal(r.code, 0, `a data dir a proxy opened its store in, still without chargers, can be read (${r.err.trim()})`);
  r = await ran(['add', 'CP-FIRST', '--password', PW]);
  t.equal(r.code, 0, r.err);
  t.notMatch(r.err, /note:/, 'and gets no new-store note');

  r = await cli(['add', 'CP-NOPW']);
  t.equal(r.code, 0);
  t.match(r.err, /warning: no password: the charger cannot log in with Basic auth until one is set/, 'a Profile 2 charger without a password is warned about');
  t.notMatch((await cli(['add', 'CP-P3', '--profile', '3', '--serial', 'SN-P3'])).err, /no password/, 'not a Profile 3 one');

  for (const args of [['--rotation', 'maybe'], ['--rotation=maybe']]) {
    r = await cli(['set', 'CP-NOTE', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err, /--rotation must be on or off/, `${args.join(' ')}: the charger's setting is meant, not the proxy-wide key`);
  }
  t.equal((await cli(['set', 'CP-NOTE', '--rotation', 'off'])).code, 0);

  const csv = path.join(path.dirname(dir), 'nopw.csv');
  await fs.writeFile(csv, 'identity\nCP-I1\nCP-I2\nCP-I3\n');
  r = await cli(['import', csv]);
  t.equal(r.code, 0);
  t.equal((r.out.match(/without a password/g) ?? []).length, 1, 'an import says it once, with the count');
  t.match(r.out, /3 charger\(s\) added without a password/);

  t.equal((await cli(['revoke', '0A:1B'])).code, 0);
  t.match((await cli(['revocations'])).out, /^a1b\t-\t\d{4}-/m, 'no reason shows as -, not null');
});
