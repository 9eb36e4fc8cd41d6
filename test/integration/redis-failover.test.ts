/**
 * A failover behind an address that follows the primary (a managed Redis's primary endpoint, a
 * Service): the proxy's connection stays on the old primary, now a replica, and every write fails
 * READONLY. The proxy must notice and follow the address to the new primary, without restarting;
 * and must not reconnect (and fail reads meanwhile) when no primary is to be found.
 *
 * The "address" here is a real TCP forwarder on loopback whose target is switched, as a Service or a
 * DNS name switches: connections made before keep going to the old node.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import t from 'tap';
import { sleep, waitFor } from '../helpers/net';
import { startProxyBeforeCsms } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';

const run = promisify(execFile);
const cli = (port: number, ...args: string[]) => run('redis-cli', ['-p', String(port), ...args]).then((r) => r.stdout.trim());

/** A TCP forwarder on loopback; `target` may be changed (new connections only). */
async function forwarder(target: number): Promise<{ port: number; target: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { port: 0, target, close: async () => {} };
  const server = net.createServer((down) => {
    const up = net.connect(state.target, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { down.destroy(); up.destroy(); });
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as net.AddressInfo).port;
  state.close = () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); });
  return state;
}

t.test('after a failover behind a stable address the proxy follows it to the new primary', async (t) => {
  const a = await startRedis();
  t.teardown(() => a.stop());
  const b = await startRedis({ args: ['--replicaof', '127.0.0.1', String(a.port)] });
  t.teardown(() => b.stop());
  await waitFor(async () => /master_link_status:up/.test(await cli(b.port, 'INFO', 'replication')), 'b replicates a');
  const fwd = await forwarder(a.port);
  t.teardown(() => fwd.close());
  const proxy = await startProxyBeforeCsms(t, { redis: `redis://127.0.0.1:${fwd.port}` });
  const { store } = proxy.credentials;
  await store.setLockout('ip:10.0.0.1', Date.now() + 60_000);

  // The failover: b is promoted, a demoted, and the address now leads to b.
  await cli(b.port, 'REPLICAOF', 'NO', 'ONE');
  await cli(a.port, 'REPLICAOF', '127.0.0.1', String(b.port));
  fwd.target = b.port;

  // Most of the proxy's writes are Lua scripts (a failure count here), whose READONLY error reads
  // differently from a plain write's on some Redis versions.
  await t.rejects(store.recordFailure('ip:10.0.0.2', 60_000), { reason: 'store_unavailable', message: /READONLY/ },
    'the first write after the failover (a script) reaches the old primary: READONLY');
  await waitFor(() => proxy.logs.some((l) => l.event === 'redis_primary_moved'), 'logged: moved to the new primary');
  let written = false;
  for (let i = 0; i < 30 && !written; i++) {
    written = await store.setLockout('ip:10.0.0.2', Date.now() + 60_000).then(() => true, () => false);
    if (!written) await sleep(100);
  }
  t.ok(written, 'writes succeed again, without a restart');
  t.ok(Number(await cli(b.port, 'EXISTS', 'ocpp:lock:{ip:10.0.0.2}')) === 1, 'and land on the new primary');
  t.ok((await store.getLockout('ip:10.0.0.1')) > 0, 'data written before the failover is read from it');
});

t.test('a node that stays read-only (no primary anywhere): the proxy stays connected and keeps reading', async (t) => {
  const a = await startRedis();
  t.teardown(() => a.stop());
  const proxy = await startProxyBeforeCsms(t, { redis: a.url });
  const { store } = proxy.credentials;
  await store.setLockout('ip:10.0.0.1', Date.now() + 60_000);
  const clientsBefore = await cli(a.port, 'INFO', 'stats').then((s) => Number(/total_connections_received:(\d+)/.exec(s)![1]));
  await cli(a.port, 'REPLICAOF', '127.0.0.1', '1'); // a primary that does not exist
  t.teardown(() => cli(a.port, 'REPLICAOF', 'NO', 'ONE').then(() => undefined));

  await t.rejects(store.setLockout('ip:10.0.0.3', Date.now() + 60_000), { message: /READONLY/ }, 'writes fail');
  t.ok((await store.getLockout('ip:10.0.0.1')) > 0, 'reads right after still work: no reconnect that would fail them');
  await sleep(300);
  for (let i = 0; i < 5; i++) t.ok((await store.getLockout('ip:10.0.0.1')) > 0, `read ${i + 1} works`);
  t.notOk(proxy.logs.some((l) => l.event === 'redis_primary_moved'), 'no move logged');
  const clientsAfter = await cli(a.port, 'INFO', 'stats').then((s) => Number(/total_connections_received:(\d+)/.exec(s)![1]));
  // Between the two readings: redis-cli's REPLICAOF and INFO, and the proxy's one probe asking ROLE.
  t.equal(clientsAfter - clientsBefore, 3, 'the proxy made one new connection only: the probe, not a reconnect');
});
