/**
 * Benchmark helpers. Machines here are shared and noisy, so every figure is compared with a
 * baseline measured in the same run, and rates are taken as the median of rounds that alternate
 * between the things compared (drift hits each alike).
 */

/** Runs `fn` repeatedly for about `ms` milliseconds; returns operations per second. */
export function rate (fn: () => void, ms: number): number {
  // Warm up the JIT and caches, then time batches until the budget is spent.
  for (let i = 0; i < 50; i++) fn()
  let ops = 0
  const start = process.hrtime.bigint()
  const budget = BigInt(ms) * 1_000_000n
  let elapsed = 0n
  while (elapsed < budget) {
    for (let i = 0; i < 20; i++) fn()
    ops += 20
    elapsed = process.hrtime.bigint() - start
  }
  return ops / (Number(elapsed) / 1e9)
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number
}

/** Alternates the named measurements for `rounds` rounds; returns each one's median rate. */
export function interleaved (cases: Record<string, () => void>, rounds: number, ms: number): Record<string, number> {
  const results: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(cases)) (results[name] as number[]).push(rate(fn, ms))
  }
  return Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))]))
}

export const round = (n: number, digits = 3): number => Number(n.toFixed(digits))
