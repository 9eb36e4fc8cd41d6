import t from 'tap';
import { createValidator } from 'ocpp-rpc/lib/validator';
import { tryBasicLogin } from '../helpers/login';
import { startLegacyCsms, type LegacyCsms } from '../helpers/csms';
import { waitFor, sleep } from '../helpers/net';
import { startRedis } from '../helpers/redis';
import { scratchDir, seedCharger, startTestProxy } from '../helpers/proxy';
import { SimStation, type PasswordBehaviour } from '../helpers/station';

// The official OCPP JSON schemas as shipped by ocpp-rpc (1.6 and 2.0.1).
const schemas: Record<string, any> = {
  'ocpp1.6': createValidator('ocpp1.6', require('ocpp-rpc/lib/schemas/ocpp1_6.json')),
  'ocpp2.0.1': createValidator('ocpp2.0.1', require('ocpp-rpc/lib/schemas/ocpp2_0_1.json')),
};


for (const kind of ['embedded', 'redis'] as const) {
  t.test(`password rotation on the ${kind} store`, async (t) => {
    const csms: LegacyCsms = await startLegacyCsms();
    t.teardown(() => csms.stop());
    let redisUrl: string | undefined;
    if (kind === 'redis') {
      const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', scratchDir(t, 'redis-rot-')] });
      redisUrl = redis.url;
      t.teardown(() => redis.stop());
    }
    const proxy = await startTestProxy({ backend: csms.url, callTimeoutMs: '1500', rotationRetryMs: '60000', rotationGraceMs: '0', ...(redisUrl ? { redis: redisUrl } : {}) });
    t.teardown(() => proxy.stop());
    const store = proxy.credentials.store;
    let n = 0;
    async function station(protocol: 'ocpp1.6' | 'ocpp2.0.1', behaviour: PasswordBehaviour, password = 'operator-set-password-1') {
      const identity = `${kind[0]}-${protocol.replace(/\W/g, '')}-${behaviour}-${++n}`;
      await seedCharger(proxy, { identity, password });
      // The embedded-store run offers permessage-deflate, so the whole rotation flow also runs on ws.
      const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol, password, ca: proxy.caPem, behaviour, deflate: kind === 'embedded' });
      t.teardown(() => s.stop());
      return s;
    }
    const csmsSawInjected = (identity: string) => csms.frames.some((f) => f.identity === identity && /AuthorizationKey|BasicAuthPassword|SetVariables|ChangeConfiguration/.test(f.raw));

    for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const) {
      t.test(`${protocol}: operator password rotated, committed on reconnect, old password refused`, async (t) => {
        const s = await station(protocol, 'apply');
        const identity = (s as any).o.identity as string;
        await s.connect();
        await waitFor(() => s.keyChanges.length === 1, 'password change received');
        const change = s.keyChanges[0]!;
        const valid = schemas[protocol].validate(`urn:${change.action}.req`, change.payload);
        t.ok(valid, `${change.action} payload valid against the official ${protocol} schema`);
        if (protocol === 'ocpp1.6') {
          t.equal(change.payload.key, 'AuthorizationKey');
          t.match(change.payload.value, /^[0-9a-f]{40}$/, '40 hex digits');
          t.match(change.password, /^[A-Za-z0-9]{20}$/, '20 printable characters');
        } else {
          t.match(change.password, /^[A-Za-z0-9*\-_=:+|@.]{40}$/, '40 characters of the 2.0.1 alphabet');
        }
        await waitFor(() => s.connections === 2, 'station reconnected with the new password');
        await waitFor(async () => (await store.getCharger(identity))?.pending === undefined, 'pending committed');
        const rec = (await store.getCharger(identity))!;
        t.equal(rec.passwordSource, 'generated', 'new password is current');
        t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, 'operator-set-password-1', protocol), 401, 'old password refused after commit');
        t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, change.password, protocol), 101, 'new password works');
        t.notOk(csmsSawInjected(identity), 'the CSMS never saw the injected call or its answer');
        t.equal(s.keyChanges.length, 1, 'a generated password is not rotated again');
        // The accepted step is audited at the end of its chain of writes, which may finish after the commit.
        const everyStep = async () => {
          const audit = (await store.readAudit(200)).filter((e) => e.identity === identity).map((e) => e.type);
          return audit.includes('rotation_started') && audit.includes('rotation_accepted') && audit.includes('rotation_committed');
        };
        t.ok(await waitFor(everyStep, 'every step audited'), 'every step audited');
        t.notOk(JSON.stringify(proxy.logs).includes(change.password), 'new password never logged');
      });
    }

    for (const behaviour of ['reject', 'notsupported', 'callerror'] as const) {
      t.test(`charger answers ${behaviour}: pending dropped, old password kept, retried later`, async (t) => {
        const s = await station('ocpp1.6', behaviour);
        const identity = (s as any).o.identity as string;
        await s.connect();
        await waitFor(() => s.keyChanges.length === 1, 'password change received');
        await waitFor(async () => (await store.getCharger(identity))?.rotation?.lastResult === 'rejected', 'refusal recorded');
        const rec = (await store.getCharger(identity))!;
        t.equal(rec.pending, undefined, 'pending dropped');
        t.ok(rec.rotation!.nextAttemptAt! > Date.now(), 'back-off scheduled');
        const scheduled = await waitFor(() => proxy.logs.find((l) => l.event === 'rotation_retry_scheduled' && l.identity === identity), 'the retry logged');
        t.match(scheduled, { result: 'rejected', failures: rec.rotation!.failures, nextAttemptAt: new Date(rec.rotation!.nextAttemptAt!).toISOString() }, 'the log says when the next attempt is, and how many failed');
        t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, 'operator-set-password-1', 'ocpp1.6'), 101, 'old password still accepted');
        t.notOk(csmsSawInjected(identity));
      });
    }

    for (const behaviour of ['never'] as const) {
      t.test('charger never answers: both stay valid until the next login settles it', async (t) => {
        const s = await station('ocpp2.0.1', behaviour);
        const identity = (s as any).o.identity as string;
        await s.connect();
        await waitFor(() => s.keyChanges.length === 1, 'password change received');
        await waitFor(async () => { const r = await store.getCharger(identity); return r?.rotation?.lastResult === 'timeout' || r?.rotation?.lastResult === 'unanswered'; }, 'no answer recorded', 8000);
        const rec = (await store.getCharger(identity))!;
        t.ok(rec.pending, 'pending kept (the charger may have applied it)');
        const newPw = s.keyChanges[0]!.password;
        t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, newPw, 'ocpp2.0.1'), 101, 'the new password is accepted (charger applied it)');
        t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, 'operator-set-password-1', 'ocpp2.0.1'), 401, 'after the commit the old one is refused');
        t.notOk(csmsSawInjected(identity));
      });
    }

    // Logging in with the old password does not prove the charger did not take the new one (it may
    // have staged it for its next reboot and answered RebootRequired into the lost link): both stay.
    t.test('charger drops the socket before answering and comes back with its old password: admitted, pending kept', async (t) => {
      const s = await station('ocpp2.0.1', 'drop');
      const identity = (s as any).o.identity as string;
      await s.connect();
      await waitFor(() => s.keyChanges.length === 1, 'password change received');
      await waitFor(() => s.connections === 2, 'station back with its old password');
      const rec = (await store.getCharger(identity))!;
      t.equal(rec.passwordSource, 'operator', 'old password still current');
      t.ok(rec.pending?.sentAt, 'the sent password is kept');
      t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, s.keyChanges[0]!.password, 'ocpp2.0.1'), 101, 'and still accepted, should the charger use it after a reboot');
      t.notOk(csmsSawInjected(identity));
    });

    t.test('no answer and the charger comes back with its old password: admitted, pending kept and resent', async (t) => {
      const s = await station('ocpp1.6', 'never');
      const identity = (s as any).o.identity as string;
      await s.connect();
      await waitFor(() => s.keyChanges.length === 1, 'password change received');
      await waitFor(async () => (await store.getCharger(identity))?.rotation?.lastResult === 'timeout', 'timeout recorded', 8000);
      t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, 'operator-set-password-1', 'ocpp1.6'), 101, 'old password admitted');
      t.ok((await store.getCharger(identity))!.pending, 'pending kept: the charger may hold it');
    });

    t.test('rotation waits for BootNotification Accepted/Pending and never runs after Rejected', async (t) => {
      const rejecting = await startLegacyCsms({ bootStatus: 'Rejected' });
      t.teardown(() => rejecting.stop());
      const p2 = await startTestProxy({ backend: rejecting.url, ...(redisUrl ? { redis: redisUrl, redisKeyPrefix: 'rej:' } : {}) });
      t.teardown(() => p2.stop());
      await seedCharger(p2, { identity: 'BOOT-REJ', password: 'operator-set-password-1' });
      const s = new SimStation({ identity: 'BOOT-REJ', endpoint: p2.tlsUrl, protocol: 'ocpp1.6', password: 'operator-set-password-1', ca: p2.caPem });
      t.teardown(() => s.stop());
      await s.connect();
      await sleep(500);
      t.equal(s.keyChanges.length, 0, 'nothing injected after Rejected');
      t.equal(await waitFor(async () => (await p2.credentials.store.getCharger('BOOT-REJ'))?.bootState, 'the boot state stored'), 'Rejected', 'boot state remembered');
    });

    t.test('operator request (admin API) rotates a generated password on a live session', async (t) => {
      const s = await station('ocpp2.0.1', 'apply');
      const identity = (s as any).o.identity as string;
      await s.connect();
      await waitFor(async () => (await store.getCharger(identity))?.passwordSource === 'generated' && s.connections === 2, 'first rotation done');
      const res = await fetch(`${proxy.adminUrl}/api/v1/chargers/${identity}/rotate`, { method: 'POST', headers: { authorization: `Bearer ${proxy.adminToken}` } });
      t.ok(res.status === 200 || res.status === 202, 'rotate accepted by the admin API');
      await waitFor(() => s.keyChanges.length === 2, 'second password change received', 8000);
      await waitFor(() => s.connections === 3, 'reconnected with the second new password');
      t.equal(await tryBasicLogin(proxy.tlsUrl, proxy.caPem, identity, s.keyChanges[1]!.password, 'ocpp2.0.1'), 101);
    });

    t.test('a CSMS call arriving during the injected call is delayed, not lost', async (t) => {
      const s = await station('ocpp1.6', 'manual');
      const identity = (s as any).o.identity as string;
      await s.connect();
      await waitFor(() => s.keyChanges.length === 1, 'password change received');
      const client = await waitFor(() => csms.clients.get(identity), 'CSMS side');
      const csmsCall = client.call('GetConfiguration', { key: ['HeartbeatInterval'] });
      await sleep(200);
      t.notOk(s.otherCalls.some((c) => c.action === 'GetConfiguration'), 'held while the injected call is in flight');
      s.keyChanges[0]!.answer('Rejected');
      await csmsCall;
      t.ok(s.otherCalls.some((c) => c.action === 'GetConfiguration'), 'delivered afterwards and answered');
    });
  });
}
