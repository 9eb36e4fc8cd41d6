/**
 * Bench results: percentiles, the JSON document (absolute figures and ratios ours / HAProxy,
 * ours / nginx, ours / direct, and the Node floor / HAProxy, per scenario row) and its Markdown table.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import type { TargetName } from './targets';

/** One row of the table: a metric of one scenario case, measured on each target. */
export interface ResultRow {
  scenario: 'storm' | 'relay' | 'idle';
  /** e.g. "P2 ECDSA full". */
  case: string;
  metric: string;
  unit: string;
  /** true when bigger is better (rates); false for latency and memory. */
  higherIsBetter: boolean;
  values: Partial<Record<TargetName, number | null>>;
  /**
   * ours / X for X in haproxy, nginx, direct, and nodeVsHaproxy = node floor / HAProxy: how far the
   * runtime alone is from HAProxy (null when either side is missing or zero).
   */
  ratios: { haproxy: number | null; nginx: number | null; direct: number | null; nodeVsHaproxy: number | null };
  /** Anything a reader needs to interpret the row (e.g. failures, resumption rate). */
  notes?: string[];
}

/** The whole bench output written to results/latest.json. */
export interface BenchReport {
  date: string;
  machine: { cpus: number; cpuModel: string; memGiB: number; os: string; node: string; haproxy: string | null; nginx: string | null };
  options: Record<string, unknown>;
  /** Per target: 'ok', or why its column is n/a. */
  targets: Partial<Record<TargetName, string>>;
  rows: ResultRow[];
  /** Raw measurements per scenario case and target (counts, errors, CPU time of the target). */
  raw: Record<string, unknown>[];
  /** Every PID the bench started (all stopped when it returns). */
  pids: number[];
  elapsedS: number;
}

/** The p-th percentile (0..100) by nearest rank of unsorted samples; null when empty. */
export function percentile(samples: number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Builds a row, computing ours / X ratios. */
export function row(r: Omit<ResultRow, 'ratios'>): ResultRow {
  const ratio = (a: TargetName, b: TargetName) => {
    const x = r.values[a];
    const y = r.values[b];
    return x == null || y == null || y === 0 ? null : round(x / y, 3);
  };
  return { ...r, ratios: { haproxy: ratio('ours', 'haproxy'), nginx: ratio('ours', 'nginx'), direct: ratio('ours', 'direct'), nodeVsHaproxy: ratio('node', 'haproxy') } };
}

/** Rounds to `digits` decimals (keeps the JSON readable). */
export function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Facts about the machine the numbers were taken on. */
export function machineFacts(): BenchReport['machine'] {
  // nginx -v prints on stderr, haproxy -v on stdout: read both.
  const version = (cmd: string, args: string[], re: RegExp) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.error ? null : (re.exec(`${r.stdout}${r.stderr}`)?.[1] ?? null);
  };
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    haproxy: version('haproxy', ['-v'], /version (\S+)/),
    nginx: version('nginx', ['-v'], /nginx\/(\S+)/),
  };
}

const fmt = (v: number | null | undefined) => (v == null ? 'n/a' : Math.abs(v) >= 100 ? String(Math.round(v)) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtRatio = (v: number | null) => (v == null ? 'n/a' : `${v.toFixed(2)}×`);

function threadsLine(n: number): string {
  return n > 1 ? `HAProxy/nginx with ${n} threads/workers, ours with ${n} worker processes` : 'HAProxy/nginx with 1 thread/worker, ours with one process';
}

/** The Markdown table (one line per row) with the machine line above it. */
export function markdownTable(rep: BenchReport): string {
  const m = rep.machine;
  const lines = [
    `Taken ${rep.date.slice(0, 10)} on ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, ${m.os}, Node ${m.node}, HAProxy ${m.haproxy ?? 'n/a'}, nginx ${m.nginx ?? 'n/a'}; ` +
      `storm/idle ${String(rep.options.chargers)} chargers, relay ${String(rep.options.relaySessions)} sessions × ${String(rep.options.duration)} s${relayRounds(rep)}; ` +
      `everything (load generator included) on the same ${m.cpus} cores; ${threadsLine(Number(rep.options.threads))}; ` +
      `ours on ${String(rep.options.proxyAllocator ?? 'glibc')} malloc${rep.options.proxyAllocator === 'jemalloc' ? ' (as the container image runs it)' : ''}.`,
    '',
    '| scenario | case | metric | ours | HAProxy | nginx | Node floor | direct | ours/HAProxy | ours/nginx | ours/direct | Node floor/HAProxy |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rep.rows) {
    const v = r.values;
    lines.push(`| ${r.scenario} | ${r.case} | ${r.metric} (${r.unit}) | ${fmt(v.ours)} | ${fmt(v.haproxy)} | ${fmt(v.nginx)} | ${fmt(v.node)} | ${fmt(v.direct)} | ` +
      `${fmtRatio(r.ratios.haproxy)} | ${fmtRatio(r.ratios.nginx)} | ${fmtRatio(r.ratios.direct)} | ${fmtRatio(r.ratios.nodeVsHaproxy)} |`);
  }
  const notes = rep.rows.flatMap((r) => (r.notes ?? []).map((n) => `${r.scenario} ${r.case}: ${n}`));
  if (notes.length) lines.push('', ...notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

/** The block the README publishes (markers let the next run replace it). */
export function readmeBlock(rep: BenchReport): string {
  return ['<!-- bench:start (npm run bench -- --readme) -->', markdownTable(rep), '<!-- bench:end -->'].join('\n');
}

/** ", median of N rounds" when the relay ran in rounds (older reports have no such option). */
function relayRounds(rep: BenchReport): string {
  const n = Number(rep.options.relayRounds ?? 1);
  return n > 1 ? `, median of ${n} rounds` : '';
}
