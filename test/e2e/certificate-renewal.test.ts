import t from 'tap';
import { NOT_BEFORE_BACKDATE_MS } from '../../certs/build';
import { certificateRenewal } from '../../policies/interceptors/certificate-renewal';
import { serialNumberCheck, SERIAL_MISMATCH_CLOSE_CODE } from '../../policies/interceptors/serial-number-check';
import { sleep, waitFor } from '../helpers/net';
import { schemaErrors, startCertRig, strictCharger } from '../helpers/certificate-harness';

const boot = (protocol: string, serialNumber?: string) => protocol === 'ocpp1.6'
  ? { chargePointVendor: 'Acme', chargePointModel: 'X1', ...(serialNumber ? { chargeBoxSerialNumber: serialNumber } : {}) }
  : { reason: 'PowerUp', chargingStation: { vendorName: 'Acme', model: 'X1', ...(serialNumber ? { serialNumber } : {}) } };

t.test('renewal trigger on Profile 3 when the certificate expires within the window', async (t) => {
  const rig = await startCertRig(t, (store) => [certificateRenewal({ store, renewBeforeDays: 30, bootWaitMs: 300 })]);
  const TRIGGERS = ['TriggerMessage', 'ExtendedTriggerMessage'];

  for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const) {
    for (const [days, expected] of [[10, true], [365, false]] as const) {
      t.test(`${protocol}, certificate valid ${days} days → ${expected ? 'trigger' : 'no trigger'}`, async (t) => {
        const identity = `RN-${protocol.replace(/\W/g, '')}-${days}`;
        const serial = `SN-${identity}`;
        await rig.addCharger(identity, { minProfile: 3, certificate: { serialNumber: serial } });
        const cert = await rig.pki.charger(serial, { days });
        const charger = strictCharger(rig, identity, protocol, cert);
        const triggers: { action: string; params: any }[] = [];
        for (const action of TRIGGERS) {
          charger.handle(action, ({ params }: any) => { triggers.push({ action, params }); return { status: 'Accepted' }; });
        }
        await charger.connect();
        t.equal((await charger.call('BootNotification', boot(protocol, serial))).status, 'Accepted');
        if (expected) {
          await waitFor(() => triggers.length === 1, 'trigger');
          const [{ action, params }] = triggers;
          if (protocol === 'ocpp1.6') t.same({ action, params }, { action: 'ExtendedTriggerMessage', params: { requestedMessage: 'SignChargePointCertificate' } });
          else t.same({ action, params }, { action: 'TriggerMessage', params: { requestedMessage: 'SignChargingStationCertificate' } });
          t.equal(schemaErrors(protocol, action, 'req', params), '', 'valid per schema');
          const audited = await waitFor(async () => (await rig.store.readAudit(50)).find((e) => e.identity === identity && e.type === 'certificate_renewal_triggered'), 'audit');
          t.equal(audited!.detail?.status, 'Accepted');
          t.equal(audited!.detail?.serialHex, cert.serialHex);
          // A second BootNotification in the same session does not trigger again.
          await charger.call('BootNotification', boot(protocol, serial));
          await sleep(200);
          t.equal(triggers.length, 1, 'once per session');
        } else {
          await sleep(400);
          t.equal(triggers.length, 0, 'no trigger');
        }
        t.same(rig.csmsSaw(identity, TRIGGERS), [], 'CSMS saw none of these frames');
        await charger.close();
      });
    }
  }

  t.test('a reconnect without BootNotification is triggered after the settle time when the record says booted', async (t) => {
    const identity = 'RN-REBOOTLESS';
    await rig.addCharger(identity, { minProfile: 3, certificate: { serialNumber: 'SN-RL' }, bootState: 'Accepted' });
    const cert = await rig.pki.charger('SN-RL', { days: 5 });
    const charger = strictCharger(rig, identity, 'ocpp2.0.1', cert);
    let triggered = 0;
    charger.handle('TriggerMessage', () => { triggered++; return { status: 'Accepted' }; });
    await charger.connect();
    await waitFor(() => triggered === 1, 'trigger after settle');
    await charger.close();
  });

  t.test('held in Pending: a 2.x charger is not asked (it would refuse the CertificateSigned), a 1.6 charger is', async (t) => {
    for (const protocol of ['ocpp2.0.1', 'ocpp1.6'] as const) {
      const identity = `RN-PENDING-${protocol.replace(/\W/g, '')}`;
      await rig.addCharger(identity, { minProfile: 3, certificate: { serialNumber: `SN-${identity}` }, bootState: 'Pending' });
      const charger = strictCharger(rig, identity, protocol, await rig.pki.charger(`SN-${identity}`, { days: 5 }));
      let triggered = 0;
      for (const action of TRIGGERS) charger.handle(action, () => { triggered++; return { status: 'Accepted' }; });
      await charger.connect();
      if (protocol === 'ocpp1.6') await waitFor(() => triggered === 1, '1.6 asked while Pending');
      else {
        await sleep(700); // past the wait for a BootNotification
        t.equal(triggered, 0, '2.x not asked while Pending');
        await charger.call('BootNotification', boot(protocol, `SN-${identity}`));
        await waitFor(() => triggered === 1, '2.x asked once its boot is Accepted');
      }
      await charger.close();
    }
  });

  t.test('Profile 2 sessions (no client certificate) are never triggered', async (t) => {
    await rig.addCharger('RN-P2');
    const charger = strictCharger(rig, 'RN-P2', 'ocpp2.0.1');
    let triggered = 0;
    charger.handle('TriggerMessage', () => { triggered++; return { status: 'Accepted' }; });
    await charger.connect();
    await charger.call('BootNotification', boot('ocpp2.0.1'));
    await sleep(300);
    t.equal(triggered, 0);
    await charger.close();
  });
});

