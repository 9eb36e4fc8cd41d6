/**
 * The change feed checks its own subscription (proxy/store/redis-changes.ts): a subscriber
 * connection black-holed without a FIN or RST looks connected for good, and a Redis Cluster
 * subscription moves without a word. Probes a process publishes and must hear find both; the
 * subscriber is replaced and the listeners hear a `resync`. A real redis-server behind a real TCP
 * forwarder that can swallow a connection's bytes while keeping it open.
 */
import t from 'tap';
import net from 'node:net';
import { RedisStore } from '../../proxy/store/redis';
import type { NewChargerRecord, StoreChange } from '../../proxy/store/types';
import { sleep, waitFor } from '../helpers/net';
import { startRedis } from '../helpers/redis';

const charger = (identity: string): NewChargerRecord => ({ identity, minProfile: 2, status: 'active' });

/** A TCP forwarder that notes which connections subscribed, and can black-hole those (bytes dropped both ways, sockets open). */
async function forwarder(target: number) {
  const conns: { down: net.Socket; up: net.Socket; subscriber: boolean; frozen: boolean }[] = [];
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    const c = { down, up, subscriber: false, frozen: false };
    conns.push(c);
    down.on('data', (d: Buffer) => {
      if (/subscribe/i.test(d.toString('latin1'))) c.subscriber = true;
      if (!c.frozen) up.write(d);
    });
    up.on('data', (d: Buffer) => { if (!c.frozen) down.write(d); });
    for (const s of [down, up]) s.on('error', () => { down.destroy(); up.destroy(); });
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    blackHoleSubscribers(): number {
      const hit = conns.filter((c) => c.subscriber && !c.frozen && !c.down.destroyed);
      for (const c of hit) c.frozen = true;
      return hit.length;
    },
    close: () => new Promise<void>((r) => { for (const c of conns) { c.down.destroy(); c.up.destroy(); } server.close(() => r()); }),
  };
}

t.test('a subscription black-holed without a word is found by its probes and replaced; the listeners hear a resync', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const fwd = await forwarder(redis.port);
  t.teardown(() => fwd.close());
  const a = await RedisStore.open({ url: `redis://127.0.0.1:${fwd.port}`, keyPrefix: 'fw:', changeProbeMs: 200 });
  const b = await RedisStore.open({ url: redis.url, keyPrefix: 'fw:', changeProbeMs: 0 });
  t.teardown(async () => { await a.close(); await b.close(); });
  const heard: StoreChange[] = [];
  a.subscribeChanges((c) => { heard.push(c); });
  const chargerChanges = () => heard.filter((c) => c.kind === 'charger' && c.identity === 'FW1').length;
  await sleep(300);
  await b.putCharger(charger('FW1'));
  await waitFor(() => chargerChanges() === 1, 'A hears B through the forwarder');

  t.equal(fwd.blackHoleSubscribers(), 1, 'A\'s subscriber connection black-holed (still open)');
  await b.updateCharger('FW1', { organization: 'unheard' });
  await sleep(100);
  t.equal(chargerChanges(), 1, 'that change never reaches A');
  await waitFor(() => heard.some((c) => c.kind === 'resync'), 'A notices by its probes and re-reads (resync)', 5000);
  await b.updateCharger('FW1', { organization: 'heard again' });
  await waitFor(() => chargerChanges() === 2, 'A hears changes again on its new subscriber');
  t.same(heard.filter((c) => c.kind === 'resync'), [{ kind: 'resync' }], 'one resync');
});

t.test('probes stay quiet while all is well, and other processes skip them', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const stores = await Promise.all([1, 2, 3].map(() => RedisStore.open({ url: redis.url, keyPrefix: 'q:', changeProbeMs: 50 })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const heard = stores.map(() => [] as StoreChange[]);
  stores.forEach((s, i) => s.subscribeChanges((c) => { heard[i]!.push(c); }));
  await sleep(1500); // 30 intervals, each store probing
  await stores[0]!.putCharger(charger('Q1'));
  await waitFor(() => heard.every((h) => h.length === 1), 'each hears the one change');
  t.same(heard, [0, 1, 2].map(() => [{ kind: 'charger', identity: 'Q1' }]), 'and nothing else: no resync, no probe taken for a change');
});
