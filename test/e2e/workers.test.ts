import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startLegacyCsms } from '../helpers/csms';
import { freePort, freePortPair, waitFor } from '../helpers/net';
import { makeCharger, scratchDir, TEST_PKI_DIR } from '../helpers/proxy';
import { startRedis } from '../helpers/redis';

t.test('several worker processes share the charger listener; SIGTERM drains them all', async (t) => {
  const { proc, chargers, adminPort, dataDir, workerOf } = await startWorkers(t, []);
  for (const c of chargers) await c.call('Heartbeat', {});
  t.same([...new Set(workerOf().values())].sort(), [1, 2], 'sessions were spread over both worker processes');

  // With the embedded store each worker keeps lockouts of its own: one worker's admin API cannot lift them all.
  const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  const unlock = await fetch(`http://127.0.0.1:${adminPort}/api/v1/chargers/WG-0/unlock`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  t.equal(unlock.status, 409, 'unlock through one worker is refused');
  t.match(await unlock.json(), { error: 'lockouts_elsewhere', message: /with workers, use Redis/ });

  const closes = chargers.map((c) => new Promise<any>((r) => c.once('close', r)));
  proc.kill('SIGTERM');
  const codes = (await Promise.all(closes)).map((c) => c.code);
  t.same([...new Set(codes)], [1001], 'every charger closed with 1001');
  const [code] = (await once(proc, 'exit')) as [number];
  t.equal(code, 0, 'primary exits 0 after all workers drained');
});

t.test('SIGTERM while the workers are still starting: each drains once it is up, and the primary exits 0', async (t) => {
  const { proc, output } = await spawnWorkers(t, []);
  await waitFor(() => output().includes('"workers_started"'), 'the workers forked', 10000, 5);
  const workers = execFileSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  t.equal(workers.length, 2, 'two workers forked; the SIGTERM follows at once, while they start');
  proc.kill('SIGTERM');
  const [code] = (await once(proc, 'exit')) as [number];
  t.equal(code, 0, 'primary exits 0');
  t.notMatch(output(), /"worker_killed"|"worker_died"|"second_signal"/, 'no worker had to be killed (a drain request lost while it started would leave it serving until the backstop)');
  for (const pid of workers) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} has exited`);
});

/** `serve --workers 2` in a process group of its own (so the group can be signalled as systemd or Ctrl-C does). */
async function startWorkers(t: Test, extra: string[]) {
  const { proc, adminPort, tlsPort, dataDir, output } = await spawnWorkers(t, extra);
  const healthy = (port: number) => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
  await waitFor(async () => (await healthy(adminPort)) && (await healthy(adminPort + 1)), 'both workers answering', 20000, 200).catch((e) => { console.error(output()); throw e; });
  const ca = readFileSync(path.join(TEST_PKI_DIR, 'ca.crt'));
  const chargers = Array.from({ length: 6 }, (_, i) => makeCharger({ identity: `WG-${i}`, endpoint: `wss://127.0.0.1:${tlsPort}/ocpp`, ca }));
  await Promise.all(chargers.map((c) => c.connect()));
  const out = output;
  const workerOf = () => new Map(out().slice(0, out().lastIndexOf('\n')).split('\n').filter((l) => l.includes('"session_started"'))
    .map((l) => JSON.parse(l) as { identity: string; worker?: number }).map((l) => [l.identity, l.worker ?? 1]));
  await waitFor(() => workerOf().size === chargers.length, 'every session logged', 5000, 50);
  return { proc, chargers, adminPort, dataDir, healthy, workerOf, output };
}

/** Starts `serve --workers 2` without waiting for it. */
async function spawnWorkers(t: Test, extra: string[]) {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const dataDir = scratchDir(t, 'workers-');
  const adminPort = await freePortPair();
  const tlsPort = await freePort();
  const pki = (f: string) => path.join(TEST_PKI_DIR, f);
  const proc = spawn(process.execPath, [path.resolve(__dirname, '../../proxy/cli.js'), 'serve', '--workers', '2',
    '--listen', `127.0.0.1:${tlsPort}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--backend', csms.url, '--data-dir', dataDir,
    '--tls-cert', pki('server-rsa.crt'), '--tls-key', pki('server-rsa.key'), '--report-only', '--drain-grace-ms', '0', '--drain-jitter-ms', '200',
    '--log-level', 'info', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  t.teardown(() => { if (proc.exitCode === null) process.kill(-proc.pid!, 'SIGKILL'); });
  return { proc, adminPort, tlsPort, dataDir, output: () => out };
}

t.test('SIGTERM to the whole process group (systemd, Ctrl-C): the workers drain once, chargers get 1001', async (t) => {
  const { proc, chargers, output } = await startWorkers(t, []);
  const closes = chargers.map((c) => new Promise<any>((r) => c.once('close', r)));
  process.kill(-proc.pid!, 'SIGTERM'); // the group: the primary and both workers get it at once
  const codes = (await Promise.all(closes)).map((c) => c.code);
  t.same([...new Set(codes)], [1001], 'every charger closed with 1001, none cut (1006)');
  const [code] = (await once(proc, 'exit')) as [number];
  t.equal(code, 0, 'primary exits 0');
  t.notMatch(output(), /second_signal/, 'no worker took the group signal and the primary\'s request as two');
});

t.test('a worker restarted while Redis is down waits for it; the other worker keeps its sessions', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const { proc, chargers, adminPort, healthy, workerOf, output } = await startWorkers(t, ['--redis', redis.url]);
  const onWorker2 = chargers.filter((c) => workerOf().get(c.identity) === 2);
  const onWorker1 = chargers.filter((c) => workerOf().get(c.identity) === 1);
  t.ok(onWorker1.length > 0 && onWorker2.length > 0, `sessions on both workers (${onWorker1.length} + ${onWorker2.length})`);
  const closes1: number[] = [];
  for (const c of onWorker1) c.once('close', (e: { code: number }) => closes1.push(e.code));

  await redis.stop();
  // Worker 2 dies (as an OOM kill would have it); it is started again and finds Redis down.
  const worker2 = Number(execFileSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).trim().split('\n')
    .find((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').includes('OCPP_PROXY_WORKER_INDEX=2')));
  process.kill(worker2, 'SIGKILL');
  await waitFor(() => (output().match(/"worker_waiting_for_store"/g) ?? []).length >= 3 || undefined, 'the worker waited for the store three times', 20000, 100);
  const delays = output().split('\n').filter((l) => l.includes('"worker_waiting_for_store"')).map((l) => (JSON.parse(l) as { retryInMs: number }).retryInMs);
  t.same(delays.slice(0, 3), [1000, 2000, 4000], 'with a growing back-off');
  t.notMatch(output(), /workers_failing/, 'the primary did not give up');
  t.equal(proc.exitCode, null, 'the primary runs');
  t.same(closes1, [], 'worker 1\'s sessions were never closed');
  for (const c of onWorker1) await c.call('Heartbeat', {});
  t.pass('and still relay');

  await redis.restart();
  await waitFor(() => healthy(adminPort + 1), 'worker 2 back once Redis is', 40000, 200);
  t.pass('worker 2 started again once Redis was back');
  proc.kill('SIGTERM');
  await once(proc, 'exit');
});

t.test('a worker that does not end after its drain is killed by the primary, which then exits', async (t) => {
  const { proc, chargers, workerOf, output } = await startWorkers(t, []);
  const workerPid = (index: number) => Number(execFileSync('pgrep', ['-P', String(proc.pid)], { encoding: 'utf8' }).trim().split('\n')
    .find((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`OCPP_PROXY_WORKER_INDEX=${index}`)));
  const stuck = workerPid(2);
  const onWorker1 = chargers.filter((c) => workerOf().get(c.identity) === 1);
  const closes1 = onWorker1.map((c) => new Promise<any>((r) => c.once('close', r)));
  process.kill(stuck, 'SIGSTOP'); // hung: it can neither read the drain request nor exit
  t.teardown(() => { try { process.kill(stuck, 'SIGKILL'); } catch { /* gone, as it should be */ } });
  proc.kill('SIGTERM');
  t.same([...new Set((await Promise.all(closes1)).map((c) => c.code))], [1001], 'worker 1 drained its chargers with 1001');
  const [code] = (await once(proc, 'exit')) as [number];
  t.equal(code, 0, 'the primary exits 0 once the hung worker is gone');
  t.match(output(), new RegExp(`"event":"worker_killed".*"pid":${stuck}`), 'and logged which worker it killed');
  t.throws(() => process.kill(stuck, 0), { code: 'ESRCH' }, 'the hung worker no longer exists');
});
