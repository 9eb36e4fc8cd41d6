/**
 * The relay runs in rounds: every target once per round, the order rotating from round to round, so
 * each target's figures come from several moments of a host whose speed drifts. The table shows
 * the median of the rounds; the rounds themselves stay in the JSON and their spread in the notes.
 */
import { round } from './report';
import type { RelayMeasure } from './scenarios';

/** The parts of a relay result that rounds combine (the scenario's result has more). */
export interface RelayRound {
  saturation: RelayMeasure;
  paced: RelayMeasure & { rate: number };
}

/** Median of the numbers (the mean of the middle two for an even count); null when there are none. */
export function median(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * One result standing for all `rounds` of a target: the first round's with every measured figure
 * replaced by its median over the rounds (each figure on its own).
 */
export function medianOfRounds<R extends RelayRound>(rounds: readonly R[]): R {
  if (rounds.length === 0) throw new Error('medianOfRounds: no rounds');
  const first = rounds[0]!;
  const m = (pick: (r: R) => number | null, digits: number) => {
    const v = median(rounds.map(pick));
    return v === null ? null : round(v, digits);
  };
  return {
    ...first,
    saturation: {
      ...first.saturation,
      throughput: m((r) => r.saturation.throughput, 0) ?? first.saturation.throughput,
      targetCpuPct: m((r) => r.saturation.targetCpuPct, 0),
    },
    paced: {
      ...first.paced,
      p50: m((r) => r.paced.p50, 3),
      p99: m((r) => r.paced.p99, 3),
      p999: m((r) => r.paced.p999, 3),
    },
  };
}

/**
 * A target's latency over direct's: the difference within each round (the two ran minutes apart at
 * most), then the median of those; rounds where either figure is missing are left out.
 */
export function addedOver<R>(rounds: readonly R[], direct: readonly R[], pick: (r: R) => number | null): number | null {
  const diffs = rounds.map((r, i) => {
    const a = pick(r);
    const b = direct[i] === undefined ? null : pick(direct[i]!);
    return a === null || b === null ? null : a - b;
  });
  const m = median(diffs);
  return m === null ? null : round(m, 3);
}

/**
 * The spread behind a median, for the table's notes: each target's throughput per round and, where
 * both ran, ours / HAProxy per round (each ratio from one round, minutes apart at most).
 */
export function roundsNote(perTarget: Readonly<Record<string, readonly RelayRound[]>>): string | null {
  const names = Object.keys(perTarget);
  const count = Math.max(0, ...names.map((n) => perTarget[n]!.length));
  if (count < 2) return null;
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  const parts = names.map((n) => `${n} ${perTarget[n]!.map((r) => fmt(r.saturation.throughput)).join(' / ')}`);
  const ours = perTarget.ours;
  const haproxy = perTarget.haproxy;
  if (ours && haproxy) {
    const ratios = ours.map((r, i) => (haproxy[i] ? (r.saturation.throughput / haproxy[i]!.saturation.throughput).toFixed(2) + '×' : 'n/a'));
    parts.push(`ours/HAProxy per round ${ratios.join(' / ')}`);
  }
  return `throughput in each of ${count} rounds (round trips/s): ${parts.join('; ')}`;
}
