/**
 * The soak scenario (`--scenario soak`): our proxy alone, a Profile 2 fleet connected as in the storm,
 * then a realistic steady load for `soakMinutes` (soak-load.ts in the charger workers, CSMS-initiated
 * calls from the stand-in) while `/metrics` is read every `soakSampleS` seconds. Stops by itself,
 * closes the fleet, reads `/metrics` once more, stops the proxy, and returns the drift report.
 */
import { startedPids } from './child';
import type { Lab } from './lab';
import type { BenchOptions } from './options';
import { machineFacts } from './report';
import { closeFleet, connectArgs, connectFleet, type PhaseLimits } from './scenarios';
import type { SoakArgs, SoakLoadResult } from './soak-load';
import { scrape, soakStats, soakVerdict, warmupEndS, type SoakReport, type SoakSample } from './soak-report';
import { startOurs } from './targets';

/** The steady load every soak applies (per charger; churn from --soak-churn-pct); printed with the results. */
export const SOAK_LOAD = { heartbeatS: [30, 60] as [number, number], meterS: 60, statusS: 300, csmsEvery: 20, callTimeoutMs: 30_000 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs the soak on a fresh proxy of the lab; every process it starts is stopped before it returns. */
export async function soak(o: BenchOptions, lab: Lab, log: (s: string) => void): Promise<SoakReport> {
  const started = Date.now();
  const lim: PhaseLimits = { concurrency: o.concurrency, deadlineMs: o.phaseDeadlineS * 1000 };
  const target = await startOurs(lab.env);
  try {
    const admin = target.admin!;
    const baseline = await scrape(admin, 0);
    log(`soak: proxy up, baseline RSS ${baseline.values.rssMiB} MiB, ${baseline.values.handles} handles; connecting ${o.chargers} Profile 2 chargers`);
    const connect = await connectFleet(lab, target, { profile: 2, cert: 'ecdsa', resume: false }, o.chargers, lim);
    log(`soak: ${connect.admitted} connected (${connect.failed} failed) in ${connect.elapsedS} s`);
    if (connect.admitted === 0) throw new Error(`soak: no charger could connect ${JSON.stringify(connect.errors)}`);
    await lab.csms.request('initiate', { every: SOAK_LOAD.csmsEvery });
    const c = { profile: 2, cert: 'ecdsa', resume: false } as const;
    await Promise.all(lab.workers.map((w, k) => {
      const args: SoakArgs = { connect: connectArgs(lab, target, c, o.chargers, lim, k), ...SOAK_LOAD, churnPerMin: o.soakChurnPct / 100 };
      return w.request('soakStart', args as unknown as Record<string, unknown>, 30_000);
    }));
    // Samples on a fixed grid from t0 (no drift from the scrape time), the last one at the end.
    const t0 = Date.now();
    const endMs = o.soakMinutes * 60_000;
    const samples: SoakSample[] = [];
    for (let k = 0; ; k++) {
      const at = Math.min(k * o.soakSampleS * 1000, endMs);
      await sleep(Math.max(0, t0 + at - Date.now()));
      try {
        samples.push(await scrape(admin, (Date.now() - t0) / 1000));
      } catch (err) {
        log(`soak: sample at ${Math.round(at / 1000)} s failed: ${(err as Error).message}`);
      }
      const s = samples.at(-1);
      if (s && (k % Math.max(1, Math.round(60 / o.soakSampleS)) === 0 || at >= endMs)) {
        log(`soak: t=${s.tS}s RSS ${s.values.rssMiB} MiB heap ${s.values.heapUsedMiB} MiB lag p99 ${s.values.lagP99Ms} ms handles ${s.values.handles} sessions ${s.values.sessions}`);
      }
      if (at >= endMs) break;
    }
    const loads = await Promise.all(lab.workers.map((w) => w.request<SoakLoadResult>('soakStop', {}, 90_000)));
    await lab.csms.request('initiate', { every: 0 });
    await closeFleet(lab);
    // Let the proxy close the backend legs and the handles go away before the last read.
    await sleep(3000);
    const afterClose = await scrape(admin, (Date.now() - t0) / 1000);
    const load = sumLoads(loads);
    const stats = soakStats(samples);
    const steady = samples.filter((s, i) => i > 0 && s.tS >= warmupEndS(samples));
    const spanMin = steady.length > 1 ? (steady.at(-1)!.tS - steady[0]!.tS) / 60 : 0;
    return {
      date: new Date().toISOString(),
      machine: machineFacts(),
      options: { chargers: o.chargers, proxyAllocator: o.proxyAllocator, soakMinutes: o.soakMinutes, soakSampleS: o.soakSampleS, workers: o.workers, concurrency: o.concurrency, ...SOAK_LOAD, churnPerMin: o.soakChurnPct / 100 },
      connect: connect as unknown as Record<string, unknown>,
      load: load as unknown as Record<string, unknown>,
      baseline, afterClose, samples, stats,
      verdict: soakVerdict(stats, baseline, afterClose, spanMin),
      pids: [...startedPids],
      elapsedS: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    await target.stop();
  }
}

/** Adds the workers' load totals; RTT percentiles are the worst worker's (each saw half the fleet). */
function sumLoads(loads: SoakLoadResult[]): SoakLoadResult {
  const out: SoakLoadResult = { calls: 0, answered: 0, timedOut: 0, p50: null, p99: null, initiatedAnswered: 0, churned: 0, reconnected: 0, reconnectFailed: 0, reconnectErrors: {}, open: 0 };
  for (const l of loads) {
    for (const k of ['calls', 'answered', 'timedOut', 'initiatedAnswered', 'churned', 'reconnected', 'reconnectFailed', 'open'] as const) out[k] += l[k];
    for (const [e, v] of Object.entries(l.reconnectErrors)) out.reconnectErrors[e] = (out.reconnectErrors[e] ?? 0) + v;
    if (l.p50 !== null) out.p50 = Math.max(out.p50 ?? 0, l.p50);
    if (l.p99 !== null) out.p99 = Math.max(out.p99 ?? 0, l.p99);
  }
  return out;
}
