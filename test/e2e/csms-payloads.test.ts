/**
 * A legacy CSMS written in PHP sends an empty payload as `[]` (json_encode of an empty array) and
 * may send null error details. Its chargers took that before the proxy stood in between, so the
 * proxy relays such frames from the CSMS unchanged, where it refused them before and left the
 * charger's call unanswered. From chargers the rule stays strict.
 */
import t from 'tap';
import WebSocket from 'ws';
import { basicHeader } from '../helpers/login';
import { waitFor } from '../helpers/net';
import { seedCharger, startTestProxy } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';

const PASSWORD = 'csms-payloads-password';

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
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'CP-PHP', password: PASSWORD });

  const charger = new WebSocket(`${proxy.tlsUrl}/CP-PHP`, ['ocpp1.6'], {
    ca: proxy.caPem, servername: 'localhost', headers: { authorization: basicHeader('CP-PHP', PASSWORD) },
  } as WebSocket.ClientOptions);
  const got: string[] = [];
  charger.on('message', (d) => got.push(d.toString()));
  await new Promise((r, j) => { charger.once('open', r); charger.once('error', j); });
  t.teardown(() => charger.terminate());
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
