/**
 * What a live session keeps: once admitted, nothing may pin the charger's upgrade request (its
 * headers, parser state and streams, ~1 KiB a session), a session that has logged nothing of its
 * own has no child logger (~0.9 KiB), and the settings sessions share are not copied per session. Counted on the real heap of this process through the inspector
 * (a forced GC, then every object with the prototype), with 20 chargers connected.
 */
import t from 'tap';
import http from 'node:http';
import inspector from 'node:inspector';
import { startLegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { makeCharger, startTestProxy } from '../helpers/proxy';

const CHARGERS = 20;

/** Runs `count` over every live object whose prototype is `prototype`, after a full GC. */
async function liveObjects(prototype: object, count: string): Promise<number> {
  const session = new inspector.Session();
  session.connect();
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
  try {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.collectGarbage');
    (globalThis as Record<string, unknown>).__sessionMemoryPrototype = prototype;
    const proto = await post<{ result: { objectId: string } }>('Runtime.evaluate', { expression: 'globalThis.__sessionMemoryPrototype' });
    const found = await post<{ objects: { objectId: string } }>('Runtime.queryObjects', { prototypeObjectId: proto.result.objectId });
    const n = await post<{ result: { value: number } }>('Runtime.callFunctionOn', { objectId: found.objects.objectId, functionDeclaration: `function () { return this.filter(${count}).length; }`, returnByValue: true });
    return n.result.value;
  } finally {
    delete (globalThis as Record<string, unknown>).__sessionMemoryPrototype;
    session.disconnect();
  }
}

t.test('an admitted session pins neither its upgrade request nor a logger of its own', async (t) => {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, reportOnly: 'true' });
  t.teardown(() => proxy.stop());
  const chargers: ReturnType<typeof makeCharger>[] = [];
  for (let i = 0; i < CHARGERS; i++) {
    const c = makeCharger({ identity: `MEM-${i}`, endpoint: proxy.tlsUrl, ca: proxy.caPem });
    await c.connect();
    chargers.push(c);
  }
  t.teardown(() => Promise.all(chargers.map((c) => c.close({ force: true }))));
  await waitFor(() => proxy.server.sessions.size === CHARGERS, 'every session admitted');

  // The proxy's: requests a server received over TLS (the CSMS stand-in in this process takes plain ws).
  const requests = await liveObjects(http.IncomingMessage.prototype, '(r) => r.socket && r.socket.server && r.socket.encrypted === true');
  t.ok(requests < CHARGERS / 2, `${requests} upgrade requests alive for ${CHARGERS} sessions`);

  // A pino child logger's prototype is its parent: the server's logger, which sessions log through.
  const serverLog = (proxy.server as unknown as { log: object }).log;
  const sessionLoggers = await liveObjects(serverLog, '(l) => l.bindings().identity !== undefined');
  t.equal(sessionLoggers, 0, 'no child logger bound to an identity');
  // The count sees one as soon as a session logs a line of its own.
  proxy.server.sessions.get('MEM-0')!.log.info({ event: 'test_line' });
  t.equal(await liveObjects(serverLog, '(l) => l.bindings().identity !== undefined'), 1, 'a session that logs gets its logger');

  // The settings every session shares (logger, observer, timeouts) are one object, not a copy each.
  const settings = await liveObjects(Object.prototype, '(o) => Object.prototype.hasOwnProperty.call(o, "onFlushEnd") && Object.prototype.hasOwnProperty.call(o, "maxHeldFrames")');
  t.equal(settings, 1, `${settings} session settings objects for ${CHARGERS} sessions`);
});
