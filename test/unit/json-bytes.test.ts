import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { skipJsonValue, skipWhitespace } from '../../proxy/ocpp/json-bytes';
import { isProblem, MAX_CSMS_MESSAGE_ID_LENGTH, MAX_MESSAGE_ID_LENGTH, readFrame, typesFor, type Frame, type FrameProblem, type PayloadRule } from '../../proxy/ocpp/frame';

/*
 * The frame reader checks JSON over bytes instead of calling JSON.parse: it must accept exactly what
 * JSON.parse accepts, and read every frame as the JSON.parse-based reader it replaced did. Both are
 * compared here on hand-picked cases and on seeded random ones (valid values, then mutated).
 */

/** The byte checker's verdict: the whole text is one JSON value (whitespace around it allowed). */
function bytesSayValid(text: string): boolean {
  const b = Buffer.from(text);
  const start = skipWhitespace(b, 0);
  const end = skipJsonValue(b, start);
  return end >= 0 && skipWhitespace(b, end) === b.length;
}

function parseSaysValid(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A small seeded generator (mulberry32), so a failure names a case that can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const WS = [' ', '\t', '\n', '\r', ''];
const STRINGS = ['""', '"a"', '"Heartbeat"', '"\\u00e9\\n"', '"ünï ✓"', '"\\"q\\""', '"\\\\"', '"\\/"', '"\\uD83D\\uDE00"'];
const NUMBERS = ['0', '-0', '1', '42', '-7', '2.5', '1e3', '1E+3', '1e-3', '-0.0e0', '123456789012345678901234567890', '1e400'];

function value(r: () => number, depth: number): string {
  const ws = () => WS[Math.floor(r() * WS.length)]!;
  const k = Math.floor(r() * (depth > 4 ? 5 : 7));
  switch (k) {
    case 0: return STRINGS[Math.floor(r() * STRINGS.length)]!;
    case 1: return NUMBERS[Math.floor(r() * NUMBERS.length)]!;
    case 2: return ['true', 'false', 'null'][Math.floor(r() * 3)]!;
    case 3: case 4: return STRINGS[Math.floor(r() * STRINGS.length)]!;
    case 5: {
      const n = Math.floor(r() * 4);
      return `[${ws()}${Array.from({ length: n }, () => `${ws()}${value(r, depth + 1)}${ws()}`).join(',')}]`;
    }
    default: {
      const n = Math.floor(r() * 4);
      return `{${ws()}${Array.from({ length: n }, () => `${ws()}${STRINGS[Math.floor(r() * STRINGS.length)]}${ws()}:${ws()}${value(r, depth + 1)}${ws()}`).join(',')}}`;
    }
  }
}

const MUTATION_ALPHABET = [...'[]{},:"\\0123456789-+.eEtrufalsn \t\n\r/ubfxA', 'é', '✓', '😀', '\u0001', '\u001f', '\u007f'];

function mutate(r: () => number, text: string): string {
  let s = text;
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * (s.length + 1));
    const ch = MUTATION_ALPHABET[Math.floor(r() * MUTATION_ALPHABET.length)]!;
    const op = Math.floor(r() * 3);
    s = op === 0 ? s.slice(0, at) + ch + s.slice(at) : op === 1 ? s.slice(0, at) + s.slice(at + 1) : s.slice(0, at) + ch + s.slice(at + 1);
  }
  return s;
}

