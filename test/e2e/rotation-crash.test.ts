/**
 * Password rotation fault matrix against the real CLI on Redis with AOF persistence (so a restart
 * keeps what was acknowledged). Every case ends the same way: the charger is back in, the store holds
 * no pending password, the password the charger holds is the one the proxy accepts, and the CSMS saw
 * none of the injected frames.
 * - proxy SIGKILLed before the call: the write-ahead entry exists, nothing was sent (seeded as the
 *   write-ahead leaves it, then the proxy started);
 * - proxy SIGKILLed after the call, before the answer: the charger applied the key (answers into
 *   the void, comes back with the new one) / did not (comes back with the old one);
 * - proxy SIGKILLed after Accepted, before the charger reconnected;
 * - Redis restarted mid-rotation, with the charger's Accepted arriving while Redis is down.
 */
import t from 'tap';
import path from 'node:path';
import WebSocket from 'ws';
import { generatePassword } from '../../policies/rotation-password';
import { sleep, waitFor } from '../helpers/net';
import { seedShared, spawnProxy, startSharedRig } from '../helpers/proxy-process';
import { SimStation, type PasswordBehaviour } from '../helpers/station';

const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

t.test('rotation fault matrix: proxy killed, Redis restarted', async (t) => {
  const { dir, redis, csms, secretFile, creds } = await startSharedRig(t, 'rotation-crash-', (d) => ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', d]);
  const proxy = await spawnProxy({
    dataDir: path.join(dir, 'proxy'),
    flags: { backend: csms.url, redis: redis.url, secretFile, callTimeoutMs: 20000, rotationRetryMs: 1000, rotationGraceMs: 0 },
  });
  t.teardown(() => proxy.stop());
  const store = creds.store;

  /** A station for `identity` (operator password) that reconnects by itself whenever its link is gone. */
  async function station(t: { teardown(fn: () => unknown): void }, identity: string, protocol: 'ocpp1.6' | 'ocpp2.0.1', behaviour: PasswordBehaviour, o: { seedOnly?: boolean; reconnectDelayMs?: number } = {}) {
    const password = `operator-password-${identity}`;
    await seedShared(creds, { identity, password, source: 'operator' });
    const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol, password, ca: proxy.caPem, behaviour, reconnectDelayMs: o.reconnectDelayMs ?? 100 });
    let timer: NodeJS.Timeout | null = null;
    const start = async () => {
      await s.connect(20000);
      timer = setInterval(() => { if (!s.client) s.reconnectSoon(); }, 50);
    };
    t.teardown(async () => { if (timer) clearInterval(timer); await s.stop(); });
    if (!o.seedOnly) await start();
    return { s, start };
  }

  /** What every case must end with. */
  async function settled(t: Tap, s: SimStation, identity: string, minConnections: number) {
    await waitFor(async () => {
      const r = await store.getCharger(identity).catch(() => null); // this process's client may still be reconnecting
      return r && !r.pending && r.passwordSource === 'generated' && s.client && s.connections >= minConnections;
    }, `${identity}: rotation finished and the charger connected`, 25000, 100);
    t.pass(`${identity}: back in after ${s.connections} connections; no pending password; the generated one is current`);
    t.equal(s.password, s.keyChanges[s.keyChanges.length - 1]!.password, `${identity}: the charger holds the last password it was sent`);
    t.equal(await login(identity, s.password, s), 101, `${identity}: the password the charger holds is accepted`);
    t.notOk(csms.frames.some((f) => f.identity === identity && /AuthorizationKey|BasicAuthPassword/.test(f.raw)), `${identity}: the CSMS saw none of the injected frames`);
  }
  type Tap = { pass(m: string): void; equal(a: unknown, b: unknown, m: string): void; notOk(v: unknown, m: string): void };

  function login(identity: string, password: string, s: SimStation): Promise<number> {
    const protocol = (s as any).o.protocol as string;
    return new Promise((resolve) => {
      const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, [protocol], { ca: proxy.caPem, servername: 'localhost', headers: { authorization: basic(identity, password) } } as WebSocket.ClientOptions);
      ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
      // Close at once with 1000: the station's own session was replaced by this check; it reconnects.
      ws.on('open', () => { ws.close(); resolve(101); });
      ws.on('error', () => resolve(0));
    });
  }

  const pendingOf = async (identity: string) => (await store.getCharger(identity))?.pending;

  t.test('killed before the call: the write-ahead entry is there, nothing was sent', async (t) => {
    const identity = 'RC-BEFORE';
    const { s, start } = await station(t, identity, 'ocpp1.6', 'apply', { seedOnly: true });
    proxy.kill('SIGKILL');
    await proxy.exited;
    const pw = generatePassword('ocpp1.6');
    t.ok(await store.setPending(identity, { encrypted: creds.sealer.seal(pw, identity), hash: creds.hasher.hashGenerated(pw), createdAt: Date.now(), attempt: 1 }), 'pending written as the write-ahead leaves it');
    await proxy.restart();
    await start();
    t.equal(s.connections, 1, 'admitted with its old password (it never saw the new one)');
    await settled(t, s, identity, 2);
  });

  for (const applied of [true, false]) {
    t.test(`killed after the call, before the answer; the charger ${applied ? 'applied' : 'did not apply'} it`, async (t) => {
      const identity = applied ? 'RC-SENT-APPLIED' : 'RC-SENT-KEPT';
      const { s } = await station(t, identity, applied ? 'ocpp2.0.1' : 'ocpp1.6', 'manual');
      await waitFor(() => s.keyChanges.length === 1, 'password change received');
      await waitFor(async () => (await pendingOf(identity))?.sentAt, 'sentAt recorded');
      proxy.kill('SIGKILL');
      await proxy.exited;
      s.behaviour = 'apply'; // later changes are applied at once
      if (applied) s.keyChanges[0]!.answer('Accepted'); // answered into a dead link: the proxy never hears it
      t.notOk((await pendingOf(identity))?.acceptedAt, 'the store never heard the answer');
      await proxy.restart();
      await settled(t, s, identity, 2);
      if (applied) t.equal(s.keyChanges.length, 1, 'logging in with the sent password committed it: no second change needed');
      else {
        t.equal(s.keyChanges.length, 2, 'logged in with its old password: the sent value is kept and sent again');
        t.equal(s.keyChanges[1]!.password, s.keyChanges[0]!.password, 'the same value, not a fresh one');
      }
    });
  }

  t.test('killed after Accepted, before the charger reconnected', async (t) => {
    const identity = 'RC-ACCEPTED';
    const { s } = await station(t, identity, 'ocpp1.6', 'apply', { reconnectDelayMs: 3000 });
    await waitFor(async () => (await pendingOf(identity))?.acceptedAt, 'Accepted recorded', 10000);
    t.equal(s.connections, 1, 'the charger has not reconnected yet');
    proxy.kill('SIGKILL');
    await proxy.exited;
    await proxy.restart();
    await settled(t, s, identity, 2);
    t.equal(s.keyChanges.length, 1, 'one password change: committed when the charger came back with it');
  });

  t.test('Redis restarted mid-rotation (Accepted arrives while it is down)', async (t) => {
    const identity = 'RC-REDIS';
    const { s } = await station(t, identity, 'ocpp2.0.1', 'manual');
    await waitFor(() => s.keyChanges.length === 1, 'password change received');
    await waitFor(async () => (await pendingOf(identity))?.sentAt, 'sentAt recorded');
    await redis.stop();
    s.keyChanges[0]!.answer('Accepted');
    await sleep(2000); // the charger reconnects with the new password meanwhile and is refused (503)
    await redis.restart();
    await settled(t, s, identity, 2);
    t.ok(s.refusals.length > 0, `the charger was refused while Redis was down (${s.refusals.length} attempts)`);
    t.equal(s.keyChanges.length, 1, 'the pending password survived the Redis restart and was committed');
  });
});
