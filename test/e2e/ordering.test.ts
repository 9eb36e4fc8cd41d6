/**
 * Issue 9, item 4: no frame lost or reordered. Twenty chargers and the CSMS stand-in number their
 * calls; chargers pipeline theirs (several in flight, more than OCPP's one, to stress the relay), the
 * CSMS calls each charger one call at a time, and a test interceptor injects a call of the proxy's
 * own every few charger calls, so CSMS frames are regularly held behind an injected call. At the end,
 * for every charger, byte for byte:
 * - what the charger sent (less its answers to injected calls) is exactly what the CSMS received;
 * - what the CSMS sent is exactly what the charger received, less the injected calls;
 * - both numbered sequences are complete and in order; every injected call was answered.
 * Size: ORDERING_CHARGERS (20) × ORDERING_CALLS (1000) charger calls + half as many CSMS calls.
 */
import t from 'tap';
import { RPCClient } from 'ocpp-rpc';
import type { InterceptorFactory, CallOutcome } from '../../policies/interceptors/types';
import { startLegacyCsms } from '../helpers/csms';
import { waitFor } from '../helpers/net';
import { makeTestPki } from '../helpers/pki';
import { seedCharger, startTestProxy, TEST_PKI_DIR } from '../helpers/proxy';

const CHARGERS = Number(process.env.ORDERING_CHARGERS ?? 20);
const CALLS = Number(process.env.ORDERING_CALLS ?? 1000);
const CSMS_CALLS = Math.floor(CALLS / 2);
/** One injected call per this many charger calls of a session. */
const INJECT_EVERY = 50;
/** Charger calls in flight at once. */
const WINDOW = 8;
const INJECTED_VENDOR = 'proxy.test.injected';

interface Wire { raw: string; outbound: boolean }

/** Injects a numbered DataTransfer every INJECT_EVERY charger calls; records the outcomes. */
function injector(outcomes: Map<string, (CallOutcome | Error)[]>): InterceptorFactory {
  return (session) => {
    let calls = 0;
    let injected = 0;
    const mine: (CallOutcome | Error)[] = [];
    outcomes.set(session.identity, mine);
    return {
      name: 'test-injector',
      onChargerCall() {
        if (++calls % INJECT_EVERY !== 0) return undefined;
        const n = ++injected;
        session.injectCall('DataTransfer', { vendorId: INJECTED_VENDOR, messageId: 'inject', data: String(n) }, { timeoutMs: 20000 })
          .then((o) => mine.push(o), (e: Error) => mine.push(e));
        return undefined;
      },
    };
  };
}

const parse = (raw: string) => JSON.parse(raw) as unknown[];
const isInjectedCall = (f: unknown[]) => f[0] === 2 && (f[3] as { vendorId?: string })?.vendorId === INJECTED_VENDOR;