t.test('the byte checker accepts exactly what JSON.parse accepts', async (t) => {
  const cases = [
    '', ' ', '[]', '{}', '[ ]', '{ }', '[1,]', '[,1]', '{"a":1,}', '{"a" 1}', '{a:1}', '{"a":}', '[1 2]', '01', '-', '-01', '1.', '.5',
    '1e', '1e+', '+1', '0x10', 'NaN', 'Infinity', 'tru', 'nul', 'truex', '"\\x"', '"\\u12"', '"\\u12G4"', '"a\tb"', '"a\u0000"', '"a\u001fb"', '"a\u007fb"',
    '"unterminated', '[[[[]]]]', '[{"a":[{"b":{}}]}]', '"\\uDEAD"', ' [1] ', '[1]]', '[[1]', '{"a":1}}', '\ufeff[]', '[1]\u00a0',
    '[' .repeat(5000) + ']'.repeat(5000), '['.repeat(5000) + ']'.repeat(4999), '{"a":'.repeat(300) + '1' + '}'.repeat(300),
  ];
  for (const text of cases) t.equal(bytesSayValid(text), parseSaysValid(text), `${JSON.stringify(text.slice(0, 40))}`);

  const r = random(20261127);
  let compared = 0;
  let valid = 0;
  for (let n = 0; n < 20_000; n++) {
    const v = value(r, 0);
    const text = n % 3 === 0 ? v : mutate(r, v);
    const expected = parseSaysValid(text);
    if (bytesSayValid(text) !== expected) {
      t.fail(`case ${n} disagrees with JSON.parse (which says ${expected ? 'valid' : 'invalid'}): ${JSON.stringify(text)}`);
      return;
    }
    compared++;
    if (expected) valid++;
  }
  t.equal(compared, 20_000, `20,000 random texts compared, ${valid} of them valid JSON`);
  t.ok(valid > 5_000 && valid < 15_000, 'both verdicts are well represented');
});

/** The reader the byte reader replaced (JSON.parse, then the same checks), as the reference. */
function referenceRead(text: string, knownTypes: ReadonlySet<number>, rule: PayloadRule): Frame | FrameProblem {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'not_json', detail: 'frame is not valid JSON' };
  }
  if (!Array.isArray(value)) return { problem: 'not_array', detail: 'frame is not a JSON array' };
  const type = value[0];
  if (typeof type !== 'number' || !Number.isInteger(type)) return { problem: 'bad_type', detail: 'message type is not an integer' };
  const csmsIdRule = rule === 'lenient' || type === 3 || type === 4;
  const raw = value[1];
  const id = typeof raw === 'string'
    ? (raw.length > 0 && raw.length <= (csmsIdRule ? MAX_CSMS_MESSAGE_ID_LENGTH : MAX_MESSAGE_ID_LENGTH) ? raw : undefined)
    : csmsIdRule && Number.isSafeInteger(raw) && (raw as number) >= 0 ? String(raw) : undefined;
  const idAsSent = id === undefined ? undefined : raw as string | number;
  if (!knownTypes.has(type)) return { problem: 'unknown_type', type, id: idAsSent, detail: `message type ${type} is not supported` };
  if (id === undefined) return { problem: 'bad_id', type, detail: 'bad id' };
  const lengths: Record<number, number> = { 2: 4, 3: 3, 4: 5, 5: 5, 6: 4 };
  if (value.length !== lengths[type]) return { problem: 'bad_shape', type, id: idAsSent, detail: 'count' };
  const isPayload = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v)) || (rule === 'lenient' && Array.isArray(v) && v.length === 0);
  const numericId = typeof raw === 'number';
  if (type === 2 || type === 6) {
    if (typeof value[2] !== 'string' || value[2].length === 0) return { problem: 'bad_shape', type, id: idAsSent, detail: 'action' };
    if (!isPayload(value[3])) return { problem: 'bad_shape', type, id: idAsSent, detail: 'payload' };
    return { type, id, action: value[2], numericId, value };
  }
  if (type === 3) {
    if (!isPayload(value[2])) return { problem: 'bad_shape', type, id: idAsSent, detail: 'payload' };
    return { type, id, numericId, value };
  }
  if (typeof value[2] !== 'string' || typeof value[3] !== 'string' || !(isPayload(value[4]) || (rule === 'lenient' && value[4] === null))) {
    return { problem: 'bad_shape', type, id: idAsSent, detail: 'error' };
  }
  return { type: type as 4 | 5, id, numericId, value };
}

/**
 * What two readings must agree on (details are worded differently; the problem kind is what counts),
 * compared with isDeepStrictEqual: -0 is not 0, and a missing field is not an undefined one.
 */
function summary(f: Frame | FrameProblem): unknown {
  if (isProblem(f)) return { problem: f.problem, type: f.type, id: f.id };
  return { type: f.type, id: f.id, action: f.action, numericId: f.numericId, value: f.value };
}

