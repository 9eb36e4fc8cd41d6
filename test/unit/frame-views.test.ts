import t from 'tap';
import { chargerCallOf, outcomeOf } from '../../proxy/frame-views';
import { isProblem, readFrame, type Frame } from '../../proxy/ocpp/frame';

/** What interceptors see of a frame: payloads parsed when first read, then the same object each time. */

function read(text: string): Frame {
  const f = readFrame(Buffer.from(text), undefined, 'lenient');
  if (isProblem(f)) throw new Error(`${f.problem}: ${f.detail}`);
  return f;
}

t.test('a charger call: id and action at once, the payload when read, the same object each time', async (t) => {
  const call = chargerCallOf(read('[2,"c1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'));
  t.equal(call.id, 'c1');
  t.equal(call.action, 'BootNotification');
  t.strictSame(call.payload, { chargePointVendor: 'V', chargePointModel: 'M' });
  t.equal(call.payload, call.payload, 'one parse, one object');
  t.equal(JSON.stringify(call), '{"id":"c1","action":"BootNotification","payload":{"chargePointVendor":"V","chargePointModel":"M"}}', 'serialised as the plain call');
});

t.test('answers: a result, an error, and the CSMS\'s [] and null read as {} (kept, not made anew)', async (t) => {
  const result = outcomeOf(read('[3,"c1",{"status":"Accepted"}]'));
  t.equal(result.kind, 'result');
  t.strictSame(result.kind === 'result' && result.payload, { status: 'Accepted' });
  t.equal(JSON.stringify(result), '{"kind":"result","payload":{"status":"Accepted"}}');

  const empty = outcomeOf(read('[3,"c2",[]]'));
  if (empty.kind !== 'result') throw new Error('result expected');
  t.strictSame(empty.payload, {});
  empty.payload.seen = true;
  t.equal(empty.payload.seen, true, 'the {} standing for [] is one object');

  const error = outcomeOf(read('[4,"c3","NotSupported","no such action",null]'));
  if (error.kind !== 'error') throw new Error('error expected');
  t.equal(error.code, 'NotSupported');
  t.equal(error.description, 'no such action');
  t.strictSame(error.details, {});
  t.equal(error.details, error.details, 'the {} standing for null is one object');
  t.equal(JSON.stringify(error), '{"kind":"error","code":"NotSupported","description":"no such action","details":{}}');
});
