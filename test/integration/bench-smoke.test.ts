/**
 * Smoke run of `npm run bench -- --quick`: every scenario yields numbers for every target that can
 * run here, and every process the bench started is gone when it returns. No timing assertions:
 * the figures depend on the machine. HAProxy/nginx columns are n/a (and not checked) when the
 * binaries are missing.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { pidAlive } from '../bench/child';
import type { BenchReport } from '../bench/report';
import { addedOver, median, medianOfRounds, roundsNote } from '../bench/rounds';
import { inTurn } from '../bench/run';
import { haveBinary } from '../bench/targets';
import { scratchDir } from '../helpers/proxy';

const RUN = path.resolve(__dirname, '../bench/run.js');

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('bench --quick: numbers for every scenario and target, no process left behind', async (t) => {
  const dir = scratchDir(t, 'bench-smoke-');
  const out = path.join(dir, 'latest.json');
  const res = await runBench(['--quick', '--relay-rounds', '2', '--out', out, '--max-minutes', '3']);
  t.equal(res.code, 0, `bench exits 0 (stderr tail: ${res.stderr.split('\n').slice(-6).join(' | ')})`);
  const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;

  const expected = ['ours', 'node', 'direct', ...(['haproxy', 'nginx'] as const).filter((b) => haveBinary(b))];
  for (const name of expected) t.equal(report.targets[name as keyof BenchReport['targets']], 'ok', `${name} ran`);
  for (const name of ['haproxy', 'nginx'] as const) {
    if (!haveBinary(name)) t.match(report.targets[name], /^n\/a/, `${name} missing: column marked n/a`);
  }

  for (const scenario of ['storm', 'relay', 'idle'] as const) {
    const rows = report.rows.filter((r) => r.scenario === scenario);
    t.ok(rows.length > 0, `${scenario} produced rows`);
    for (const r of rows) {
      for (const name of expected) {
        // Idle has no direct column, and "added over direct" is not measured on direct itself.
        if (name === 'direct' && (scenario === 'idle' || r.metric.startsWith('added'))) continue;
        // The heap share is read from our /metrics, and only ours talks to Redis.
        if (name !== 'ours' && (r.metric.startsWith('of which') || r.metric.startsWith('Redis'))) continue;
        const v = r.values[name as keyof typeof r.values];
        t.ok(typeof v === 'number' && Number.isFinite(v), `${scenario} ${r.case} ${r.metric}: ${name} has a number (${String(v)})`);
      }
    }
  }
  const storms = report.rows.filter((r) => r.scenario === 'storm' && r.metric === 'admitted');
  t.equal(storms.length, 8, 'storm: P2/P3 × ECDSA/RSA × full/resumed');
  t.ok(storms.every((r) => r.ratios.haproxy !== null || !haveBinary('haproxy')), 'ours / HAProxy ratios present');
  t.ok(storms.every((r) => r.ratios.nodeVsHaproxy !== null || !haveBinary('haproxy')), 'Node floor / HAProxy ratios present');

  // What an admission asks of Redis: GET (address lockout), MGET (record, claim, lockout and failure
  // count of the identity), EVALSHA (the claim, whose script runs EXISTS, INCR for the claim's number,
  // SET and PUBLISH).
  const redis = report.rows.filter((r) => r.metric === 'Redis commands per session');
  t.equal(redis.length, 8, 'Redis commands per session in every storm case');
  const p2Full = redis.find((r) => r.case === 'P2 ECDSA full')!;
  t.equal(Math.round(p2Full.values.ours ?? 0), 7, `P2: seven Redis commands per admission (${String(p2Full.values.ours)})`);
  t.ok(redis.every((r) => Object.keys(r.values).join() === 'ours'), 'an ours-only row');

  // Cases run on every target in turn, the order rotating: no target is always measured first or last.
  const stormOrder = [...res.stderr.matchAll(/\] (\w+): storm (P\d \w+) full/g)].map((x) => ({ target: x[1]!, case: x[2]! }));
  const firsts = [...new Set(stormOrder.map((x) => x.case))].map((c) => stormOrder.find((x) => x.case === c)!.target);
  t.equal(firsts.length, 4, 'four storm cases logged');
  t.ok(firsts.every((f, i) => i === 0 || f !== firsts[i - 1]), `each storm case starts with another target than the case before (${firsts.join(', ')})`);

  // The relay ran in two rounds, in rotating order; the table holds their medians and the note each round.
  const relayOrder = [...res.stderr.matchAll(/\] (\w+): relay round (\d)\/2 /g)].map((x) => `${x[2]}:${x[1]}`);
  t.equal(relayOrder.length, expected.length * 2, `every target ran two relay rounds (${relayOrder.join(', ')})`);
  t.equal(relayOrder[0], '1:ours', 'ours first in the first round (it sets the paced rate)');
  t.not(relayOrder.find((x) => x.startsWith('2:')), '2:ours', 'the second round starts with another target');
  const rounds = (report.raw[0] as { relayRounds: Record<string, unknown[]> }).relayRounds;
  for (const name of expected) t.equal(rounds[name]?.length, 2, `${name}: both rounds in the JSON`);
  const throughput = report.rows.find((r) => r.scenario === 'relay' && r.metric === 'throughput at saturation')!;
  t.match(throughput.notes?.[0] ?? '', /^throughput in each of 2 rounds \(round trips\/s\): ours \d[\d,]* \/ \d/, 'the note gives each round');
  t.match(res.stdout, /relay 30 sessions × 1 s, median of 2 rounds/, 'the table says it shows medians');

  // Idle RSS is read twice: right after the sessions connected, and after they sat idle (--quick: 2 s).
  const held = report.rows.find((r) => r.scenario === 'idle' && r.metric === 'RSS after 2 s idle');
  t.ok(held, 'idle: a row for the RSS after the hold');
  const idleRaw = (report.raw[0] as { idle: Record<string, { rssMiB: number; rssHeldMiB: number; holdS: number }> }).idle;
  t.equal(idleRaw.ours?.holdS, 2, 'the JSON says how long the sessions were held');
  t.ok((idleRaw.ours?.rssHeldMiB ?? 0) > 0, `ours: RSS after the hold (${String(idleRaw.ours?.rssHeldMiB)} MiB)`);

  t.ok(res.stdout.includes('| scenario | case | metric |'), 'Markdown table printed');
  t.match(res.stdout, /ours on (jemalloc|glibc) malloc/, 'the table says which allocator our proxy ran on');
  t.ok(report.pids.length >= 5, `bench reports the PIDs it started (${report.pids.length})`);
  const alive = report.pids.filter(pidAlive);
  t.same(alive, [], 'every process the bench started has been stopped');
});

t.test('bench rejects a bad option with a clear message', async (t) => {
  const res = await runBench(['--scenario', 'bogus']);
  t.equal(res.code, 2);
  t.match(res.stderr, /--scenario must be storm, relay, idle, all or soak, got "bogus"/);
  const res2 = await runBench(['--chargers=abc']);
  t.equal(res2.code, 2);
  t.match(res2.stderr, /--chargers must be a whole number/);
  const res3 = await runBench(['--proxy-node-args=--trace-gc evil.js']);
  t.equal(res3.code, 2);
  t.match(res3.stderr, /--proxy-node-args takes Node options \(each starting with "-"\), got "evil.js"/);
  const res4 = await runBench(['--proxy-allocator', 'tcmalloc']);
  t.equal(res4.code, 2);
  t.match(res4.stderr, /--proxy-allocator must be jemalloc or glibc, got "tcmalloc"/);
  const res8 = await runBench(['--idle-hold', '0']);
  t.equal(res8.code, 2);
  t.match(res8.stderr, /--idle-hold must be a whole number from 1 to 600, got "0"/);
  const res5 = await runBench(['--storm-cases', 'p2-ecdsa,p4-rsa']);
  t.equal(res5.code, 2);
  t.match(res5.stderr, /--storm-cases: unknown case "p4-rsa" \(use p2-ecdsa, p2-rsa, p3-ecdsa, p3-rsa\)/);
  const res7 = await runBench(['--relay-rounds', '0']);
  t.equal(res7.code, 2);
  t.match(res7.stderr, /--relay-rounds must be a whole number from 1 to 20, got "0"/);
  const res6 = await runBench(['--storm-cases', 'p3-rsa', '--readme']);
  t.equal(res6.code, 2);
  t.match(res6.stderr, /--readme publishes the whole table: leave --storm-cases out/);
});

t.test('inTurn rotates the target order by one place per turn', async (t) => {
  t.same(inTurn(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
  t.same(inTurn(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
  t.same(inTurn(['a', 'b', 'c'], 5), ['c', 'a', 'b'], 'wraps around');
  t.same(inTurn([], 3), [], 'no targets, no turns');
});

t.test('relay rounds: medians per figure, and the spread in a note', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5, 'even count: mean of the middle two');
  t.equal(median([null, 5, null]), 5, 'missing figures are left out');
  t.equal(median([]), null);
  const r = (throughput: number, cpu: number | null, p99: number | null) => ({
    connect: { admitted: 30 },
    saturation: { throughput, chargerCalls: 1, csmsCalls: 0, missed: 0, p50: null, p99: null, p999: null, targetCpuPct: cpu },
    paced: { rate: 100, throughput: 100, chargerCalls: 1, csmsCalls: 0, missed: 0, p50: 1, p99, p999: 9, targetCpuPct: 10 },
  });
  const m = medianOfRounds([r(900, 90, 30), r(500, null, 10), r(700, 70, 20)]);
  t.equal(m.saturation.throughput, 700);
  t.equal(m.saturation.targetCpuPct, 80, 'a round without a CPU figure does not count');
  t.equal(m.paced.p99, 20);
  t.equal(m.paced.rate, 100, 'the paced rate is the one every round used');
  t.same(m.connect, { admitted: 30 }, 'the rest is the first round\'s');
  t.throws(() => medianOfRounds([]));
  // Added latency is taken within each round, then the median: not median(ours) − median(direct).
  const ours = [r(1, 1, 30), r(1, 1, 10), r(1, 1, 50)];
  const direct = [r(1, 1, 25), r(1, 1, 2), r(1, 1, 1)];
  t.equal(addedOver(ours, direct, (x) => x.paced.p99), 8, 'differences 5, 8, 49: median 8');
  t.equal(addedOver([r(1, 1, null), r(1, 1, 4)], [r(1, 1, 1), r(1, 1, 1)], (x) => x.paced.p99), 3, 'a round without a figure is left out');
  t.equal(addedOver([r(1, 1, 4)], [], (x) => x.paced.p99), null, 'no direct round: no figure');
  t.equal(roundsNote({ ours: [r(500, 1, 1)] }), null, 'one round: no note');
  t.equal(
    roundsNote({ ours: [r(600, 1, 1), r(800, 1, 1)], haproxy: [r(1000, 1, 1), r(1000, 1, 1)] }),
    'throughput in each of 2 rounds (round trips/s): ours 600 / 800; haproxy 1,000 / 1,000; ours/HAProxy per round 0.60× / 0.80×',
  );
});
