import t from 'tap';
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import type { InterceptorFactory } from '../../policies/interceptors/types';
import { startLegacyCsms, type LegacyCsms } from '../helpers/csms';
import { sleep, waitFor } from '../helpers/net';
import { makeCharger, startTestProxy, type TestProxy } from '../helpers/proxy';

/** Opens a raw ws client to the proxy (for what ocpp-rpc would not send). */
function rawClient(proxy: TestProxy, pathAndId: string, protocols: string[] = ['ocpp1.6'], headers: Record<string, string> = {}): WebSocket {
  return new WebSocket(`${proxy.tlsUrl.replace(/\/ocpp$/, '')}${pathAndId}`, protocols, { ca: proxy.caPem, servername: 'localhost', headers } as WebSocket.ClientOptions);
}

/** Resolves with the HTTP status the proxy answered an upgrade with (or 101). */
function upgradeStatus(proxy: TestProxy, pathAndId: string, protocols: string[] = ['ocpp1.6'], headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = rawClient(proxy, pathAndId, protocols, headers);
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); });
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

const frameOf = (raw: string) => JSON.parse(raw) as unknown[];

t.test('relay core with real OCPP peers', async (t) => {
  const injectors: Record<string, (s: any) => void> = {};
  const hookFactory: InterceptorFactory = (session) => ({
    name: 'test-hooks',
    onOpen: (s) => injectors[s.identity]?.(s),
    onChargerCall: (_s, call) => (call.action === 'DataTransfer' && (call.payload as any).vendorId === 'proxy-local' ? { answer: { status: 'Accepted', data: 'from-proxy' } } : undefined),
  });
  const csms: LegacyCsms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const sessions: any[] = [];
  // Report-only: this file is about the relay; every well-formed charger is admitted (auth has its own tests).
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true' }, { interceptors: [hookFactory] });
  proxy.server.sessions; // registry
  t.teardown(() => proxy.stop());
  process.env.OCPP_PROXY_BACKEND_PASSWORD = ''; // keep global creds off unless a test sets them

  for (const protocol of ['ocpp1.6', 'ocpp2.0.1']) {
    t.test(`BootNotification and a CSMS call round-trip on ${protocol}, byte-identical`, async (t) => {
      const identity = `CP-${protocol.replace(/\./g, '')}`;
      const charger = makeCharger({ identity, endpoint: proxy.tlsUrl, protocols: [protocol], ca: proxy.caPem, password: 'charger-secret-must-not-leak' });
      const sent: string[] = [];
      charger.on('message', ({ message, outbound }: any) => { if (outbound) sent.push(message.toString()); });
      charger.handle('GetConfiguration', () => ({ configurationKey: [{ key: 'HeartbeatInterval', readonly: false, value: '300' }] }));
      charger.handle('GetVariables', () => ({ getVariableResult: [] }));
      await charger.connect();
      t.equal(charger.protocol, protocol, 'charger got exactly the subprotocol the CSMS chose');
      const boot = protocol === 'ocpp1.6'
        ? await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' })
        : await charger.call('BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: 'Acme', model: 'X1' } });
      t.equal(boot.status, 'Accepted');
      // A frame with unusual spacing and unicode must reach the CSMS exactly as sent.
      await charger.call('DataTransfer', { vendorId: 'Acme', data: 'ünïcødé  spaced' });
      const client = await waitFor(() => csms.clients.get(identity), 'CSMS client');
      const answer = protocol === 'ocpp1.6'
        ? await client.call('GetConfiguration', { key: ['HeartbeatInterval'] })
        : await client.call('GetVariables', { getVariableData: [{ component: { name: 'OCPPCommCtrlr' }, variable: { name: 'HeartbeatInterval' } }] });
      t.ok(answer, 'CSMS call answered through the proxy');
      const seen = csms.frames.filter((f) => f.identity === identity && !f.outbound).map((f) => f.raw);
      const fromCharger = sent.slice(0, seen.length);
      t.same(seen, fromCharger, 'CSMS received every charger frame byte-identical and in order');
      const hs = csms.handshakes.find((h) => h.identity === identity)!;
      t.equal(hs.headers.authorization, undefined, 'charger Authorization header never forwarded');
      t.equal(hs.headers['x-forwarded-proto'], 'https');
      t.equal(hs.headers['x-forwarded-for'], '127.0.0.1');
      t.notOk(JSON.stringify(proxy.logs).includes('charger-secret-must-not-leak'), 'password not in any log line');
      await charger.close();
    });
  }

  t.test('subprotocol negotiation matrix', async (t) => {
    const only16 = await startLegacyCsms({ protocols: ['ocpp1.6'] });
    t.teardown(() => only16.stop());
    const p2 = await startTestProxy({ backend: only16.url, reportOnly: 'true' });
    t.teardown(() => p2.stop());
    const cases: [string[], string | undefined][] = [
      [['ocpp2.0.1', 'ocpp1.6'], 'ocpp1.6'], // CSMS picks what it speaks
      [['ocpp1.6'], 'ocpp1.6'],
    ];
    for (const [offer, expected] of cases) {
      const c = makeCharger({ identity: `SP-${offer.length}`, endpoint: p2.tlsUrl, protocols: offer, ca: p2.caPem });
      await c.connect();
      t.equal(c.protocol, expected, `offer ${offer.join(',')} → ${expected}`);
      await c.close();
    }
    // Nothing in common with the proxy: handshake completes without a subprotocol, then closes.
    for (const [label, offer, proxyUnderTest, csmsUnderTest] of [
      ['proxy does not relay ocpp1.5', ['ocpp1.5'], p2, only16],
      ['CSMS speaks none of the offered', ['ocpp2.0.1'], p2, only16],
    ] as const) {
      const before = csmsUnderTest.handshakes.length;
      const ws = rawClient(proxyUnderTest, '/ocpp/SP-none', [...offer]);
      const result = await new Promise<{ protocol: string; code: number }>((resolve, reject) => {
        let protocol = 'unset';
        ws.on('upgrade', (res) => { protocol = String(res.headers['sec-websocket-protocol'] ?? ''); });
        ws.on('close', (code) => resolve({ protocol, code }));
        ws.on('error', (e) => { if (!/subprotocol/.test(e.message)) reject(e); });
      });
      t.equal(result.protocol, '', `${label}: no Sec-WebSocket-Protocol in the 101`);
      t.not(result.code, 1000, `${label}: connection closed right away (code ${result.code})`);
      if (label.startsWith('proxy')) t.equal(csmsUnderTest.handshakes.length, before, 'CSMS never dialled');
    }
  });

  t.test('bad identities get 400 and never reach the CSMS', async (t) => {
    const before = csms.handshakes.length;
    for (const bad of ['/ocpp/a%3Ab', '/ocpp/has%20space', '/ocpp/' + 'x'.repeat(49), '/ocpp/a/b', '/ocpp/%E0%A4%A', '/ocpp/..%2Fetc', '/ocpp/']) {
      t.equal(await upgradeStatus(proxy, bad), 400, `${bad.slice(0, 40)} → 400`);
    }
    t.equal(await upgradeStatus(proxy, '/other/CP1'), 404, 'path outside the prefix → 404');
    t.equal(csms.handshakes.length, before, 'CSMS saw no connection');
    t.ok(proxy.logs.some((l) => l.event === 'upgrade_rejected' && l.reason === 'bad_identity' && l.status === 400), 'rejection logged with reason');
  });

  t.test('CSMS refusal and outage map to charger statuses', async (t) => {
    const refusing = await startLegacyCsms({ refuse: (id) => (id === 'UNKNOWN' ? 404 : id === 'BROKEN' ? 500 : id === 'BUSY' ? 503 : undefined) });
    const p3 = await startTestProxy({ backend: refusing.url, reportOnly: 'true' });
    t.teardown(() => p3.stop());
    t.equal(await upgradeStatus(p3, '/ocpp/UNKNOWN'), 404, 'CSMS 404 stays 404');
    t.equal(await upgradeStatus(p3, '/ocpp/BROKEN'), 502, 'CSMS 500 becomes 502');
    t.equal(await upgradeStatus(p3, '/ocpp/BUSY'), 503, 'CSMS 503 stays 503 (retry later), not 502');
    t.ok(p3.logs.some((l) => l.event === 'backend_connect_failed' && l.identity === 'BUSY' && l.reason === 'backend_unavailable'), 'and is logged as the CSMS unavailable');
    await refusing.stop();
    const started = Date.now();
    t.equal(await upgradeStatus(p3, '/ocpp/CP-DOWN'), 503, 'CSMS down → 503');
    t.ok(Date.now() - started < 3000, 'answered quickly');
    t.ok(p3.logs.some((l) => l.event === 'backend_connect_failed' && l.reason === 'backend_unavailable'), 'logged');
    t.equal(p3.server.sessions.size, 0, 'nothing half open');
  });

  t.test('oversize frame closes with 1009; malformed frames are answered, not forwarded', async (t) => {
    const p4 = await startTestProxy({ backend: csms.url, maxFrameBytes: '4096', reportOnly: 'true' });
    t.teardown(() => p4.stop());
    const ws = rawClient(p4, '/ocpp/CP-FRAMES', ['ocpp2.0.1']);
    await new Promise((r) => ws.once('open', r));
    const replies: string[] = [];
    ws.on('message', (d) => replies.push(d.toString()));
    ws.send('this is not json');
    ws.send('[2, "ok-1", "Heartbeat", {}]');
    ws.send('[2, "x".repeat(40), "Heartbeat", {}]');
    ws.send(JSON.stringify([2, 'y'.repeat(37), 'Heartbeat', {}]));
    ws.send('[2, "bad-shape", "Heartbeat"]');
    ws.send('[9, "type-9", "Heartbeat", {}]');
    ws.send('[3, "never-asked", {}]');
    ws.send('[2, "ok-2", "Heartbeat", {}]');
    await waitFor(() => replies.filter((r) => r.startsWith('[3')).length >= 2, 'both heartbeats answered');
    const got = replies.map(frameOf);
    t.ok(got.some((f) => f[0] === 4 && f[1] === '-1' && f[2] === 'RpcFrameworkError'), 'unreadable id → CALLERROR "-1" RpcFrameworkError');
    t.ok(got.some((f) => f[0] === 4 && f[1] === 'bad-shape' && f[2] === 'FormatViolation'), 'bad CALL shape → FormatViolation with its id');
    t.ok(got.some((f) => f[0] === 4 && f[1] === 'type-9' && f[2] === 'MessageTypeNotSupported'), 'unknown type (2.0.1) → MessageTypeNotSupported');
    const atCsms = csms.received('CP-FRAMES');
    t.same(atCsms.map((f) => f[1]), ['ok-1', 'ok-2'], 'only the valid frames reached the CSMS, in order');
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(JSON.stringify([2, 'big', 'DataTransfer', { vendorId: 'x', data: 'z'.repeat(5000) }]));
    t.equal(await closed, 1009, 'oversize frame → 1009');
    await waitFor(() => csms.clients.get('CP-FRAMES')?.state === 3, 'CSMS leg closed too');
  });

  t.test('injected call waits for the outstanding CSMS call and its answer never reaches the CSMS', async (t) => {
    const identity = 'CP-INJECT';
    let session: any;
    injectors[identity] = (s) => { session = s; };
    const charger = makeCharger({ identity, endpoint: proxy.tlsUrl, protocols: ['ocpp1.6'], ca: proxy.caPem });
    const order: string[] = [];
    let releaseCsmsCall!: () => void;
    const csmsCallGate = new Promise<void>((r) => { releaseCsmsCall = r; });
    charger.handle('GetConfiguration', async () => { order.push('GetConfiguration'); await csmsCallGate; return { configurationKey: [] }; });
    charger.handle('ChangeConfiguration', ({ params }: any) => { order.push(`ChangeConfiguration:${params.key}`); return { status: 'Accepted' }; });
    charger.handle('Reset', () => { order.push('Reset'); return { status: 'Accepted' }; });
    await charger.connect();
    const client = await waitFor(() => csms.clients.get(identity), 'CSMS client');
    await waitFor(() => session, 'session');
    const csmsCall = client.call('GetConfiguration', {});
    await waitFor(() => order.length === 1, 'CSMS call reached charger');
    const injected = session.injectCall('ChangeConfiguration', { key: 'HeartbeatInterval', value: '60' });
    await sleep(100);
    t.same(order, ['GetConfiguration'], 'injection waits while the CSMS call is outstanding');
    releaseCsmsCall();
    await csmsCall;
    const outcome = await injected;
    t.same(outcome, { kind: 'result', payload: { status: 'Accepted' } }, 'injected call answered');
    t.same(order, ['GetConfiguration', 'ChangeConfiguration:HeartbeatInterval']);

    // A CSMS call arriving while an injected call is in flight is delayed, not lost.
    let releaseInjected!: () => void;
    const injectedGate = new Promise<void>((r) => { releaseInjected = r; });
    charger.removeHandler('ChangeConfiguration');
    charger.handle('ChangeConfiguration', async ({ params }: any) => { order.push(`ChangeConfiguration:${params.key}`); await injectedGate; return { status: 'Accepted' }; });
    const second = session.injectCall('ChangeConfiguration', { key: 'MeterValueSampleInterval', value: '10' });
    await waitFor(() => order.length === 3, 'second injection delivered');
    const heldCall = client.call('Reset', { type: 'Soft' });
    await sleep(100);
    t.equal(order.length, 3, 'CSMS call held while the injected call is in flight');
    releaseInjected();
    await second;
    t.same(await heldCall, { status: 'Accepted' }, 'held CSMS call delivered and answered afterwards');
    t.same(order.slice(3), ['Reset']);
    const csmsSaw = csms.frames.filter((f) => f.identity === identity).map((f) => f.raw);
    t.notOk(csmsSaw.some((r) => r.includes('ChangeConfiguration') || r.includes('MeterValueSampleInterval')), 'CSMS never saw the injected calls');
    t.equal(csms.received(identity).filter((f) => f[0] === 3).length, 2, 'CSMS saw exactly the answers to its own two calls');

    // No answer: times out, the line is freed for the CSMS again.
    charger.removeHandler('ChangeConfiguration');
    charger.handle('ChangeConfiguration', () => new Promise(() => {}));
    await t.rejects(session.injectCall('ChangeConfiguration', { key: 'X', value: '1' }, { timeoutMs: 200 }), { reason: 'timeout' } as any);
    t.same(await client.call('Reset', { type: 'Soft' }), { status: 'Accepted' }, 'CSMS call flows after the timeout');
    await charger.close({ force: true, awaitPending: false });
  });

  t.test('an interceptor answers a charger call itself', async (t) => {
    const charger = makeCharger({ identity: 'CP-LOCAL', endpoint: proxy.tlsUrl, protocols: ['ocpp1.6'], ca: proxy.caPem });
    await charger.connect();
    const res = await charger.call('DataTransfer', { vendorId: 'proxy-local' });
    t.same(res, { status: 'Accepted', data: 'from-proxy' });
    await charger.call('Heartbeat', {});
    t.same(csms.received('CP-LOCAL').map((f) => f[2]), ['Heartbeat'], 'CSMS never saw the locally answered call');
    await charger.close();
  });

  t.test('either leg closing closes the other', async (t) => {
    const charger = makeCharger({ identity: 'CP-CLOSE', endpoint: proxy.tlsUrl, protocols: ['ocpp1.6'], ca: proxy.caPem });
    await charger.connect();
    const client = await waitFor(() => csms.clients.get('CP-CLOSE'), 'CSMS client');
    const closed = new Promise<any>((r) => charger.once('close', r));
    await client.close({ code: 4001, reason: 'csms says bye' });
    const info = await closed;
    t.equal(info.code, 4001, 'CSMS close code passed to the charger');
    const charger2 = makeCharger({ identity: 'CP-CLOSE2', endpoint: proxy.tlsUrl, protocols: ['ocpp1.6'], ca: proxy.caPem });
    await charger2.connect();
    const client2 = await waitFor(() => csms.clients.get('CP-CLOSE2'), 'CSMS client 2');
    const closed2 = new Promise<any>((r) => client2.once('close', r));
    await charger2.close({ code: 1000 });
    t.equal((await closed2).code, 1000, 'charger close reaches the CSMS');
  });

  t.test('plain HTTP on the charger port is 404 unless passthrough is on', async (t) => {
    const status = await new Promise<number>((resolve, reject) => {
      https.get(`https://127.0.0.1:${proxy.addresses.tls.port}/`, { ca: proxy.caPem, servername: 'localhost' }, (res) => { resolve(res.statusCode ?? 0); res.resume(); }).on('error', reject);
    });
    t.equal(status, 404);
  });
  t.test('permessage-deflate is negotiated with chargers that ask for it, and frames still arrive byte-identical', async (t) => {
    const open = (deflate: boolean) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${proxy.tlsUrl}/CP-DEFLATE-${deflate ? 'ON' : 'OFF'}`, ['ocpp1.6'], { ca: proxy.caPem, servername: 'localhost', perMessageDeflate: deflate } as WebSocket.ClientOptions);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
    const on = await open(true);
    t.match(on.extensions, /permessage-deflate/, 'negotiated when offered');
    const off = await open(false);
    t.equal(off.extensions, '', 'not negotiated when not offered');
    const offeredToCsms = (id: string) => csms.handshakes.find((h) => h.identity === id)?.headers['sec-websocket-extensions'];
    t.match(offeredToCsms('CP-DEFLATE-ON'), /permessage-deflate/, 'offered to the CSMS for the charger that asked');
    t.equal(offeredToCsms('CP-DEFLATE-OFF'), undefined, 'not offered to the CSMS for the charger that did not');
    const big = JSON.stringify([2, 'deflate-1', 'DataTransfer', { vendorId: 'x', data: 'compressible '.repeat(500) }]);
    on.send(big);
    await waitFor(() => csms.frames.some((f) => f.identity === 'CP-DEFLATE-ON' && f.raw === big), 'compressed frame relayed byte-identical');
    t.pass('compressed frame reached the CSMS byte-identical');
    on.close(); off.close();
  });

  t.test('plain HTTP passthrough to the CSMS origin when enabled, without the charger\'s Authorization', async (t) => {
    const seen: { url?: string; auth?: string; xff?: string; proto?: string } = {};
    const origin = http.createServer((req, res) => {
      seen.url = req.url; seen.auth = req.headers.authorization;
      seen.xff = req.headers['x-forwarded-for'] as string | undefined; seen.proto = req.headers['x-forwarded-proto'] as string | undefined;
      res.end('csms-status-ok');
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    t.teardown(() => origin.close());
    const port = (origin.address() as { port: number }).port;
    const p5 = await startTestProxy({ backend: `ws://127.0.0.1:${port}/ocpp`, httpPassthrough: 'true', reportOnly: 'true' });
    t.teardown(() => p5.stop());
    const body = await new Promise<string>((resolve, reject) => {
      https.get(`https://127.0.0.1:${p5.addresses.tls.port}/status?x=1`, { ca: p5.caPem, servername: 'localhost', headers: { authorization: 'Basic c2VjcmV0OnNlY3JldA==', 'x-forwarded-for': '203.0.113.66' } }, (res) => {
        let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    t.equal(body, 'csms-status-ok', 'answered by the CSMS origin');
    t.equal(seen.url, '/status?x=1');
    t.equal(seen.auth, undefined, 'Authorization not passed on');
    t.equal(seen.xff, '127.0.0.1', 'the client\'s own X-Forwarded-For replaced by the address the proxy saw');
    t.equal(seen.proto, 'https', 'and X-Forwarded-Proto says the proxy terminated TLS');
  });
  void sessions;
});
