/**
 * `npm run bench`: our proxy side by side with HAProxy and nginx (and chargers talking to the CSMS
 * directly), all on loopback, every target started fresh, then: idle hold, reconnect storms (Profile 2
 * and 3, ECDSA and RSA server certificate, full and resumed handshakes), steady relay, each case on
 * every target in turn (see `measure`). Prints a
 * Markdown table and writes JSON with absolute figures and ratios. A fifth column, "node", is the
 * least a Node.js proxy can do (node-floor.ts): what separates ours from it is our own work. Bounded in connections and time;
 * every process it starts is stopped by PID before it returns.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startedPids } from './child';
import { openLab, type Lab } from './lab';
import { BENCH_USAGE, BenchUsageError, parseBenchOptions, type BenchOptions, type StormCaseName } from './options';
import { machineFacts, markdownTable, readmeBlock, row, type BenchReport, type ResultRow } from './report';
import { addedOver, medianOfRounds, roundsNote } from './rounds';
import { idle, relay, storm, type IdleMeasure, type PhaseLimits, type StormMeasure } from './scenarios';
import { soak } from './soak';
import { appendSoakJson, soakMarkdown, soakReadmeBlock, type SoakReport } from './soak-report';
import { directTarget, fileLimit, haveBinary, maxSessions, startHaproxy, startNginx, startNodeFloor, startOurs, type Target, type TargetName } from './targets';

const REPO_ROOT = path.resolve(__dirname, '../../..');
const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

type PerTarget<T> = Partial<Record<TargetName, T>>;
type RelayResult = Awaited<ReturnType<typeof relay>>;

/** Everything measured, before it is turned into rows. */
interface Measured {
  storm: Record<string, PerTarget<{ full: StormMeasure; resumed: StormMeasure | null }>>;
  /** The median of each target's relay rounds (see rounds.ts). */
  relay: PerTarget<RelayResult>;
  relayRounds: PerTarget<RelayResult[]>;
  idle: PerTarget<IdleMeasure>;
}

const STORM_CASES = [
  { profile: 2, cert: 'ecdsa' }, { profile: 2, cert: 'rsa' }, { profile: 3, cert: 'ecdsa' }, { profile: 3, cert: 'rsa' },
] as const;
const caseName = (c: { profile: number; cert: string }) => `P${c.profile} ${c.cert === 'ecdsa' ? 'ECDSA' : 'RSA'}`;
const optionName = (c: { profile: number; cert: string }) => `p${c.profile}-${c.cert}` as StormCaseName;

async function startTarget(name: TargetName, lab: Lab): Promise<Target> {
  if (name === 'ours') return startOurs(lab.env);
  if (name === 'haproxy') return startHaproxy(lab.env);
  if (name === 'nginx') return startNginx(lab.env);
  if (name === 'node') return startNodeFloor(lab.env);
  return directTarget(lab.env, lab.csmsPid);
}

/**
 * Every target is started first; then each case runs on every target in turn, and the order
 * rotates from case to case. The machine's drift over a 20-minute run (other tenants of the host)
 * then lands on all columns of a row alike, instead of on whichever targets came late, as when each
 * target ran all its cases in one block.
 */
