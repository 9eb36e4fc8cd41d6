/**
 * The admin API over a real AdminServer on 127.0.0.1:0, with fetch, against the embedded store in a
 * temp dir and a real redis-server. Also the admin token loader.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { AdminServer } from '../../proxy/admin';
import { adminApiRoutes, type LiveSessions, type SessionSummary } from '../../proxy/admin-api';
import { AdminTokenError, checkBearer, loadAdminToken } from '../../proxy/admin-token';
import { ChargerAdmin } from '../../proxy/chargers';
import { loadConfig } from '../../proxy/config';
import { createLogger } from '../../proxy/log';
import { openCredentials, type Credentials } from '../../proxy/store-setup';
import { startRedis } from '../helpers/redis';

const PW = 'api-password-0123456789';
const BINARY_KEY = randomBytes(20);
const BACKEND_PW = 'backend-api-secret-42';
const FACTORY_PW = 'factory-default-pw';

/** A small in-memory session table standing in for the proxy's (the core implements LiveSessions). */
class SessionTable implements LiveSessions {
  readonly closed: { identity: string; code?: number }[] = [];
  constructor(private readonly sessions: SessionSummary[]) {}
  list(): SessionSummary[] { return this.sessions; }
  disconnect(identity: string, code?: number): boolean {
    const i = this.sessions.findIndex((s) => s.identity === identity);
    if (i < 0) return false;
    this.sessions.splice(i, 1);
    this.closed.push({ identity, code });
    return true;
  }
}

