import t, { type Test } from 'tap';
import { answerForProblem, callError, formatViolation, isOcpp2 } from '../../proxy/ocpp/errors';
import { isProblem, MAX_CSMS_MESSAGE_ID_LENGTH, MAX_MESSAGE_ID_LENGTH, readFrame, typesFor, type Frame, type FrameProblem, type PayloadRule } from '../../proxy/ocpp/frame';

const V16 = typesFor('ocpp1.6');
const V201 = typesFor('ocpp2.0.1');
const V21 = typesFor('ocpp2.1');

/** Reads a frame that must be a problem and returns it. */
function problem(t: Test, text: string, types = V16): FrameProblem {
  const f = readFrame(text, types);
  t.ok(isProblem(f), `problem expected for ${text.slice(0, 60)}`);
  return f as FrameProblem;
}

/** Reads a frame that must be well-formed and returns it. */
function frame(t: Test, text: string, types = V16): Frame {
  const f = readFrame(text, types);
  t.notOk(isProblem(f), `frame expected for ${text.slice(0, 60)}${isProblem(f) ? `: ${f.problem} ${f.detail}` : ''}`);
  return f as Frame;
}

const id36 = 'a'.repeat(MAX_MESSAGE_ID_LENGTH);
const id37 = 'a'.repeat(MAX_MESSAGE_ID_LENGTH + 1);

t.test('well-formed CALL, CALLRESULT and CALLERROR', async (t) => {
  const c = frame(t, '[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"SingleSocketCharger"}]');
  t.match(c, { type: 2, id: '19223201', action: 'BootNotification' });
  t.same(c.value[3], { chargePointVendor: 'VendorX', chargePointModel: 'SingleSocketCharger' }, 'parsed payload kept for interceptors');
  t.match(frame(t, '[3,"19223201",{"status":"Accepted"}]'), { type: 3, id: '19223201', action: undefined });
  t.match(frame(t, '[4,"162376037","NotSupported","SetDisplayMessageRequest not implemented",{}]'), { type: 4, id: '162376037' });
  t.match(frame(t, ' [ 2 , "x" , "Heartbeat" , { } ] '), { type: 2, id: 'x', action: 'Heartbeat' }, 'whitespace is fine');
  t.match(frame(t, '[2,"u","DataTransfer",{"data":"ünïcødé ✓"}]'), { action: 'DataTransfer' });
  t.match(frame(t, '[4,"e","GenericError","",{"a":[1,2]}]'), { type: 4 }, 'empty description and non-empty details are fine');
  t.match(frame(t, '[2.0,"x","Heartbeat",{}]'), { type: 2 }, '2.0 is the JSON number 2');
  t.equal(readFrame('[2,"x","Heartbeat",{}]').hasOwnProperty('problem'), false, 'default known types are the classic ones');
});

