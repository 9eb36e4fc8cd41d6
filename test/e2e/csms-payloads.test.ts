/**
 * A legacy CSMS written in PHP sends an empty payload as `[]` (json_encode of an empty array) and
 * may send null error details. Its chargers took that before the proxy stood in between, so the
 * proxy relays such frames from the CSMS unchanged, where it refused them before and left the
 * charger's call unanswered. From chargers the rule stays strict.
 *
 * The same holds for message ids: a legacy CSMS whose ids are longer than OCPP-J's 36 characters, or
 * JSON numbers, gets its calls to the charger and the charger's answers back, byte for byte.
 */
import t, { type Test } from 'tap';
import { openRawCharger } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRawCsms, type RawCsms } from '../helpers/raw-csms';

const PASSWORD = 'csms-payloads-password';

/** The proxy in front of `csms`, and a raw charger `identity` admitted through it. */
async function chargerThrough(t: Test, csms: RawCsms, identity: string) {
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity, password: PASSWORD });
  return { proxy, ...(await openRawCharger(t, proxy, identity, PASSWORD)) };
}

t.test('empty-array payloads and null details from the CSMS reach the charger byte for byte', async (t) => {
  const seenByCsms: string[] = [];
  const csms = await startRawCsms({ onOpen: (ws) => {
    ws.on('message', (d) => {
      const text = d.toString();
      seenByCsms.push(text);
      const [type, id, action] = JSON.parse(text) as [number, string, string];
      if (type !== 2) return;
      if (action === 'Heartbeat') ws.send(`[3,"${id}",[]]`);
      if (action === 'DataTransfer') ws.send(`[4,"${id}","NotImplemented","no vendor",null]`);
    });
    ws.send('[2,"csms-1","ClearCache",[]]');
  } });
  const { proxy, ws: charger, got } = await chargerThrough(t, csms, 'CP-PHP');
  await waitFor(() => got.includes('[2,"csms-1","ClearCache",[]]'), 'the CSMS call with an empty-array payload');
  charger.send('[3,"csms-1",{"status":"Accepted"}]');
  charger.send('[2,"hb-1","Heartbeat",{}]');
  await waitFor(() => got.includes('[3,"hb-1",[]]'), 'the CALLRESULT with an empty-array payload');
  charger.send('[2,"dt-1","DataTransfer",{"vendorId":"x"}]');
  await waitFor(() => got.includes('[4,"dt-1","NotImplemented","no vendor",null]'), 'the CALLERROR with null details');
  t.ok(seenByCsms.includes('[3,"csms-1",{"status":"Accepted"}]'), 'the charger\'s answer reached the CSMS');

  // From a charger the same shapes are still refused (answered with a CALLERROR, not forwarded).
  charger.send('[2,"bad-1","Heartbeat",[]]');
  await waitFor(() => got.some((g) => g.startsWith('[4,"bad-1","FormationViolation"')), 'a charger CALL with [] is answered FormationViolation');
  t.notOk(seenByCsms.some((f) => f.includes('"bad-1"')), 'and not forwarded');
  t.notOk(proxy.logs.some((l) => l.event === 'frame_refused' && l.direction === 'csms_to_charger'), 'nothing from the CSMS was refused');
});

t.test('long and numeric message ids from the CSMS: relayed both ways, byte for byte', async (t) => {
  const long60 = 'L'.repeat(60);
  const tooLong = 'T'.repeat(129);
  const seenByCsms: string[] = [];
  const csms = await startRawCsms({ onOpen: (ws) => {
    ws.on('message', (d) => seenByCsms.push(d.toString()));
    ws.send(`[2,"${long60}","Reset",{"type":"Soft"}]`);
    ws.send('[2,4711,"ClearCache",{}]');
    ws.send('[2,4712,"ClearCache",{}]');
    ws.send(`[2,"${tooLong}","ClearCache",{}]`);
    ws.send('[2,4714,"Reset","soft"]'); // a malformed call: answered to the CSMS with its own id
    ws.send('[2,"42","ClearCache",{}]'); // a string id that reads as a number
    ws.send('[2,"after","ClearCache",{}]');
  } });
  const { proxy, ws: charger, got } = await chargerThrough(t, csms, 'CP-IDS');
  await waitFor(() => got.includes('[2,"after","ClearCache",{}]'), 'the last CSMS call');
  t.same(got, [`[2,"${long60}","Reset",{"type":"Soft"}]`, '[2,4711,"ClearCache",{}]', '[2,4712,"ClearCache",{}]', '[2,"42","ClearCache",{}]', '[2,"after","ClearCache",{}]'],
    'the 60-character and numeric ids reached the charger unchanged, in order; the 129-character one did not');
  await waitFor(() => seenByCsms.length >= 2, 'the proxy\'s two answers to the CSMS');
  t.strictSame(seenByCsms.map((f) => (JSON.parse(f) as unknown[]).slice(0, 3)), [[4, '-1', 'FormationViolation'], [4, 4714, 'FormationViolation']],
    'the 129-character id answered with "-1", the malformed call with its integer id');

  charger.send(`[3,"${long60}",{"status":"Accepted"}]`);
  charger.send('[3,4711,{"status":"Accepted"}]');
  charger.send('[3,"4712",{"status":"Rejected"}]'); // a charger that echoes the number as text
  charger.send('[3,42,{"status":"Accepted"}]'); // a number for the string id "42": never shown to the CSMS
  charger.send('[3,"42",{"status":"Accepted"}]');
  await waitFor(() => seenByCsms.length >= 6, 'the four answers');
  t.same(seenByCsms.slice(2), [`[3,"${long60}",{"status":"Accepted"}]`, '[3,4711,{"status":"Accepted"}]', '[3,"4712",{"status":"Rejected"}]', '[3,"42",{"status":"Accepted"}]'],
    'the charger\'s answers reached the CSMS byte for byte; the number answering "42" did not');

  // From a charger, its own calls keep OCPP-J's rule, and an answer nobody asked for is not relayed.
  charger.send(`[2,"${'c'.repeat(37)}","Heartbeat",{}]`);
  charger.send('[2,42,"Heartbeat",{}]');
  charger.send(`[3,"${'u'.repeat(40)}",{}]`);
  charger.send('[3,4711,{"status":"Accepted"}]'); // answered already
  charger.send('[2,"hb","Heartbeat",{}]');
  await waitFor(() => seenByCsms.some((f) => f.includes('"hb"')), 'the heartbeat sent after them');
  // The answers travel back to the charger while the heartbeat goes on to the CSMS: wait for them too.
  const violations = () => got.filter((g) => g.startsWith('[4,"-1","FormationViolation"')).length;
  await waitFor(() => violations() >= 2, 'the two FormationViolation answers at the charger');
  t.equal(violations(), 2, 'the 37-character and numeric CALL ids answered FormationViolation');
  t.same(seenByCsms.slice(6), ['[2,"hb","Heartbeat",{}]'], 'none of them reached the CSMS');
  const refused = proxy.logs.filter((l) => l.event === 'frame_refused').map((l) => `${l.direction} ${l.problem}`);
  t.same(refused, ['csms_to_charger bad_id', 'csms_to_charger bad_shape', 'charger_to_csms unsolicited_answer', 'charger_to_csms bad_id', 'charger_to_csms bad_id', 'charger_to_csms unsolicited_answer', 'charger_to_csms unsolicited_answer'], 'each refusal logged with its reason');
});
