import { round, sortNumbers } from './stats.js'

/**
 * A distribution-free 95 % interval for a median, from order statistics (Conover, "Practical
 * Nonparametric Statistics", §3.2; the interval behind the sign test): with n values sorted, the
 * median lies between the j-th and the (n + 1 − j)-th with probability 1 − 2·P(Bin(n, ½) ≤ j − 1),
 * and j is the largest rank for which that is at least 95 %. Exact binomial tail, no normal
 * approximation. It assumes independent values: probes on a shared machine are not quite (a slow
 * moment touches neighbours), so the interval is a little too narrow, never too wide.
 */

/** The largest rank j (1-based) with P(Bin(n, ½) ≤ j − 1) ≤ α/2; 0 when no rank is small enough (n ≤ 5 at 95 %). */
export function medianRank (n: number, alpha = 0.05): number {
  if (n <= 0) return 0
  // log P(X = k) for X ~ Bin(n, ½), built up from k = 0: C(n, k) / 2ⁿ.
  let logPmf = -n * Math.LN2
  let cdf = 0
  let j = 0
  for (let k = 0; k < n; k++) {
    cdf += Math.exp(logPmf)
    if (cdf > alpha / 2) break
    j = k + 1 // P(X ≤ k) ≤ α/2: rank k + 1 is a lower bound
    logPmf += Math.log((n - k) / (k + 1))
  }
  return j
}

/** The median (nearest rank, as stats.ts) and its 95 % interval; interval null below 6 values. */
export interface MedianInterval {
  count: number
  median: number
  ci95: [number, number] | null
}

export function medianInterval (values: Iterable<number>, digits = 2): MedianInterval | null {
  const sorted = sortNumbers(values)
  const n = sorted.length
  if (n === 0) return null
  const median = round(sorted[Math.max(0, Math.ceil(n / 2) - 1)] as number, digits)
  const j = medianRank(n)
  const ci95: [number, number] | null = j === 0 ? null : [round(sorted[j - 1] as number, digits), round(sorted[n - j] as number, digits)]
  return { count: n, median, ci95 }
}
