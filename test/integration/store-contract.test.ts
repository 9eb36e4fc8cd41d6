/**
 * One contract suite for the CredentialStore, run against the EmbeddedStore and a RedisStore on a
 * real redis-server; plus implementation-specific durability / availability checks.
 */
import t, { type Test } from 'tap';
import Redis from 'ioredis';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedStore, STORE_FILE } from '../../proxy/store/embedded';
import { StoreError } from '../../proxy/store/errors';
import { openStore } from '../../proxy/store/open';
import { RedisStore } from '../../proxy/store/redis';
import type { CredentialStore, NewChargerRecord, PasswordHash, PendingPassword, StoreChange } from '../../proxy/store/types';
import { startCluster, startRedis, startSentinel, watchCommands } from '../helpers/redis';
import { waitFor } from '../helpers/net';

/** Opens a fresh, empty store; `reopen` opens a new instance over the same data. */
type Factory = (opts?: { auditCap?: number }) => Promise<{ store: CredentialStore; reopen: () => Promise<CredentialStore> }>;

const hash = (tag: string): PasswordHash => ({ scheme: 'hmac-sha256', salt: 'c2FsdA==', hash: Buffer.from(tag).toString('base64') });
const charger = (identity: string, extra: Partial<NewChargerRecord> = {}): NewChargerRecord => ({
  identity, minProfile: 2, status: 'active', password: hash('p-' + identity), passwordSource: 'operator', ...extra,
});
const pending = (createdAt: number): PendingPassword => ({ encrypted: 'v1.sealed-' + createdAt, hash: hash('new-' + createdAt), createdAt, attempt: 1 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Collects changes; `next(pred)` resolves with the first (already seen or future) change matching `pred`. */
function recorder() {
  const seen: StoreChange[] = [];
  const waiters: { pred: (c: StoreChange) => boolean; resolve: (c: StoreChange) => void }[] = [];
  const listener = (c: StoreChange) => {
    seen.push(c);
    for (const w of [...waiters]) if (w.pred(c)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(c); }
  };
  const next = (pred: (c: StoreChange) => boolean, timeoutMs = 2000): Promise<StoreChange | null> => {
    const hit = seen.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve) => {
      const w = { pred, resolve: (c: StoreChange | null) => { clearTimeout(timer); resolve(c); } };
      const timer = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); resolve(null); }, timeoutMs);
      waiters.push(w);
    });
  };
  return { seen, listener, next, clear: () => void seen.splice(0) };
}
const isCharger = (id: string) => (c: StoreChange) => c.kind === 'charger' && c.identity === id;

/** Assert that `p` rejects with a StoreError of the given reason. */
async function rejectsWith(t: Test, p: Promise<unknown>, reason: string, msg = `rejects with ${reason}`): Promise<StoreError | null> {
  const err = await p.then(() => null, (e: unknown) => e);
  t.ok(err instanceof StoreError && err.reason === reason, msg, { found: String(err) });
  return err instanceof StoreError ? err : null;
}