async function measure(o: BenchOptions, lab: Lab, status: BenchReport['targets']): Promise<Measured> {
  const m: Measured = { storm: {}, relay: {}, relayRounds: {}, idle: {} };
  const lim: PhaseLimits = { concurrency: o.concurrency, deadlineMs: o.phaseDeadlineS * 1000 };
  const running: { name: TargetName; target: Target }[] = [];
  try {
    for (const name of o.targets) {
      if ((name === 'haproxy' || name === 'nginx') && !haveBinary(name)) {
        status[name] = `n/a: ${name} not installed`;
        log(`${name}: not installed, column is n/a`);
        continue;
      }
      log(`${name}: starting`);
      running.push({ name, target: await startTarget(name, lab) });
      status[name] = 'ok';
    }
    let turn = 0;
    // Idle first, on fresh processes, so RSS is not inflated by the storms' leftovers.
    if (o.scenarios.includes('idle')) {
      for (const { name, target } of inTurn(running, turn++)) {
        if (name === 'direct') continue;
        m.idle[name] = await idle(lab, target, o.chargers, lim, o.quick ? 500 : 3000, o.idleHoldS * 1000);
        log(`${name}: idle ${JSON.stringify(m.idle[name])}`);
      }
    }
    if (o.scenarios.includes('storm')) {
      for (const c of STORM_CASES.filter((c) => o.stormCases.includes(optionName(c)))) {
        for (const { name, target } of inTurn(running, turn++)) {
          // Plain ws has no certificate or profile: one case, the floor of every row (when P2 ECDSA runs).
          if (name === 'direct' && c !== STORM_CASES[0]) continue;
          const r = await storm(lab, target, c, o.chargers, lim);
          (m.storm[caseName(c)] ??= {})[name] = r;
          log(`${name}: storm ${caseName(c)} full ${r.full.rate}/s p99 ${r.full.p99} ms` + (r.resumed ? `, resumed ${r.resumed.rate}/s p99 ${r.resumed.p99} ms (${r.resumed.resumed} resumed)` : ''));
        }
      }
    }
    if (o.scenarios.includes('relay')) {
      // Ours first: every target gets the same paced load, half of our first saturation (or of the
      // first target's). Then the order rotates from round to round (see rounds.ts).
      let pacedRate: number | null = null;
      const oursFirst = [...running].sort((a, b) => Number(b.name === 'ours') - Number(a.name === 'ours'));
      for (let n = 0; n < o.relayRounds; n++) {
        for (const { name, target } of inTurn(oursFirst, n)) {
          const r = await relay(lab, target, o.relaySessions, o.duration * 1000, pacedRate, lim);
          (m.relayRounds[name] ??= []).push(r);
          pacedRate ??= r.paced.rate;
          log(`${name}: relay round ${n + 1}/${o.relayRounds} saturation ${r.saturation.throughput}/s, paced ${r.paced.rate}/s p50 ${r.paced.p50} p99 ${r.paced.p99} p99.9 ${r.paced.p999} ms`);
        }
      }
      for (const [name, rounds] of Object.entries(m.relayRounds)) m.relay[name as TargetName] = medianOfRounds(rounds);
    }
  } finally {
    for (const { target } of running) await target.stop();
  }
  return m;
}

