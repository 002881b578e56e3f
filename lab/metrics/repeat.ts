import type { Mode } from '../observations.js'
import { wilson } from '../results/checks.js'
import type { FailoverResults, PooledShare, RepeatedFigure, RepeatMetric } from '../results/types.js'
import { round } from './stats.js'

/**
 * Figures over repetitions (`iotmesh experiment failover --repeat N`): each run's value of a
 * figure, their mean and a 95 % confidence interval of the mean by Student's t (two-sided,
 * n − 1 degrees of freedom). Chosen over a bootstrap because a run is minutes long and N is
 * small (3–10): a percentile bootstrap of 5 values cannot reach past them and is too narrow,
 * while t states its assumption (roughly normal run-to-run variation) and widens honestly with few runs.
 *
 * A share (delivered, on time) also keeps each run's counts (x of n readings) and their pool over
 * the runs, Σx of Σn, with its 95 % Wilson interval: the t-interval measures the spread between
 * runs only, so three runs of 36 of 36 give it zero width, where 108 pooled readings cannot show
 * 99 % (Wilson's lower bound of 108 of 108 is 96.6 %). The checks on shares judge the pool
 * (results/repeat-checks.ts).
 */

/** t(0.975, df) for df = 1…30 (two-sided 95 %), then at 40, 60, 120 and ∞. */
const T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110,
  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]

/** Student's t quantile at 0.975 for `df` degrees of freedom (two-sided 95 %), from a table; Infinity below 1. */
export function tQuantile975 (df: number): number {
  if (df < 1) return Infinity
  if (df <= 30) return T_975[df - 1] as number
  // Between table rows, the value of the row below (a slightly wider interval: conservative).
  return df < 40 ? 2.042 : df < 60 ? 2.021 : df < 120 ? 2.000 : df < 1000 ? 1.980 : 1.960
}

/** Mean and 95 % t-interval of the values; the interval is null with fewer than two values. */
export function tInterval (values: readonly number[]): { mean: number | null, low: number | null, high: number | null } {
  const n = values.length
  if (n === 0) return { mean: null, low: null, high: null }
  const mean = values.reduce((a, b) => a + b, 0) / n
  if (n < 2) return { mean, low: null, high: null }
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)
  const half = tQuantile975(n - 1) * Math.sqrt(variance / n)
  return { mean, low: mean - half, high: mean + half }
}

/** One figure of every run, read by `pick` (null where a run lacks it). */
type Pick = (run: FailoverResults, mode: Mode, phase: string) => number | null | undefined

const PICKS: Record<RepeatMetric, Pick> = {
  'delivered-during': (r, m, p) => phase(r, m, p)?.gateway.ratioDuring,
  'delivered-on-time': (r, m, p) => phase(r, m, p)?.gateway.ratioOnTime,
  delivered: (r, m, p) => phase(r, m, p)?.gateway.ratio,
  'peer-during': (r, m, p) => phase(r, m, p)?.peer?.ratioDuring,
  'latency-p50-ms': (r, m, p) => phase(r, m, p)?.latencyMs.gateway?.p50,
  'longest-gap-ms': (r, m, p) => phase(r, m, p)?.longestGapMs,
  lost: (r, m, p) => phase(r, m, p)?.lostForGood,
  duplicates: (r, m, p) => phase(r, m, p)?.duplicates
}

export const REPEAT_METRICS = Object.keys(PICKS) as RepeatMetric[]

/** The counts behind each share: x readings of the phase's n published. */
type CountPick = (run: FailoverResults, mode: Mode, phase: string) => { x: number, n: number } | null
const of = (x: number | undefined, n: number | undefined): { x: number, n: number } | null => x === undefined || n === undefined || n === 0 ? null : { x, n }
const COUNTS: Partial<Record<RepeatMetric, CountPick>> = {
  'delivered-during': (r, m, p) => { const s = phase(r, m, p); return of(s?.gateway.deliveredDuring, s?.published) },
  'delivered-on-time': (r, m, p) => { const s = phase(r, m, p); return of(s?.gateway.deliveredOnTime, s?.published) },
  delivered: (r, m, p) => { const s = phase(r, m, p); return of(s?.gateway.delivered, s?.published) },
  'peer-during': (r, m, p) => { const s = phase(r, m, p); return of(s?.peer?.deliveredDuring, s?.peer === null ? undefined : s?.published) }
}