t.test('message ids: a charger\'s CALL takes 1..36 character strings only', async (t) => {
  t.match(frame(t, `[2,"${id36}","Heartbeat",{}]`), { id: id36 }, '36 characters (a UUID) accepted');
  t.match(frame(t, '[2,"f81d4fae-7dec-11d0-a765-00a0c91e6bf6","Heartbeat",{}]'), { id: 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6' });
  t.match(problem(t, `[2,"${id37}","Heartbeat",{}]`), { problem: 'bad_id', type: 2, id: undefined }, '37 characters refused');
  t.match(problem(t, '[2,"","Heartbeat",{}]'), { problem: 'bad_id', id: undefined }, 'empty id refused');
  t.match(problem(t, '[2,42,"Heartbeat",{}]'), { problem: 'bad_id', id: undefined }, 'number id refused');
  t.match(problem(t, '[2,null,"Heartbeat",{}]'), { problem: 'bad_id' }, 'null id refused');
  t.match(problem(t, '[2,["x"],"Heartbeat",{}]'), { problem: 'bad_id' }, 'array id refused');
  t.match(problem(t, '[3]'), { problem: 'bad_id', type: 3 }, 'missing id refused');
  t.match(problem(t, `[6,"${id37}","X",{}]`, V21), { problem: 'bad_id', type: 6 }, 'a 2.1 SEND from a charger takes the CALL rule');
});

t.test('message ids the CSMS chose: its frames, and a charger\'s answer, take up to 128 characters or an integer', async (t) => {
  const id128 = 'b'.repeat(MAX_CSMS_MESSAGE_ID_LENGTH);
  const id129 = 'b'.repeat(MAX_CSMS_MESSAGE_ID_LENGTH + 1);
  t.equal(MAX_CSMS_MESSAGE_ID_LENGTH, 128);
  for (const rule of ['strict', 'lenient'] as const) {
    // A CALLRESULT or CALLERROR echoes the caller's id; the session relays it only when that id is awaited.
    t.match(readFrame(`[3,"${id37}",{}]`, V16, rule), { type: 3, id: id37 }, `${rule}: a 37-character answer id`);
    t.match(readFrame(`[4,"${id128}","GenericError","",{}]`, V16, rule), { type: 4, id: id128 }, `${rule}: 128 characters`);
    t.match(readFrame(`[3,"${id129}",{}]`, V16, rule), { problem: 'bad_id', type: 3, detail: /1\.\.128 characters or a non-negative integer/ }, `${rule}: 129 refused`);
    t.match(readFrame('[3,4711,{}]', V16, rule), { type: 3, id: '4711' }, `${rule}: an integer id reads as its decimal text`);
    t.match(readFrame('[3,0,{}]', V16, rule), { type: 3, id: '0' }, `${rule}: 0`);
    for (const bad of ['-1', '1.5', '9007199254740992', '1e400', 'null', 'true', '""', '{}']) {
      t.match(readFrame(`[3,${bad},{}]`, V16, rule), { problem: 'bad_id', type: 3 }, `${rule}: ${bad} refused`);
    }
  }
  t.match(readFrame(`[2,"${id128}","Reset",{}]`, V16, 'lenient'), { type: 2, id: id128, action: 'Reset' }, 'a CSMS CALL with 128 characters');
  t.match(readFrame('[2,42,"Reset",{}]', V16, 'lenient'), { type: 2, id: '42' }, 'a CSMS CALL with an integer id');
  t.match(readFrame(`[2,"${id129}","Reset",{}]`, V16, 'lenient'), { problem: 'bad_id', type: 2 }, 'a CSMS CALL with 129 characters refused');
  t.match(readFrame('[2,"","Reset",{}]', V16, 'lenient'), { problem: 'bad_id' }, 'an empty CSMS id refused');
  t.match(readFrame(`[6,"${id37}","X",{}]`, V21, 'lenient'), { type: 6, id: id37 }, 'a 2.1 SEND from the CSMS takes its rule');
  t.match(readFrame(`[2,"${id37}","Reset",{}]`, V16, 'strict'), { problem: 'bad_id', detail: /1\.\.36 characters$/ }, 'the CALL rule is named in the detail');
});

t.test('wrong element counts per type', async (t) => {
  for (const [text, type] of [
    ['[2,"x","Heartbeat"]', 2],
    ['[2,"x","Heartbeat",{},{}]', 2],
    ['[3,"x"]', 3],
    ['[3,"x",{},{}]', 3],
    ['[4,"x","GenericError","d"]', 4],
    ['[4,"x","GenericError","d",{},"more"]', 4],
  ] as const) {
    t.match(problem(t, text), { problem: 'bad_shape', type, id: 'x' }, text);
  }
});

t.test('element types', async (t) => {
  t.match(problem(t, '[2,"x","",{}]'), { problem: 'bad_shape', detail: /action/ }, 'empty action');
  t.match(problem(t, '[2,"x",7,{}]'), { problem: 'bad_shape', detail: /action/ }, 'numeric action');
  for (const payload of ['null', '[]', '"s"', '1', 'true']) {
    t.match(problem(t, `[2,"x","Heartbeat",${payload}]`), { problem: 'bad_shape', id: 'x', detail: /payload/ }, `CALL payload ${payload}`);
    t.match(problem(t, `[3,"x",${payload}]`), { problem: 'bad_shape', id: 'x', detail: /payload/ }, `CALLRESULT payload ${payload}`);
    t.match(problem(t, `[4,"x","GenericError","d",${payload}]`), { problem: 'bad_shape', id: 'x' }, `CALLERROR details ${payload}`);
  }
  t.match(problem(t, '[4,"x",5,"d",{}]'), { problem: 'bad_shape' }, 'numeric error code');
  // From the CSMS, an empty array stands for an empty payload (PHP's json_encode writes one) and
  // error details may be null; anything else is judged as from a charger.
  for (const text of ['[2,"x","ClearCache",[]]', '[3,"x",[]]', '[4,"x","GenericError","d",[]]', '[4,"x","GenericError","d",null]']) {
    t.notOk(isProblem(readFrame(text, V16, 'lenient')), `from the CSMS: ${text}`);
    t.ok(isProblem(readFrame(text, V16)), `from a charger: ${text} is refused`);
  }
  for (const payload of ['null', '[1]', '"s"', '1', 'true']) {
    t.ok(isProblem(readFrame(`[3,"x",${payload}]`, V16, 'lenient')), `from the CSMS too: CALLRESULT payload ${payload}`);
    t.ok(isProblem(readFrame(`[2,"x","Reset",${payload}]`, V16, 'lenient')), `from the CSMS too: CALL payload ${payload}`);
  }
  t.match(problem(t, '[4,"x","GenericError",null,{}]'), { problem: 'bad_shape' }, 'null description');
});

t.test('not JSON, not an array, bad type', async (t) => {
  for (const text of ['', '[2,"x","Heartbeat",{}', '{"a":1', '[2,"x",\'A\',{}]', 'NaN', '[2,"x","A",{},]']) {
    t.match(problem(t, text), { problem: 'not_json', id: undefined, type: undefined }, `not JSON: ${JSON.stringify(text)}`);
  }
  for (const text of ['{"0":2}', '"[2]"', '2', 'null', 'true']) {
    t.match(problem(t, text), { problem: 'not_array' }, `not an array: ${text}`);
  }
  for (const text of ['[]', '["2","x","Heartbeat",{}]', '[2.5,"x","Heartbeat",{}]', '[null,"x"]', '[1e400,"x","A",{}]']) {
    t.match(problem(t, text), { problem: 'bad_type', id: undefined }, `bad type: ${text}`);
  }
});

t.test('types 5 and 6 exist only in OCPP 2.1', async (t) => {
  t.equal(V16, V201, '1.6 and 2.0.1 share the classic set');
  t.same([...V21].sort(), [2, 3, 4, 5, 6]);
  t.same([...typesFor('ocpp2.0')].sort(), [2, 3, 4]);
  const send = '[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z","data":[]}]';
  t.match(frame(t, send, V21), { type: 6, id: 's1', action: 'NotifyPeriodicEventStream' });
  t.match(frame(t, '[5,"r1","FormatViolation","bad result",{}]', V21), { type: 5, id: 'r1' });
  t.match(problem(t, send, V201), { problem: 'unknown_type', type: 6, id: 's1' });
  t.match(problem(t, '[5,"r1","FormatViolation","",{}]', V16), { problem: 'unknown_type', type: 5, id: 'r1' });
  t.match(problem(t, '[6,"s1","",{}]', V21), { problem: 'bad_shape', type: 6, detail: /action/ });
  t.match(problem(t, '[6,"s1","A",[]]', V21), { problem: 'bad_shape', type: 6, detail: /payload/ });
  t.match(problem(t, '[5,"r1","E","d"]', V21), { problem: 'bad_shape', type: 5 });
  t.match(problem(t, '[7,"x","A",{}]', V21), { problem: 'unknown_type', type: 7 });
  t.match(problem(t, '[0,"x"]', V21), { problem: 'unknown_type', type: 0 });
  t.match(problem(t, '[-2,42]', V21), { problem: 'unknown_type', type: -2, id: undefined }, 'unknown type with unreadable id');
});

t.test('deeply nested JSON never throws', async (t) => {
  const depth = 5000;
  const deep = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  const d = frame(t, `[2,"deep","DataTransfer",${deep}]`);
  t.ok(d.type === 2 && d.id === 'deep', 'deep but valid payload is a frame');
  const veryDeep = '['.repeat(200_000) + ']'.repeat(200_000);
  const f = readFrame(veryDeep);
  t.ok(isProblem(f), 'absurdly deep input is a problem, not an exception');
  t.notOk(isProblem(readFrame(`[3,"r",{"v":"${'x'.repeat(100_000)}"}]`)), 'long strings fine');
});

t.test('error vocabulary per version', async (t) => {
  t.equal(formatViolation('ocpp1.6'), 'FormationViolation');
  t.equal(formatViolation('ocpp2.0.1'), 'FormatViolation');
  t.equal(formatViolation('ocpp2.1'), 'FormatViolation');
  t.ok(isOcpp2('ocpp2.0') && !isOcpp2('ocpp1.6') && !isOcpp2('ocpp1.5'));
  const long = callError('i', 'GenericError', 'x'.repeat(400));
  t.equal((JSON.parse(long) as unknown[])[3], 'x'.repeat(255), 'description cut to 255 characters');
  t.same(JSON.parse(callError('i', 'GenericError', 'd')), [4, 'i', 'GenericError', 'd', {}], 'details default to {}');
});

/** The CALLERROR an answer decodes to, or null. */
function answer(text: string, subprotocol: string, rule: PayloadRule = 'strict'): unknown[] | null {
  const f = readFrame(text, typesFor(subprotocol), rule);
  if (!isProblem(f)) throw new Error(`expected a problem: ${text}`);
  const a = answerForProblem(f, subprotocol);
  if (a === null) return null;
  const parsed = JSON.parse(a) as unknown[];
  const check = readFrame(a, typesFor(subprotocol));
  if (isProblem(check)) throw new Error(`the answer itself is malformed: ${a}`);
  return parsed;
}

t.test('answerForProblem: a CALL with a readable id but bad shape gets a format violation with that id', async (t) => {
  t.match(answer('[2,"c1","Heartbeat",[]]', 'ocpp1.6'), [4, 'c1', 'FormationViolation', /payload/, {}]);
  t.match(answer('[2,"c1","Heartbeat",[]]', 'ocpp2.0.1'), [4, 'c1', 'FormatViolation', /payload/, {}]);
  t.match(answer('[2,"c1","Heartbeat",[]]', 'ocpp2.1'), [4, 'c1', 'FormatViolation']);
  t.match(answer('[2,"c1","Heartbeat"]', 'ocpp2.0.1'), [4, 'c1', 'FormatViolation', /4 elements/]);
  t.strictSame(answer('[2,4713,"Reset","soft"]', 'ocpp1.6', 'lenient')!.slice(0, 3), [4, 4713, 'FormationViolation'], 'a CSMS call\'s integer id is answered as the integer it was');
  const long = 'L'.repeat(100);
  t.strictSame(answer(`[2,"${long}","Reset"]`, 'ocpp2.0.1', 'lenient')!.slice(0, 3), [4, long, 'FormatViolation'], 'and a long one as it was');
});

t.test('answerForProblem: unreadable id answers with "-1"', async (t) => {
  for (const text of ['not json', '{"a":1}', '[2.5,"x","A",{}]', `[2,"${id37}","Heartbeat",{}]`, '[2,"","Heartbeat",{}]', '[2,7,"Heartbeat",{}]']) {
    t.match(answer(text, 'ocpp1.6'), [4, '-1', 'FormationViolation'], `1.6: ${text}`);
    t.match(answer(text, 'ocpp2.0.1'), [4, '-1', 'RpcFrameworkError'], `2.0.1: ${text}`);
    t.match(answer(text, 'ocpp2.1'), [4, '-1', 'RpcFrameworkError'], `2.1: ${text}`);
  }
  t.notOk(answer('garbage {', 'ocpp2.0.1')!.some((x) => typeof x === 'string' && x.includes('garbage')), 'invalid input is never echoed');
});

t.test('answerForProblem: unknown message types', async (t) => {
  t.match(answer('[7,"u1","A",{}]', 'ocpp2.0.1'), [4, 'u1', 'MessageTypeNotSupported'], '2.0.1 answers MessageTypeNotSupported');
  t.match(answer('[7,"u1","A",{}]', 'ocpp2.0'), [4, 'u1', 'MessageTypeNotSupported'], '2.0 like 2.0.1');
  t.match(answer('[6,"s1","NotifyPeriodicEventStream",{}]', 'ocpp2.0.1'), [4, 's1', 'MessageTypeNotSupported'], 'a 2.1 SEND on 2.0.1');
  t.match(answer('[9,{}]', 'ocpp2.0.1'), [4, '-1', 'MessageTypeNotSupported'], 'unreadable id gets "-1"');
  t.equal(answer('[7,"u1","A",{}]', 'ocpp1.6'), null, '1.6 ignores');
  t.equal(answer('[6,"s1","A",{}]', 'ocpp1.6'), null, '1.6 ignores a SEND');
  t.equal(answer('[7,"u1","A",{}]', 'ocpp2.1'), null, '2.1 ignores');
});

t.test('answerForProblem: SEND and malformed answers are never answered', async (t) => {
  t.equal(answer('[6,"s1","",{}]', 'ocpp2.1'), null, 'broken SEND with readable id');
  t.equal(answer('[6,"s1","A",null]', 'ocpp2.1'), null, 'SEND with bad payload');
  for (const sp of ['ocpp1.6', 'ocpp2.0.1', 'ocpp2.1']) {
    t.equal(answer('[3,"r1",[]]', sp), null, `${sp}: CALLRESULT with bad payload`);
    t.equal(answer('[3,"r1",{},{}]', sp), null, `${sp}: CALLRESULT with extra element`);
    t.equal(answer('[4,"r1","GenericError","d"]', sp), null, `${sp}: short CALLERROR`);
    t.equal(answer('[4,"r1",1,"d",{}]', sp), null, `${sp}: CALLERROR with numeric code`);
  }
  t.equal(answer('[5,"r1","E","d",[]]', 'ocpp2.1'), null, 'malformed CALLRESULTERROR');
});