/** `list` rotated left by `turn` places: turn 0 is the configured order, turn 1 starts at its second entry. */
export function inTurn<T>(list: readonly T[], turn: number): T[] {
  if (list.length === 0) return [];
  const k = turn % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

function rows(m: Measured): ResultRow[] {
  const out: ResultRow[] = [];
  const direct = m.storm['P2 ECDSA']?.direct?.full;
  for (const c of STORM_CASES) {
    const per = m.storm[caseName(c)];
    if (!per) continue;
    for (const phase of ['full', 'resumed'] as const) {
      const pick = (f: (s: StormMeasure) => number | null) => {
        const v: PerTarget<number | null> = {};
        for (const t of ['ours', 'haproxy', 'nginx', 'node'] as const) if (per[t]) v[t] = per[t]![phase] ? f(per[t]![phase]!) : null;
        if (direct) v.direct = f(direct);
        return v;
      };
      const notes: string[] = [];
      for (const [t, r] of Object.entries(per)) {
        const s = r[phase];
        if (s && s.failed > 0) notes.push(`${t} ${phase}: ${s.failed} failed ${JSON.stringify(s.errors)}`);
        if (s && phase === 'resumed' && s.resumed < s.admitted) notes.push(`${t}: only ${s.resumed} of ${s.admitted} handshakes resumed`);
      }
      const base = { scenario: 'storm' as const, case: `${caseName(c)} ${phase}` };
      out.push(row({ ...base, metric: 'admitted', unit: 'sessions/s', higherIsBetter: true, values: pick((s) => s.rate), notes }));
      out.push(row({ ...base, metric: 'time to admitted p50', unit: 'ms', higherIsBetter: false, values: pick((s) => s.p50) }));
      out.push(row({ ...base, metric: 'time to admitted p99', unit: 'ms', higherIsBetter: false, values: pick((s) => s.p99) }));
      out.push(row({ ...base, metric: 'proxy CPU per session', unit: 'ms', higherIsBetter: false, values: pick((s) => s.targetCpuMsPerSession) }));
      // Ours only (the others check no password): what one admission asks of the Redis all replicas share.
      const redis = per.ours?.[phase]?.redisCommandsPerSession;
      if (redis != null) out.push(row({ ...base, metric: 'Redis commands per session', unit: 'commands', higherIsBetter: false, values: { ours: redis } }));
    }
  }
  const rl = m.relay;
  if (Object.keys(rl).length > 0) {
    const v = (f: (r: RelayResult) => number | null) => Object.fromEntries(Object.entries(rl).map(([t, r]) => [t, f(r)])) as PerTarget<number | null>;
    const rate = Object.values(rl)[0]!.paced.rate;
    const sessions = Object.values(rl)[0]!.connect.admitted;
    const base = { scenario: 'relay' as const, case: `${sessions} sessions` };
    const spread = roundsNote(m.relayRounds);
    out.push(row({ ...base, metric: 'throughput at saturation', unit: 'round trips/s', higherIsBetter: true, values: v((r) => r.saturation.throughput), notes: spread ? [spread] : [] }));
    out.push(row({ ...base, metric: 'proxy CPU at saturation', unit: '%', higherIsBetter: false, values: v((r) => r.saturation.targetCpuPct) }));
    for (const [k, label] of [['p50', 'p50'], ['p99', 'p99'], ['p999', 'p99.9']] as const) {
      out.push(row({ ...base, metric: `call RTT ${label} at ${rate} calls/s`, unit: 'ms', higherIsBetter: false, values: v((r) => r.paced[k]) }));
    }
    const direct = m.relayRounds.direct;
    if (direct) {
      for (const [k, label] of [['p50', 'p50'], ['p99', 'p99'], ['p999', 'p99.9']] as const) {
        // Per round (each target beside direct in the same round), then the median of the rounds.
        const added: PerTarget<number | null> = {};
        for (const [name, rounds] of Object.entries(m.relayRounds)) {
          if (name !== 'direct') added[name as TargetName] = addedOver(rounds, direct, (r) => r.paced[k]);
        }
        out.push(row({ ...base, metric: `added ${label} over direct at ${rate} calls/s`, unit: 'ms', higherIsBetter: false, values: added }));
      }
    }
  }
  const id = m.idle;
  if (Object.keys(id).length > 0) {
    const v = (f: (r: IdleMeasure) => number | null) => Object.fromEntries(Object.entries(id).map(([t, r]) => [t, f(r)])) as PerTarget<number | null>;
    const base = { scenario: 'idle' as const, case: `${Object.values(id)[0]!.sessions} P2 sessions` };
    out.push(row({ ...base, metric: 'RSS', unit: 'MiB', higherIsBetter: false, values: v((r) => r.rssMiB) }));
    out.push(row({ ...base, metric: 'RSS per session (both legs)', unit: 'KiB', higherIsBetter: false, values: v((r) => r.perSessionKiB) }));
    const holdS = Object.values(id)[0]!.holdS;
    out.push(row({ ...base, metric: `RSS after ${holdS} s idle`, unit: 'MiB', higherIsBetter: false, values: v((r) => r.rssHeldMiB) }));
    out.push(row({ ...base, metric: `RSS per session after ${holdS} s idle`, unit: 'KiB', higherIsBetter: false, values: v((r) => r.perSessionHeldKiB) }));
    // Where ours sits (from its /metrics): the V8 heap part of the per-session figure; the rest is native.
    if (id.ours?.breakdownKiB) {
      out.push(row({ ...base, metric: 'of which V8 heap per session', unit: 'KiB', higherIsBetter: false, values: v((r) => r.breakdownKiB?.heapUsed ?? null) }));
    }
  }
  return out;
}

/** Runs the bench; resolves to the report (also written to `o.out`). */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const started = Date.now();
  const cap = maxSessions();
  const asked = o.chargers;
  if (o.chargers > cap) {
    // A proxy holds two descriptors per session; a hard limit we may not raise caps the fleet.
    log(`open-file hard limit ${fileLimit()} lets a proxy hold at most ${cap} sessions: using ${cap} chargers instead of ${o.chargers}`);
    o = { ...o, chargers: cap };
  }
  const lab = await openLab({ chargers: Math.max(o.chargers, o.relaySessions), workers: o.workers, threads: o.threads, cpuProfile: o.cpuProfile, proxyNodeArgs: o.proxyNodeArgs, proxyAllocator: o.proxyAllocator }, log);
  const status: BenchReport['targets'] = {};
  let m: Measured;
  try {
    m = await measure(o, lab, status);
  } finally {
    await lab.close(o.keep || o.cpuProfile);
    if (o.keep || o.cpuProfile) log(`scratch directory kept: ${lab.env.dir}`);
  }
  const { quick, chargers, relaySessions, duration, relayRounds, threads, workers, concurrency, scenarios, proxyAllocator } = o;
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: machineFacts(),
    options: { quick, chargers, chargersAsked: asked, openFileLimit: fileLimit(), relaySessions, duration, relayRounds, threads, workers, concurrency, scenarios, proxyAllocator, tls: 'TLS 1.2, ECDHE-{ECDSA,RSA}-AES128-GCM-SHA256' },
    targets: status,
    rows: rows(m),
    raw: [{ storm: m.storm, relay: m.relay, relayRounds: m.relayRounds, idle: m.idle }],
    pids: [...startedPids],
    elapsedS: Math.round((Date.now() - started) / 1000),
  };
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** Runs the soak scenario (our proxy only); appends its report to `o.out` and resolves to it. */
export async function runSoak(o: BenchOptions): Promise<SoakReport> {
  const cap = maxSessions();
  if (o.chargers > cap) {
    log(`open-file hard limit ${fileLimit()} lets a proxy hold at most ${cap} sessions: using ${cap} chargers instead of ${o.chargers}`);
    o = { ...o, chargers: cap };
  }
  const lab = await openLab({ chargers: o.chargers, workers: o.workers, threads: o.threads, cpuProfile: o.cpuProfile, proxyNodeArgs: o.proxyNodeArgs, proxyAllocator: o.proxyAllocator }, log);
  let report: SoakReport;
  try {
    report = await soak(o, lab, log);
  } finally {
    await lab.close(o.keep || o.cpuProfile);
    if (o.keep || o.cpuProfile) log(`scratch directory kept: ${lab.env.dir}`);
  }
  appendSoakJson(o.out, report);
  return report;
}

