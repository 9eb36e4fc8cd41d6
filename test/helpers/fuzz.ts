/**
 * Hostile-input generators for the fuzz and hostile-handshake tests: a seeded PRNG (runs are
 * reproducible), OCPP-J frames that must never reach the CSMS, numbered valid CALLs to interleave
 * with them, and an oracle written from OCPP-SECURITY.md §1 (not from the proxy's own parser) that
 * says which frames a correct proxy forwards.
 */

/** A small deterministic random source (mulberry32). */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi], both ends included. */
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Buffer;
}

/** A PRNG seeded with `seed`; the same seed gives the same sequence on every machine. */
export function seededRandom(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return {
    next,
    int,
    pick: (items) => items[int(0, items.length - 1)]!,
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(0, 255);
      return b;
    },
  };
}

/** Stable numeric seed for a label (e.g. the subprotocol), so each version gets its own stream. */
export function seedOf(label: string): number {
  let h = 2166136261;
  for (const c of Buffer.from(label)) h = Math.imul(h ^ c, 16777619);
  return h >>> 0;
}

/** Frame types each subprotocol knows (OCPP-SECURITY.md §1.1: 5 and 6 exist only in 2.1). */
export function knownTypes(subprotocol: string): number[] {
  return subprotocol === 'ocpp2.1' ? [2, 3, 4, 5, 6] : [2, 3, 4];
}

/** What a well-formed frame is, by the spec; `null` for a malformed one. */
export type FrameClass = 'call' | 'callresult' | 'callerror' | 'callresulterror' | 'send' | null;

/**
 * Independent oracle for OCPP-J framing (§1.1, §1.2): JSON array, known integer type, id a string
 * of 1..36 characters, the element count and element types of that type. Payload schemas are the
 * CSMS's business, so any JSON object is a payload. (The proxy also takes a longer or numeric id in
 * a charger's answer, when it echoes a CSMS call's id; the fuzzer's answers answer no call, so the
 * proxy refuses them all the same.)
 */
export function classify(text: string, subprotocol: string): FrameClass {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  const [type, id] = v;
  if (typeof type !== 'number' || !knownTypes(subprotocol).includes(type)) return null;
  if (typeof id !== 'string' || id.length < 1 || id.length > 36) return null;
  const obj = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
  switch (type) {
    case 2:
    case 6:
      return v.length === 4 && typeof v[2] === 'string' && v[2] !== '' && obj(v[3]) ? (type === 2 ? 'call' : 'send') : null;
    case 3:
      return v.length === 3 && obj(v[2]) ? 'callresult' : null;
    default:
      return v.length === 5 && typeof v[2] === 'string' && typeof v[3] === 'string' && obj(v[4]) ? (type === 4 ? 'callerror' : 'callresulterror') : null;
  }
}

/** One hostile frame and the category it was generated for. */
export interface HostileFrame {
  kind: string;
  data: string | Buffer;
  binary: boolean;
}

const CHARS = '[]{}",:0123456789 -.eE+truefalsnl\\/abcXYZ\u00e9\u2603\u{1F600}\t\n\r\u0000\u0001\u001f\u007f\ufeff';
const WRONG_VALUES = ['"2"', '2.5', 'null', 'true', 'false', '[]', '{}', '""', '-1', '1e400', '"x"', '[2]', '{"a":1}', '0', '"\u0000"'];
const ACTIONS = ['Heartbeat', 'BootNotification', 'DataTransfer', 'StatusNotification', 'Authorize'];

/**
 * Generates hostile frames for one subprotocol. Every frame is one the proxy must not forward:
 * malformed (checked against {@link classify}) or an answer to a call the CSMS never made.
 */
export class HostileFrames {
  private lastAnswer: string | null = null;
  private serial = 0;

  constructor(private readonly rng: Rng, private readonly subprotocol: string) {}

  /** The next hostile frame (valid UTF-8 text or a binary frame). */
  next(): HostileFrame {
    for (;;) {
      const f = this.candidate();
      if (f.binary) return f;
      const cls = classify(f.data as string, this.subprotocol);
      // Well-formed answers are "answers to calls never made" (the CSMS makes no calls in the fuzz);
      // anything else well-formed is a legitimate frame a proxy must forward: draw again.
      if (cls === null) return f;
      if (cls === 'callresult' || cls === 'callerror') return { ...f, kind: f.kind === 'duplicate_id' ? f.kind : 'unsolicited_answer' };
    }
  }

