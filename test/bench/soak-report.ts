/**
 * Soak results: reading the proxy's Prometheus text, per-metric drift figures (warm-up value, last,
 * min/max, least-squares slope per hour), the drift verdict, its Markdown table and README block,
 * and appending the run to results/soak-latest.json (a JSON array, newest last).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { round, type BenchReport } from './report';

/** The figures sampled from `/metrics`, in display units. */
export const SOAK_METRICS = {
  rssMiB: { prom: 'process_resident_memory_bytes', label: 'RSS', unit: 'MiB', scale: 2 ** -20 },
  heapUsedMiB: { prom: 'nodejs_heap_size_used_bytes', label: 'V8 heap used', unit: 'MiB', scale: 2 ** -20 },
  heapTotalMiB: { prom: 'nodejs_heap_size_total_bytes', label: 'V8 heap committed', unit: 'MiB', scale: 2 ** -20 },
  // Where committed heap grows: young objects (new), long-lived ones (old), compiled code (code).
  newSpaceMiB: { prom: 'nodejs_heap_space_size_total_bytes{space="new"}', label: '… of which new space', unit: 'MiB', scale: 2 ** -20 },
  oldSpaceMiB: { prom: 'nodejs_heap_space_size_total_bytes{space="old"}', label: '… of which old space', unit: 'MiB', scale: 2 ** -20 },
  codeSpaceMiB: { prom: 'nodejs_heap_space_size_total_bytes{space="code"}', label: '… of which code space', unit: 'MiB', scale: 2 ** -20 },
  externalMiB: { prom: 'nodejs_external_memory_bytes', label: 'external (Buffers, native objects V8 knows of)', unit: 'MiB', scale: 2 ** -20 },
  lagP99Ms: { prom: 'nodejs_eventloop_lag_p99_seconds', label: 'event-loop delay p99 (per interval)', unit: 'ms', scale: 1000 },
  lagMaxMs: { prom: 'nodejs_eventloop_lag_max_seconds', label: 'event-loop delay max (per interval)', unit: 'ms', scale: 1000 },
  handles: { prom: 'nodejs_active_handles_total', label: 'active libuv handles', unit: 'count', scale: 1 },
  openFds: { prom: 'process_open_fds', label: 'open file descriptors', unit: 'count', scale: 1 },
  sessions: { prom: 'ocpp_proxy_sessions_active', label: 'sessions active', unit: 'count', scale: 1 },
} as const;

/** Key of one sampled figure. */
export type SoakMetric = keyof typeof SOAK_METRICS;

/** One read of `/metrics`: seconds since the fleet finished connecting, and each figure (null when absent). */
export interface SoakSample { tS: number; values: Record<SoakMetric, number | null> }

/** Drift figures of one metric over the post-warm-up samples. */
export interface SoakStat {
  metric: SoakMetric;
  label: string;
  unit: string;
  warmup: number | null;
  last: number | null;
  min: number | null;
  max: number | null;
  /** Least-squares slope, unit per hour. */
  slopePerHour: number | null;
}

/** The whole soak output (one element of results/soak-latest.json). */
export interface SoakReport {
  date: string;
  machine: BenchReport['machine'];
  options: Record<string, unknown>;
  connect: Record<string, unknown>;
  load: Record<string, unknown>;
  /** Before any charger connected, and a few seconds after they all closed. */
  baseline: SoakSample;
  afterClose: SoakSample;
  samples: SoakSample[];
  stats: SoakStat[];
  verdict: SoakVerdict;
  pids: number[];
  elapsedS: number;
}

/** "no drift", "drift" or "inconclusive" (too short to extrapolate), with each check spelled out. */
export interface SoakVerdict { result: 'no drift' | 'drift' | 'inconclusive'; rule: string; checks: { name: string; ok: boolean; detail: string }[] }

/** Shortest warm-up, seconds (see {@link warmupEndS}). */
const WARMUP_MIN_S = 180;

/** Post-warm-up span below which a per-hour slope is mostly noise. */
export const MIN_CONCLUSIVE_MINUTES = 10;

/** Reads the proxy's `/metrics` once (5 s timeout). */
export async function scrape(admin: string, tS: number): Promise<SoakSample> {
  const res = await fetch(`${admin}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${admin}/metrics answered ${res.status}`);
  return { tS: Math.round(tS * 10) / 10, values: parseProm(await res.text()) };
}

