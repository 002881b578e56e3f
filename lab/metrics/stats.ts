/**
 * Order statistics. Percentiles use the nearest-rank method: the p-th percentile of n sorted
 * values is the value at rank ⌈p/100 · n⌉ (1-based; rank 1 for p = 0), so it is always one of
 * the observed values and never an interpolation between two.
 */

export interface Percentiles {
  count: number
  min: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
}

/** Percentiles plus the 101 quantiles at p = 0, 1, …, 100 %, enough to draw a CDF. */
export interface Distribution extends Percentiles {
  quantiles: number[]
}

/** The p-th percentile (0 ≤ p ≤ 100) of values sorted ascending; undefined when empty. */
export function percentileOfSorted (sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1]
}

/** A sorted copy, ascending. */
export function sortNumbers (values: Iterable<number>): number[] {
  return [...values].sort((a, b) => a - b)
}

/** Percentiles of the values (any order), rounded to `digits` decimals; null when there are none. */
export function percentiles (values: Iterable<number>, digits = 1): Percentiles | null {
  const sorted = sortNumbers(values)
  if (sorted.length === 0) return null
  const at = (p: number): number => round(percentileOfSorted(sorted, p) as number, digits)
  return {
    count: sorted.length,
    min: round(sorted[0] as number, digits),
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: round(sorted[sorted.length - 1] as number, digits),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length, digits)
  }
}

/** Percentiles and quantiles; null when there are no values. */
export function distribution (values: Iterable<number>, digits = 1): Distribution | null {
  const sorted = sortNumbers(values)
  const summary = percentiles(sorted, digits)
  if (summary === null) return null
  const quantiles = Array.from({ length: 101 }, (_, p) => round(percentileOfSorted(sorted, p) as number, digits))
  return { ...summary, quantiles }
}

/** The median (nearest rank, the lower middle for an even count); null when empty. */
export function median (values: Iterable<number>): number | null {
  return percentileOfSorted(sortNumbers(values), 50) ?? null
}

/** Rounds to `digits` decimals; -0 becomes 0 so the JSON stays stable. */
export function round (value: number, digits = 1): number {
  const factor = 10 ** digits
  const r = Math.round(value * factor) / factor
  return r === 0 ? 0 : r
}

/** a / b, or null when b is 0. */
export function ratio (a: number, b: number, digits = 4): number | null {
  return b === 0 ? null : round(a / b, digits)
}
