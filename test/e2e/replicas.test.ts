/**
 * Issue 9, item 6: two proxy processes (the real CLI) sharing one Redis and one server secret.
 * - The same identity connecting to both leaves one session (the older closes with 1008).
 * - An operator action sent to one replica's admin API reaches the charger on the other.
 * - SIGTERM on one drains its chargers with 1001 closes spread over the configured jitter window;
 *   each charger reconnects (through a TCP load balancer, as in a deployment) to the other replica;
 *   no numbered frame a charger got an answer for is lost, and no rotation is left half done.
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { sleep, waitFor } from '../helpers/net';
import { adminCall, seedShared, spawnProxy, startSharedRig, type ProxyProcess } from '../helpers/proxy-process';
import { SimStation } from '../helpers/station';

const GRACE_MS = 300;
const CLOCK_SHIFT = path.join(__dirname, '../helpers/clock-shift.js');
const JITTER_MS = 2000;
const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

/** A TCP balancer in front of the replicas: tries them in order, skipping one that refuses. */
async function startBalancer(t: { teardown(fn: () => unknown): void }, ports: () => number[]): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const tryPort = (candidates: number[]) => {
      const port = candidates[0];
      if (port === undefined) return client.destroy();
      const upstream = net.connect(port, '127.0.0.1');
      let connected = false;
      upstream.on('error', () => {
        upstream.destroy();
        if (connected) client.destroy();
        else tryPort(candidates.slice(1));
      });
      upstream.once('connect', () => {
        connected = true;
        sockets.add(upstream);
        upstream.once('close', () => { sockets.delete(upstream); client.destroy(); });
        client.once('close', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
      });
    };
    tryPort(ports());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  return (server.address() as net.AddressInfo).port;
}

