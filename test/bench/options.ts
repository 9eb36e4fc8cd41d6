/** Command-line options of `npm run bench` (test/bench/run.ts). */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { jemallocPath, type BenchAllocator, type TargetName } from './targets';

/** Which scenarios to run (`soak` runs alone, against our proxy only; never part of `all`). */
export type ScenarioName = 'storm' | 'relay' | 'idle' | 'soak';
export const STORM_CASE_NAMES = ['p2-ecdsa', 'p2-rsa', 'p3-ecdsa', 'p3-rsa'] as const;
export type StormCaseName = (typeof STORM_CASE_NAMES)[number];

/** Validated bench options. */
export interface BenchOptions {
  /** Chargers in the storm and idle scenarios. */
  chargers: number;
  /** Sessions in the steady relay. */
  relaySessions: number;
  /** Seconds each relay phase measures (after a warm-up). */
  duration: number;
  /** Relay rounds: every target once per round, order rotating; the table shows medians. */
  relayRounds: number;
  /** Idle: seconds after the last session connected at which RSS is read a second time. */
  idleHoldS: number;
  scenarios: ScenarioName[];
  /** Storm cases to run, e.g. 'p2-ecdsa' (default all four). */
  stormCases: StormCaseName[];
  targets: TargetName[];
  quick: boolean;
  readme: boolean;
  out: string;
  /** HAProxy threads / nginx workers / our worker processes. */
  threads: number;
  /** Charger worker processes. */
  workers: number;
  /** Handshakes in flight per worker. */
  concurrency: number;
  /** Longest a connect phase may take before it stops starting connections. */
  phaseDeadlineS: number;
  /** The whole run is killed after this. */
  maxMinutes: number;
  cpuProfile: boolean;
  /** Extra Node options for our proxy process (e.g. --trace-gc; its output lands in proxy.log). */
  proxyNodeArgs: string[];
  /** C allocator of our proxy process (default jemalloc when installed, as the container image runs it). */
  proxyAllocator: BenchAllocator;
  /** Keep the scratch directory (logs, configs, CPU profiles). */
  keep: boolean;
  /** Soak: minutes of steady load after the fleet has connected. */
  soakMinutes: number;
  /** Soak: seconds between two reads of the proxy's /metrics. */
  soakSampleS: number;
  /** Soak: percent of the open chargers that drop and reconnect per minute. */
  soakChurnPct: number;
}

/** A bad command line; the message says which option and why. */
export class BenchUsageError extends Error {
  readonly reason = 'bench_usage';
}

export const BENCH_USAGE = `Usage: npm run bench -- [options]
  --chargers N          chargers in the storm and idle scenarios (default 10000; --quick 100; soak 2000)
  --idle-hold S         idle: seconds the sessions sit before the second RSS reading (the first is 3 s after
                        the last one connected); long enough for V8 to give back a storm's memory (default 90; --quick 2)
  --relay-sessions N    sessions in the steady relay (default 1000; --quick 30)
  --duration S          seconds each relay phase measures (default 10; --quick 1)
  --relay-rounds N      relay rounds, every target once per round in rotating order; the table shows
                        the median of the rounds, the notes each round (default 3; --quick 1)
  --scenario NAME       storm | relay | idle | all (default all; may repeat), or soak (alone, our proxy only)
  --storm-cases LIST    storm: comma list of p2-ecdsa,p2-rsa,p3-ecdsa,p3-rsa (default all four; for A/B runs)
  --soak-minutes M      soak: minutes of steady load once connected (default 30)
  --soak-sample-s S     soak: seconds between /metrics samples (default 10)
  --soak-churn-pct P    soak: percent of chargers that drop and reconnect per minute (default 1)
  --targets LIST        comma list of ours,haproxy,nginx,node,direct (default all five; node = the Node.js floor:
                        TLS terminated and bytes piped, nothing parsed)
  --quick               small sizes for a smoke run
  --readme              also print the Markdown block for the README
  --out FILE            JSON output (default test/bench/results/latest.json; soak appends to results/soak-latest.json)
  --threads N           HAProxy threads / nginx workers / our worker processes (default 1, like Node's one event loop)
  --workers N           charger worker processes (default 2)
  --concurrency N       handshakes in flight per worker (default 200; --quick 50)
  --phase-deadline S    a connect phase stops starting connections after S seconds (default 180)
  --max-minutes M       kill the whole run after M minutes (default 50; --quick 4; soak: soak minutes + 15)
  --cpu-prof            write a V8 CPU profile of our proxy (kept with --keep's directory)
  --proxy-node-args=A   Node options for our proxy, space-separated (e.g. --proxy-node-args="--trace-gc --max-semi-space-size=32")
  --proxy-allocator A   jemalloc | glibc: the C allocator of our proxy (default jemalloc when libjemalloc2 is
                        installed, as the container image runs it; glibc otherwise)
  --keep                keep the scratch directory (logs, configs, profiles)`;

const ALL_TARGETS: TargetName[] = ['ours', 'haproxy', 'nginx', 'node', 'direct'];

