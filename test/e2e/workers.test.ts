import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startLegacyCsms } from '../helpers/csms';
import { freePort, freePortPair, waitFor } from '../helpers/net';
import { makeCharger, scratchDir, TEST_PKI_DIR } from '../helpers/proxy';

t.test('several worker processes share the charger listener; SIGTERM drains them all', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const dataDir = scratchDir(t, 'workers-');
  const adminPort = await freePortPair();
  const tlsPort = await freePort();
  const pki = (f: string) => path.join(TEST_PKI_DIR, f);
  const proc = spawn(process.execPath, [path.resolve(__dirname, '../../proxy/cli.js'), 'serve', '--workers', '2',
    '--listen', `127.0.0.1:${tlsPort}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--backend', csms.url, '--data-dir', dataDir,
    '--tls-cert', pki('server-rsa.crt'), '--tls-key', pki('server-rsa.key'), '--report-only', '--drain-grace-ms', '0', '--drain-jitter-ms', '200',
    '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  await waitFor(async () => {
    const ok = await Promise.all([adminPort, adminPort + 1].map((p) => fetch(`http://127.0.0.1:${p}/healthz`).then((r) => r.ok, () => false)));
    return ok.every(Boolean);
  }, 'both workers answering on their admin ports', 20000, 200).catch((e) => { console.error(out); throw e; });

  const ca = readFileSync(pki('ca.crt'));
  const chargers = Array.from({ length: 6 }, (_, i) => makeCharger({ identity: `W-${i}`, endpoint: `wss://127.0.0.1:${tlsPort}/ocpp`, ca }));
  await Promise.all(chargers.map((c) => c.connect()));
  for (const c of chargers) await c.call('Heartbeat', {});
  // Worker 2's log lines carry `worker: 2`; worker 1's carry none. Lines reach stdout in batches
  // (up to LOG_FLUSH_MS late), so wait for them; only complete lines are read.
  const workersSeen = () => new Set(out.slice(0, out.lastIndexOf('\n')).split('\n')
    .filter((l) => l.includes('"session_started"')).map((l) => JSON.parse(l).worker ?? 1));
  await waitFor(() => workersSeen().size === 2, 'session lines from both workers', 5000, 50).catch(() => undefined);
  t.same([...workersSeen()].sort(), [1, 2], 'sessions were spread over both worker processes');

  // With the embedded store each worker keeps lockouts of its own: one worker's admin API cannot lift them all.
  const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  const unlock = await fetch(`http://127.0.0.1:${adminPort}/api/v1/chargers/W-0/unlock`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  t.equal(unlock.status, 409, 'unlock through one worker is refused');
  t.match(await unlock.json(), { error: 'lockouts_elsewhere', message: /with workers, use Redis/ });

  const closes = chargers.map((c) => new Promise<any>((r) => c.once('close', r)));
  proc.kill('SIGTERM');
  const codes = (await Promise.all(closes)).map((c) => c.code);
  t.same([...new Set(codes)], [1001], 'every charger closed with 1001');
  const [code] = (await once(proc, 'exit')) as [number];
  t.equal(code, 0, 'primary exits 0 after all workers drained');
});
