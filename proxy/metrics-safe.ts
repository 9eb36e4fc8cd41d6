/**
 * Thin wrappers around prom-client metrics that pass every label value through its clamp
 * (see `metrics-labels.ts`) before it reaches the metric. Code elsewhere in the proxy only ever sees
 * these wrappers, so no call site can create an unbounded series by accident.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';

/** Label values as call sites pass them: a string or number per label name. */
export type LabelSet = Record<string, string | number>;

/** One clamp per label name: maps any input to a bounded label value. */
export type LabelClamps<V extends LabelSet> = { readonly [K in keyof V]: (value: unknown) => string };

type Names<V extends LabelSet> = Extract<keyof V, string>;

/** Applies the clamps; labels not named in `clamps` are dropped, missing ones become "other". */
function clampAll<V extends LabelSet>(clamps: LabelClamps<V>, labels: V): Record<Names<V>, string> {
  const out = {} as Record<Names<V>, string>;
  for (const name of Object.keys(clamps) as Names<V>[]) out[name] = clamps[name](labels[name]);
  return out;
}

/** A counter whose label values are always clamped. */
export class SafeCounter<V extends LabelSet> {
  /** @param metric the registered prom-client counter (exposed read-only for tests and scrapes). */
  constructor(readonly metric: Counter<Names<V>>, private readonly clamps: LabelClamps<V>) {}

  /** Adds `value` (default 1, must be >= 0) to the series named by `labels`. */
  inc(labels: V, value = 1): void {
    this.metric.inc(clampAll(this.clamps, labels), value);
  }

  /** The clamped label set (for callers that bind a label child once on a hot path). */
  clampLabels(labels: V): V {
    return clampAll(this.clamps, labels) as V;
  }
}

/** A gauge whose label values are always clamped. */
export class SafeGauge<V extends LabelSet> {
  /** @param metric the registered prom-client gauge. */
  constructor(readonly metric: Gauge<Names<V>>, private readonly clamps: LabelClamps<V>) {}

  /** Adds `value` (default 1). */
  inc(labels: V, value = 1): void {
    this.metric.inc(clampAll(this.clamps, labels), value);
  }

  /** Subtracts `value` (default 1). */
  dec(labels: V, value = 1): void {
    this.metric.dec(clampAll(this.clamps, labels), value);
  }

  /** Sets the series to `value`. */
  set(labels: V, value: number): void {
    this.metric.set(clampAll(this.clamps, labels), value);
  }
}

/** A histogram in seconds whose label values are always clamped. */
export class SafeHistogram<V extends LabelSet> {
  /** @param metric the registered prom-client histogram. */
  constructor(readonly metric: Histogram<Names<V>>, private readonly clamps: LabelClamps<V>) {}

  /** The clamped label set (for callers that bind a label child once on a hot path). */
  clampLabels(labels: V): V {
    return clampAll(this.clamps, labels) as V;
  }

  /** Records one observation of `seconds`. */
  observe(labels: V, seconds: number): void {
    this.metric.observe(clampAll(this.clamps, labels), seconds);
  }

  /**
   * Starts a monotonic timer. The returned function records the elapsed time under the labels given
   * at the end (an outcome is usually known only then) and returns the elapsed seconds.
   */
  startTimer(): (labels: V) => number {
    const start = process.hrtime.bigint();
    return (labels: V) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.observe(labels, seconds);
      return seconds;
    };
  }
}