/**
 * Reads each wanted metric from a Prometheus text exposition: a bare name sums all its series, a
 * name with labels (`name{label="v"}`, written as exposed) reads that one series.
 */
export function parseProm(text: string): Record<SoakMetric, number | null> {
  const byProm = new Map<string, number>();
  for (const line of text.split('\n')) {
    // A declared metric with no series yet (a labelled gauge before its first session) reads as 0.
    const declared = /^# TYPE (\S+) /.exec(line);
    if (declared && !byProm.has(declared[1]!)) byProm.set(declared[1]!, 0);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    byProm.set(m[1]!, (byProm.get(m[1]!) ?? 0) + v);
    if (m[2]) byProm.set(m[1]! + m[2], v);
  }
  const out = {} as Record<SoakMetric, number | null>;
  for (const [k, d] of Object.entries(SOAK_METRICS) as [SoakMetric, (typeof SOAK_METRICS)[SoakMetric]][]) {
    const v = byProm.get(d.prom);
    out[k] = v === undefined ? null : round(v * d.scale, 3);
  }
  return out;
}

/** Least-squares slope of y over x (null with fewer than two points or no spread in x). */
export function slope(points: [number, number][]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) { sxy += (x - mx) * (y - my); sxx += (x - mx) ** 2; }
  return sxx === 0 ? null : sxy / sxx;
}

/**
 * Where the steady state starts: after the fleet's connect burst has been collected (its garbage
 * inflates heap and RSS for a minute or two), i.e. 3 min or a tenth of the run, whichever is later.
 */
export function warmupEndS(samples: SoakSample[]): number {
  return Math.max(WARMUP_MIN_S, 0.1 * (samples.at(-1)?.tS ?? 0));
}


/** Drift figures per metric over the samples after the warm-up; the warm-up value is the first of them. */
export function soakStats(samples: SoakSample[]): SoakStat[] {
  const from = warmupEndS(samples);
  const post = samples.filter((s, i) => i > 0 && s.tS >= from);
  return (Object.keys(SOAK_METRICS) as SoakMetric[]).map((metric) => {
    const pts = post.filter((s) => s.values[metric] !== null).map((s) => [s.tS / 3600, s.values[metric]!] as [number, number]);
    const ys = pts.map((p) => p[1]);
    const sl = slope(pts);
    return {
      metric, label: SOAK_METRICS[metric].label, unit: SOAK_METRICS[metric].unit,
      warmup: post[0]?.values[metric] ?? null,
      last: post.at(-1)?.values[metric] ?? null,
      min: ys.length ? Math.min(...ys) : null,
      max: ys.length ? Math.max(...ys) : null,
      slopePerHour: sl === null ? null : round(sl, 3),
    };
  });
}

/** The rule the verdict applies (printed with it). */
export const SOAK_RULE = 'no drift when: RSS slope < 5 % of the warm-up RSS per hour; V8 heap slope < 10 % of the warm-up heap per hour; ' +
  'active handles at the end within ±max(2 %, 10) of the warm-up count; sessions active at the end ≥ 98 % of the warm-up count; ' +
  'after all chargers closed, sessions active = 0 and handles ≤ baseline + 10. Event-loop delay is reported, not judged (shared CPU). ' +
  `Warm-up: the first ${WARMUP_MIN_S / 60} min or tenth of the run, whichever is longer (the connect burst's garbage); ` +
  `runs shorter than ${MIN_CONCLUSIVE_MINUTES} min after warm-up are "inconclusive".`;