function phase (run: FailoverResults, mode: Mode, name: string): FailoverResults['modes'][number]['phases'][number] | undefined {
  const summary = run.modes.find((s) => s.mode === mode)
  if (summary === undefined) return undefined
  if (name === 'all') return summary.total
  const p = summary.phases.find((x) => x.name === name)
  return p !== undefined && p.published > 0 ? p : undefined
}

/** Every figure (mode × phase × metric) of the runs, with its values, mean and interval. */
export function repeatedFigures (runs: readonly FailoverResults[]): RepeatedFigure[] {
  const first = runs[0]
  if (first === undefined) return []
  const phases = [...first.timeline.phases.map((p) => p.name as string), 'all']
  const figures: RepeatedFigure[] = []
  for (const mode of first.parameters.modes) {
    for (const name of phases) {
      for (const metric of REPEAT_METRICS) {
        const values = runs.map((r) => PICKS[metric](r, mode, name) ?? null)
        const present = values.filter((v): v is number => v !== null)
        if (present.length === 0) continue
        const counts = COUNTS[metric]
        figures.push(figureFrom(mode, name, metric, values, counts === undefined ? undefined : runs.map((r) => counts(r, mode, name))))
      }
    }
  }
  return figures
}

/** Ratios lie in [0, 1], counts and times at or above 0: an interval is cut to what the figure can be. */
const RATIOS = new Set<RepeatMetric>(['delivered-during', 'delivered-on-time', 'delivered', 'peer-during'])

/** Σx of Σn over the runs that have counts, with the 95 % Wilson interval of the pooled share (4 decimals). */
export function poolCounts (counts: ReadonlyArray<{ x: number, n: number } | null>): PooledShare {
  const x = counts.reduce((a, c) => a + (c?.x ?? 0), 0)
  const n = counts.reduce((a, c) => a + (c?.n ?? 0), 0)
  const [low, high] = wilson(x, n)
  return { x, n, share: n === 0 ? null : round(x / n, 4), low: round(low, 4), high: round(high, 4) }
}

/**
 * One figure from each run's value: its mean and its interval, cut to the figure's possible range. A share given
 * each run's counts keeps them and their pool; results saved before counts were recorded have none.
 */
export function figureFrom (mode: Mode, phase: string, metric: RepeatMetric, values: Array<number | null>, counts?: Array<{ x: number, n: number } | null>): RepeatedFigure {
  const figure: RepeatedFigure = { mode, phase, metric, values, ...overRuns(values, { min: 0, max: RATIOS.has(metric) ? 1 : Infinity, digits: metric.endsWith('-ms') ? 3 : 4 }) }
  return RATIOS.has(metric) && counts !== undefined ? { ...figure, counts, pooled: poolCounts(counts) } : figure
}

/**
 * The mean and 95 % t-interval of each run's value (null where a run lacks it), cut to what the figure can be
 * ([min, max]) and rounded to `digits`: the part every experiment's figures over runs share (failover, scale, latency).
 */
export function overRuns (values: ReadonlyArray<number | null>, range: { min: number, max: number, digits: number }): { mean: number | null, low: number | null, high: number | null } {
  const { mean, low, high } = tInterval(values.filter((v): v is number => v !== null))
  const r = (x: number | null): number | null => x === null ? null : round(Math.min(range.max, Math.max(range.min, x)), range.digits)
  return { mean: r(mean), low: r(low), high: r(high) }
}

export function figureOf (figures: readonly RepeatedFigure[], mode: Mode, phase: string, metric: RepeatMetric): RepeatedFigure | undefined {
  return figures.find((f) => f.mode === mode && f.phase === phase && f.metric === metric)
}
