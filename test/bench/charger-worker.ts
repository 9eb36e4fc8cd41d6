/**
 * Charger simulator worker, run as its own process (child_process.fork): opens many `ws` charger
 * connections (Profile 2 Basic auth, Profile 3 client certificate, or plain to the CSMS directly),
 * keeps them, and drives OCPP 1.6 traffic over them. Each worker keeps the TLS session of every
 * charger's first (full) handshake so a later phase can resume it.
 *
 * IPC in: {id, cmd:'connect'|'closeAll'|'relay'|'count', ...}; out: {id, ...result} or {id, error}.
 */
import * as tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { frameFor, INITIATED_ANSWER } from './frames';
import { startSoak, stopSoak, type SoakArgs, type SoakHooks } from './soak-load';

/** What a connect request carries. */
export interface ConnectArgs {
  /** ws:// or wss:// base ending with '/', identity appended. */
  base: string;
  identities: string[];
  /** Basic auth password for each identity (same order), or none (Profile 3, direct). */
  passwords?: string[];
  tls?: { ca: string; cert?: string; key?: string; ciphers: string; servername: string };
  /** Handshakes in flight at once. */
  concurrency: number;
  /** Offer the TLS session kept from this charger's earlier full handshake. */
  resume: boolean;
  /** Stop starting new connections after this long. */
  deadlineMs: number;
  /** This worker's index: picks its range of loopback source addresses. */
  worker: number;
}

/** What a connect request answers. */
export interface ConnectResult {
  admitted: number;
  failed: number;
  resumed: number;
  errors: Record<string, number>;
  /** Time from starting the TCP connect to the 101 answer, per admitted charger (ms). */
  latenciesMs: number[];
  elapsedMs: number;
}

const sockets = new Map<string, WebSocket>();
const sessions = new Map<string, Buffer>();
const addresses = new Map<string, string>();

async function connect(a: ConnectArgs): Promise<ConnectResult> {
  const res: ConnectResult = { admitted: 0, failed: 0, resumed: 0, errors: {}, latenciesMs: [], elapsedMs: 0 };
  const started = performance.now();
  let next = 0;
  // A full phase starts clean: a session kept from another case (other certificate) must not be offered.
  if (!a.resume) for (const id of a.identities) sessions.delete(id);
  // One context for the whole phase: parsing the CA and key per connection would make the load
  // generator, not the proxy, the bottleneck.
  const t = a.tls;
  const context = t ? tls.createSecureContext({ ca: t.ca, cert: t.cert, key: t.key, ciphers: t.ciphers, maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2' }) : undefined;
  const one = (i: number) => new Promise<void>((resolve) => {
    const identity = a.identities[i]!;
    const t0 = performance.now();
    const headers: Record<string, string> = {};
    if (a.passwords) headers.authorization = 'Basic ' + Buffer.from(`${identity}:${a.passwords[i]}`).toString('base64');
    // Each charger its own loopback source address, as real chargers have (and per-address limits expect);
    // a charger reconnecting later (soak churn) keeps the address it first had.
    const localAddress = addresses.get(identity) ?? `127.${10 + a.worker}.${Math.floor(i / 250) % 250}.${1 + (i % 250)}`;
    addresses.set(identity, localAddress);
    let reused = false;
    const opts: WebSocket.ClientOptions = { headers, perMessageDeflate: false, handshakeTimeout: 30_000, localAddress } as WebSocket.ClientOptions;
    if (a.tls) {
      const t = a.tls;
      (opts as any).createConnection = (o: tls.ConnectionOptions) => {
        const s = tls.connect({
          ...o, secureContext: context, servername: t.servername,
          session: a.resume ? sessions.get(identity) : undefined,
        });
        s.once('session', (sess: Buffer) => { if (!a.resume) sessions.set(identity, sess); });
        s.once('secureConnect', () => { reused = s.isSessionReused(); });
        return s;
      };
    }
    const ws = new WebSocket(a.base + encodeURIComponent(identity), ['ocpp1.6'], opts);
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      if (error) {
        res.failed++;
        res.errors[error] = (res.errors[error] ?? 0) + 1;
      } else {
        res.admitted++;
        if (reused) res.resumed++;
        res.latenciesMs.push(performance.now() - t0);
      }
      resolve();
    };
    ws.on('unexpected-response', (_req, r) => {
      finish(`http_${r.statusCode}`);
      ws.terminate();
    });
    ws.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message.slice(0, 60)));
    ws.on('open', () => {
      sockets.get(identity)?.terminate();
      sockets.set(identity, ws);
      attachCharger(ws);
      finish();
    });
    ws.on('close', () => {
      if (sockets.get(identity) === ws) sockets.delete(identity);
      finish('closed_before_open');
    });
  });
  const lane = async () => {
    while (next < a.identities.length && performance.now() - started < a.deadlineMs) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(a.concurrency, a.identities.length) }, lane));
  res.failed += a.identities.length - next; // never started: the deadline passed
  if (a.identities.length > next) res.errors.deadline = a.identities.length - next;
  res.elapsedMs = performance.now() - started;
  return res;
}

