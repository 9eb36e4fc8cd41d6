import t from 'tap';
import { securityEvents } from '../../policies/interceptors/security-events';
import { waitFor } from '../helpers/net';
import { schemaErrors, startCertRig, strictCharger } from '../helpers/certificate-harness';

const event = (type: string) => ({ type, timestamp: new Date().toISOString(), techInfo: 'lid opened' });

t.test('security events: answered locally on 1.6, forwarded on 2.x, always audited', async (t) => {
  const counted: string[] = [];
  const rig = await startCertRig(t, (store) => [securityEvents({ store, mode: 'auto', metrics: { securityEvent: (type) => counted.push(type) } })]);
  const audited = async (identity: string) => (await rig.store.readAudit(100)).filter((e) => e.identity === identity && e.type === 'security_event');

  t.test('1.6: the proxy answers all three security-extension notifications; the CSMS sees none', async (t) => {
    const identity = 'SE-16';
    await rig.addCharger(identity);
    const charger = strictCharger(rig, identity, 'ocpp1.6');
    await charger.connect();
    const answer = await charger.call('SecurityEventNotification', event('TamperDetectionActivated'));
    t.same(answer, {}, 'confirmed by the proxy');
    t.equal(schemaErrors('ocpp1.6', 'SecurityEventNotification', 'conf', answer), '');
    t.same(await charger.call('SignedFirmwareStatusNotification', { status: 'InvalidSignature', requestId: 1 }), {});
    t.same(await charger.call('LogStatusNotification', { status: 'Uploaded', requestId: 2 }), {});
    const [stored] = await audited(identity);
    t.match(stored, { type: 'security_event', identity, detail: { eventType: 'TamperDetectionActivated', techInfo: 'lid opened', answeredBy: 'proxy' } }, 'in the audit stream');
    t.same(rig.csmsSaw(identity, ['SecurityEventNotification', 'SignedFirmwareStatusNotification', 'LogStatusNotification']), [], 'CSMS saw none of these frames');
    t.ok(rig.logs.some((l) => l.event === 'security_event' && l.eventType === 'TamperDetectionActivated'), 'logged');
    t.ok(counted.includes('TamperDetectionActivated'), 'counted');
    await charger.close();
  });

  t.test('2.0.1: forwarded to the CSMS (which knows it) and still audited', async (t) => {
    const identity = 'SE-201';
    await rig.addCharger(identity);
    rig.csms.server.on('client', (client: any) => {
      if (client.identity === identity) client.handle('SecurityEventNotification', () => ({}));
    });
    const charger = strictCharger(rig, identity, 'ocpp2.0.1');
    await charger.connect();
    t.same(await charger.call('SecurityEventNotification', event('InvalidCsmsCertificate')), {});
    t.equal(rig.csmsSaw(identity, ['SecurityEventNotification']).length, 1, 'CSMS received it');
    const stored = await waitFor(async () => (await audited(identity))[0], 'audit');
    t.match(stored, { detail: { eventType: 'InvalidCsmsCertificate', answeredBy: 'csms' } });
    await charger.close();
  });

  t.test('a malformed event is still answered on 1.6 and audited with its problem', async (t) => {
    const identity = 'SE-BAD';
    await rig.addCharger(identity);
    const charger = strictCharger(rig, identity, 'ocpp1.6');
    charger._strictProtocols = []; // this one charger sends an invalid payload on purpose
    await charger.connect();
    t.same(await charger.call('SecurityEventNotification', { type: 'X' }), {}, 'answered');
    const stored = await waitFor(async () => (await audited(identity))[0], 'audit');
    t.match(stored, { detail: { problem: 'timestamp_missing' } });
    await charger.close();
  });
});

t.test('mode always answers on 2.x too; never forwards on 1.6', async (t) => {
  const always = await startCertRig(t, (store) => [securityEvents({ store, mode: 'always' })]);
  await always.addCharger('SE-ALWAYS');
  const c1 = strictCharger(always, 'SE-ALWAYS', 'ocpp2.0.1');
  await c1.connect();
  t.same(await c1.call('SecurityEventNotification', event('SettingSystemTime')), {});
  t.same(always.csmsSaw('SE-ALWAYS', ['SecurityEventNotification']), [], 'not forwarded');
  await c1.close();

  const never = await startCertRig(t, (store) => [securityEvents({ store, mode: 'never' })]);
  await never.addCharger('SE-NEVER');
  const c2 = strictCharger(never, 'SE-NEVER', 'ocpp1.6');
  await c2.connect();
  // The legacy 1.6 CSMS stand-in has no handler: it answers NotImplemented, as a plain 1.6 CSMS would.
  const refused = await c2.call('SecurityEventNotification', event('SettingSystemTime')).then(() => null, (e: { rpcErrorCode?: string }) => e);
  t.equal(refused?.rpcErrorCode, 'NotImplemented', 'CALLERROR NotImplemented from the CSMS');
  t.equal(never.csmsSaw('SE-NEVER', ['SecurityEventNotification']).length, 1, 'forwarded');
  t.equal((await never.store.readAudit(10)).filter((e) => e.type === 'security_event').length, 1, 'still audited');
  await c2.close();
});

t.test('a charger flooding security events is paced, not dropped: every event audited and answered, the flood spread out', async (t) => {
  const rig = await startCertRig(t, (store) => [securityEvents({ store, mode: 'auto', perSecond: 20, burst: 5 })]);
  const identity = 'SE-FLOOD';
  await rig.addCharger(identity);
  const charger = strictCharger(rig, identity, 'ocpp1.6');
  await charger.connect();
  const EVENTS = 25;
  const answeredAt: number[] = [];
  charger.on('message', ({ message, outbound }: { message: string; outbound: boolean }) => {
    if (!outbound && JSON.parse(String(message))[0] === 3) answeredAt.push(performance.now());
  });
  const started = performance.now();
  // Sent at once, not one after the other's answer as OCPP has it: what a flooding charger does.
  for (let i = 0; i < EVENTS; i++) charger.sendRaw(JSON.stringify([2, `se-${i}`, 'SecurityEventNotification', event('TamperDetectionActivated')]));
  await waitFor(() => answeredAt.length === EVENTS || undefined, 'every event answered', 10_000, 20);
  const spread = answeredAt[EVENTS - 1]! - started;
  t.ok(spread >= ((EVENTS - 5) / 20) * 1000 * 0.9, `the last answer came ${spread.toFixed(0)} ms after the first event: 5 at once, then 20 a second`);
  const stored = await waitFor(async () => {
    const all = (await rig.store.readAudit(100)).filter((e) => e.identity === identity && e.type === 'security_event');
    return all.length === EVENTS ? all : undefined;
  }, 'every event in the audit stream');
  t.equal(stored!.length, EVENTS, 'none dropped');
  t.same(rig.csmsSaw(identity, ['SecurityEventNotification']), [], 'none reached the CSMS');
  await charger.close();
});