function contract(t: Test, open: Factory): void {
  t.test('CRUD', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    t.equal(await store.getCharger('CP1'), null, 'missing charger is null');
    const put = await store.putCharger(charger('CP1', { organization: 'ACME' }));
    t.equal(put.identity, 'CP1');
    t.ok(put.createdAt > 0 && put.updatedAt >= put.createdAt, 'timestamps filled');
    t.same(await store.getCharger('CP1'), put, 'get returns what put stored');
    await sleep(5);
    const again = await store.putCharger(charger('CP1', { minProfile: 3 }));
    t.equal(again.createdAt, put.createdAt, 'createdAt survives a replace');
    t.equal(again.organization, undefined, 'put replaces the whole record');
    const upd = await store.updateCharger('CP1', { status: 'blocked', organization: 'X', password: null });
    t.equal(upd?.status, 'blocked');
    t.equal(upd?.organization, 'X');
    t.notOk('password' in (upd ?? {}), 'null removes a field');
    t.equal((await store.getCharger('CP1'))?.minProfile, 3, 'unpatched fields kept');
    t.equal(await store.updateCharger('nope', { status: 'blocked' }), null, 'update of a missing charger is null');
    await rejectsWith(t, store.putCharger({ ...charger('CP2'), minProfile: 4 as 1 }), 'store_invalid_input');
    await rejectsWith(t, store.putCharger(charger('')), 'store_invalid_input');
    await rejectsWith(t, store.putCharger(charger('a\nb')), 'store_invalid_input');
    t.equal(await store.removeCharger('CP1'), true);
    t.equal(await store.removeCharger('CP1'), false);
    t.equal(await store.getCharger('CP1'), null);
  });

  t.test('createCharger creates only: never replaces, one winner when raced', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    const first = await store.createCharger(charger('CC1', { organization: 'first' }));
    t.equal(first?.organization, 'first', 'created');
    t.equal(await store.createCharger(charger('CC1', { organization: 'second' })), null, 'taken: null');
    t.equal((await store.getCharger('CC1'))?.organization, 'first', 'and the record is untouched');
    const raced = await Promise.all([1, 2, 3, 4, 5].map((n) => store.createCharger(charger('CC2', { organization: `racer-${n}` }))));
    const winners = raced.filter((r) => r !== null);
    t.equal(winners.length, 1, 'five at once: one created');
    t.equal((await store.getCharger('CC2'))?.organization, winners[0]!.organization, 'the stored one is the winner\'s');
    t.ok((await store.listChargers()).items.some((r) => r.identity === 'CC2'), 'listed');
  });

  t.test('list paging in identity byte order', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    const ids = Array.from({ length: 25 }, (_, i) => `CP-${String(i).padStart(2, '0')}`).concat(['a', 'Z', 'é']);
    for (const id of [...ids].reverse()) await store.putCharger(charger(id));
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.listChargers({ cursor, limit: 10 });
      seen.push(...page.items.map((r) => r.identity));
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined && pages < 10);
    t.equal(pages, 3);
    t.same(seen, [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    t.same((await store.listChargers()).items.length, 28, 'default limit covers all');
    await store.removeCharger('a');
    t.notOk((await store.listChargers({ limit: 1000 })).items.some((r) => r.identity === 'a'), 'removed leaves the list');
  });

  t.test('rotation is patched field by field: the proxy and an operator never undo each other', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    await store.putCharger(charger('ROT'));
    await store.updateCharger('ROT', { rotation: { requestedAt: 10, nextAttemptAt: null } }); // an operator's request
    await store.updateCharger('ROT', { rotation: { disabled: true } }); // and a switch-off
    await store.updateCharger('ROT', { rotation: { failures: 2, nextAttemptAt: 99, lastResult: 'timeout' } }); // the proxy's back-off
    t.strictSame((await store.getCharger('ROT'))?.rotation, { requestedAt: 10, disabled: true, failures: 2, nextAttemptAt: 99, lastResult: 'timeout' }, 'every writer\'s fields kept');
    await store.updateCharger('ROT', { rotation: { requestedAt: null, nextAttemptAt: null, lastAttemptAt: 11 } });
    t.strictSame((await store.getCharger('ROT'))?.rotation, { disabled: true, failures: 2, lastResult: 'timeout', lastAttemptAt: 11 }, 'null removes a field');
    await store.updateCharger('ROT', { rotation: null });
    t.equal((await store.getCharger('ROT'))?.rotation, undefined, 'null removes the whole state');
    await store.updateCharger('ROT', { rotation: { lastResult: 'accepted' } });
    await store.updateCharger('ROT', { rotation: { lastResult: null } });
    t.equal((await store.getCharger('ROT'))?.rotation, undefined, 'nothing left: no empty object');
  });

  t.test('the certificate binding is patched field by field: a binding and an operator\'s serial number never undo each other', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    await store.putCharger(charger('CRT', { certificate: { serialNumber: 'SN-1' } }));
    await Promise.all([
      store.updateCharger('CRT', { certificate: { boundSerialHex: 'ab12', notAfter: 5, boundAt: 4 } }), // the proxy binds
      store.updateCharger('CRT', { certificate: { serialNumber: 'SN-2' } }), // the operator corrects the serial
    ]);
    t.strictSame((await store.getCharger('CRT'))?.certificate, { serialNumber: 'SN-2', boundSerialHex: 'ab12', notAfter: 5, boundAt: 4 }, 'both kept');
    await store.updateCharger('CRT', { certificate: { serialNumber: null } });
    t.strictSame((await store.getCharger('CRT'))?.certificate, { boundSerialHex: 'ab12', notAfter: 5, boundAt: 4 }, 'null removes a field');
    await store.updateCharger('CRT', { certificate: null });
    t.equal((await store.getCharger('CRT'))?.certificate, undefined, 'null removes the whole binding');
  });

  t.test('pending set / update / drop / commit with guards', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    await store.putCharger(charger('CP1'));
    t.equal(await store.setPending('missing', pending(1)), false, 'no pending for a missing charger');
    t.equal(await store.setPending('CP1', pending(100)), true);
    t.equal(await store.updatePending('CP1', 99, { sentAt: 5 }), false, 'stale update refused');
    t.equal(await store.updatePending('CP1', 100, { sentAt: 5, attempt: 2 }), true);
    await t.resolves(store.replicated('CP1'), 'replicated: nothing to wait for without replicas (on a Cluster, asked of the node holding the charger)');
    t.same((await store.getCharger('CP1'))?.pending, { ...pending(100), sentAt: 5, attempt: 2 });
    t.equal(await store.dropPending('CP1', 99), false, 'stale drop refused');
    t.equal(await store.commitPending('CP1', hash('new-100'), 99), false, 'stale commit refused');
    t.equal((await store.getCharger('CP1'))?.password?.hash, hash('p-CP1').hash, 'stale commit changed nothing');
    t.equal(await store.commitPending('CP1', hash('new-100'), 100, 12345), true);
    const rec = await store.getCharger('CP1');
    t.same(rec?.password, hash('new-100'), 'pending became current');
    t.equal(rec?.pending, undefined, 'pending gone');
    t.equal(rec?.passwordSource, 'generated');
    t.equal(rec?.passwordSetAt, 12345);
    t.equal(await store.commitPending('CP1', hash('new-100'), 100), false, 'second commit refused');
    t.equal(await store.dropPending('CP1'), false, 'nothing to drop');
    t.equal(await store.setPending('CP1', pending(200)), true);
    // Another session may have sent the one there: it is resent, never replaced.
    t.equal(await store.setPending('CP1', pending(300)), false, 'a pending password not yet answered is not replaced');
    t.equal((await store.getCharger('CP1'))?.pending?.createdAt, 200, 'the first one stays');
    t.equal(await store.dropPending('CP1', 300), false, 'a drop with a token that never held refused');
    t.equal(await store.dropPending('CP1'), true, 'unguarded drop');
    t.equal((await store.getCharger('CP1'))?.pending, undefined);
    // A pending password the charger took up (Accepted, or RebootRequired) is never replaced.
    await store.setPending('CP1', pending(400));
    t.equal(await store.updatePending('CP1', 400, { acceptedAt: 401 }), true);
    t.equal(await store.setPending('CP1', pending(500)), false, 'an accepted pending is not replaced');
    t.equal((await store.getCharger('CP1'))?.pending?.createdAt, 400, 'the accepted one stays');
    t.equal(await store.dropPending('CP1', 400), true);
    await store.setPending('CP1', pending(600));
    t.equal(await store.updatePending('CP1', 600, { rebootRequiredAt: 601 }), true);
    t.same((await store.getCharger('CP1'))?.pending, { ...pending(600), rebootRequiredAt: 601 }, 'RebootRequired kept with its time');
    t.equal(await store.setPending('CP1', pending(700)), false, 'one awaiting a reboot is not replaced either');
    t.equal(await store.commitPending('CP1', hash('new-600'), 600), true, 'and it still commits');
  });

  t.test('concurrent commits: exactly one wins; no lost updates', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    await store.putCharger(charger('CP1'));
    await store.setPending('CP1', pending(7));
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.commitPending('CP1', hash('w' + i), 7)));
    t.equal(results.filter(Boolean).length, 1, 'one winner');
    t.same((await store.getCharger('CP1'))?.password, hash('w' + results.indexOf(true)), 'winner hash stored');

    // Two sessions of one charger writing ahead at once: one value, and the loser knows.
    const wrote = await Promise.all([store.setPending('CP1', pending(81)), store.setPending('CP1', pending(82))]);
    t.equal(wrote.filter(Boolean).length, 1, 'setPending race: exactly one writes');
    t.equal((await store.getCharger('CP1'))?.pending?.createdAt, wrote[0] ? 81 : 82, 'the winner\'s value is stored');
    t.equal(await store.dropPending('CP1'), true);

    await store.setPending('CP1', pending(8));
    const [c, d] = await Promise.all([store.commitPending('CP1', hash('c'), 8), store.dropPending('CP1', 8)]);
    t.equal(Number(c) + Number(d), 1, 'commit and drop race: exactly one applies');

    await Promise.all([
      store.setPending('CP1', pending(9)),
      store.updateCharger('CP1', { organization: 'ACME' }),
      store.claimSession('CP1', { replica: 'r1', nonce: 'n1', since: 4242 }),
      store.updateCharger('CP1', { bootState: 'Accepted' }),
    ]);
    const rec = await store.getCharger('CP1');
    t.same([rec?.pending?.createdAt, rec?.organization, rec?.lastSeenAt, rec?.bootState], [9, 'ACME', 4242, 'Accepted'], 'all concurrent changes kept');
  });

  t.test('factory defaults', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    const a = await store.addFactoryDefault({ prefix: 'ACME-' }, hash('fa'));
    const b = await store.addFactoryDefault({ batch: '2024-07' }, hash('fb'));
    t.not(a, b);
    const list = await store.listFactoryDefaults();
    t.same(list.map((f) => f.id).sort(), [a, b].sort());
    t.same(list.find((f) => f.id === a)?.match, { prefix: 'ACME-' });
    t.equal(await store.removeFactoryDefault(a), true);
    t.equal(await store.removeFactoryDefault(a), false);
    t.same((await store.listFactoryDefaults()).map((f) => f.id), [b]);
    await rejectsWith(t, store.addFactoryDefault({}, hash('x')), 'store_invalid_input');
  });

  t.test('revocation (serial normalisation is the caller\'s)', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    await store.revokeSerial('0a1b', 'keyCompromise');
    await store.revokeSerial('0a1b', 'again');
    t.equal(await store.isRevoked('0a1b'), true);
    t.equal(await store.isRevoked('0A1B'), false, 'no normalisation inside the store');
    const list = await store.listRevoked();
    t.equal(list.length, 1);
    t.equal(list[0].reason, 'keyCompromise', 'first revocation kept');
    t.equal(await store.unrevokeSerial('0a1b'), true);
    t.equal(await store.isRevoked('0a1b'), false);
    await rejectsWith(t, store.revokeSerial(''), 'store_invalid_input');
  });

  t.test('failure counters and lockouts expire', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    t.equal(await store.recordFailure('id:CP1', 300), 1);
    t.equal(await store.recordFailure('id:CP1', 300), 2);
    t.equal(await store.recordFailure('ip:10.0.0.1', 300), 1, 'keys are independent');
    const many = await Promise.all(Array.from({ length: 20 }, () => store.recordFailure('ip:10.0.0.2', 5000)));
    t.same([...many].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1), 'atomic increments');
    await store.resetFailures('ip:10.0.0.2');
    t.equal(await store.recordFailure('ip:10.0.0.2', 5000), 1, 'reset');
    await sleep(400);
    t.equal(await store.recordFailure('id:CP1', 300), 1, 'window expired');

    t.equal(await store.getLockout('id:CP1'), 0);
    const until = Date.now() + 300;
    await store.setLockout('id:CP1', until);
    t.equal(await store.getLockout('id:CP1'), until);
    t.equal(await store.getLockout('ip:10.0.0.1'), 0);
    await sleep(400);
    t.equal(await store.getLockout('id:CP1'), 0, 'lockout expired');
    await store.setLockout('ip:1', Date.now() + 60_000);
    await store.setLockout('ip:1', Date.now() - 1);
    t.equal(await store.getLockout('ip:1'), 0, 'past time clears');
  });

  t.test('readAdmission: the record with the identity\'s lockout and failure count', async (t) => {
    const { store } = await open();
    t.teardown(() => store.close());
    t.same(await store.readAdmission('RA1'), { record: null, lockedUntil: 0, failures: 0 }, 'unknown charger: nothing');
    const put = await store.putCharger(charger('RA1'));
    await store.claimSession('RA1', { replica: 'r1', nonce: 'n1', since: 5 });
    t.same((await store.readAdmission('RA1')).record, await store.getCharger('RA1'), 'the record as getCharger reads it, claim included');
    t.equal((await store.readAdmission('RA1')).record?.session?.nonce, 'n1');
    t.equal(put.identity, 'RA1');
    await store.recordFailure('id:RA1', 5000);
    await store.recordFailure('id:RA1', 5000);
    await store.recordFailure('ip:10.9.9.9', 5000);
    await store.recordFailure('id:RA2', 5000);
    t.equal((await store.readAdmission('RA1')).failures, 2, 'its own count only');
    const until = Date.now() + 60_000;
    await store.setLockout('id:RA1', until);
    await store.setLockout('id:RA2', Date.now() + 120_000);
    t.equal((await store.readAdmission('RA1')).lockedUntil, until, 'its own lockout');
    await store.resetFailures('id:RA1');
    t.equal((await store.readAdmission('RA1')).failures, 0, 'reset');
    await store.setLockout('id:RA1', Date.now() + 200);
    await store.recordFailure('id:RA1', 200);
    await sleep(400);
    const later = await store.readAdmission('RA1');
    t.same([later.lockedUntil, later.failures], [0, 0], 'lockout and count expire');
  });

  t.test('audit stream is capped, newest first', async (t) => {
    const { store, reopen } = await open({ auditCap: 5 });
    for (let i = 0; i < 8; i++) await store.appendAudit({ type: 'auth_failed', identity: 'CP1', detail: { n: i }, at: 1000 + i });
    await store.appendAudit({ type: 'no_time' });
    const events = await store.readAudit(100);
    t.equal(events.length, 5);
    t.same(events.slice(1).map((e) => e.detail?.n), [7, 6, 5, 4]);
    t.ok(events[0].at >= Date.now() - 10_000, 'time filled in');
    t.same((await store.readAudit(2)).length, 2);
    await store.close();
    const again = await reopen();
    t.teardown(() => again.close());
    t.same((await again.readAudit(100)).map((e) => e.detail?.n ?? -1), [-1, 7, 6, 5, 4], 'audit survives reopen');
  });

  /** Two instances over the same data (a writer and a replica), each with a change recorder. */
  const twoInstances = async (t: Test) => {
    const { store: a, reopen } = await open();
    const b = await reopen();
    t.teardown(async () => { await a.close(); await b.close(); });
    const onA = recorder();
    const onB = recorder();
    a.subscribeChanges(onA.listener);
    const offB = b.subscribeChanges(onB.listener);
    return { a, b, onA, onB, offB };
  };

  t.test('change feed: seen by another instance (replica) and by the writer itself', async (t) => {
    const { a, b, onA, onB, offB } = await twoInstances(t);
    // Faulty listeners must not break the store or the other listeners.
    b.subscribeChanges(() => { throw new Error('listener bug'); });
    b.subscribeChanges(async () => { throw new Error('async listener bug'); });
    await sleep(100); // let a subscriber connection come up (best-effort delivery)

    const started = Date.now();
    await a.putCharger(charger('F1'));
    const got = await onB.next(isCharger('F1'));
    t.ok(got, `put seen by the other instance after ${Date.now() - started} ms`);
    t.ok(await onA.next(isCharger('F1'), 100), 'writer\'s own listener told');
    await sleep(100); // B has the published message: the writer's own copy has had time to come back too
    t.equal(onA.seen.filter((c) => c.kind === 'charger' && c.identity === 'F1').length, 1, 'writer hears its change once');

    const steps: [string, () => Promise<unknown>, (c: StoreChange) => boolean][] = [
      ['update', () => a.updateCharger('F1', { status: 'blocked' }), isCharger('F1')],
      ['setPending', () => a.setPending('F1', pending(11)), isCharger('F1')],
      ['commitPending', () => a.commitPending('F1', hash('n11'), 11), isCharger('F1')],
      ['revokeSerial', () => a.revokeSerial('c0ffee'), (c) => c.kind === 'revoked' && c.serialHex === 'c0ffee'],
      ['addFactoryDefault', () => a.addFactoryDefault({ prefix: 'F' }, hash('fd')), (c) => c.kind === 'factory'],
      ['removeCharger', () => a.removeCharger('F1'), isCharger('F1')],
    ];
    for (const [name, act, pred] of steps) {
      onB.clear();
      onA.clear();
      const t0 = Date.now();
      await act();
      t.ok(await onB.next(pred), `${name} seen by the other instance within 2 s (${Date.now() - t0} ms)`);
      t.ok(await onA.next(pred, 100), `${name} seen by the writer`);
    }
    onB.clear();
    await b.putCharger(charger('F2'));
    t.ok(await onA.next(isCharger('F2')), 'and the other way round');

    offB();
    offB(); // idempotent
    onB.clear();
    await a.putCharger(charger('F3'));
    t.ok(await onA.next(isCharger('F3')), 'still delivered to others');
    await sleep(700);
    t.same(onB.seen, [], 'nothing delivered after unsubscribe');
  });

  t.test('session claims: the newest admission owns the charger, numbered and told with its owner to every instance', async (t) => {
    const { a, b, onA, onB } = await twoInstances(t);
    await sleep(100);
    t.equal(await a.claimSession('NOPE', { replica: 'r1', nonce: 'x', since: 1 }), 0, 'no record, no claim');
    const put = await a.putCharger(charger('S1'));
    await onB.next(isCharger('S1')); // the put itself, before counting
    onA.clear();
    onB.clear();

    const given = { replica: 'replica-a', nonce: 'nonce-1', since: Date.now() };
    t.equal(await a.claimSession('S1', { ...given, generation: 41 }), 1, 'the first claim is number 1 (a number given by the caller is ignored)');
    const owner = { ...given, generation: 1 };
    const isClaim = (nonce: string) => (c: StoreChange) => c.kind === 'session' && c.identity === 'S1' && c.owner.nonce === nonce;
    const seen = await onB.next(isClaim('nonce-1'));
    t.same(seen, { kind: 'session', identity: 'S1', owner }, 'the other instance hears the claim with its owner');
    t.ok(await onA.next(isClaim('nonce-1'), 100), 'the writer hears it too');
    const rec = await b.getCharger('S1');
    t.same([rec?.session, rec?.lastSeenAt], [owner, owner.since], 'read back as session and lastSeenAt');
    t.equal(rec?.updatedAt, put.updatedAt, 'a claim is not an edit of the record');
    t.same((await b.listChargers()).items.find((r) => r.identity === 'S1')?.session, owner, 'listed with its claim');

    // The later claim is numbered higher even though its replica's clock says it is older.
    const newer = { replica: 'replica-b', nonce: 'nonce-2', since: owner.since - 60_000, generation: 2 };
    t.equal(await b.claimSession('S1', { replica: newer.replica, nonce: newer.nonce, since: newer.since }), 2, 'the next claim, from the other instance, is number 2');
    t.ok(await onA.next(isClaim('nonce-2')), 'a newer claim from the other instance reaches the first');
    t.same((await a.getCharger('S1'))?.session, newer, 'last claim wins');
    const updated = await a.updateCharger('S1', { organization: 'ACME' });
    t.same([updated?.session, updated?.lastSeenAt], [newer, newer.since], 'an update returns the record as a read does: with its claim and last seen');
    t.same((await a.getCharger('S1'))?.session, newer, 'an update keeps the claim');
    await sleep(300);
    t.equal([...onA.seen, ...onB.seen].filter(isCharger('S1')).length, 2, 'claims are never reported as charger changes (only the update, once per instance)');

    t.equal(await a.removeCharger('S1'), true);
    t.equal(await a.claimSession('S1', { ...newer, nonce: 'nonce-3' }), 0, 'a removed charger cannot be claimed');
    await a.putCharger(charger('S1'));
    t.equal((await a.getCharger('S1'))?.session, undefined, 'a re-created charger starts without the old claim');
    t.equal(await a.claimSession('S1', { ...newer, nonce: 'nonce-4' }), 1, 'and its claims are numbered afresh');
  });

  t.test('persistence across close / reopen', async (t) => {
    const { store, reopen } = await open();
    await store.putCharger(charger('CP1', { certificate: { serialNumber: 'SN1', boundSerialHex: 'ff' } }));
    await store.setPending('CP1', pending(50));
    const fd = await store.addFactoryDefault({ prefix: 'CP' }, hash('f'));
    await store.revokeSerial('beef');
    const before = await store.getCharger('CP1');
    await store.close();
    await rejectsWith(t, store.getCharger('CP1'), 'store_closed', 'closed store refuses');
    const again = await reopen();
    t.teardown(() => again.close());
    t.same(await again.getCharger('CP1'), before);
    t.same((await again.listFactoryDefaults()).map((f) => f.id), [fd]);
    t.equal(await again.isRevoked('beef'), true);
    t.equal(await again.commitPending('CP1', hash('n'), 50), true, 'pending usable after reopen');
  });
}

