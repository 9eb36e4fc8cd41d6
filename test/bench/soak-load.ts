/**
 * The soak scenario's steady load, run inside a charger worker: every open charger sends a Heartbeat
 * every 30–60 s (its own random interval), MeterValues every `meterS` and a StatusNotification every
 * `statusS` (at most one call in flight per charger, as OCPP allows), answers the CSMS's calls, and a
 * small share of chargers drops its connection each minute and reconnects after 1–5 s (churn,
 * accrued continuously: 1 %/min of 2000 chargers is one every 3 s).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { ConnectArgs, ConnectResult, Line } from './charger-worker';
import { frameOf } from './frames';

/** Soak load parameters (sent with the `soakStart` request). */
export interface SoakArgs {
  /** How this worker's chargers connected (reused, one identity at a time, to reconnect churned ones). */
  connect: ConnectArgs;
  /** Heartbeat interval range per charger, seconds. */
  heartbeatS: [number, number];
  meterS: number;
  statusS: number;
  /** Share of open chargers that disconnect and reconnect per minute (0.01 = 1 %). */
  churnPerMin: number;
  /** An unanswered call counts as timed out after this long. */
  callTimeoutMs: number;
}

/** What the soak load needs from the worker's connection bookkeeping. */
export interface SoakHooks {
  lines(): Iterable<Line>;
  setOnAnswer(f: (line: Line, latencyMs: number) => void): void;
  initiatedAnswered(): number;
  sockets(): Map<string, WebSocket>;
  connect(a: ConnectArgs): Promise<ConnectResult>;
}

/** What `soakStop` answers. */
export interface SoakLoadResult {
  calls: number;
  answered: number;
  timedOut: number;
  /** Charger-call round trips (ms), reservoir-sampled. */
  p50: number | null;
  p99: number | null;
  initiatedAnswered: number;
  churned: number;
  reconnected: number;
  reconnectFailed: number;
  reconnectErrors: Record<string, number>;
  open: number;
}

interface Schedule { heartbeatEveryMs: number; nextHeartbeat: number; nextMeter: number; nextStatus: number }

const RESERVOIR = 20_000;
let state: {
  args: SoakArgs; hooks: SoakHooks; tick: NodeJS.Timeout; schedules: WeakMap<Line, Schedule>;
  r: SoakLoadResult; latencies: number[]; seen: number; initiated0: number; lastChurn: number; churnOwed: number; pending: Set<Promise<void>>;
} | null = null;

/** Starts the steady load on this worker's open chargers (and on any that reconnect later). */
export function startSoak(args: SoakArgs, hooks: SoakHooks): { started: number } {
  if (state) throw new Error('a soak is already running');
  const r: SoakLoadResult = { calls: 0, answered: 0, timedOut: 0, p50: null, p99: null, initiatedAnswered: 0, churned: 0, reconnected: 0, reconnectFailed: 0, reconnectErrors: {}, open: 0 };
  const s = {
    args, hooks, r, latencies: [] as number[], seen: 0, schedules: new WeakMap<Line, Schedule>(),
    initiated0: hooks.initiatedAnswered(), lastChurn: performance.now(), churnOwed: 0, pending: new Set<Promise<void>>(),
    tick: setInterval(() => tick(), 250),
  };
  state = s;
  hooks.setOnAnswer((_line, ms) => {
    r.answered++;
    // Reservoir sampling keeps the percentiles honest over 30 min without unbounded memory.
    s.seen++;
    if (s.latencies.length < RESERVOIR) s.latencies.push(ms);
    else {
      const k = Math.floor(Math.random() * s.seen);
      if (k < RESERVOIR) s.latencies[k] = ms;
    }
  });
  return { started: [...hooks.lines()].length };
}