/** Applies {@link SOAK_RULE}. */
export function soakVerdict(stats: SoakStat[], baseline: SoakSample, afterClose: SoakSample, spanMin: number): SoakVerdict {
  const st = (m: SoakMetric) => stats.find((s) => s.metric === m)!;
  const checks: SoakVerdict['checks'] = [];
  const pctSlope = (m: SoakMetric, limitPct: number) => {
    const s = st(m);
    const pct = s.slopePerHour !== null && s.warmup ? (s.slopePerHour / s.warmup) * 100 : null;
    checks.push({ name: `${s.label} slope`, ok: pct !== null && pct < limitPct, detail: `${pct === null ? 'n/a' : pct.toFixed(2)} %/h of warm-up (limit ${limitPct} %/h)` });
  };
  pctSlope('rssMiB', 5);
  pctSlope('heapUsedMiB', 10);
  const h = st('handles');
  const tol = h.warmup === null ? 0 : Math.max(0.02 * h.warmup, 10);
  checks.push({ name: 'handles back to warm-up', ok: h.warmup !== null && h.last !== null && Math.abs(h.last - h.warmup) <= tol, detail: `${h.warmup} → ${h.last} (tolerance ±${Math.round(tol)})` });
  const ss = st('sessions');
  checks.push({ name: 'sessions held', ok: ss.warmup !== null && ss.last !== null && ss.last >= 0.98 * ss.warmup, detail: `${ss.warmup} → ${ss.last}` });
  const bh = baseline.values.handles;
  const ah = afterClose.values.handles;
  checks.push({ name: 'clean after close', ok: afterClose.values.sessions === 0 && bh !== null && ah !== null && ah <= bh + 10, detail: `sessions ${afterClose.values.sessions}, handles ${ah} (baseline ${bh})` });
  const ok = checks.every((c) => c.ok);
  const result = spanMin < MIN_CONCLUSIVE_MINUTES ? 'inconclusive' : ok ? 'no drift' : 'drift';
  return { result, rule: SOAK_RULE, checks };
}

const fmt = (v: number | null) => (v === null ? 'n/a' : Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? String(Math.round(v)) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

/** The Markdown report: parameters line, drift table, checks and verdict. */
export function soakMarkdown(r: SoakReport): string {
  const m = r.machine;
  const o = r.options;
  const lines = [
    `Soak taken ${r.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, ${m.os}, Node ${m.node}; ` +
      `our proxy (Redis store, ${String(o.proxyAllocator ?? 'glibc')} malloc), ${String(o.chargers)} Profile 2 chargers, ${String(o.soakMinutes)} min steady load, /metrics every ${String(o.soakSampleS)} s; ` +
      `load: Heartbeat every 30–60 s, MeterValues every ${String(o.meterS)} s, StatusNotification every ${String(o.statusS)} s per charger, ` +
      `a CSMS call after every ${String(o.csmsEvery)}th answer, ${String(round(Number(o.churnPerMin) * 100, 2))} % of chargers reconnecting per minute; ` +
      `load generator and CSMS stand-in on the same cores.`,
    '',
    '| metric | unit | baseline (no chargers) | warm-up | last | min | max | slope per hour | after close |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const s of r.stats) {
    lines.push(`| ${s.label} | ${s.unit} | ${fmt(r.baseline.values[s.metric])} | ${fmt(s.warmup)} | ${fmt(s.last)} | ${fmt(s.min)} | ${fmt(s.max)} | ${fmt(s.slopePerHour)} | ${fmt(r.afterClose.values[s.metric])} |`);
  }
  const l = r.load;
  lines.push('', `Load: ${String(l.calls)} charger calls (${String(l.answered)} answered, ${String(l.timedOut)} timed out, RTT p50 ${String(l.p50)} ms, p99 ${String(l.p99)} ms), ` +
    `${String(l.initiatedAnswered)} CSMS calls answered, ${String(l.churned)} churned / ${String(l.reconnected)} reconnected / ${String(l.reconnectFailed)} failed` +
    (Object.keys((l.reconnectErrors as object) ?? {}).length ? ` ${JSON.stringify(l.reconnectErrors)}` : '') + `; ${r.samples.length} samples.`);
  lines.push('', `**Verdict: ${r.verdict.result}.** ${r.verdict.rule}`, '');
  for (const c of r.verdict.checks) lines.push(`- ${c.ok ? 'ok' : 'FAIL'}: ${c.name}: ${c.detail}`);
  return lines.join('\n');
}

/** The README block (markers let the next run replace it). */
export function soakReadmeBlock(r: SoakReport): string {
  return ['<!-- soak:start (npm run bench -- --scenario soak --readme) -->', soakMarkdown(r), '<!-- soak:end -->'].join('\n');
}

/** Appends the run to `file` (a JSON array; a missing or unreadable file starts a new one). */
export function appendSoakJson(file: string, r: SoakReport): void {
  let runs: unknown[] = [];
  if (existsSync(file)) {
    try {
      const prev = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (Array.isArray(prev)) runs = prev;
    } catch { /* not ours: start over */ }
  }
  runs.push(r);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(runs, null, 1) + '\n');
}