t.test('EmbeddedStore', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'store-contract-'));
  t.teardown(() => fs.rm(root, { recursive: true, force: true }));
  let n = 0;
  const factory: Factory = async (opts) => {
    const dataDir = path.join(root, `d${++n}`);
    const store = await EmbeddedStore.open({ dataDir, auditCap: opts?.auditCap });
    return { store, reopen: () => EmbeddedStore.open({ dataDir, auditCap: opts?.auditCap }) };
  };
  t.test('contract', async (t) => contract(t, factory));

  t.test('crash mid-write keeps the last committed state', async (t) => {
    const dataDir = path.join(root, 'crash');
    const store = await EmbeddedStore.open({ dataDir });
    await store.putCharger(charger('CP1'));
    await store.setPending('CP1', pending(1));
    const committed = await store.getCharger('CP1');
    await store.close();
    const file = path.join(dataDir, STORE_FILE);
    const full = await fs.readFile(file, 'utf8');
    // What a crash leaves behind: a torn temp file (and one that is complete but never renamed).
    await fs.writeFile(`${file}.tmp-99999-1`, full.slice(0, full.length >> 1));
    await fs.writeFile(`${file}.tmp-99999-2`, full.replace('"active"', '"blocked"'));
    const again = await EmbeddedStore.open({ dataDir });
    t.teardown(() => again.close());
    t.same(await again.getCharger('CP1'), committed, 'state from the renamed file');
    t.same((await fs.readdir(dataDir)).filter((f) => f.includes('.tmp-')), [], 'stray temps removed');
  });

  t.test('corrupt file: clear error naming it, file kept', async (t) => {
    const dataDir = path.join(root, 'corrupt');
    await fs.mkdir(dataDir, { recursive: true });
    const file = path.join(dataDir, STORE_FILE);
    await fs.writeFile(file, '{"format":"ocpp-security-proxy/store","vers');
    const err = await rejectsWith(t, EmbeddedStore.open({ dataDir }), 'store_corrupt');
    t.ok(err?.message.includes(file), 'error names the file', { found: err?.message });
    t.equal(await fs.readFile(file, 'utf8'), '{"format":"ocpp-security-proxy/store","vers', 'untouched');
  });

  t.test('concurrent mutations are batched and all durable', async (t) => {
    const dataDir = path.join(root, 'batch');
    const store = await EmbeddedStore.open({ dataDir });
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.putCharger(charger('B' + i))));
    // No close(): a new instance must see every resolved mutation already on disk.
    const other = await EmbeddedStore.open({ dataDir });
    t.equal((await other.listChargers({ limit: 1000 })).items.length, 200);
    const mode = (await fs.stat(path.join(dataDir, STORE_FILE))).mode & 0o777;
    t.equal(mode, 0o600, 'store file is private');
    await other.close();
    await store.close();
  });

  t.test('openStore without a Redis URL is embedded', async (t) => {
    const s = await openStore({ dataDir: path.join(root, 'open') });
    t.equal(s.kind, 'embedded');
    await s.ping();
    t.equal(await s.intact(), true, 'the file is the store: always intact');
    await s.close();
  });
});