t.test('B01.FR.11/12: BootNotification serial number must match the certificate CN on Profile 3', async (t) => {
  const rig = await startCertRig(t, (store) => [serialNumberCheck({ enabled: true, store })]);

  t.test('mismatch closes the connection; the CSMS never sees the BootNotification', async (t) => {
    await rig.addCharger('SC-BAD', { minProfile: 3, certificate: { serialNumber: 'SN-GOOD' } });
    const cert = await rig.pki.charger('SN-GOOD');
    const charger = strictCharger(rig, 'SC-BAD', 'ocpp2.0.1', cert);
    await charger.connect();
    const closed = new Promise<number>((r) => charger.once('close', ({ code }: any) => r(code)));
    await t.rejects(charger.call('BootNotification', boot('ocpp2.0.1', 'SN-FORGED')), 'no answer');
    t.equal(await closed, SERIAL_MISMATCH_CLOSE_CODE, 'closed with 1008');
    t.same(rig.csmsSaw('SC-BAD', ['BootNotification']), [], 'CSMS saw no BootNotification');
    const audited = await waitFor(async () => (await rig.store.readAudit(50)).find((e) => e.identity === 'SC-BAD'), 'audit');
    t.equal(audited!.type, 'serial_number_mismatch');
    t.same(audited!.detail, { reason: 'serial_number_mismatch', serialNumber: 'SN-FORGED', commonName: 'SN-GOOD', serialHex: cert.serialHex });
  });

  t.test('a serial number given twice is refused whichever comes last: the CSMS\'s parser may keep either', async (t) => {
    const cases: Array<[identity: string, cn: string, first: string, last: string]> = [['SC-DUP1', 'SN-DUP1', 'SN-EVIL', 'SN-DUP1'], ['SC-DUP2', 'SN-DUP2', 'SN-DUP2', 'SN-EVIL']];
    for (const [identity, cn, first, last] of cases) {
      await rig.addCharger(identity, { minProfile: 3, certificate: { serialNumber: cn } });
      const cert = await rig.pki.charger(cn);
      const charger = strictCharger(rig, identity, 'ocpp2.0.1', cert);
      await charger.connect();
      const closed = new Promise<number>((r) => charger.once('close', ({ code }: any) => r(code)));
      // JSON.stringify cannot write a key twice: the frame is written by hand, as a hostile charger would.
      charger.sendRaw(`[2,"dup-1","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"m","vendorName":"v",`
        + `"serialNumber":"${first}","serial\\u004eumber":"${last}"}}]`);
      t.equal(await closed, SERIAL_MISMATCH_CLOSE_CODE, `${identity}: closed with 1008 (the certificate's CN given ${last === cn ? 'last' : 'first'})`);
      t.same(rig.csmsSaw(identity, ['BootNotification']), [], `${identity}: the CSMS saw no BootNotification`);
      const audited = await waitFor(async () => (await rig.store.readAudit(50)).find((e) => e.identity === identity), 'audit');
      t.equal(audited!.type, 'serial_number_ambiguous');
      t.match(audited!.detail, { reason: 'duplicate_key', key: 'serialNumber' }, `${identity}: audited, the escaped spelling of the key recognised`);
    }
  });

  t.test('match passes to the CSMS', async (t) => {
    await rig.addCharger('SC-OK', { minProfile: 3, certificate: { serialNumber: 'SN-OK' } });
    const cert = await rig.pki.charger('SN-OK');
    const charger = strictCharger(rig, 'SC-OK', 'ocpp2.0.1', cert);
    await charger.connect();
    t.equal((await charger.call('BootNotification', boot('ocpp2.0.1', 'SN-OK'))).status, 'Accepted');
    t.equal(rig.csmsSaw('SC-OK', ['BootNotification']).length, 1, 'CSMS got the BootNotification');
    await charger.close();
  });

  t.test('not applied to 1.6 or to Profile 2 by default', async (t) => {
    await rig.addCharger('SC-16', { minProfile: 3 });
    const cert = await rig.pki.charger('SN-16');
    const c16 = strictCharger(rig, 'SC-16', 'ocpp1.6', cert);
    await c16.connect();
    t.equal((await c16.call('BootNotification', boot('ocpp1.6', 'SN-OTHER'))).status, 'Accepted', '1.6 unchecked');
    await c16.close();
    await rig.addCharger('SC-P2');
    const p2 = strictCharger(rig, 'SC-P2', 'ocpp2.0.1');
    await p2.connect();
    t.equal((await p2.call('BootNotification', boot('ocpp2.0.1', 'ANY'))).status, 'Accepted', 'Profile 2 unchecked');
    await p2.close();
  });
});