/** Opens a charger WebSocket and keeps it; resolves once open. */
function openCharger(url: string, identity: string, password: string, ca: Buffer): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/${identity}`, ['ocpp1.6'], { ca, servername: 'localhost', headers: { authorization: basic(identity, password) } } as WebSocket.ClientOptions);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

/** Live identities a replica's admin API lists. */
async function sessionsOn(p: ProxyProcess): Promise<string[]> {
  return ((await adminCall(p, 'GET', '/sessions')).body.items as { identity: string }[]).map((s) => s.identity).sort();
}

/** A station that reconnects by itself whenever its link is gone, recording close codes and times. */
async function liveStation(t: { teardown(fn: () => unknown): void }, s: SimStation) {
  const closes: { code: number; at: number }[] = [];
  let watched: unknown = null;
  const watch = () => {
    if (!s.client || s.client === watched) return;
    watched = s.client;
    s.client.once('close', (e: { code: number }) => closes.push({ code: e.code, at: Date.now() }));
  };
  await s.connect(20000);
  watch();
  const timer = setInterval(() => { watch(); if (!s.client) s.reconnectSoon(); }, 20);
  t.teardown(async () => { clearInterval(timer); await s.stop(); });
  return closes;
}

t.test('two replicas sharing one Redis', async (t) => {
  const { dir, redis, csms, secretFile, creds } = await startSharedRig(t, 'replicas-');
  const flags = {
    backend: csms.url, redis: redis.url, secretFile, drainGraceMs: GRACE_MS, drainJitterMs: JITTER_MS,
    callTimeoutMs: 3000, rotationRetryMs: 1000, rotationGraceMs: 0,
  };
  const [a, b] = await Promise.all([
    spawnProxy({ dataDir: path.join(dir, 'a'), flags }),
    spawnProxy({ dataDir: path.join(dir, 'b'), flags }),
  ]);
  t.teardown(() => a.stop());
  t.teardown(() => b.stop());

  t.test('the same identity connecting to both leaves one session', async (t) => {
    await seedShared(creds, { identity: 'REP-DUP', password: 'generated-password-dup-1', source: 'generated' });
    const onA = await openCharger(a.tlsUrl, 'REP-DUP', 'generated-password-dup-1', a.caPem);
    await waitFor(async () => (await creds.store.getCharger('REP-DUP'))?.session, 'A claimed the session');
    const onB = await openCharger(b.tlsUrl, 'REP-DUP', 'generated-password-dup-1', b.caPem);
    t.teardown(() => { onA.ws.terminate(); onB.ws.terminate(); });
    const code = await Promise.race([onA.closed, sleep(5000).then(() => -1)]);
    t.equal(code, 1008, 'the older session (on A) closed with 1008 when B admitted the charger');
    t.equal(onB.ws.readyState, WebSocket.OPEN, 'the newer session (on B) stays open');
    await waitFor(async () => !(await sessionsOn(a)).includes('REP-DUP'), 'A no longer lists it');
    t.ok((await sessionsOn(b)).includes('REP-DUP'), 'B lists it');
    t.ok((await a.settledLogs()).some((l) => l.event === 'session_replaced' && l.identity === 'REP-DUP'), 'A logged session_replaced');
  });

  t.test('the newer session wins when the replicas\' clocks disagree by a minute', async (t) => {
    // C's clock runs a minute behind A's: by the clocks, each later session looks older than the one it replaces.
    const c = await spawnProxy({ dataDir: path.join(dir, 'c'), flags, env: { NODE_OPTIONS: `--require ${CLOCK_SHIFT}`, TEST_CLOCK_SHIFT_MS: '-60000' } });
    t.teardown(() => c.stop());
    await seedShared(creds, { identity: 'REP-SKEW', password: 'generated-password-skew', source: 'generated' });
    const claimant = async () => (await creds.store.getCharger('REP-SKEW'))?.session?.replica;
    const first = await openCharger(a.tlsUrl, 'REP-SKEW', 'generated-password-skew', a.caPem);
    await waitFor(async () => (await claimant()) !== undefined, 'A claimed the session');
    const second = await openCharger(c.tlsUrl, 'REP-SKEW', 'generated-password-skew', c.caPem);
    t.teardown(() => { first.ws.terminate(); second.ws.terminate(); });
    t.equal(await Promise.race([first.closed, sleep(5000).then(() => -1)]), 1008, 'the session on A (clock ahead) closed when C admitted the charger later');
    t.equal(second.ws.readyState, WebSocket.OPEN, 'the newer session on C stays open');
    const third = await openCharger(a.tlsUrl, 'REP-SKEW', 'generated-password-skew', a.caPem);
    t.teardown(() => third.ws.terminate());
    t.equal(await Promise.race([second.closed, sleep(5000).then(() => -1)]), 1008, 'and the session on C closed when A admitted it again');
    t.equal(third.ws.readyState, WebSocket.OPEN, 'the newest, on A, stays open');
    t.equal((await creds.store.getCharger('REP-SKEW'))?.session?.generation, 3, 'three claims, numbered by the store');
  });

  t.test('an operator action sent to one replica reaches the charger on the other', async (t) => {
    await seedShared(creds, { identity: 'REP-OP', password: 'generated-password-op-12', source: 'generated' });
    const s = new SimStation({ identity: 'REP-OP', endpoint: b.tlsUrl, protocol: 'ocpp2.0.1', password: 'generated-password-op-12', ca: b.caPem });
    t.teardown(() => s.stop());
    await s.connect();
    await sleep(300);
    t.equal(s.keyChanges.length, 0, 'a generated password is not rotated on its own');
    const res = await adminCall(a, 'POST', '/chargers/REP-OP/rotate');
    t.equal(res.status, 202, 'rotation requested on A');
    await waitFor(() => s.keyChanges.length === 1, 'the charger on B got the password change', 8000);
    await waitFor(() => s.connections === 2, 'reconnected to B with the new password', 8000);
    await waitFor(async () => (await creds.store.getCharger('REP-OP'))?.pending === undefined, 'rotation committed');
    t.equal(s.password, s.keyChanges[0]!.password, 'the station uses the new password');
    t.notOk(csms.frames.some((f) => f.identity === 'REP-OP' && /BasicAuthPassword/.test(f.raw)), 'the CSMS saw none of it');

    const closed = new Promise<number>((r) => s.client.once('close', (e: { code: number }) => r(e.code)));
    t.equal((await adminCall(a, 'POST', '/chargers/REP-OP/block')).status, 200, 'blocked on A');
    t.equal(await Promise.race([closed, sleep(5000).then(() => -1)]), 1008, 'the session on B closed with 1008');
  });

  t.test('SIGTERM on one replica: jittered drain, chargers move to the other, no frame lost, no rotation half done', async (t) => {
    // The balancer prefers A; once A stops listening, connections go to B.
    const lbPort = await startBalancer(t, () => [a.tlsPort, b.tlsPort]);
    const lbUrl = `wss://127.0.0.1:${lbPort}/ocpp`;
    const stations: { s: SimStation; closes: { code: number; at: number }[]; acked: number[] }[] = [];
    for (let i = 0; i < 8; i++) {
      const identity = `REP-DRAIN-${i}`;
      // Two of them are in the middle of a rotation (they hold the answer) when A is told to stop.
      const rotating = i < 2;
      const password = rotating ? `operator-password-${i}-xyz` : `generated-password-${i}-xyz`;
      await seedShared(creds, { identity, password, source: rotating ? 'operator' : 'generated' });
      const s = new SimStation({ identity, endpoint: lbUrl, protocol: 'ocpp1.6', password, ca: a.caPem, behaviour: rotating ? 'manual' : 'apply', reconnectDelayMs: 100 });
      stations.push({ s, closes: await liveStation(t, s), acked: [] });
    }
    t.same((await sessionsOn(a)).filter((id) => id.startsWith('REP-DRAIN')).length, 8, 'all eight on A');
    await waitFor(() => stations[0]!.s.keyChanges.length === 1 && stations[1]!.s.keyChanges.length === 1, 'two rotations in flight on A');

    let running = true;
    const loops = stations.map(async (st) => {
      let seq = 1;
      while (running) {
        const c = st.s.client;
        if (!c) { await sleep(20); continue; }
        try {
          await c.call('DataTransfer', { vendorId: 'drain.seq', messageId: 'seq', data: String(seq) });
          st.acked.push(seq++);
        } catch {
          await sleep(20); // not answered: send the same number again once reconnected, as chargers do
        }
      }
    });
    await sleep(500);
    const signalledAt = Date.now();
    a.kill('SIGTERM');
    const exit = await a.exited;
    t.equal(exit.code, 0, 'A exited 0 after draining');
    t.ok(exit.at - signalledAt <= GRACE_MS + JITTER_MS + 2000, `A exited ${exit.at - signalledAt} ms after SIGTERM`);
    for (const st of stations) st.s.behaviour = 'apply';
    // A's exit can reach this process before the last closes have travelled through the balancer.
    await waitFor(() => stations.every((st) => st.closes.length > 0), 'every charger saw its close', 10000);
    const firstCloses = stations.map((st) => st.closes[0]);
    t.ok(firstCloses.every((c) => c?.code === 1001), `every charger on A got 1001 (${firstCloses.map((c) => c?.code).join(', ')})`);
    const offsets = firstCloses.map((c) => (c?.at ?? 0) - signalledAt).sort((x, y) => x - y);
    t.ok(offsets[0]! >= GRACE_MS - 50, `no close before the grace (first at ${offsets[0]} ms)`);
    t.ok(offsets[offsets.length - 1]! <= GRACE_MS + JITTER_MS + 500, `all within grace + jitter (last at ${offsets[offsets.length - 1]} ms)`);
    t.ok(offsets[offsets.length - 1]! - offsets[0]! >= JITTER_MS / 4, `closes spread over ${offsets[offsets.length - 1]! - offsets[0]!} ms of the ${JITTER_MS} ms window`);

    await waitFor(async () => (await sessionsOn(b)).filter((id) => id.startsWith('REP-DRAIN')).length === 8, 'every charger reconnected to B', 20000, 200);
    t.pass('every charger reconnected to B');
    // The two interrupted rotations: A never got an answer, so the charger logging in on B with its
    // old password keeps the pending entry (it may hold it); B sends it again once the back-off is
    // over, the charger applies it and comes back with it: nothing is left in between.
    await waitFor(async () => {
      for (const st of stations) if ((await creds.store.getCharger((st.s as any).o.identity))?.pending) return false;
      return stations.every((st) => st.s.client);
    }, 'no pending password left', 20000, 200);
    t.pass('no pending password left on any charger');
    await sleep(500);
    running = false;
    await Promise.all(loops);

    for (const st of stations) {
      const identity = (st.s as any).o.identity as string;
      const atCsms = csms.received(identity).filter((f) => f[0] === 2 && (f[3] as { vendorId?: string }).vendorId === 'drain.seq')
        .map((f) => Number((f[3] as { data: string }).data));
      const collapsed = atCsms.filter((n, i) => i === 0 || n !== atCsms[i - 1]);
      const last = st.acked[st.acked.length - 1] ?? 0;
      t.ok(last > 0, `${identity}: ${last} numbered calls answered`);
      t.same(collapsed.slice(0, last), Array.from({ length: last }, (_, i) => i + 1), `${identity}: every answered frame reached the CSMS, in order (${atCsms.length - collapsed.length} resent after the move)`);
      t.ok(collapsed.length <= last + 1, `${identity}: nothing beyond the last call sent`);
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${b.tlsUrl}/${identity}`, ['ocpp1.6'], { ca: b.caPem, servername: 'localhost', headers: { authorization: basic(identity, st.s.password) } } as WebSocket.ClientOptions);
        ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
        ws.on('open', () => { ws.terminate(); resolve(101); });
        ws.on('error', () => resolve(0));
      });
      t.equal(status, 101, `${identity}: the password the charger holds is the one the store accepts`);
    }
    t.notOk(csms.frames.some((f) => /AuthorizationKey/.test(f.raw)), 'the CSMS never saw a password change');
  });
});