t.test(`${CHARGERS} chargers × ${CALLS} numbered calls each way through the relay, with injected calls`, async (t) => {
  await makeTestPki(TEST_PKI_DIR);
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const outcomes = new Map<string, (CallOutcome | Error)[]>();
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false', maxHeldFrames: '10000' }, { interceptors: [injector(outcomes)] });
  t.teardown(() => proxy.stop());

  const ids = Array.from({ length: CHARGERS }, (_, i) => `ORD-${String(i).padStart(2, '0')}`);
  const wires = new Map<string, Wire[]>();
  const injectedSeen = new Map<string, number[]>();
  const csmsSeqSeen = new Map<string, number[]>();
  const clients: any[] = [];
  for (const identity of ids) {
    await seedCharger(proxy, { identity, password: `ordering-password-${identity}` });
    const c = new RPCClient({
      endpoint: proxy.tlsUrl, identity, protocols: ['ocpp1.6'], password: `ordering-password-${identity}`,
      reconnect: false, pingIntervalMs: 0, callTimeoutMs: 30000, callConcurrency: WINDOW,
      wsOpts: { ca: proxy.caPem, servername: 'localhost' },
    } as any) as any;
    const wire: Wire[] = [];
    wires.set(identity, wire);
    injectedSeen.set(identity, []);
    csmsSeqSeen.set(identity, []);
    c.on('message', ({ message, outbound }: { message: Buffer | string; outbound: boolean }) => wire.push({ raw: message.toString(), outbound }));
    c.handle('DataTransfer', ({ params }: any) => {
      if (params.vendorId === INJECTED_VENDOR) injectedSeen.get(identity)!.push(Number(params.data));
      else csmsSeqSeen.get(identity)!.push(Number(params.data));
      return { status: 'Accepted' };
    });
    await c.connect();
    clients.push(c);
    t.teardown(() => c.close({ force: true }).catch(() => undefined));
  }
  await waitFor(() => ids.every((id) => csms.clients.has(id)), 'every charger known to the CSMS');

  const started = Date.now();
  const chargerSide = clients.map((c) => Promise.all(Array.from({ length: CALLS }, (_, i) =>
    c.call('DataTransfer', { vendorId: 'charger.seq', messageId: 'seq', data: String(i + 1) }))));
  const csmsSide = ids.map(async (identity) => {
    const client = csms.clients.get(identity);
    for (let i = 1; i <= CSMS_CALLS; i++) await client.call('DataTransfer', { vendorId: 'csms.seq', messageId: 'seq', data: String(i) });
  });
  await Promise.all([...chargerSide, ...csmsSide]);
  const seconds = (Date.now() - started) / 1000;
  await waitFor(() => ids.every((id) => (outcomes.get(id)?.length ?? 0) >= Math.floor(CALLS / INJECT_EVERY)), 'every injected call settled', 20000);
  const frames = CHARGERS * (CALLS + CSMS_CALLS);
  t.comment(`relayed ${frames} calls and as many answers in ${seconds.toFixed(1)} s (${Math.round((2 * frames) / seconds)} frames/s)`);

  for (const identity of ids) {
    const wire = wires.get(identity)!;
    const injectedIds = new Set(wire.filter((w) => !w.outbound && isInjectedCall(parse(w.raw))).map((w) => parse(w.raw)[1] as string));
    const sentByCharger = wire.filter((w) => w.outbound && !injectedIds.has(parse(w.raw)[1] as string)).map((w) => w.raw);
    const receivedByCharger = wire.filter((w) => !w.outbound && !injectedIds.has(parse(w.raw)[1] as string)).map((w) => w.raw);
    const atCsms = csms.frames.filter((f) => f.identity === identity);
    const receivedByCsms = atCsms.filter((f) => !f.outbound).map((f) => f.raw);
    const sentByCsms = atCsms.filter((f) => f.outbound).map((f) => f.raw);
    const firstDiff = (a: string[], b: string[]) => a.findIndex((x, i) => x !== b[i]);

    t.equal(receivedByCsms.length, sentByCharger.length, `${identity}: the CSMS received as many frames as the charger sent`);
    t.equal(firstDiff(sentByCharger, receivedByCsms), -1, `${identity}: charger → CSMS byte for byte, in order`);
    t.equal(receivedByCharger.length, sentByCsms.length, `${identity}: the charger received every CSMS frame`);
    t.equal(firstDiff(sentByCsms, receivedByCharger), -1, `${identity}: CSMS → charger byte for byte, in order`);

    const chargerSeq = receivedByCsms.map(parse).filter((f) => f[0] === 2).map((f) => Number((f[3] as { data: string }).data));
    t.same(chargerSeq, Array.from({ length: CALLS }, (_, i) => i + 1), `${identity}: charger sequence 1..${CALLS} complete and in order at the CSMS`);
    t.same(csmsSeqSeen.get(identity), Array.from({ length: CSMS_CALLS }, (_, i) => i + 1), `${identity}: CSMS sequence 1..${CSMS_CALLS} complete and in order at the charger`);

    const injected = injectedSeen.get(identity)!;
    t.ok(injected.length >= Math.floor(CALLS / INJECT_EVERY), `${identity}: ${injected.length} injected calls reached the charger`);
    t.same(injected, Array.from({ length: injected.length }, (_, i) => i + 1), `${identity}: injected calls in order`);
    const mine = outcomes.get(identity)!;
    t.ok(mine.every((o) => !(o instanceof Error) && o.kind === 'result'), `${identity}: every injected call was answered`);
    t.notOk(atCsms.some((f) => f.raw.includes(INJECTED_VENDOR)) || [...injectedIds].some((id) => atCsms.some((f) => f.raw.includes(id))),
      `${identity}: the CSMS saw none of the injected calls or their answers`);
  }
  const refused = proxy.logs.filter((l) => l.event === 'frame_refused');
  t.equal(refused.length, 0, 'no frame refused by the proxy');
});
