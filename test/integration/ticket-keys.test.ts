/**
 * Shared TLS session-ticket keys across two real TLS servers with the proxy's own TLS options:
 * a ticket from replica A resumes on replica B when they share the key file, not otherwise.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import t from 'tap';
import { createLogger, silentLogger } from '../../proxy/log';
import { applyTicketKeys, loadTicketKeys, rotateTicketKeys, TicketKeyError } from '../../proxy/ticket-keys';
import { readSecureContext, serverTlsOptions, type TlsFiles } from '../../proxy/tls';
import { waitFor } from '../helpers/net';
import { makeTestPki, tempDir } from '../helpers/pki';

interface ServerView {
  reused: boolean;
  authorized: boolean;
  cn: string | null;
}

t.test('loadTicketKeys accepts raw, hex and base64 and names the file on errors', async (t) => {
  const dir = await tempDir(t, 'ocpp-tk-');
  const key = randomBytes(48);
  const file = (name: string, content: string | Buffer) => {
    const p = path.join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  t.ok(loadTicketKeys(file('raw', key)).equals(key), 'raw 48 bytes');
  t.ok(loadTicketKeys(file('hex', key.toString('hex') + '\n')).equals(key), 'hex with newline');
  t.ok(loadTicketKeys(file('HEX', key.toString('hex').toUpperCase())).equals(key), 'upper-case hex');
  t.ok(loadTicketKeys(file('b64', key.toString('base64') + '\n')).equals(key), 'base64 with newline');
  const wrapped = key.toString('base64').replace(/(.{32})/, '$1\n');
  t.ok(loadTicketKeys(file('b64wrapped', wrapped)).equals(key), 'base64 wrapped like openssl -base64');

  const secretish = randomBytes(32).toString('hex');
  for (const [name, content] of [
    ['short-hex', secretish],
    ['short-raw', randomBytes(47)],
    ['long-raw', randomBytes(49)],
    ['b64-of-32', randomBytes(32).toString('base64')],
    ['empty', ''],
    ['text', 'not a key at all!'],
  ] as Array<[string, string | Buffer]>) {
    const p = file(name, content);
    t.throws(() => loadTicketKeys(p), TicketKeyError, name);
    try {
      loadTicketKeys(p);
    } catch (err) {
      const e = err as TicketKeyError;
      t.equal(e.reason, 'ticket_keys_invalid', name);
      t.ok(e.message.includes(p), `${name}: message names the file`);
      t.notOk(e.message.includes(secretish), `${name}: message never shows key material`);
    }
  }
  t.throws(() => loadTicketKeys(path.join(dir, 'missing')), { reason: 'ticket_keys_unreadable', message: /missing.*ENOENT/ });
});

t.test('replicas sharing a ticket key file resume each other’s sessions', async (t) => {
  const dir = await tempDir(t, 'ocpp-tk-');
  const pki = await makeTestPki(dir);
  const charger = await pki.charger('SER-TICKET');
  const ca = readFileSync(pki.caCert);
  const files: TlsFiles = { certs: [pki.rsaCert, pki.ecCert], keys: [pki.rsaKey, pki.ecKey], clientCa: pki.caCert };
  const shared = path.join(dir, 'ticket.key');
  const other = path.join(dir, 'other.key');
  writeFileSync(shared, randomBytes(48).toString('hex') + '\n');
  writeFileSync(other, randomBytes(48));

  const logged = new PassThrough();
  let logText = '';
  logged.on('data', (c) => (logText += String(c)));
  const replica = async (keyFile: string, log = silentLogger()) => {
    const server = tls.createServer(serverTlsOptions(files, 5000), (socket) => {
      const cert = socket.getPeerCertificate();
      const view: ServerView = { reused: socket.isSessionReused(), authorized: socket.authorized, cn: (cert?.subject?.CN as string | undefined) ?? null };
      socket.end(JSON.stringify(view));
    });
    return serve(server, (s) => applyTicketKeys(s, keyFile, log, 100));
  };
  /** Listens on loopback with the ticket keys `keys` sets (it returns their stop); closed at teardown. */
  const serve = async (server: tls.Server, keys: (s: tls.Server) => () => void) => {
    const stop = keys(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => {
      stop();
      server.close();
    });
    return server;
  };
  const a = await replica(shared, createLogger({ destination: logged }));
  const b = await replica(shared);
  const c = await replica(other);
  const portOf = (s: tls.Server) => (s.address() as AddressInfo).port;

  /** One connection; returns what the server saw, whether the client resumed, and the newest ticket. */
  const connect = async (server: tls.Server, opts: { session?: Buffer; maxVersion?: tls.SecureVersion; withCert?: boolean } = {}) => {
    const socket = tls.connect({
      port: portOf(server),
      host: '127.0.0.1',
      servername: 'localhost',
      ca,
      session: opts.session,
      maxVersion: opts.maxVersion,
      ...(opts.withCert ? { cert: readFileSync(charger.certPath), key: readFileSync(charger.keyPath) } : {}),
    });
    let session: Buffer | undefined;
    socket.on('session', (s: Buffer) => (session = s));
    let clientReused: boolean | null = null;
    socket.once('secureConnect', () => (clientReused = socket.isSessionReused()));
    let text = '';
    for await (const chunk of socket) text += String(chunk);
    // TLS 1.3 tickets arrive right after the handshake, before our reply; TLS 1.2 ones inside it.
    return { view: JSON.parse(text) as ServerView, clientReused, session: session ?? Buffer.alloc(0) };
  };

  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    await t.test(`${maxVersion}: A's ticket resumes on B, not on C`, async (t) => {
      const first = await connect(a, { maxVersion });
      t.equal(first.view.reused, false, 'first connection is a full handshake');
      t.ok(first.session.length > 0, 'the client got a ticket');
      const onB = await connect(b, { session: first.session, maxVersion });
      t.equal(onB.clientReused, true, 'resumed on the other replica (client view)');
      t.equal(onB.view.reused, true, 'resumed on the other replica (server view)');
      const onC = await connect(c, { session: first.session, maxVersion });
      t.equal(onC.clientReused, false, 'a replica with another key does a full handshake');
      t.equal(onC.view.reused, false);
    });
  }

  await t.test('Profile 3: the client certificate and its verdict survive resumption on another replica', async (t) => {
    const first = await connect(a, { withCert: true });
    t.same(first.view, { reused: false, authorized: true, cn: 'SER-TICKET' });
    const onB = await connect(b, { session: first.session, withCert: true });
    t.same(onB.view, { reused: true, authorized: true, cn: 'SER-TICKET' });
  });

  await t.test('resumption also needs the same session id context (the default derives from argv)', async (t) => {
    const server = await serve(tls.createServer({ ...serverTlsOptions(files, 5000), sessionIdContext: 'another-command-line' }, (s) => s.end('{}')), (s) => applyTicketKeys(s, shared, silentLogger(), 100));
    const first = await connect(a);
    t.equal((await connect(server, { session: first.session })).clientReused, false);
  });

  await t.test('a certificate reload (setSecureContext) keeps the ticket keys', async (t) => {
    const ticket = (await connect(b)).session;
    a.setSecureContext(readSecureContext(files));
    t.equal((await connect(a, { session: ticket })).clientReused, true);
  });

  await t.test('changing the key file rolls the key; a broken file keeps the old one', async (t) => {
    const oldTicket = (await connect(a)).session;
    const newKey = randomBytes(48);
    writeFileSync(shared, newKey.toString('base64'));
    await waitFor(() => logText.includes('tls_ticket_keys_reloaded'), 'the reload', 5000);
    t.equal((await connect(a, { session: oldTicket })).clientReused, false, 'old tickets no longer resume');
    const newTicket = (await connect(a)).session;
    writeFileSync(shared, 'garbage');
    await waitFor(() => logText.includes('tls_ticket_keys_reload_failed'), 'the failed reload', 5000);
    t.equal((await connect(a, { session: newTicket })).clientReused, true, 'the previous key stays in force');
    t.notOk(logText.includes(newKey.toString('base64')) || logText.includes(newKey.toString('hex')), 'no key material in the log');
    t.match(logText, /ticket\.key/, 'the log names the file');
  });

  await t.test('a ticket resumes for tlsSessionTimeoutS, not after; a certificate reload keeps the lifetime', async (t) => {
    const lived = (timeoutS: number) => serve(tls.createServer(serverTlsOptions(files, 5000, timeoutS), (s) => s.end('{}')), (s) => applyTicketKeys(s, other, silentLogger(), 100));
    const short = await lived(1);
    const long = await lived(3600);
    const shortTicket = (await connect(short)).session;
    const longTicket = (await connect(long)).session;
    long.setSecureContext(readSecureContext(files));
    await new Promise((r) => setTimeout(r, 2200));
    t.equal((await connect(short, { session: shortTicket })).clientReused, false, 'a 2 s old ticket with a 1 s lifetime: full handshake');
    t.equal((await connect(long, { session: longTicket })).clientReused, true, 'with a 1 h lifetime (kept across a certificate reload) it resumes');
  });

  await t.test('without a key file the random key is replaced every period; a certificate reload keeps the current one', async (t) => {
    const server = await serve(tls.createServer(serverTlsOptions(files, 5000), (s) => s.end('{}')), (s) => rotateTicketKeys(s, 3000, silentLogger()));
    const before = (await connect(server)).session;
    server.setSecureContext(readSecureContext(files));
    t.equal((await connect(server, { session: before })).clientReused, true, 'resumes while its key is current (also after a certificate reload)');
    await new Promise((r) => setTimeout(r, 3300));
    t.equal((await connect(server, { session: before })).clientReused, false, 'a ticket from before the change: full handshake');
    const after = (await connect(server)).session;
    t.equal((await connect(server, { session: after })).clientReused, true, 'a new ticket resumes');
  });

  await t.test('a bad key file fails the start', async (t) => {
    const bad = path.join(dir, 'bad.key');
    writeFileSync(bad, 'abc');
    const server = tls.createServer(serverTlsOptions(files, 5000));
    t.throws(() => applyTicketKeys(server, bad, silentLogger()), { reason: 'ticket_keys_invalid', message: /bad\.key/ });
  });
});