  private candidate(): HostileFrame {
    const r = this.rng;
    const text = (kind: string, data: string): HostileFrame => ({ kind, data, binary: false });
    switch (r.int(0, 11)) {
      case 0: {
        let s = '';
        for (let n = r.int(0, 200); n > 0; n--) s += r.pick([...CHARS]);
        return text('random_text', s);
      }
      case 1:
        return { kind: 'random_binary', data: r.bytes(r.int(0, 300)), binary: true };
      case 2: {
        const whole = this.template(r.pick([2, 3, 4]));
        return text('truncated', r.int(0, 3) === 0 ? whole + r.pick(['x', ',', ']', '[', '{}', '"']) : whole.slice(0, r.int(0, whole.length - 1)));
      }
      case 3:
        return text('not_array', r.pick(['{}', '"[2,\\"a\\",\\"Heartbeat\\",{}]"', '42', 'null', 'true', '{"0":2,"1":"a"}', '""', '-0', '  ']));
      case 4:
        return text('deep_nesting', this.deep());
      case 5:
        return text('wrong_type', this.wrongType());
      case 6:
        return text('wrong_count', this.wrongCount());
      case 7: {
        const id = 'L'.repeat(r.int(37, 400));
        return text('long_id', r.pick([`[2,"${id}","Heartbeat",{}]`, `[3,"${id}",{}]`, `[4,"${id}","GenericError","",{}]`, `[2,"",${JSON.stringify(r.pick(ACTIONS))},{}]`]));
      }
      case 8: {
        const unknown = [0, 1, 7, 8, 9, 10, 99, -2, 1000000, ...(this.subprotocol === 'ocpp2.1' ? [] : [5, 6])];
        const type = r.pick(unknown);
        return text('unknown_type', r.pick([`[${type},"u-${r.int(0, 1e6)}","Heartbeat",{}]`, `[${type},"u-${r.int(0, 1e6)}",{}]`, `[${type},"u","GenericError","",{}]`, `[${type}]`]));
      }
      case 9: {
        const answer = this.template(r.pick([3, 4]));
        this.lastAnswer = answer;
        return text('unsolicited_answer', answer);
      }
      case 10:
        // The same id answered again, or an answer carrying the id of the charger's own valid call.
        return text('duplicate_id', this.lastAnswer ?? `[3,"v-${r.int(0, 1000)}",{}]`);
      default:
        return text('malformed_2x', this.subprotocol === 'ocpp2.1' ? r.pick(['[5,"a",{}]', '[6,"a","X"]', '[6,"a","",{}]', '[5,"a","E",1,{}]', `[6,"${'s'.repeat(37)}","X",{}]`]) : this.wrongType());
    }
  }

  private template(type: number): string {
    const r = this.rng;
    const id = `f-${this.serial++}`;
    if (type === 2) return `[2,"${id}","${r.pick(ACTIONS)}",{"k":${r.int(0, 9)}}]`;
    if (type === 3) return `[3,"${id}",{"status":"Accepted"}]`;
    return `[4,"${id}","${r.pick(['GenericError', 'NotImplemented', 'FormatViolation'])}","desc",{}]`;
  }

  private deep(): string {
    const r = this.rng;
    const d = r.int(100, 5000);
    switch (r.int(0, 3)) {
      case 0: return '['.repeat(d) + ']'.repeat(d); // well-formed JSON, type not an integer
      case 1: return '['.repeat(d); // never closed
      case 2: return `[2,"d","DataTransfer",${'{"a":'.repeat(d)}1${'}'.repeat(d - 1)}]`; // one brace short
      default: return `[2,${'['.repeat(d)}"id"${']'.repeat(d)},"Heartbeat",{}]`; // id buried in arrays
    }
  }

  private wrongType(): string {
    const r = this.rng;
    const type = r.pick([2, 3, 4]);
    const parts = type === 2 ? ['2', `"w-${this.serial++}"`, '"Heartbeat"', '{}'] : type === 3 ? ['3', `"w-${this.serial++}"`, '{}'] : ['4', `"w-${this.serial++}"`, '"GenericError"', '""', '{}'];
    parts[r.int(0, parts.length - 1)] = r.pick(WRONG_VALUES);
    return `[${parts.join(',')}]`;
  }

  private wrongCount(): string {
    const r = this.rng;
    const t = this.template(r.pick([2, 3, 4]));
    const inner = t.slice(1, -1);
    return r.int(0, 1) === 0 ? `[${inner},{}]` : `[${inner.slice(0, inner.lastIndexOf(','))}]`;
  }
}

/**
 * The n-th valid CALL of a fuzz run, in varied but exact formatting (spacing, unicode), so the
 * test can check the CSMS received it byte for byte.
 */
export function validCall(n: number): string {
  switch (n % 3) {
    case 0: return `[2,"v-${n}","Heartbeat",{}]`;
    case 1: return `[2, "v-${n}", "DataTransfer", {"vendorId": "fuzz", "data": "${n} \u00fcn\u00efc\u00f8d\u00e9 \u2603"}]`;
    default: return `[2,"v-${n}","DataTransfer",{"vendorId":"fuzz","messageId":"seq","data":"${n}"}]`;
  }
}

/** A text payload that is not valid UTF-8 (a WebSocket peer must close with 1007, RFC 6455 §8.1). */
export function invalidUtf8(rng: Rng): Buffer {
  const prefix = Buffer.from(`[2,"u-${rng.int(0, 1e6)}","DataTransfer",{"data":"`);
  const bad = rng.pick([[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xf0, 0x28, 0x8c, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x80]]);
  return Buffer.concat([prefix, rng.bytes(rng.int(0, 20)).map((b) => b & 0x7f), Buffer.from(bad), Buffer.from('"}]')]);
}
