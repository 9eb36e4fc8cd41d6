import t from 'tap';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import Redis from 'ioredis';
import WebSocket from 'ws';
import { makeTestPki, type TestPki } from '../helpers/pki';
import { startLegacyCsms, type LegacyCsms } from '../helpers/csms';
import { sleep, waitFor } from '../helpers/net';
import { startRedis, watchCommands } from '../helpers/redis';
import { makeCharger, scratchDir, seedCharger, startTestProxy, TEST_PKI_DIR, type TestProxy } from '../helpers/proxy';

const basic = (user: string, pass: string | Buffer) => 'Basic ' + Buffer.concat([Buffer.from(user + ':'), Buffer.isBuffer(pass) ? pass : Buffer.from(pass)]).toString('base64');

interface Attempt { status: number; headers: Record<string, unknown>; ws?: WebSocket }

/** One upgrade attempt; resolves with the status (101 on success; the socket is then left open in `ws`). */
function attempt(url: string, identity: string, o: { auth?: string; cert?: string; key?: string; protocols?: string[]; ca?: Buffer } = {}): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/${encodeURIComponent(identity)}`, o.protocols ?? ['ocpp1.6'], {
      ca: o.ca, servername: 'localhost',
      cert: o.cert ? readFileSync(o.cert) : undefined, key: o.key ? readFileSync(o.key) : undefined,
      headers: o.auth ? { authorization: o.auth } : {},
    } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve({ status: res.statusCode ?? 0, headers: res.headers }); });
    ws.on('open', () => resolve({ status: 101, headers: {}, ws }));
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

const stores = ['embedded', 'redis'] as const;

for (const kind of stores) {
  t.test(`admission on the ${kind} store`, async (t) => {
    const pki: TestPki = await makeTestPki(TEST_PKI_DIR);
    const csms: LegacyCsms = await startLegacyCsms();
    t.teardown(() => csms.stop());
    let redisUrl: string | undefined;
    let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
    if (kind === 'redis') {
      const dir = scratchDir(t, 'redis-aof-');
      redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
      redisUrl = redis.url;
      t.teardown(() => redis!.stop());
    }
    const proxy: TestProxy = await startTestProxy({
      backend: csms.url, plainListen: '127.0.0.1:0', organization: 'Test CPO',
      lockoutThreshold: '3', lockoutBaseMs: '1500', failureWindowMs: '60000',
      ...(redisUrl ? { redis: redisUrl } : {}),
    });
    t.teardown(() => proxy.stop());
    const url = proxy.tlsUrl;
    const ca = proxy.caPem;
    const tag = kind === 'redis' ? 'R' : 'E';
    const id = (s: string) => `${tag}-${s}`;
    // A shared store with a secret of this replica's own (no secretFile here) is warned about.
    t.equal(proxy.logs.some((l) => l.event === 'server_secret_per_replica'), kind === 'redis', `${kind}: per-replica secret warning ${kind === 'redis' ? 'given' : 'not given'}`);

    await seedCharger(proxy, { identity: id('P2'), password: 'correct-horse-battery', minProfile: 2 });
    await seedCharger(proxy, { identity: id('P1'), password: 'plain-port-password1', minProfile: 1 });
    await seedCharger(proxy, { identity: id('BLOCKED'), password: 'correct-horse-battery', status: 'blocked' });
    await seedCharger(proxy, { identity: id('P3'), minProfile: 3, serial: `SER-${tag}-3` });
    await seedCharger(proxy, { identity: id('OTHER3'), minProfile: 3, serial: `SER-${tag}-OTHER` });
    await seedCharger(proxy, { identity: id('HEX16'), password: 'ABCDEFGHIJKLMNOPQRST', minProfile: 2 });
    await seedCharger(proxy, { identity: id('LOCK'), password: 'lockout-test-password', minProfile: 2 });

    t.test('every rejection reason with its status; the CSMS sees none of them', async (t) => {
      const before = csms.handshakes.length;
      const good = await pki.charger(`SER-${tag}-3`);
      const otherCn = await pki.charger(`SER-${tag}-OTHER`);
      const untrusted = await pki.charger(`SER-${tag}-3`, { untrusted: true });
      const expired = await pki.charger(`SER-${tag}-3`, { expired: true });
      const revoked = await pki.charger(`SER-${tag}-3`);
      const wrongOrg = await pki.charger(`SER-${tag}-3`, { organization: 'Evil CPO' });
      await proxy.credentials.store.revokeSerial(revoked.serialHex, 'test');
      const cases: [string, () => Promise<Attempt>, number, string][] = [
        ['unknown identity', () => attempt(url, id('NOPE'), { ca, auth: basic(id('NOPE'), 'whatever-password') }), 404, 'unknown_identity'],
        ['blocked', () => attempt(url, id('BLOCKED'), { ca, auth: basic(id('BLOCKED'), 'correct-horse-battery') }), 403, 'blocked'],
        ['no credentials', () => attempt(url, id('P2'), { ca }), 401, 'missing_credentials'],
        ['username is not the identity', () => attempt(url, id('P2'), { ca, auth: basic('someone-else', 'correct-horse-battery') }), 401, 'username_mismatch'],
        ['wrong password', () => attempt(url, id('P2'), { ca, auth: basic(id('P2'), 'wrong-horse-battery') }), 401, 'bad_password'],
        ['profile 2 charger on the plain port', () => attempt(proxy.plainUrl!, id('P2'), { auth: basic(id('P2'), 'correct-horse-battery') }), 401, 'profile_too_low'],
        ['profile 3 charger with Basic only', () => attempt(url, id('P3'), { ca, auth: basic(id('P3'), 'anything-at-all-123') }), 401, 'profile_too_low'],
        ['certificate bound to another charger', () => attempt(url, id('P3'), { ca, cert: otherCn.certPath, key: otherCn.keyPath }), 401, 'cert_identity_mismatch'],
        ['certificate from an untrusted CA', () => attempt(url, id('P3'), { ca, cert: untrusted.certPath, key: untrusted.keyPath }), 401, 'cert_untrusted'],
        ['expired certificate', () => attempt(url, id('P3'), { ca, cert: expired.certPath, key: expired.keyPath }), 401, 'cert_expired'],
        ['revoked certificate', () => attempt(url, id('P3'), { ca, cert: revoked.certPath, key: revoked.keyPath }), 401, 'cert_revoked'],
        ['wrong organisation', () => attempt(url, id('P3'), { ca, cert: wrongOrg.certPath, key: wrongOrg.keyPath }), 401, 'cert_org_mismatch'],
      ];
      const clearLockout = async (identity: string) => {
        await proxy.credentials.store.resetFailures(`id:${identity}`);
        await proxy.credentials.store.setLockout(`id:${identity}`, 0);
      };
      for (const [label, run, status, reason] of cases) {
        await clearLockout(id('P3')); // threshold 3: keep earlier cases from turning later ones into locked_out
        await clearLockout(id('P2'));
        const r = await run();
        t.equal(r.status, status, `${label} → ${status}`);
        if (status === 401 && !reason.startsWith('cert_') && reason !== 'profile_too_low') t.match(String(r.headers['www-authenticate']), /^Basic/, `${label}: WWW-Authenticate: Basic`);
        t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.reason === reason && l.identity !== undefined && l.remoteAddress === '127.0.0.1'), `${label}: one log line with reason ${reason}`);
      }
      t.equal(csms.handshakes.length, before, 'the CSMS saw no connection for any of them');
      await clearLockout(id('P3')); // those failures locked P3 out (threshold 3)
      const ok = await attempt(url, id('P3'), { ca, cert: good.certPath, key: good.keyPath });
      t.equal(ok.status, 101, 'good certificate bound to this charger → admitted on Profile 3');
      await waitFor(() => proxy.server.sessions.get(id('P3')), 'session');
      t.equal(proxy.server.sessions.get(id('P3'))!.profile, 3);
      ok.ws!.close();
      const text = JSON.stringify(proxy.logs);
      for (const secret of ['correct-horse-battery', 'wrong-horse-battery', 'plain-port-password1']) t.notOk(text.includes(secret), 'no password in logs');
      t.notOk(text.includes(Buffer.from(`${id('P2')}:correct-horse-battery`).toString('base64')), 'no Basic header in logs');
    });

    t.test('right passwords on Profile 1 and 2 with real ocpp-rpc chargers; credentials never forwarded', async (t) => {
      const p2 = makeCharger({ identity: id('P2'), endpoint: url, ca, password: 'correct-horse-battery' });
      await p2.connect();
      t.equal((await p2.call('BootNotification', { chargePointVendor: 'A', chargePointModel: 'B' })).status, 'Accepted');
      const p1 = makeCharger({ identity: id('P1'), endpoint: proxy.plainUrl!, password: 'plain-port-password1' });
      await p1.connect();
      t.equal((await p1.call('Heartbeat', {})).currentTime !== undefined, true, 'Profile 1 on the plain port');
      t.equal(proxy.server.sessions.get(id('P1'))!.profile, 1);
      t.equal(proxy.server.sessions.get(id('P2'))!.profile, 2);
      for (const who of [id('P1'), id('P2')]) t.equal(csms.handshakes.find((h) => h.identity === who)!.headers.authorization, undefined, `${who}: no Authorization to the CSMS`);
      await p1.close(); await p2.close();
    });

    t.test('OCPP 1.6 AuthorizationKey accepted decoded and as hex text', async (t) => {
      const decoded = await attempt(url, id('HEX16'), { ca, auth: basic(id('HEX16'), 'ABCDEFGHIJKLMNOPQRST') });
      t.equal(decoded.status, 101, 'decoded form');
      decoded.ws!.close();
      const hex = await attempt(url, id('HEX16'), { ca, auth: basic(id('HEX16'), Buffer.from('ABCDEFGHIJKLMNOPQRST').toString('hex').toUpperCase()) });
      t.equal(hex.status, 101, 'hex text form');
      hex.ws!.close();
      const hex201 = await attempt(url, id('HEX16'), { ca, protocols: ['ocpp2.0.1'], auth: basic(id('HEX16'), Buffer.from('ABCDEFGHIJKLMNOPQRST').toString('hex')) });
      t.equal(hex201.status, 401, 'hex compatibility only for OCPP 1.6');
    });

    t.test('lockout after repeated failures, without checking the password, and its release', async (t) => {
      for (let i = 0; i < 3; i++) t.equal((await attempt(url, id('LOCK'), { ca, auth: basic(id('LOCK'), `wrong-${i}-password-xx`) })).status, 401);
      const locked = await attempt(url, id('LOCK'), { ca, auth: basic(id('LOCK'), 'lockout-test-password') });
      t.equal(locked.status, 401, 'right password refused while locked out');
      t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.identity === id('LOCK') && l.reason === 'locked_out'), 'reason locked_out');
      await sleep(1600);
      const released = await attempt(url, id('LOCK'), { ca, auth: basic(id('LOCK'), 'lockout-test-password') });
      t.equal(released.status, 101, 'admitted after the lockout expired');
      released.ws!.close();
      const metrics = await proxy.metrics.metricsText();
      t.match(metrics, /ocpp_proxy_lockouts_total\{scope="identity"\} [1-9]/, 'lockout counted');
    });

    t.test('an operator lifts an identity\'s and an address\'s lockout through the running proxy\'s admin API', async (t) => {
      const ident = id('UNLOCK');
      await seedCharger(proxy, { identity: ident, password: 'unlock-test-password' });
      const good = () => attempt(url, ident, { ca, auth: basic(ident, 'unlock-test-password') });
      const api = async (method: string, p: string) => {
        const res = await fetch(`${proxy.adminUrl}/api/v1${p}`, { method, headers: { authorization: `Bearer ${proxy.adminToken}` } });
        return { status: res.status, body: await res.json() as Record<string, any> };
      };
      for (let i = 0; i < 3; i++) t.equal((await attempt(url, ident, { ca, auth: basic(ident, `wrong-${i}-password-zz`) })).status, 401);
      // Stretch the lockout the failures set, so that only the unlock can let the next login in.
      await proxy.credentials.store.setLockout(`id:${ident}`, Date.now() + 60_000);
      t.equal((await good()).status, 401, 'locked out');
      const shown = await api('GET', `/chargers/${ident}`);
      t.ok(shown.body.lockout?.lockedUntil, 'the charger view shows the lockout');
      t.equal(shown.body.lockout?.recentFailures, 3, 'and the failures that led to it');
      const unlocked = await api('POST', `/chargers/${ident}/unlock`);
      t.equal(unlocked.status, 200);
      t.same(unlocked.body.lockout, { lockedUntil: null, recentFailures: 0 });
      const admitted = await good();
      t.equal(admitted.status, 101, 'admitted at once after the unlock');
      admitted.ws?.close();

      await proxy.credentials.store.setLockout('ip:127.0.0.1', Date.now() + 60_000);
      t.equal((await good()).status, 401, 'the address locked out refuses even the right password');
      const freed = await api('POST', '/addresses/127.0.0.1/unlock');
      t.equal(freed.status, 200);
      t.equal(freed.body.address, '127.0.0.1');
      t.ok(freed.body.wasLockedUntil, 'says it was locked');
      const again = await good();
      t.equal(again.status, 101, 'admitted at once after the address unlock');
      again.ws?.close();
      const audit = await api('GET', '/audit?limit=5');
      t.ok(audit.body.items.some((e: any) => e.type === 'identity_unlocked' && e.identity === ident), 'identity unlock audited');
      t.ok(audit.body.items.some((e: any) => e.type === 'address_unlocked' && e.detail.address === '127.0.0.1'), 'address unlock audited');
    });

    t.test('a login clears the failures counted before it, and spends no store request when there were none', async (t) => {
      await seedCharger(proxy, { identity: id('CLR'), password: 'clear-count-password' });
      const good = () => attempt(url, id('CLR'), { ca, auth: basic(id('CLR'), 'clear-count-password') });
      const bad = (i: number) => attempt(url, id('CLR'), { ca, auth: basic(id('CLR'), `wrong-${i}-password-yy`) });
      for (const i of [1, 2]) t.equal((await bad(i)).status, 401);
      const first = await good();
      t.equal(first.status, 101, 'admitted after two failures (threshold 3)');
      first.ws?.close();
      for (const i of [3, 4]) t.equal((await bad(i)).status, 401);
      const second = await good();
      t.equal(second.status, 101, 'not locked out: the login between cleared the first two failures');
      second.ws?.close();
      if (!redis) return;
      const watch = await watchCommands(redis.url);
      t.teardown(() => watch.stop());
      const fromClients = () => watch.seen.filter((c) => c.source !== 'lua').map((c) => c.command);
      const clean = await good();
      t.equal(clean.status, 101);
      // MONITOR reports commands in order: the claim is the admission's last request.
      await waitFor(() => fromClients().some((c) => c.startsWith('eval')), 'the claim in MONITOR', 5000);
      clean.ws!.close();
      // Up to the claim: whatever else the proxy does later (none is expected) is not this admission's.
      const seen = fromClients();
      const admission = seen.slice(0, seen.findIndex((c) => c.startsWith('eval')) + 1);
      t.same(admission, ['get', 'mget', 'evalsha'], 'three requests: the address lockout, the record with the identity\'s counters, the claim');
    });

    if (kind === 'redis') t.test('a charger that leaves while its admission waits on the store: counted as client_gone, the CSMS never dialled', async (t) => {
      const admin = new Redis(redis!.url);
      t.teardown(() => admin.disconnect());
      const before = csms.handshakes.length;
      await admin.call('CLIENT', 'PAUSE', '1000', 'ALL'); // the admission's store reads wait
      const socket = tls.connect({ port: proxy.addresses.tls.port, host: '127.0.0.1', ca, servername: 'localhost' });
      socket.on('error', () => undefined);
      await new Promise((r) => socket.once('secureConnect', r));
      socket.write([`GET /ocpp/${id('P2')} HTTP/1.1`, 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: ocpp1.6', `Authorization: ${basic(id('P2'), 'correct-horse-battery')}`, '', ''].join('\r\n'));
      await sleep(200);
      socket.destroy();
      await waitFor(() => proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.reason === 'client_gone' && l.identity === id('P2') && l.status === 499) || undefined,
        'the abandoned attempt logged', 5000);
      t.equal(csms.handshakes.length, before, 'the CSMS was not dialled for it');
      t.match(await proxy.metrics.metricsText(), /ocpp_proxy_upgrade_attempts_total\{result="rejected",reason="client_gone"\} 1/, 'and counted');
    });

    t.test('a newer connection for the same identity replaces the older one', async (t) => {
      const first = makeCharger({ identity: id('P2'), endpoint: url, ca, password: 'correct-horse-battery' });
      await first.connect();
      const closed = new Promise<any>((r) => first.once('close', r));
      const second = makeCharger({ identity: id('P2'), endpoint: url, ca, password: 'correct-horse-battery' });
      await second.connect();
      const info = await closed;
      t.equal(info.code, 1008, 'older session closed with 1008');
      t.match(String(info.reason), /replaced/);
      await second.call('Heartbeat', {});
      t.equal(proxy.server.sessions.size >= 1, true);
      t.equal(proxy.server.sessions.get(id('P2')) !== undefined, true, 'one live session for the identity');
      await second.close();
    });

    t.test('report-only for one charger admits but logs and counts the refusal', async (t) => {
      await seedCharger(proxy, { identity: id('RO'), password: 'report-only-password' });
      await proxy.credentials.store.updateCharger(id('RO'), { reportOnly: true });
      const r = await attempt(url, id('RO'), { ca, auth: basic(id('RO'), 'not-the-right-one-at-all') });
      t.equal(r.status, 101, 'admitted');
      r.ws!.close();
      t.ok(proxy.logs.some((l) => l.event === 'report_only_finding' && l.identity === id('RO') && l.reason === 'bad_password'), 'finding logged');
      t.match(await proxy.metrics.metricsText(), /ocpp_proxy_upgrade_attempts_total\{result="report_only",reason="bad_password"\} 1/);
    });

    if (redis) {
      t.test('Redis stopped and restarted while sessions are live', async (t) => {
        const live = makeCharger({ identity: id('P2'), endpoint: url, ca, password: 'correct-horse-battery' });
        await live.connect();
        await redis!.stop();
        t.ok((await live.call('Heartbeat', {})).currentTime, 'live session keeps relaying while Redis is down');
        const during = await attempt(url, id('P1'), { ca, protocols: ['ocpp1.6'], auth: basic(id('P1'), 'plain-port-password1') });
        t.equal(during.status, 503, 'new connection refused with 503 while the store is unreachable (fail closed)');
        const ready = await fetch(`${proxy.adminUrl}/readyz`);
        t.equal(ready.status, 503, 'not ready while Redis is down');
        await redis!.restart();
        const after = await waitFor(async () => {
          const r = await attempt(url, id('P2'), { ca, auth: basic(id('P2'), 'correct-horse-battery') });
          return r.status === 101 ? r : null;
        }, 'admission after Redis is back', 15000, 250);
        t.equal(after!.status, 101, 'new connections recover once Redis is back');
        after!.ws!.close();
        await live.close({ force: true, awaitPending: false });
      });
    }
  });
}