t.test('frames read over bytes as the JSON.parse reader read them', async (t) => {
  const r = random(4711);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ids = ['"m1"', '""', '"é✓😀"', `"${'é'.repeat(36)}"`, `"${'é'.repeat(37)}"`, '-0.0', `"${'a'.repeat(36)}"`, `"${'a'.repeat(37)}"`, `"${'b'.repeat(128)}"`, `"${'b'.repeat(129)}"`, '42', '0', '-0', '-1', '1.5', '4.0',
    '9007199254740991', '9007199254740992', '1e2', 'null', '"\\u0041"', '"é"', '"\\""', '{}', '[]'];
  const types = ['2', '3', '4', '5', '6', '7', '-0', '2.0', '2e0', '"2"', 'null', '1e400', '-2'];
  const actions = ['"Heartbeat"', '""', '"\\u0000"', '7', 'null', '"Meter\\nValues"'];
  const payloads = ['{}', '{"a":[1,{"b":null}]}', '[]', '[ ]', '[1]', 'null', '"s"', '1', 'true', '{"status":"Accepted"}'];
  const ws = () => pick(WS);
  const sets = [typesFor('ocpp1.6'), typesFor('ocpp2.0.1'), typesFor('ocpp2.1')];
  // Hand-picked first: ids as sent in problems (-0 is not 0), escapes, odd numbers, the lenient forms.
  for (const text of ['[3,-0,1]', '[2,-0,"A",1]', '[7,-0]', '[4,-0.0,"E","d",7]', '[2,1e2,"A",{}]', '[2,"\\u0041","B\\n",{}]', '[3,"x",[ ]]',
    '[4,"x","E","d",null]', '[5,"x","E","d",{}]', '[6,"x","A",{}]', '[20e-1,"x","A",{}]', '[2,"x","A",{},1]', '[]', '[2]', ' [2,"x","A",{}] ']) {
    for (const knownTypes of sets) {
      for (const rule of ['strict', 'lenient'] as const) {
        t.ok(isDeepStrictEqual(summary(readFrame(Buffer.from(text), knownTypes, rule)), summary(referenceRead(text, knownTypes, rule))), `${rule}: ${text}`);
      }
    }
  }
  let frames = 0;
  for (let n = 0; n < 20_000; n++) {
    // A well-shaped frame of a random type, each element swapped for an odd one now and then.
    const type = pick(['2', '3', '4', '5', '6']);
    const shape = type === '2' || type === '6' ? ['"Heartbeat"', pick(payloads)] : type === '3' ? [pick(payloads)] : ['"GenericError"', '"d"', pick([...payloads, 'null'])];
    const odd = (e: string, alternatives: string[]) => (r() < 0.15 ? pick(alternatives) : e);
    let elements = [odd(type, types), odd(pick(['"m1"', '42', `"${'a'.repeat(36)}"`]), ids), ...shape.map((e) => odd(e, [...actions, ...payloads]))];
    if (r() < 0.1) elements = elements.slice(0, Math.floor(r() * elements.length));
    if (r() < 0.05) elements.push(pick(payloads));
    let text = `${ws()}[${elements.map((e) => `${ws()}${e}${ws()}`).join(',')}]${ws()}`;
    if (n % 4 === 3) text = mutate(r, text);
    const knownTypes = pick(sets);
    const rule = pick(['strict', 'lenient'] as const);
    // Half the time as the session passes frames: bytes.
    const got = summary(readFrame(n % 2 === 0 ? Buffer.from(text) : text, knownTypes, rule));
    // As the reader documents: the text as UTF-8 (a lone surrogate, which a mutation can leave, reads as U+FFFD).
    const want = summary(referenceRead(Buffer.from(text).toString(), knownTypes, rule));
    if (!isDeepStrictEqual(got, want)) {
      t.strictSame(got, want, `case ${n} (${rule}): ${text}`);
      return;
    }
    if (!isProblem(readFrame(text, knownTypes, rule))) frames++;
  }
  t.ok(frames > 1_000, `20,000 random frames read alike, ${frames} of them well-formed`);
});
