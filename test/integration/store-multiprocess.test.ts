/**
 * The embedded store shared by several OS processes on one data directory (the proxy and the
 * `chargers` CLI): concurrent writers lose nothing, readers and change listeners see other processes'
 * commits, and stale locks are broken while live ones are respected.
 */
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { EmbeddedStore, LOCK_FILE } from '../../proxy/store/embedded';
import { StoreError } from '../../proxy/store/errors';
import type { NewChargerRecord } from '../../proxy/store/types';

const EMBEDDED = path.resolve(__dirname, '../../proxy/store/embedded.js');
const charger = (identity: string): NewChargerRecord => ({ identity, minProfile: 2, status: 'active' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker process running `body` (JS, with `store`, `args`, `out(obj)` and `sleep` in scope). */
function worker(dataDir: string, body: string, args: unknown): { child: ChildProcess; lines: AsyncIterableIterator<string>; exit: Promise<number | null> } {
  const script = `
    const { EmbeddedStore } = require(${JSON.stringify(EMBEDDED)});
    const args = JSON.parse(process.argv[1]);
    const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    (async () => {
      const store = await EmbeddedStore.open({ dataDir: ${JSON.stringify(dataDir)} });
      ${body}
      await store.close();
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines, exit };
}

function killOnTeardown(tt: Test, child: ChildProcess): void {
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
}

t.test('several processes on one data dir', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'store-mp-'));
  t.teardown(() => fs.rm(root, { recursive: true, force: true }));

  t.test('concurrent writers in three processes: no change lost, one commit wins', async (t) => {
    const dataDir = path.join(root, 'hammer');
    const store = await EmbeddedStore.open({ dataDir });
    t.teardown(() => store.close());
    await store.putCharger(charger('SHARED'));
    await store.putCharger(charger('RACE'));
    await store.setPending('RACE', { encrypted: 'v1.x', createdAt: 7, attempt: 1 });
    const n = 150;
    const startAt = Date.now() + 1500;
    // Each worker writes its own chargers and serials, and its own field of the shared record: a
    // process writing from stale state would roll the other's field back.
    const body = `
      await sleep(args.startAt - Date.now());
      const won = await store.commitPending('RACE', { scheme: 'hmac-sha256', salt: 'c2FsdA==', hash: args.tag }, 7);
      let wave = [];
      for (let i = 0; i < args.n; i++) {
        wave.push(store.putCharger({ identity: args.tag + '-' + i, minProfile: 2, status: 'active' }));
        if (i % 10 === 0) wave.push(store.revokeSerial(args.tag.toLowerCase() + 'ee' + i));
        wave.push(args.tag === 'A'
          ? store.updateCharger('SHARED', { organization: 'A-' + i })
          : store.updateCharger('SHARED', { rotation: { lastResult: 'B-' + i } }));
        if (i % 5 === 4) { await Promise.all(wave); wave = []; }
      }
      await Promise.all(wave);
      out({ won });`;
    const workers = ['A', 'B'].map((tag) => worker(dataDir, body, { tag, n, startAt }));
    for (const w of workers) killOnTeardown(t, w.child);
    await sleep(startAt - Date.now());
    const started = Date.now();
    for (let i = 0; i < n; i += 5) await Promise.all(Array.from({ length: 5 }, (_, j) => store.putCharger(charger(`T-${i + j}`))));
    const results = await Promise.all(workers.map(async (w) => JSON.parse((await w.lines.next()).value as string) as { won: boolean }));
    t.same(await Promise.all(workers.map((w) => w.exit)), [0, 0], 'workers exited cleanly');
    t.comment(`3 processes × ${n} charger writes (+ shared updates, revocations) in ${Date.now() - started} ms`);

    const check = await EmbeddedStore.open({ dataDir });
    t.teardown(() => check.close());
    const ids = new Set((await check.listChargers({ limit: 1000 })).items.map((r) => r.identity));
    for (const tag of ['A', 'B', 'T']) {
      const missing = Array.from({ length: n }, (_, i) => `${tag}-${i}`).filter((id) => !ids.has(id));
      t.same(missing, [], `every charger written by ${tag} is there`);
    }
    const shared = await check.getCharger('SHARED');
    t.equal(shared?.organization, `A-${n - 1}`, "A's last update kept");
    t.equal(shared?.rotation?.lastResult, `B-${n - 1}`, "B's last update kept");
    t.equal((await check.listRevoked()).length, 2 * (n / 10), 'every revocation kept');
    t.equal(results.filter((r) => r.won).length, 1, 'exactly one process committed the pending password');
    t.equal((await store.getCharger('A-0'))?.identity, 'A-0', 'the long-open instance reads the others\' writes');
    t.same((await fs.readdir(dataDir)).filter((f) => f.includes('.tmp-') || f === LOCK_FILE), [], 'no temp or lock file left');
  });

  t.test('a reader process sees a writer\'s change by read and by change feed', async (t) => {
    const dataDir = path.join(root, 'reader');
    const store = await EmbeddedStore.open({ dataDir });
    t.teardown(() => store.close());
    await store.putCharger(charger('WATCH'));
    const reader = worker(dataDir, `
      let feedAt = 0, readAt = 0, revokedAt = 0;
      store.subscribeChanges((c) => {
        if (c.kind === 'charger' && c.identity === 'WATCH' && !feedAt) feedAt = Date.now();
        if (c.kind === 'revoked' && c.serialHex === 'abcd' && !revokedAt) revokedAt = Date.now();
      });
      out({ ready: true });
      const deadline = Date.now() + 10000;
      while (Date.now() < deadline && !(feedAt && readAt && revokedAt)) {
        if (!readAt && (await store.getCharger('WATCH')).status === 'blocked') readAt = Date.now();
        await sleep(5);
      }
      out({ feedAt, readAt, revokedAt });`, {});
    killOnTeardown(t, reader.child);
    t.same(JSON.parse((await reader.lines.next()).value as string), { ready: true });
    const changedAt = Date.now();
    await store.updateCharger('WATCH', { status: 'blocked' });
    await store.revokeSerial('abcd');
    const seen = JSON.parse((await reader.lines.next()).value as string) as { feedAt: number; readAt: number; revokedAt: number };
    t.equal(await reader.exit, 0);
    const readMs = seen.readAt - changedAt;
    const feedMs = seen.feedAt - changedAt;
    t.ok(seen.readAt > 0 && readMs < 1000, `read saw the change after ${readMs} ms (bound: readCheckMs 100)`);
    t.ok(seen.feedAt > 0 && feedMs < 2000, `listener told after ${feedMs} ms (bound: changePollMs 250)`);
    t.ok(seen.revokedAt > 0, 'revocation reported to the reader');
  });

  t.test('audit events of several processes all kept and visible to each', async (t) => {
    const dataDir = path.join(root, 'audit');
    const store = await EmbeddedStore.open({ dataDir, auditCap: 50 });
    t.teardown(() => store.close());
    await store.appendAudit({ type: 'first' });
    const w = worker(dataDir, `
      for (let i = 0; i < 40; i++) await store.appendAudit({ type: 'from_worker', detail: { i } });
      out({ seen: (await store.readAudit(1000)).filter((e) => e.type === 'from_test' || e.type === 'first').length });`, {});
    killOnTeardown(t, w.child);
    for (let i = 0; i < 40; i++) await store.appendAudit({ type: 'from_test', detail: { i } });
    const fromWorker = JSON.parse((await w.lines.next()).value as string) as { seen: number };
    t.equal(await w.exit, 0);
    // The worker opens with the default cap, so it keeps everything; this store keeps the newest 50.
    t.ok(fromWorker.seen > 0, `worker read ${fromWorker.seen} of this process's events`);
    const events = await store.readAudit(1000);
    t.equal(events.length, 50, 'cap applies to the merged stream');
    t.ok(events.some((e) => e.type === 'from_worker'), "this process reads the worker's events");
    const lines = (await fs.readFile(path.join(dataDir, 'audit.jsonl'), 'utf8')).split('\n').filter(Boolean);
    const count = (type: string) => lines.filter((l) => (JSON.parse(l) as { type: string }).type === type).length;
    t.ok(lines.length <= 100, `file compacted (${lines.length} lines)`);
    t.equal(count('from_test') + count('from_worker') + count('first'), lines.length, 'every line is a whole event');
  });

  t.test('a session claim from another process is reported as a session change, not a charger change', async (t) => {
    const dataDir = path.join(root, 'touch');
    const store = await EmbeddedStore.open({ dataDir, changePollMs: 50 });
    t.teardown(() => store.close());
    await store.putCharger(charger('T1'));
    const seen: string[] = [];
    const off = store.subscribeChanges((c) => seen.push(c.kind === 'charger' ? c.identity : c.kind === 'session' ? `${c.kind}:${c.owner.nonce}` : c.kind));
    const w = worker(dataDir, `await store.claimSession('T1', { replica: 'w', nonce: 'n1', since: 1234 }); await store.updateCharger('T1', { reportOnly: true });`, {});
    killOnTeardown(t, w.child);
    t.equal(await w.exit, 0);
    await sleep(300);
    off();
    t.same(seen.sort(), ['T1', 'session:n1'], 'one session change with its owner, one charger change for the update');
    t.equal((await store.getCharger('T1'))?.lastSeenAt, 1234, 'the claim is stored and read');
  });

  t.test('stale locks are broken, live ones respected', async (t) => {
    const dataDir = path.join(root, 'locks');
    const lockFile = path.join(dataDir, LOCK_FILE);
    const store = await EmbeddedStore.open({ dataDir, lockTimeoutMs: 400, lockStaleMs: 5000 });
    t.teardown(() => store.close());

    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.once('exit', r));
    await fs.writeFile(lockFile, JSON.stringify({ pid: deadPid, host: os.hostname(), token: 'x' }));
    let started = Date.now();
    await store.putCharger(charger('L1'));
    t.ok(Date.now() - started < 400, 'lock of a dead process broken at once');

    // This pid with a token this process never took, written before this process started: left by
    // an earlier process that had the same pid (a container's pid 1 after a restart). Broken at
    // once, not after lockStaleMs (10 minutes for this store).
    const patient = await EmbeddedStore.open({ dataDir, lockTimeoutMs: 400, lockStaleMs: 600_000 });
    t.teardown(() => patient.close());
    await fs.writeFile(lockFile, JSON.stringify({ pid: process.pid, host: os.hostname(), token: 'an-earlier-incarnation' }));
    const beforeUs = new Date(Date.now() - process.uptime() * 1000 - 1000);
    await fs.utimes(lockFile, beforeUs, beforeUs);
    started = Date.now();
    await patient.putCharger(charger('L1b'));
    t.ok(Date.now() - started < 400, 'lock naming our pid but not our token, older than this process: broken at once');
    // The same, written after this process started: a live process in another pid namespace with
    // the same host name (two containers of one pod share a volume) holds it. Waited for.
    await fs.writeFile(lockFile, JSON.stringify({ pid: process.pid, host: os.hostname(), token: 'another-namespace' }));
    const waited = await patient.putCharger(charger('L1c')).catch((e: unknown) => e);
    t.ok(waited instanceof StoreError && waited.reason === 'store_unavailable', 'a lock made since this process started is respected');
    await fs.rm(lockFile, { force: true });

    // A live holder (another process that runs) is waited for, then the write fails clearly.
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
    t.teardown(() => { live.kill('SIGKILL'); });
    await fs.writeFile(lockFile, JSON.stringify({ pid: live.pid, host: os.hostname(), token: 'other' }));
    started = Date.now();
    const err = await store.putCharger(charger('L2')).catch((e: unknown) => e);
    t.ok(err instanceof StoreError && err.reason === 'store_unavailable', 'live lock: store_unavailable', { found: String(err) });
    t.match((err as Error).message, new RegExp(`held by pid ${live.pid}`), 'error names the holder');
    t.ok(Date.now() - started >= 350, 'waited for the timeout');
    t.equal(await store.getCharger('L2'), null, 'nothing applied');

    // The same lock file, but older than lockStaleMs: broken.
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(lockFile, old, old);
    await store.putCharger(charger('L3'));
    t.ok(await store.getCharger('L3'), 'old lock broken');
    await t.rejects(fs.stat(lockFile), 'lock released after the write');
  });
});