async function startApi(t: Test, creds: Credentials, opts: { sessions?: LiveSessions } = {}) {
  const token = randomBytes(32).toString('base64url');
  const logStream = new PassThrough();
  let logText = '';
  logStream.on('data', (d) => (logText += d));
  const log = createLogger({ level: 'debug', destination: logStream });
  const server = new AdminServer({ listen: { host: '127.0.0.1', port: 0 }, log, readiness: {},
    routes: [adminApiRoutes({ admin: new ChargerAdmin(creds, { actor: 'admin-api', servingProcess: true }), token, sessions: opts.sessions, log, maxBodyBytes: 64 * 1024 })] });
  const addr = await server.start();
  t.teardown(() => server.stop());
  const bodies: string[] = [];
  const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const isText = typeof body === 'string';
    const res = await fetch(`http://127.0.0.1:${addr.port}${p}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': isText ? 'text/csv' : 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : isText ? body : JSON.stringify(body),
    });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
  };
  return { call, token, port: addr.port, bodies, logs: () => logText };
}

async function suite(t: Test, creds: Credentials): Promise<void> {
  const sessions = new SessionTable([{ identity: 'CP-A', profile: 2, subprotocol: 'ocpp1.6', since: new Date().toISOString(),
    frames: { charger_to_csms: 3, csms_to_charger: 2 }, replica: 'r1', remoteAddress: '127.0.0.1' }]);
  const api = await startApi(t, creds, { sessions });
  const { call } = api;

  t.test('401 without a valid bearer token, on every path', async (t) => {
    const base = `http://127.0.0.1:${api.port}`;
    for (const [p, headers] of [['/api/v1/chargers', {}], ['/api/v1/chargers', { authorization: 'Bearer wrong-token-wrong-token' }],
      ['/api/v1/chargers', { authorization: `Basic ${Buffer.from('admin:' + api.token).toString('base64')}` }],
      ['/api/v1/chargers', { authorization: `Bearer ${api.token}x` }], ['/api/v1/nothing-here', {}], ['/api/v1/sessions', { authorization: 'Bearer' }]] as const) {
      const res = await fetch(base + p, { headers });
      t.equal(res.status, 401, `${p} with ${JSON.stringify(Object.keys(headers))}`);
      t.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      t.same(await res.json(), { error: 'unauthorized', message: 'a valid bearer token is required' });
    }
    const post = await fetch(base + '/api/v1/chargers', { method: 'POST', body: JSON.stringify({ identity: 'X', password: PW }), headers: { 'content-type': 'application/json' } });
    t.equal(post.status, 401, 'unauthenticated POST refused');
    t.equal((await fetch(base + '/healthz')).status, 200, 'health stays open');
    t.equal((await call('GET', '/api/v1/chargers/X')).status, 404, 'nothing was created');
    // A flood without a token is answered in full but logged a bounded number of lines a minute.
    for (let i = 0; i < 30; i++) t.equal((await fetch(base + '/api/v1/chargers')).status, 401, `flood ${i}`);
    const lines = (api.logs().match(/"admin_api_unauthorized"/g) ?? []).length;
    t.equal(lines, 20, `${lines} lines for ${30 + 7} refusals`);
  });

  t.test('charger CRUD', async (t) => {
    let r = await call('POST', '/api/v1/chargers', { identity: 'CP-A', password: PW, profile: 2, serial: 'SN-A', backendPassword: BACKEND_PW });
    t.equal(r.status, 201, r.text);
    t.match(r.body, { identity: 'CP-A', minProfile: 2, hasPassword: true, passwordSource: 'operator', backend: { username: 'CP-A', hasPassword: true }, warnings: [] });
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-A', password: PW });
    t.equal(r.status, 409);
    t.equal(r.body.error, 'already_exists');
    r = await call('GET', '/api/v1/chargers/CP-A');
    t.equal(r.status, 200);
    t.match(r.body, { identity: 'CP-A', certificate: { serialNumber: 'SN-A' }, session: { identity: 'CP-A', replica: 'r1' } });
    r = await call('PATCH', '/api/v1/chargers/CP-A', { passwordBase64: BINARY_KEY.toString('base64'), organization: 'ACME', reportOnly: true });
    t.equal(r.status, 200, r.text);
    t.match(r.body, { organization: 'ACME', reportOnly: true });
    const rec = await creds.store.getCharger('CP-A');
    t.ok(await creds.hasher.verify(BINARY_KEY, rec!.password!), 'binary 1.6 key stored as its hash');
    t.equal(creds.sealer.open(rec!.backendCredentials!.passwordEncrypted, 'CP-A').toString(), BACKEND_PW);
    // A password set by the operator ends a rotation in progress: its pending value no longer admits.
    t.ok(await creds.store.setPending('CP-A', { encrypted: creds.sealer.seal(Buffer.from('rotated-value-0123456789'), 'CP-A'), createdAt: 1, attempt: 1, sentAt: 2, acceptedAt: 3 }));
    r = await call('PATCH', '/api/v1/chargers/CP-A', { organization: 'ACME 2' });
    t.match(r.body.pending, { accepted: String }, 'other changes keep the pending password');
    r = await call('PATCH', '/api/v1/chargers/CP-A', { passwordBase64: BINARY_KEY.toString('base64') });
    t.equal(r.status, 200, r.text);
    t.equal((await creds.store.getCharger('CP-A'))?.pending, undefined, 'a new password drops the pending one');
    t.equal(r.body.pending, null, 'and the view says so');
    t.match(r.body.warnings, [/rotated password had been sent to this charger/], 'the operator is told the charger may hold the dropped value');
    t.match((await creds.store.readAudit(1))[0], { type: 'charger_updated', detail: { pendingDropped: 'accepted' } }, 'and the audit log how far it had got');
    // Clearing the password drops it too: the pending value would otherwise still admit the charger.
    t.ok(await creds.store.setPending('CP-A', { encrypted: creds.sealer.seal(Buffer.from('rotated-value-0123456789'), 'CP-A'), createdAt: 4, attempt: 1 }));
    r = await call('PATCH', '/api/v1/chargers/CP-A', { password: null });
    t.equal(r.status, 200, r.text);
    t.same([r.body.hasPassword, r.body.pending, r.body.warnings.some((w: string) => /rotated password/.test(w))], [false, null, false], 'cleared, dropped, no warning for a value never sent');
    r = await call('PATCH', '/api/v1/chargers/CP-A', { passwordBase64: BINARY_KEY.toString('base64') });
    t.equal(r.status, 200, r.text);
    r = await call('PATCH', '/api/v1/chargers/CP-A', { profile: 3 });
    t.match(r.body.warnings, [/minimum profile is raised at once.*chargers upgrade/], 'raising the minimum directly warns');
    r = await call('PATCH', '/api/v1/chargers/CP-A', { profile: 2 });
    t.same(r.body.warnings, [], 'lowering it does not');
    r = await call('PATCH', '/api/v1/chargers/CP-A', { organization: null, rotationDisabled: true });
    t.equal(r.body.organization, null, 'null clears a field');
    t.equal(r.body.rotation.disabled, true);
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-B' });
    t.equal(r.status, 201);
    r = await call('GET', '/api/v1/chargers?limit=1');
    t.equal(r.body.items.length, 1);
    t.equal(r.body.cursor, 'CP-A');
    r = await call('GET', '/api/v1/chargers?cursor=CP-A');
    t.same(r.body.items.map((v: { identity: string }) => v.identity), ['CP-B']);
    r = await call('DELETE', '/api/v1/chargers/CP-B');
    t.equal(r.status, 204);
    r = await call('GET', '/api/v1/chargers/CP-B');
    t.equal(r.status, 404);
    t.equal(r.body.error, 'not_found');
    t.equal((await call('DELETE', '/api/v1/chargers/CP-B')).status, 404);
  });

  t.test('actions: block, unblock, rotate, upgrade', async (t) => {
    // A connected charger: its claim is stored beside the record, as a proxy admitting it writes it.
    const since = Date.UTC(2026, 10, 27, 9);
    await creds.store.claimSession('CP-A', { replica: 'r1', nonce: 'n1', since });
    const blocked = (await call('POST', '/api/v1/chargers/CP-A/block')).body;
    t.equal(blocked.status, 'blocked');
    t.equal(blocked.lastSeen, new Date(since).toISOString(), 'a change answers with the charger as GET shows it: last seen');
    t.match(blocked.session, { identity: 'CP-A' }, 'and its live session');
    t.equal((await call('POST', '/api/v1/chargers/CP-A/unblock')).body.status, 'active');
    let r = await call('POST', '/api/v1/chargers/CP-A/rotate');
    t.equal(r.status, 409, 'rotation disabled');
    t.equal(r.body.error, 'rotation_disabled');
    await call('PATCH', '/api/v1/chargers/CP-A', { rotationDisabled: false });
    r = await call('POST', '/api/v1/chargers/CP-A/rotate');
    t.equal(r.status, 202);
    t.ok(Date.parse(r.body.rotation.requestedAt) > 0);
    await creds.store.updateCharger('CP-A', { rotation: { lastAttemptAt: Date.UTC(2026, 10, 27, 8) } }); // as the proxy writes when a rotation starts
    t.equal((await call('GET', '/api/v1/chargers/CP-A')).body.rotation.lastAttemptAt, '2026-11-27T08:00:00.000Z', 'the last attempt is shown');
    r = await call('POST', '/api/v1/chargers/CP-A/upgrade', { profile: 3 });
    t.equal(r.status, 202);
    t.equal(r.body.targetProfile, 3);
    r = await call('POST', '/api/v1/chargers/CP-A/upgrade', { profile: 1 });
    t.equal(r.status, 400);
    // A fresh request starts over: a given-up attempt and its failures are forgotten.
    await creds.store.updateCharger('CP-A', { profileUpgrade: { lastResult: 'gave_up', failures: 5 } });
    r = await call('POST', '/api/v1/chargers/CP-A/upgrade', { profile: 3 });
    t.equal(r.status, 202);
    t.same(Object.keys((await creds.store.getCharger('CP-A'))?.profileUpgrade ?? {}), ['requestedAt'], 'the earlier attempts are forgotten');
    r = await call('DELETE', '/api/v1/chargers/CP-A/upgrade');
    t.equal(r.status, 200, r.text);
    t.equal(r.body.targetProfile, null, 'the upgrade is withdrawn');
    t.equal((await call('DELETE', '/api/v1/chargers/NOPE/upgrade')).status, 404);
    r = await call('POST', '/api/v1/chargers/NOPE/block');
    t.equal(r.status, 404);
    r = await call('GET', '/api/v1/chargers/CP-A/block');
    t.equal(r.status, 405);
    t.equal(r.headers.get('allow'), 'POST');
  });

  t.test('bad requests', async (t) => {
    let r = await call('POST', '/api/v1/chargers', '{not json', { 'content-type': 'application/json' });
    t.equal(r.status, 400);
    t.equal(r.body.error, 'bad_json');
    r = await call('POST', '/api/v1/chargers', [1, 2]);
    t.equal(r.body.error, 'bad_json');
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-C', pasword: PW });
    t.equal(r.status, 400);
    t.match(r.body.message, /unknown field\(s\): pasword/);
    r = await call('POST', '/api/v1/chargers', { identity: 'bad id' });
    t.equal(r.body.error, 'bad_identity');
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-C', password: 'short' });
    t.equal(r.body.error, 'password_too_short');
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-C', password: 'x', passwordBase64: 'eA==' });
    t.equal(r.status, 400);
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-C', passwordBase64: 'not base64!' });
    t.equal(r.status, 400);
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-C', profile: 4 });
    t.equal(r.status, 400);
    r = await call('POST', '/api/v1/chargers', { identity: 'CP-C', comment: 'x'.repeat(70 * 1024) });
    t.equal(r.status, 413, 'body over the limit');
    t.equal(r.body.error, 'body_too_large');
    // Chunked (no Content-Length): the limit is enforced while reading.
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const stream = new ReadableStream({ start(c) { for (let i = 0; i < 8; i++) c.enqueue(chunk); c.close(); } });
    const chunked = await fetch(`http://127.0.0.1:${api.port}/api/v1/chargers`, { method: 'POST', body: stream, duplex: 'half',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' } } as RequestInit);
    t.equal(chunked.status, 413, 'chunked body over the limit');
    r = await call('GET', '/api/v1/chargers/%E0%A4%A');
    t.equal(r.status, 400);
    r = await call('GET', '/api/v1/nothing');
    t.equal(r.status, 404);
    r = await call('GET', '/api/v1/chargers?limit=abc');
    t.equal(r.status, 400);
    r = await call('POST', '/api/v1/addresses/10.0.0.300/unlock');
    t.equal(r.status, 400, 'not an address');
    t.equal(r.body.error, 'bad_input');
    t.equal((await call('POST', '/api/v1/chargers/CP-C/unlock')).status, 404, 'unlock of an unknown charger');
    t.equal((await call('GET', '/api/v1/chargers/CP-C/unlock')).status, 405);
    t.equal((await call('GET', '/api/v1/chargers/CP-C')).status, 404, 'nothing was created by bad requests');
    const noHost = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: api.port, path: '//' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
    });
    t.equal(noHost, 400, 'a request target that is no valid path: 400, not 500');
  });

  t.test('PATCH: contradictions and a lone username clearing are refused, not half applied', async (t) => {
    t.equal((await call('POST', '/api/v1/chargers', { identity: 'CP-PX', password: PW, backendPassword: BACKEND_PW })).status, 201);
    for (const body of [{ password: null, passwordBase64: 'eA==' }, { backendUsername: null }, { backendPassword: null, backendUsername: 'other' }]) {
      const r = await call('PATCH', '/api/v1/chargers/CP-PX', body);
      t.equal(r.status, 400, JSON.stringify(body));
    }
    const rec = await creds.store.getCharger('CP-PX');
    t.ok(rec?.password && rec.backendCredentials?.username === 'CP-PX', 'the charger is as it was');
  });

  t.test('factory defaults: a prefix with spaces around it (which would match nothing) is refused', async (t) => {
    for (const match of [{ prefix: ' ACME-' }, { prefix: 'ACME-\t' }, { batch: 'B\u0001' }]) {
      const r = await call('POST', '/api/v1/factory-defaults', { ...match, password: FACTORY_PW });
      t.equal(r.status, 400, JSON.stringify(match));
    }
    t.same((await call('GET', '/api/v1/factory-defaults')).body.items.filter((f: any) => /ACME/.test(f.match.prefix ?? '')), [], 'none stored');
  });

  t.test('CSV import: a bad line imports nothing', async (t) => {
    let r = await call('POST', '/api/v1/chargers/import', `identity,password,profile\nCP-I1,${PW},2\nCP-I2,${PW},5\n`);
    t.equal(r.status, 422);
    t.equal(r.body.error, 'import_invalid');
    t.same(r.body.lines, [{ line: 3, message: 'profile must be 1, 2 or 3' }]);
    t.equal((await call('GET', '/api/v1/chargers/CP-I1')).status, 404, 'nothing imported');
    r = await call('POST', '/api/v1/chargers/import', { not: 'csv' });
    t.equal(r.status, 415);
    r = await call('POST', '/api/v1/chargers/import', `identity,password,profile\nCP-I1,${PW},2\nCP-I2,short,3\n`);
    t.equal(r.body.error, 'import_invalid', 'short password refused');
    r = await call('POST', '/api/v1/chargers/import?allowShortPasswords=true', `identity,password,profile\nCP-I1,${PW},2\nCP-I2,shortpw,3\nCP-A,,2\n`);
    t.equal(r.status, 200, r.text);
    t.same(r.body.created, ['CP-I1', 'CP-I2']);
    t.same(r.body.updated, ['CP-A']);
    t.match(r.body.warnings[0], /^CP-I2: the password is shorter/);
  });

  t.test('CSV import: a re-run keeps passwords the proxy has rotated since', async (t) => {
    const file = `identity,password,organization\nCP-RR1,${PW},ACME\nCP-RR2,${PW},ACME\nCP-RR3,${PW},ACME\n`;
    let r = await call('POST', '/api/v1/chargers/import', file);
    t.same(r.body.created, ['CP-RR1', 'CP-RR2', 'CP-RR3'], r.text);
    // CP-RR1 was rotated (committed); CP-RR2 is being rotated (its new value sent); CP-RR3 kept the operator's.
    await creds.store.updateCharger('CP-RR1', { password: creds.hasher.hashGenerated(Buffer.from('rotated-by-the-proxy-1')), passwordSource: 'generated' });
    await creds.store.setPending('CP-RR2', { encrypted: creds.sealer.seal(Buffer.from('rotated-by-the-proxy-2'), 'CP-RR2'), hash: creds.hasher.hashGenerated(Buffer.from('rotated-by-the-proxy-2')), createdAt: Date.now(), sentAt: Date.now(), attempt: 1 });
    const before = await Promise.all(['CP-RR1', 'CP-RR2', 'CP-RR3'].map((id) => creds.store.getCharger(id)));
    r = await call('POST', '/api/v1/chargers/import', file.replace(/ACME/g, 'ACME Energy'));
    t.equal(r.status, 200, r.text);
    t.same(r.body.updated, ['CP-RR1', 'CP-RR2', 'CP-RR3']);
    t.same(r.body.warnings.map((w: string) => w.split(':')[0]), ['CP-RR1', 'CP-RR2'], 'a warning for each password cell not used');
    t.match(r.body.warnings[0], /password cell not used: the proxy has rotated/);
    const after = await Promise.all(['CP-RR1', 'CP-RR2', 'CP-RR3'].map((id) => creds.store.getCharger(id)));
    t.same(after[0]!.password, before[0]!.password, 'the rotated password stays');
    t.same([after[1]!.password, after[1]!.pending], [before[1]!.password, before[1]!.pending], 'the rotation in flight goes on');
    t.ok(await creds.hasher.verify(Buffer.from(PW), after[2]!.password!), 'a password the proxy never rotated is set from the file');
    t.same(after.map((a) => a!.organization), ['ACME Energy', 'ACME Energy', 'ACME Energy'], 'the other cells apply');
  });

  t.test('CSV import: a file that is not UTF-8 imports nothing', async (t) => {
    const latin1 = Buffer.from(`identity,password\nCP-L1,${PW}\nCP-L2,Passwort-\u00e4-12345678\n`, 'latin1');
    const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/chargers/import`, { method: 'POST', body: latin1, headers: { authorization: `Bearer ${api.token}`, 'content-type': 'text/csv' } });
    t.equal(res.status, 422);
    t.match(await res.json(), { error: 'import_invalid', message: /not UTF-8/, lines: [{ line: 3, message: 'not UTF-8' }] });
    t.equal((await call('GET', '/api/v1/chargers/CP-L1')).status, 404, 'nothing imported');
  });

  t.test('CSV import: CSMS credentials are checked with the other cells, before any write', async (t) => {
    const r = await call('POST', '/api/v1/chargers/import', `identity,password,backend_username,backend_password\nCP-B1,${PW},,\nCP-B2,${PW},a:b,secret\nCP-B3,${PW},,${'x'.repeat(257)}\n`);
    t.equal(r.status, 422, r.text);
    t.same(r.body.lines, [{ line: 3, message: 'the backend username must not contain ":"' }, { line: 4, message: 'the backend password must be 1..256 bytes' }]);
    t.equal((await call('GET', '/api/v1/chargers/CP-B1')).status, 404, 'the good line before them was not written');
  });

  t.test('POST with rotationDisabled creates the charger with rotation off', async (t) => {
    const r = await call('POST', '/api/v1/chargers', { identity: 'CP-NR', password: PW, rotationDisabled: true });
    t.equal(r.status, 201, r.text);
    t.equal(r.body.rotation.disabled, true);
    t.equal((await creds.store.getCharger('CP-NR'))?.rotation?.disabled, true, 'stored');
  });

  t.test('factory defaults and revocations', async (t) => {
    let r = await call('POST', '/api/v1/factory-defaults', { batch: 'B-2024', password: FACTORY_PW });
    t.equal(r.status, 201);
    const id = r.body.id;
    r = await call('POST', '/api/v1/factory-defaults', { prefix: 'X-' });
    t.equal(r.status, 400, 'password required');
    r = await call('GET', '/api/v1/factory-defaults');
    t.match(r.body.items, [{ id, match: { batch: 'B-2024' } }]);
    t.equal((await call('DELETE', `/api/v1/factory-defaults/${id}`)).status, 204);
    t.equal((await call('DELETE', `/api/v1/factory-defaults/${id}`)).status, 404);
    r = await call('POST', '/api/v1/revocations', { serial: '0x00FF', reason: 'compromised' });
    t.equal(r.status, 201);
    t.same(r.body, { serialHex: 'ff' });
    t.equal((await call('POST', '/api/v1/revocations', { serial: 'zz' })).status, 400);
    r = await call('GET', '/api/v1/revocations');
    t.match(r.body.items, [{ serialHex: 'ff', reason: 'compromised' }]);
    t.equal((await call('DELETE', '/api/v1/revocations/FF')).status, 204);
    t.same((await call('GET', '/api/v1/revocations')).body.items, []);
  });

  t.test('audit and sessions', async (t) => {
    let r = await call('GET', '/api/v1/audit?limit=5');
    t.equal(r.body.items.length, 5);
    t.match(r.body.items[0], { type: 'certificate_unrevoked', detail: { actor: 'admin-api' } });
    r = await call('GET', '/api/v1/sessions');
    t.match(r.body.items, [{ identity: 'CP-A', profile: 2, frames: { charger_to_csms: 3 } }]);
    t.equal((await call('DELETE', '/api/v1/sessions/CP-A?code=99')).status, 400);
    r = await call('DELETE', '/api/v1/sessions/CP-A?code=4000');
    t.equal(r.status, 202);
    t.same(sessions.closed, [{ identity: 'CP-A', code: 4000 }]);
    t.equal((await call('DELETE', '/api/v1/sessions/CP-A')).status, 404);
  });

  t.test('no secret in any response or log line', async (t) => {
    const all = api.bodies.join('\n') + '\n' + api.logs();
    for (const [s, name] of [[PW, 'password'], [BINARY_KEY.toString('base64'), 'binary key'], [BACKEND_PW, 'backend password'],
      [FACTORY_PW, 'factory password'], [api.token, 'token'], ['v1.', 'sealed value'], ['"salt"', 'salt'], ['"hash"', 'hash']] as const) {
      t.notOk(all.includes(s), `no ${name}`);
    }
    t.match(api.logs(), /admin_api_unauthorized/, 'refused calls are logged');
  });
}

async function tempDir(t: Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'admin-api-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('embedded store', async (t) => {
  const creds = await openCredentials(loadConfig({ env: {}, flags: { dataDir: await tempDir(t) } }));
  t.teardown(() => creds.store.close());
  await suite(t, creds);
});

t.test('redis store', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const creds = await openCredentials(loadConfig({ env: {}, flags: { dataDir: await tempDir(t), redis: redis.url } }));
  t.teardown(() => creds.store.close());
  await suite(t, creds);
});

t.test('sessions unavailable without a LiveSessions', async (t) => {
  const creds = await openCredentials(loadConfig({ env: {}, flags: { dataDir: await tempDir(t) } }));
  t.teardown(() => creds.store.close());
  const api = await startApi(t, creds);
  const r = await api.call('GET', '/api/v1/sessions');
  t.equal(r.status, 503);
  t.equal(r.body.error, 'sessions_unavailable');
});

t.test('admin token: file, environment, generated; bearer check', async (t) => {
  const dir = await tempDir(t);
  const gen = await loadAdminToken({ env: {}, generateIn: path.join(dir, 'data') });
  t.equal(gen.source, 'generated');
  t.match(gen.token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  t.equal((await fs.stat(gen.file!)).mode & 0o777, 0o600, 'mode 0600');
  const again = await loadAdminToken({ env: {}, generateIn: path.join(dir, 'data') });
  t.equal(again.token, gen.token, 'the generated token is reused');
  const fromEnv = await loadAdminToken({ env: { OCPP_PROXY_ADMIN_TOKEN: ' env-token-0123456789 ' }, generateIn: dir });
  t.same(fromEnv, { token: 'env-token-0123456789', source: 'env' });
  const file = path.join(dir, 'tok');
  await fs.writeFile(file, 'file-token-0123456789\n');
  t.equal((await loadAdminToken({ file, env: { OCPP_PROXY_ADMIN_TOKEN: 'env-token-0123456789' } })).token, 'file-token-0123456789', 'file wins');
  await fs.writeFile(file, 'short\n');
  await t.rejects(loadAdminToken({ file }), AdminTokenError, 'too short');
  await t.rejects(loadAdminToken({ file }), /at least 16 characters/);
  await t.rejects(loadAdminToken({ file: path.join(dir, 'missing') }), /cannot read admin token file .*ENOENT/);
  await t.rejects(loadAdminToken({ env: {} }), /no admin token/);
  t.equal(checkBearer(`Bearer ${gen.token}`, gen.token), true);
  t.equal(checkBearer(`bearer  ${gen.token} `, gen.token), true, 'scheme is case-insensitive');
  t.equal(checkBearer(`Bearer ${gen.token.slice(1)}`, gen.token), false);
  t.equal(checkBearer(undefined, gen.token), false);
  t.equal(checkBearer(`Basic ${gen.token}`, gen.token), false);
});
