/**
 * The three scenarios, run against one target at a time through the lab's charger workers:
 * reconnect storm (full then resumed handshakes), steady relay (saturation, then a paced load) and
 * idle hold (RSS with many idle sessions). Every phase is bounded in connections and time.
 */
import { readFileSync } from 'node:fs';
import { rssBytes } from './child';
import { scrape } from './soak-report';
import type { Lab } from './lab';
import { percentile, round } from './report';
import type { ConnectArgs, ConnectResult } from './charger-worker';
import { countRedisCommands } from './redis-commands';
import type { Target } from './targets';

/** One storm phase on one target. */
export interface StormMeasure {
  admitted: number;
  failed: number;
  resumed: number;
  errors: Record<string, number>;
  /** Sessions admitted per second over the phase. */
  rate: number;
  p50: number | null;
  p99: number | null;
  elapsedS: number;
  /** CPU time the target (its processes) spent in the phase, per admitted session. */
  targetCpuMsPerSession: number | null;
  /** Ours only: commands its Redis ran in the phase (a script's own included), per admitted session. */
  redisCommandsPerSession?: number | null;
}

/** Storm parameters. */
export interface StormCase { profile: 2 | 3; cert: 'ecdsa' | 'rsa'; resume: boolean }

/** Limits every phase obeys. */
export interface PhaseLimits { concurrency: number; deadlineMs: number }

/** Opens `n` sessions of the given kind on `target` and keeps them; returns what the workers saw. */
export async function connectFleet(lab: Lab, target: Target, c: StormCase, n: number, lim: PhaseLimits): Promise<StormMeasure> {
  // Only ours talks to the lab's Redis.
  const redis = target.name === 'ours' ? await countRedisCommands(lab.env.redisUrl) : null;
  const cpu0 = cpuMs(target.pids());
  const results = await Promise.all(lab.workers.map((w, k) => {
    const args = connectArgs(lab, target, c, n, lim, k);
    return w.request<ConnectResult>('connect', args as unknown as Record<string, unknown>, lim.deadlineMs + 60_000);
  }));
  const measure = summarise(results, cpuMs(target.pids()) - cpu0);
  if (redis) {
    const commands = await redis.stop();
    measure.redisCommandsPerSession = measure.admitted > 0 ? round(commands / measure.admitted, 2) : null;
  }
  return measure;
}

/** What worker `k` of the lab is asked to open: its share (every W-th) of the first `n` chargers of the kind. */
export function connectArgs(lab: Lab, target: Target, c: StormCase, n: number, lim: PhaseLimits, k: number): ConnectArgs {
  const ids = c.profile === 2 ? lab.fleet.p2.slice(0, n) : lab.fleet.p3.slice(0, n);
  const pws = c.profile === 2 ? lab.fleet.p2Passwords.slice(0, n) : undefined;
  const W = lab.workers.length;
  return {
    base: target.base,
    identities: ids.filter((_, i) => i % W === k),
    passwords: pws?.filter((_, i) => i % W === k),
    tls: target.tls ? {
      ca: lab.caPem, servername: 'localhost',
      // The suite picks the server certificate: ECDHE-ECDSA → the ECDSA one, ECDHE-RSA → the RSA one.
      ciphers: c.cert === 'ecdsa' ? 'ECDHE-ECDSA-AES128-GCM-SHA256' : 'ECDHE-RSA-AES128-GCM-SHA256',
      ...(c.profile === 3 ? lab.client : {}),
    } : undefined,
    concurrency: lim.concurrency,
    resume: c.resume,
    deadlineMs: lim.deadlineMs,
    worker: k,
  };
}