t.test('RedisStore', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  let n = 0;
  const factory: Factory = async (opts) => {
    const keyPrefix = `t${++n}:`;
    const o = { url: redis.url, keyPrefix, auditCap: opts?.auditCap };
    return { store: await RedisStore.open(o), reopen: () => RedisStore.open(o) };
  };
  t.test('contract', async (t) => contract(t, factory));

  t.test('a session claim is one round trip: its script publishes the change', async (t) => {
    const { store } = await factory();
    t.teardown(() => store.close());
    await store.putCharger(charger('RT1'));
    const watch = await watchCommands(redis.url);
    t.teardown(() => watch.stop());
    const seen = watch.seen;
    t.equal(await store.claimSession('RT1', { replica: 'r1', nonce: 'n1', since: 1 }), 1);
    // MONITOR reports commands in order: once the script's PUBLISH is seen, the claim's own command is too.
    await waitFor(() => seen.some((c) => c.source === 'lua' && c.command === 'publish'), 'the script\'s PUBLISH in MONITOR', 5000).catch(() => undefined);
    const fromClients = seen.filter((c) => c.source !== 'lua').map((c) => c.command);
    t.equal(fromClients.length, 1, 'one command from the store');
    t.match(fromClients[0], /^eval(sha)?$/, 'the claim script');
    t.ok(seen.some((c) => c.source === 'lua' && c.command === 'publish'), 'the script itself publishes the claim');
  });

  t.test('intact() tells a removal from a Redis that lost its data', async (t) => {
    const { store } = await factory();
    const raw = new Redis(redis.url);
    t.teardown(async () => { raw.disconnect(); await store.close(); });
    const prefix = `t${n}:`;
    await store.putCharger(charger('IN1'));
    await store.removeCharger('IN1');
    t.equal(await store.intact(), true, 'a removed charger leaves the store intact');
    t.ok(await raw.get(`${prefix}store-created`), 'the marker written when the store was opened');
    for (const key of await raw.keys(`${prefix}*`)) await raw.del(key); // what a restart without data leaves of this prefix
    t.equal(await store.intact(), false, 'every key gone: not intact');
    const again = await RedisStore.open({ url: redis.url, keyPrefix: prefix });
    t.teardown(() => again.close());
    t.equal(await again.intact(), true, 'the next process to open the store starts it again');
  });

  t.test('a damaged or unnumbered stored claim (an older version wrote it): the record still reads, the count goes on', async (t) => {
    const { store } = await factory();
    const raw = new Redis(redis.url);
    t.teardown(async () => { raw.disconnect(); await store.close(); });
    await store.putCharger(charger('DC1'));
    t.equal(await store.claimSession('DC1', { replica: 'r1', nonce: 'n1', since: 1 }), 1);
    let expected = 1;
    for (const damaged of ['{not json', '{"generation":"7"}', '{"generation":-3}', '[]', '{"replica":"old","nonce":"x","since":5}']) {
      await raw.set(`t${n}:{DC1}:owner`, damaged);
      t.equal((await store.getCharger('DC1'))?.identity, 'DC1', `record read beside ${damaged}`);
      t.equal(await store.claimSession('DC1', { replica: 'r1', nonce: 'n2', since: 2 }), ++expected, `after ${damaged}: counted on (${expected})`);
    }
    t.equal(await raw.get(`t${n}:{DC1}:claims`), String(expected), 'the count in its own key');
    await store.removeCharger('DC1');
    t.equal(await raw.exists(`t${n}:{DC1}:claims`), 0, 'removed with the charger');
  });

  t.test('key prefixes isolate stores', async (t) => {
    const a = await openStore({ redisUrl: redis.url, redisKeyPrefix: 'a:', dataDir: '/nonexistent' });
    const b = await openStore({ redisUrl: redis.url, redisKeyPrefix: 'b:', dataDir: '/nonexistent' });
    t.teardown(async () => { await a.close(); await b.close(); });
    t.equal(a.kind, 'redis');
    await a.putCharger(charger('CP1'));
    t.equal(await b.getCharger('CP1'), null);
  });

  t.test('fails fast while Redis is down, recovers by itself', async (t) => {
    const own = await startRedis();
    t.teardown(() => own.stop());
    const store = await RedisStore.open({ url: own.url, commandTimeoutMs: 500 });
    t.teardown(() => store.close());
    await store.putCharger(charger('CP1'));
    await own.stop();
    const started = Date.now();
    await rejectsWith(t, store.getCharger('CP1'), 'store_unavailable');
    await rejectsWith(t, store.ping(), 'store_unavailable');
    t.ok(Date.now() - started < 2000, `failed within ${Date.now() - started} ms`);
    await own.restart();
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await store.ping().then(() => true, () => false);
      if (!ok) await sleep(100);
    }
    t.ok(ok, 'reconnected');
    t.equal(await store.getCharger('CP1'), null, 'fresh server (no persistence) answers');
  });

  t.test('change feed resumes after a Redis restart', async (t) => {
    const own = await startRedis();
    t.teardown(() => own.stop());
    const a = await RedisStore.open({ url: own.url, commandTimeoutMs: 500 });
    const b = await RedisStore.open({ url: own.url, commandTimeoutMs: 500 });
    t.teardown(async () => { await a.close(); await b.close(); });
    const onB = recorder();
    b.subscribeChanges(onB.listener);
    await sleep(100);
    await a.putCharger(charger('R0'));
    t.ok(await onB.next(isCharger('R0')), 'delivered before the restart');
    await own.restart();
    const started = Date.now();
    let seen: StoreChange | null = null;
    // Writes fail until the writer has reconnected, and messages published before the subscriber is
    // back are lost (best effort): keep writing until one arrives.
    for (let i = 0; !seen && Date.now() - started < 15_000; i++) {
      const ok = await a.putCharger(charger('R' + (i + 1))).then(() => true, () => false);
      if (ok) seen = await onB.next((c) => c.kind === 'charger' && c.identity !== 'R0', 300);
      else await sleep(100);
    }
    t.ok(seen, `subscription resumed ${Date.now() - started} ms after the restart`);
  });

  t.test('unreachable Redis at open: clear error', async (t) => {
    const own = await startRedis();
    await own.stop();
    await rejectsWith(t, RedisStore.open({ url: own.url, connectTimeoutMs: 500 }), 'store_unavailable');
  });

  t.test('password-protected Redis; wrong password error has no secret', async (t) => {
    const own = await startRedis({ password: 's3cret-pw' });
    t.teardown(() => own.stop());
    const store = await RedisStore.open({ url: own.url });
    await store.putCharger(charger('CP1'));
    await store.close();
    const err = await RedisStore.open({ url: `redis://:wrong-pw@127.0.0.1:${own.port}`, connectTimeoutMs: 1000 }).catch((e) => e);
    t.ok(err instanceof StoreError && err.reason === 'store_unavailable', String(err));
    t.notMatch(String(err.message), /wrong-pw|s3cret-pw/);
  });

  t.test('Sentinel URL', async (t) => {
    const own = await startRedis();
    t.teardown(() => own.stop());
    const sentinel = await startSentinel(own.port);
    t.teardown(() => sentinel.stop());
    const store = await openStore({ redisUrl: sentinel.url, dataDir: '/nonexistent' });
    t.teardown(() => store.close());
    await store.putCharger(charger('CP1'));
    t.equal((await store.getCharger('CP1'))?.identity, 'CP1', 'reads through the master found via Sentinel');
    const replica = await openStore({ redisUrl: sentinel.url, dataDir: '/nonexistent' });
    t.teardown(() => replica.close());
    const onReplica = recorder();
    replica.subscribeChanges(onReplica.listener);
    await sleep(200);
    await store.updateCharger('CP1', { status: 'blocked' });
    t.ok(await onReplica.next(isCharger('CP1')), 'change feed works through Sentinel');
  });

  t.test('Cluster URL: contract subset across slots', async (t) => {
    const cluster = await startCluster();
    t.teardown(() => cluster.stop());
    let n = 0;
    const factory: Factory = async (opts) => {
      const o = { url: cluster.url, keyPrefix: `c${++n}:`, auditCap: opts?.auditCap };
      return { store: await RedisStore.open(o), reopen: () => RedisStore.open(o) };
    };
    t.test('contract', async (t) => contract(t, factory));
  });
});
