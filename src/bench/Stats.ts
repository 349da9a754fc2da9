/**
 * Summary statistics of benchmark samples (milliseconds): exact percentiles by nearest rank over every sample.
 */

/** Percentiles and mean of a set of samples. */
export interface Summary {
  readonly count: number
  readonly mean: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

/** The nearest-rank percentile `q` (0..1) of sorted samples. */
const percentile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

const round = (n: number) => Math.round(n * 100) / 100

/** Summarize samples; an empty set summarizes to zeros. */
export const summarize = (samples: ReadonlyArray<number>): Summary => {
  const sorted = [...samples].sort((a, b) => a - b)
  const sum = sorted.reduce((s, x) => s + x, 0)
  return {
    count: sorted.length,
    mean: round(sorted.length === 0 ? 0 : sum / sorted.length),
    p50: round(percentile(sorted, 0.5)),
    p95: round(percentile(sorted, 0.95)),
    p99: round(percentile(sorted, 0.99)),
    max: round(sorted.at(-1) ?? 0)
  }
}