function summarise(results: ConnectResult[], cpu: number): StormMeasure {
  const latencies = results.flatMap((r) => r.latenciesMs);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const admitted = results.reduce((s, r) => s + r.admitted, 0);
  const elapsedS = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  return {
    admitted,
    failed: results.reduce((s, r) => s + r.failed, 0),
    resumed: results.reduce((s, r) => s + r.resumed, 0),
    errors,
    rate: round(admitted / elapsedS, 1),
    p50: nullableRound(percentile(latencies, 50)),
    p99: nullableRound(percentile(latencies, 99)),
    elapsedS: round(elapsedS, 2),
    targetCpuMsPerSession: admitted > 0 ? round(cpu / admitted, 3) : null,
  };
}

/** Closes every charger connection and waits until the CSMS has seen every session end. */
export async function closeFleet(lab: Lab): Promise<void> {
  await Promise.all(lab.workers.map((w) => w.request('closeAll', {}, 30_000)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { open } = await lab.csms.request<{ open: number }>('count', {}, 5000);
    if (open === 0) return;
    if (Date.now() > deadline) throw new Error(`${open} CSMS connections still open 60 s after the chargers closed`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A storm case: a full-handshake phase, then (TLS only) a phase resuming each charger's session. */
export async function storm(lab: Lab, target: Target, c: Omit<StormCase, 'resume'>, n: number, lim: PhaseLimits): Promise<{ full: StormMeasure; resumed: StormMeasure | null }> {
  const full = await connectFleet(lab, target, { ...c, resume: false }, n, lim);
  await closeFleet(lab);
  if (!target.tls) return { full, resumed: null };
  const resumed = await connectFleet(lab, target, { ...c, resume: true }, n, lim);
  await closeFleet(lab);
  return { full, resumed };
}

/** One relay phase's figures. */
export interface RelayMeasure {
  /** Completed round trips per second (charger calls + CSMS-initiated calls). */
  throughput: number;
  chargerCalls: number;
  csmsCalls: number;
  missed: number;
  p50: number | null;
  p99: number | null;
  p999: number | null;
  targetCpuPct: number | null;
}

/**
 * Steady relay on `sessions` Profile 2 sessions: closed loop (every charger keeps its one allowed
 * call in flight) for saturation, then open loop at `pacedRate` charger calls/s (default: half the
 * saturation figure) for latency. The CSMS sends one call of its own after every 10th answer.
 */
export async function relay(lab: Lab, target: Target, sessions: number, durationMs: number, pacedRate: number | null, lim: PhaseLimits): Promise<{ connect: StormMeasure; saturation: RelayMeasure; paced: RelayMeasure & { rate: number } }> {
  const connect = await connectFleet(lab, target, { profile: 2, cert: 'ecdsa', resume: false }, sessions, lim);
  await lab.csms.request('initiate', { every: 10 });
  const saturation = await relayPhase(lab, target, { mode: 'saturate', warmupMs: Math.min(2000, durationMs / 2), durationMs });
  const rate = pacedRate ?? Math.max(1, Math.floor(saturation.chargerCalls / (durationMs / 1000) / 2));
  const paced = { ...(await relayPhase(lab, target, { mode: 'paced', rate, warmupMs: Math.min(2000, durationMs / 2), durationMs })), rate };
  await lab.csms.request('initiate', { every: 0 });
  await closeFleet(lab);
  return { connect, saturation, paced };
}

async function relayPhase(lab: Lab, target: Target, a: { mode: 'saturate' | 'paced'; rate?: number; warmupMs: number; durationMs: number }): Promise<RelayMeasure> {
  const W = lab.workers.length;
  const cpu0 = cpuMs(target.pids());
  const t0 = Date.now();
  const results = await Promise.all(lab.workers.map((w) => w.request<{ calls: number; missed: number; initiatedAnswered: number; latenciesMs: number[]; elapsedMs: number }>(
    'relay', { ...a, rate: a.rate === undefined ? undefined : a.rate / W }, a.warmupMs + a.durationMs + 60_000)));
  const cpuPct = ((cpuMs(target.pids()) - cpu0) / (Date.now() - t0)) * 100;
  const latencies = results.flatMap((r) => r.latenciesMs);
  const chargerCalls = results.reduce((s, r) => s + r.calls, 0);
  const csmsCalls = results.reduce((s, r) => s + r.initiatedAnswered, 0);
  const elapsedS = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  return {
    throughput: round((chargerCalls + csmsCalls) / elapsedS, 0),
    chargerCalls, csmsCalls,
    missed: results.reduce((s, r) => s + r.missed, 0),
    p50: nullableRound(percentile(latencies, 50), 3),
    p99: nullableRound(percentile(latencies, 99), 3),
    p999: nullableRound(percentile(latencies, 99.9), 3),
    targetCpuPct: round(cpuPct, 0),
  };
}

/**
 * Idle hold figures: RSS of the target before and with `sessions` idle Profile 2 sessions, read twice:
 * right after they connected (what a memory limit must hold after a storm) and after they sat idle
 * a while (what a replica holds day to day: a V8 heap gives back the storm's young generation only
 * once its memory reducer runs, typically 40–60 s after the load stops).
 */
export interface IdleMeasure {
  sessions: number;
  rssBeforeMiB: number;
  /** Read `settleMs` after the last session connected. */
  rssMiB: number;
  perSessionKiB: number | null;
  /** Read `holdMs` after the last session connected. */
  rssHeldMiB: number;
  perSessionHeldKiB: number | null;
  holdS: number;
  /** Our proxy only (from its /metrics): where the per-session memory sits. The rest of RSS is native (OpenSSL, libuv, malloc). */
  breakdownKiB?: { heapUsed: number | null; external: number | null };
  connect: StormMeasure;
}

/** Opens `n` Profile 2 sessions, lets them sit, reads the target's RSS (after `settleMs` and after `holdMs`), closes them. */
export async function idle(lab: Lab, target: Target, n: number, lim: PhaseLimits, settleMs: number, holdMs: number): Promise<IdleMeasure> {
  const before = rss(target.pids());
  const metricsBefore = target.admin ? await scrape(target.admin, 0) : null;
  const connect = await connectFleet(lab, target, { profile: 2, cert: 'ecdsa', resume: false }, n, lim);
  const connected = Date.now();
  await new Promise((r) => setTimeout(r, settleMs));
  const after = rss(target.pids());
  const metricsAfter = target.admin ? await scrape(target.admin, 0) : null;
  holdMs = Math.max(holdMs, settleMs); // the second reading never comes before the first
  await new Promise((r) => setTimeout(r, Math.max(0, connected + holdMs - Date.now())));
  const held = rss(target.pids());
  await closeFleet(lab);
  const perSession = (bytes: number) => (connect.admitted > 0 ? round(bytes / 1024 / connect.admitted, 2) : null);
  const delta = (k: 'heapUsedMiB' | 'externalMiB') => {
    const a = metricsAfter?.values[k];
    const b = metricsBefore?.values[k];
    return a == null || b == null ? null : perSession((a - b) * 2 ** 20);
  };
  return {
    sessions: connect.admitted,
    rssBeforeMiB: round(before / 2 ** 20, 1),
    rssMiB: round(after / 2 ** 20, 1),
    perSessionKiB: perSession(after - before),
    rssHeldMiB: round(held / 2 ** 20, 1),
    perSessionHeldKiB: perSession(held - before),
    holdS: round(holdMs / 1000, 0),
    ...(target.admin ? { breakdownKiB: { heapUsed: delta('heapUsedMiB'), external: delta('externalMiB') } } : {}),
    connect,
  };
}

function rss(pids: number[]): number {
  return pids.reduce((s, p) => s + rssBytes(p), 0);
}

/** utime + stime of the processes, in ms (clock ticks are 10 ms on Linux). */
function cpuMs(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) * 10;
    } catch { /* gone */ }
  }
  return total;
}

function nullableRound(v: number | null, digits = 2): number | null {
  return v === null ? null : round(v, digits);
}