t.test('renewal over a long session: timed, asked again until a new certificate is bound, and not asked while one waits to be used', async (t) => {
  // The proxy's clock runs ahead so that certificates valid a little over 30 days enter the window
  // while the session is open; the rig's certificates use the real clock.
  let ahead = 0;
  const rig = await startCertRig(t, (store) => [certificateRenewal({ store, renewBeforeDays: 30, bootWaitMs: 200, retryMs: 700, now: () => Date.now() + ahead })]);
  const DAY = 24 * 60 * 60 * 1000;
  const connect = async (identity: string, days: number, record: Record<string, unknown> = {}, answer = 'Accepted') => {
    const serial = `SN-${identity}`;
    await rig.addCharger(identity, { minProfile: 3, bootState: 'Accepted', certificate: { serialNumber: serial }, ...record });
    const cert = await rig.pki.charger(serial, { days });
    const charger = strictCharger(rig, identity, 'ocpp2.0.1', cert);
    const asked: number[] = [];
    charger.handle('TriggerMessage', () => { asked.push(Date.now()); return { status: answer }; });
    await charger.connect();
    t.teardown(() => charger.close().catch(() => undefined));
    return { charger, asked, cert };
  };

  t.test('a certificate that enters the window during the session is renewed then', async (t) => {
    ahead = DAY - NOT_BEFORE_BACKDATE_MS - 1500; // valid from an hour ago for 31 days: due in 1.5 s of the proxy's time
    const { asked } = await connect('RN-LONG', 31);
    await sleep(600);
    t.equal(asked.length, 0, 'not due at connection');
    await waitFor(() => asked.length === 1, 'asked once the certificate entered the window', 5000);
  });

  t.test('a renewal that brings no new certificate is asked again; one bound in this session stops it', async (t) => {
    ahead = 0;
    const { asked } = await connect('RN-RETRY', 10, {}, 'Rejected');
    await waitFor(() => asked.length === 2, 'asked again after retryMs', 5000);
    // Now a new certificate is bound (as certificateSigning does once the charger accepts it).
    await rig.store.updateCharger('RN-RETRY', { certificate: { serialNumber: 'SN-RN-RETRY', boundSerialHex: 'abcdef01', notAfter: Date.now() + 365 * DAY, boundAt: Date.now() } });
    await sleep(1500);
    t.equal(asked.length, 2, 'no more once a certificate was bound in this session');
    t.ok(await waitFor(() => rig.logs.some((l) => l.event === 'certificate_renewal_skipped' && l.reason === 'renewed_this_session'), 'the skip logged at the next retry'));
  });

  t.test('a newer certificate bound an hour ago: not asked (the charger switches at its next connection)', async (t) => {
    ahead = 0;
    const { asked } = await connect('RN-RECENT', 10, { certificate: { serialNumber: 'SN-RN-RECENT', boundSerialHex: 'abcdef02', notAfter: Date.now() + 365 * DAY, boundAt: Date.now() - 3600_000 } });
    await sleep(1200);
    t.equal(asked.length, 0, 'not asked');
    t.ok(rig.logs.some((l) => l.event === 'certificate_renewal_skipped' && l.reason === 'renewed_not_switched'), 'logged why');
  });

  t.test('bound a day ago less a moment: not asked at once, asked in the same session when the day is over', async (t) => {
    ahead = 0;
    const { asked } = await connect('RN-DAY-OVER', 10, { certificate: { serialNumber: 'SN-RN-DAY-OVER', boundSerialHex: 'abcdef04', notAfter: Date.now() + 365 * DAY, boundAt: Date.now() - DAY + 2500 } });
    await sleep(800);
    t.equal(asked.length, 0, 'not yet');
    await waitFor(() => asked.length === 1, 'asked once the day since the binding is over', 6000);
  });

  for (const [what, boundAt] of [['two days ago', Date.now() - 2 * DAY], ['at an unknown time', undefined]] as const) {
    t.test(`a newer certificate bound ${what} and still not in use: asked again (it was not taken up)`, async (t) => {
      ahead = 0;
      const identity = `RN-STALE-${boundAt === undefined ? 'U' : 'D'}`;
      const { asked } = await connect(identity, 10, { certificate: { serialNumber: `SN-${identity}`, boundSerialHex: 'abcdef03', notAfter: Date.now() + 365 * DAY, ...(boundAt ? { boundAt } : {}) } });
      await waitFor(() => asked.length === 1, 'asked', 5000);
    });
  }
});