function tick(): void {
  const s = state!;
  const now = performance.now();
  const a = s.args;
  for (const line of s.hooks.lines()) {
    if (line.ws.readyState !== WebSocket.OPEN) continue;
    let sch = s.schedules.get(line);
    if (!sch) {
      // A (re)connected charger: its first StatusNotification soon, the rest spread over their periods.
      const hb = (a.heartbeatS[0] + Math.random() * (a.heartbeatS[1] - a.heartbeatS[0])) * 1000;
      sch = { heartbeatEveryMs: hb, nextHeartbeat: now + Math.random() * hb, nextMeter: now + Math.random() * a.meterS * 1000, nextStatus: now + Math.random() * 2000 };
      s.schedules.set(line, sch);
    }
    if (line.waitingId !== null) {
      if (now - line.sentAt < a.callTimeoutMs) continue;
      s.r.timedOut++;
      line.waitingId = null;
    }
    const action = now >= sch.nextStatus ? 'StatusNotification' : now >= sch.nextMeter ? 'MeterValues' : now >= sch.nextHeartbeat ? 'Heartbeat' : null;
    if (!action) continue;
    if (action === 'StatusNotification') sch.nextStatus = now + a.statusS * 1000;
    else if (action === 'MeterValues') sch.nextMeter = now + a.meterS * 1000;
    else sch.nextHeartbeat = now + sch.heartbeatEveryMs;
    line.seq++;
    line.waitingId = `s${line.seq}`;
    line.sentAt = now;
    line.ws.send(frameOf(action, line.waitingId));
    s.r.calls++;
  }
  // Churn accrues continuously (a fraction of a charger per tick) so small fleets and short runs see it too.
  s.churnOwed += s.hooks.sockets().size * a.churnPerMin * ((now - s.lastChurn) / 60_000);
  s.lastChurn = now;
  if (s.churnOwed >= 1) churn(s);
}

/** Drops the whole chargers churn has accrued; each reconnects (resuming its TLS session) 1–5 s later. */
function churn(s: NonNullable<typeof state>): void {
  const open = [...s.hooks.sockets().keys()];
  const n = Math.floor(s.churnOwed);
  s.churnOwed -= n;
  for (let k = 0; k < n && open.length > 0; k++) {
    const identity = open.splice(Math.floor(Math.random() * open.length), 1)[0]!;
    s.hooks.sockets().get(identity)?.terminate();
    s.r.churned++;
    const c = s.args.connect;
    const i = c.identities.indexOf(identity);
    const p = new Promise<void>((resolve) => setTimeout(resolve, 1000 + Math.random() * 4000))
      .then(() => s.hooks.connect({ ...c, identities: [identity], passwords: c.passwords ? [c.passwords[i]!] : undefined, concurrency: 1, resume: true, deadlineMs: 30_000 }))
      .then((res) => {
        s.r.reconnected += res.admitted;
        s.r.reconnectFailed += res.failed;
        for (const [e, v] of Object.entries(res.errors)) s.r.reconnectErrors[e] = (s.r.reconnectErrors[e] ?? 0) + v;
      });
    s.pending.add(p);
    void p.finally(() => s.pending.delete(p));
  }
}

/** Stops the load, waits for reconnects and calls in flight (bounded), and answers the totals. */
export async function stopSoak(): Promise<SoakLoadResult> {
  const s = state;
  if (!s) throw new Error('no soak is running');
  clearInterval(s.tick);
  await Promise.race([Promise.all([...s.pending]), new Promise((r) => setTimeout(r, 40_000))]);
  const end = performance.now() + 5000;
  while ([...s.hooks.lines()].some((l) => l.waitingId !== null) && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  for (const l of s.hooks.lines()) l.waitingId = null;
  s.hooks.setOnAnswer(() => {});
  state = null;
  const sorted = Float64Array.from(s.latencies).sort();
  const pct = (p: number) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! * 100) / 100 : null);
  return { ...s.r, p50: pct(50), p99: pct(99), initiatedAnswered: s.hooks.initiatedAnswered() - s.initiated0, open: s.hooks.sockets().size };
}