async function main(): Promise<number> {
  let o;
  try {
    o = parseBenchOptions(process.argv.slice(2), REPO_ROOT);
  } catch (err) {
    if (err instanceof BenchUsageError) {
      process.stderr.write(`${err.message}\n\n${BENCH_USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (o.help) {
    process.stdout.write(BENCH_USAGE + '\n');
    return 0;
  }
  // The run stops by itself: a hung phase cannot outlive --max-minutes (children die with us).
  const watchdog = setTimeout(() => {
    log(`still running after ${o.maxMinutes} min: giving up`);
    process.exit(3);
  }, o.maxMinutes * 60_000);
  watchdog.unref();
  // Ctrl-C / SIGTERM: exit through process.exit so every child is killed by PID (child.ts).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { log(`${sig}: stopping`); process.exit(130); });
  if (o.scenarios.includes('soak')) {
    const r = await runSoak(o);
    process.stdout.write(soakMarkdown(r) + '\n');
    if (o.readme) process.stdout.write('\n' + soakReadmeBlock(r) + '\n');
    log(`JSON appended to ${o.out} (${r.elapsedS} s)`);
    return 0;
  }
  const report = await runBench(o);
  process.stdout.write(markdownTable(report) + '\n');
  if (o.readme) process.stdout.write('\n' + readmeBlock(report) + '\n');
  log(`JSON written to ${o.out} (${report.elapsedS} s)`);
  return 0;
}

if (require.main === module) {
  main().then((c) => process.exit(c), (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? String(err)}\n`);
    process.exit(1);
  });
}