/** Per-connection relay state: the one outstanding charger CALL (OCPP allows one per direction). */
export interface Line { ws: WebSocket; waitingId: string | null; sentAt: number; seq: number }
const lines = new Map<WebSocket, Line>();
let onAnswer: (line: Line, latencyMs: number) => void = () => {};
let initiatedAnswered = 0;

function attachCharger(ws: WebSocket): void {
  const line: Line = { ws, waitingId: null, sentAt: 0, seq: 0 };
  lines.set(ws, line);
  ws.on('close', () => lines.delete(ws));
  ws.on('message', (data) => {
    const text = data.toString();
    const type = text.charCodeAt(1) - 48;
    const idStart = text.indexOf('"') + 1;
    const id = text.slice(idStart, text.indexOf('"', idStart));
    if (type === 2) {
      // A CSMS-initiated call: answer it like a charger would.
      ws.send(`[3,"${id}",${INITIATED_ANSWER}]`);
      initiatedAnswered++;
    } else if (id === line.waitingId) {
      line.waitingId = null;
      onAnswer(line, performance.now() - line.sentAt);
    }
  });
}

function sendCall(line: Line): void {
  line.seq++;
  line.waitingId = `m${line.seq}`;
  line.sentAt = performance.now();
  line.ws.send(frameFor(line.seq, line.waitingId));
}

/** Relay arguments: saturate = every charger keeps one call in flight; paced = `rate` calls/s in total. */
interface RelayArgs { mode: 'saturate' | 'paced'; rate?: number; warmupMs: number; durationMs: number }

async function relay(a: RelayArgs): Promise<{ calls: number; missed: number; initiatedAnswered: number; latenciesMs: number[]; elapsedMs: number }> {
  const latencies: number[] = [];
  let calls = 0;
  let missed = 0;
  let measuring = false;
  let running = true;
  initiatedAnswered = 0;
  onAnswer = (line, ms) => {
    if (measuring) {
      calls++;
      if (latencies.length < 2_000_000) latencies.push(ms);
    }
    if (a.mode === 'saturate' && running && line.ws.readyState === WebSocket.OPEN) sendCall(line);
  };
  const all = [...lines.values()];
  let timer: NodeJS.Timeout | null = null;
  if (a.mode === 'saturate') {
    for (const l of all) sendCall(l);
  } else {
    // Open loop: spread `rate` calls/s over the chargers round-robin, 1 ms ticks.
    const t0 = performance.now();
    let sent = 0;
    let cursor = 0;
    timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * a.rate!) - sent;
      for (let k = 0; k < due; k++) {
        sent++;
        let tries = 0;
        while (tries < all.length && (all[cursor % all.length]!.waitingId !== null || all[cursor % all.length]!.ws.readyState !== WebSocket.OPEN)) { cursor++; tries++; }
        if (tries === all.length) { if (measuring) missed++; continue; }
        sendCall(all[cursor++ % all.length]!);
      }
    }, 1);
  }
  await sleep(a.warmupMs);
  const initiatedAtStart = initiatedAnswered;
  measuring = true;
  const m0 = performance.now();
  await sleep(a.durationMs);
  measuring = false;
  const elapsedMs = performance.now() - m0;
  running = false;
  if (timer) clearInterval(timer);
  const initiated = initiatedAnswered - initiatedAtStart;
  // Let the calls in flight finish so the next phase starts from a quiet line.
  const end = performance.now() + 5000;
  while ([...lines.values()].some((l) => l.waitingId !== null) && performance.now() < end) await sleep(20);
  for (const l of lines.values()) l.waitingId = null;
  return { calls, missed, initiatedAnswered: initiated, latenciesMs: latencies, elapsedMs };
}

async function closeAll(): Promise<{ closed: number }> {
  const n = sockets.size;
  for (const ws of sockets.values()) ws.terminate();
  sockets.clear();
  lines.clear();
  return { closed: n };
}

/** What the soak load (soak-load.ts) needs from this worker's connections. */
const soakHooks: SoakHooks = {
  lines: () => lines.values(),
  setOnAnswer: (f) => { onAnswer = f; },
  initiatedAnswered: () => initiatedAnswered,
  sockets: () => sockets,
  connect,
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

process.on('message', (req: { id: number; cmd: string } & Record<string, any>) => {
  const work: Promise<object> =
    req.cmd === 'connect' ? connect(req as unknown as ConnectArgs)
      : req.cmd === 'relay' ? relay(req as unknown as RelayArgs)
        : req.cmd === 'closeAll' ? closeAll()
          : req.cmd === 'count' ? Promise.resolve({ open: sockets.size })
            : req.cmd === 'soakStart' ? Promise.resolve(startSoak(req as unknown as SoakArgs, soakHooks))
              : req.cmd === 'soakStop' ? stopSoak()
            : Promise.reject(new Error(`unknown command ${req.cmd}`));
  work.then((r) => process.send?.({ id: req.id, ...r }), (err: Error) => process.send?.({ id: req.id, error: err.message }));
});
process.on('disconnect', () => {
  for (const ws of sockets.values()) ws.terminate();
  process.exit(0);
});