/** Parses argv (without node and script). @throws BenchUsageError */
export function parseBenchOptions(argv: string[], repoRoot: string): BenchOptions & { help: boolean } {
  let v;
  try {
    v = parseArgs({
      args: argv,
      strict: true,
      options: {
        chargers: { type: 'string' }, 'relay-sessions': { type: 'string' }, duration: { type: 'string' }, 'relay-rounds': { type: 'string' },
        scenario: { type: 'string', multiple: true }, targets: { type: 'string' }, quick: { type: 'boolean' },
        readme: { type: 'boolean' }, out: { type: 'string' }, threads: { type: 'string' }, workers: { type: 'string' },
        concurrency: { type: 'string' }, 'phase-deadline': { type: 'string' }, 'max-minutes': { type: 'string' },
        'cpu-prof': { type: 'boolean' }, 'proxy-node-args': { type: 'string' }, 'proxy-allocator': { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        'soak-minutes': { type: 'string' }, 'soak-sample-s': { type: 'string' }, 'soak-churn-pct': { type: 'string' },
        'storm-cases': { type: 'string' }, 'idle-hold': { type: 'string' },
      },
    }).values;
  } catch (err) {
    throw new BenchUsageError((err as Error).message);
  }
  const quick = v.quick === true;
  const int = (name: string, raw: string | undefined, dflt: number, min: number, max: number) => {
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new BenchUsageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  const scenarios = new Set<ScenarioName>();
  for (const s of v.scenario ?? ['all']) {
    if (s === 'all') ['storm', 'relay', 'idle'].forEach((x) => scenarios.add(x as ScenarioName));
    else if (s === 'storm' || s === 'relay' || s === 'idle' || s === 'soak') scenarios.add(s);
    else throw new BenchUsageError(`--scenario must be storm, relay, idle, all or soak, got "${s}"`);
  }
  const soak = scenarios.has('soak');
  if (soak && scenarios.size > 1) throw new BenchUsageError('--scenario soak runs alone: do not combine it with other scenarios');
  if (soak && v.targets !== undefined && v.targets.split(',').some((t) => t.trim() !== 'ours')) throw new BenchUsageError('--scenario soak measures our proxy only: leave --targets out (or use --targets ours)');
  const soakMinutes = int('soak-minutes', v['soak-minutes'], 30, 1, 24 * 60);
  const stormCases = v['storm-cases'] === undefined ? [...STORM_CASE_NAMES] : v['storm-cases'].split(',').map((c) => c.trim().toLowerCase());
  for (const c of stormCases) if (!(STORM_CASE_NAMES as readonly string[]).includes(c)) throw new BenchUsageError(`--storm-cases: unknown case "${c}" (use ${STORM_CASE_NAMES.join(', ')})`);
  if (v.readme === true && stormCases.length < STORM_CASE_NAMES.length) throw new BenchUsageError('--readme publishes the whole table: leave --storm-cases out');
  const targets = v.targets === undefined ? ALL_TARGETS : v.targets.split(',').map((t) => t.trim());
  for (const t of targets) if (!ALL_TARGETS.includes(t as TargetName)) throw new BenchUsageError(`--targets: unknown target "${t}" (use ${ALL_TARGETS.join(', ')})`);
  return {
    help: v.help === true,
    chargers: int('chargers', v.chargers, soak ? 2000 : quick ? 100 : 10_000, 1, 60_000),
    relaySessions: int('relay-sessions', v['relay-sessions'], quick ? 30 : 1000, 1, 20_000),
    duration: int('duration', v.duration, quick ? 1 : 10, 1, 600),
    relayRounds: int('relay-rounds', v['relay-rounds'], quick ? 1 : 3, 1, 20),
    idleHoldS: int('idle-hold', v['idle-hold'], quick ? 2 : 90, 1, 600),
    scenarios: ['idle', 'storm', 'relay', 'soak'].filter((s) => scenarios.has(s as ScenarioName)) as ScenarioName[],
    stormCases: STORM_CASE_NAMES.filter((c) => stormCases.includes(c)),
    targets: soak ? ['ours'] : ALL_TARGETS.filter((t) => targets.includes(t)),
    quick,
    readme: v.readme === true,
    out: path.resolve(v.out ?? path.join(repoRoot, soak ? 'test/bench/results/soak-latest.json' : 'test/bench/results/latest.json')),
    threads: int('threads', v.threads, 1, 1, 64),
    workers: int('workers', v.workers, 2, 1, 16),
    concurrency: int('concurrency', v.concurrency, quick ? 50 : 200, 1, 5000),
    phaseDeadlineS: int('phase-deadline', v['phase-deadline'], 180, 1, 3600),
    maxMinutes: int('max-minutes', v['max-minutes'], soak ? soakMinutes + 15 : quick ? 4 : 50, 1, 24 * 60 + 60),
    cpuProfile: v['cpu-prof'] === true,
    proxyNodeArgs: nodeArgs(v['proxy-node-args']),
    proxyAllocator: allocator(v['proxy-allocator']),
    keep: v.keep === true,
    soakMinutes,
    soakSampleS: int('soak-sample-s', v['soak-sample-s'], 10, 1, 3600),
    soakChurnPct: int('soak-churn-pct', v['soak-churn-pct'], 1, 0, 100),
  };
}

/** `--proxy-allocator`: jemalloc or glibc; by default jemalloc where the library is installed. */
function allocator(raw: string | undefined): BenchAllocator {
  if (raw === undefined) return jemallocPath() ? 'jemalloc' : 'glibc';
  if (raw !== 'jemalloc' && raw !== 'glibc') throw new BenchUsageError(`--proxy-allocator must be jemalloc or glibc, got "${raw}"`);
  if (raw === 'jemalloc' && !jemallocPath()) throw new BenchUsageError('--proxy-allocator jemalloc: libjemalloc2 is not installed (apt-get install libjemalloc2)');
  return raw;
}

/** `--proxy-node-args`: options only (each starts with "-"), so a stray word cannot become the script. */
function nodeArgs(raw: string | undefined): string[] {
  const args = (raw ?? '').split(/\s+/).filter(Boolean);
  const bad = args.find((a) => !a.startsWith('-'));
  if (bad !== undefined) throw new BenchUsageError(`--proxy-node-args takes Node options (each starting with "-"), got "${bad}"`);
  return args;
}
