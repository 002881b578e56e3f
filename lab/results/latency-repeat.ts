import type { LatencyPath } from '../observations.js'
import { overRuns, poolCounts } from '../metrics/repeat.js'
import { percent, worst } from './checks.js'
import { boundOverRuns, repetitionsOf } from './repeat-checks.js'
import type { Check, LatencyFigure, LatencyFigureMetric, LatencyResults } from './types.js'

/**
 * `iotmesh experiment latency --repeat N`: N runs, each with fresh processes (new keys, ports and links) and its own
 * seed (seed X, X+1, …: the order of the paths within each round), as one results object: the first run's tables
 * and chart; every figure over the runs with the mean and 95 % Student t-interval (metrics/repeat.ts); the checks
 * judged on them. A run is the unit for latency: its probes share the run's processes and the machine's moments, so
 * they are not pooled into one sample, and a quantile (a path's p50, the median of the paired differences) is taken
 * per run and its runs' values given a t-interval (a bootstrap of 3–5 per-run values cannot reach past them).
 *
 * - "a is faster than b" holds when the t-interval over the runs of each run's median paired difference (a − b)
 *   lies at or below 0, fails when it lies above, and is undecided across 0: a run of few rounds can "pass" on
 *   noise that the next run reverses. The undecided verdict states the smallest difference the runs can tell.
 * - "every probe arrived", an all-or-none claim, keeps each run's share on its t-interval (as failover's
 *   "nothing lost"): every probe in every run passes, a loss in one run of several is undecided, losses in every
 *   run fail. The pooled probes (Σ received of Σ sent) are shown beside it.
 */

const INTERVAL = 'mean of the runs, 95 % two-sided Student t-interval (n − 1 degrees of freedom) of each run\'s value (a quantile is taken per run); received also pools the probes (Σ received of Σ sent, 95 % Wilson interval); each run fresh processes and its own seed (the order of the paths within each round)'

/** One latency figure from each run's value: mean and interval cut to what it can be; `received` keeps its counts and their pool. */
export function latencyFigure (path: LatencyPath, metric: LatencyFigureMetric, values: Array<number | null>, options: { versus?: LatencyPath, counts?: Array<{ x: number, n: number } | null> } = {}): LatencyFigure {
  const range = metric === 'received' ? { min: 0, max: 1, digits: 4 } : { min: metric === 'difference-ms' ? -Infinity : 0, max: Infinity, digits: 3 }
  const figure: LatencyFigure = { path, ...(options.versus === undefined ? {} : { versus: options.versus }), metric, values, ...overRuns(values, range) }
  return metric === 'received' && options.counts !== undefined ? { ...figure, counts: options.counts, pooled: poolCounts(options.counts) } : figure
}

const PERCENTILES = { 'p50-ms': 'p50', 'p95-ms': 'p95', 'p99-ms': 'p99' } as const

/** Every figure of the runs: per path its percentiles and the share received, then each paired difference. */
export function latencyFigures (runs: readonly LatencyResults[]): LatencyFigure[] {
  const first = runs[0]
  if (first === undefined) return []
  const out: LatencyFigure[] = []
  for (const path of first.parameters.paths) {
    const summaries = runs.map((r) => r.paths.find((p) => p.path === path))
    for (const [metric, key] of Object.entries(PERCENTILES) as Array<[LatencyFigureMetric, 'p50' | 'p95' | 'p99']>) {
      const values = summaries.map((s) => s?.latencyMs?.[key] ?? null)
      if (values.some((v) => v !== null)) out.push(latencyFigure(path, metric, values))
    }
    const counts = summaries.map((s) => s === undefined || s.sent === 0 ? null : { x: s.received, n: s.sent })
    if (counts.some((c) => c !== null)) out.push(latencyFigure(path, 'received', counts.map((c) => c === null ? null : c.x / c.n), { counts }))
  }
  for (const d of first.differences ?? []) {
    const values = runs.map((r) => r.differences?.find((x) => x.a === d.a && x.b === d.b)?.medianMs ?? null)
    if (values.some((v) => v !== null)) out.push(latencyFigure(d.a, 'difference-ms', values, { versus: d.b }))
  }
  return out
}

const ms = (x: number): string => `${x.toFixed(3)} ms`
const signed = (x: number): string => `${x > 0 ? '+' : ''}${ms(x)}`

/** The latency checks over repeated runs (the statements of results/checks.ts `latencyChecks`, runs as the unit). */
export function repeatedLatencyChecks (figures: readonly LatencyFigure[]): Check[] {
  const faster = (id: string, statement: string, a: LatencyPath, b: LatencyPath): Check => {
    const full = `${statement} (each run's median of the round-by-round difference; 95 % t-interval over the runs at or below 0)`
    const f = figures.find((x) => x.metric === 'difference-ms' && x.path === a && x.versus === b)
    if (f === undefined) return { id, statement: full, status: 'not-run', observed: 'no paired rounds in these runs' }
    const { verdict, observed } = boundOverRuns(f, { at: 'most', threshold: 0 }, signed, ms)
    const runs = f.values.map((v) => v === null ? 'n/a' : signed(v)).join(', ')
    return { id, statement: full, status: verdict, observed: `${a} − ${b}: ${observed}; runs ${runs}` }
  }
  const received = figures.filter((f) => f.metric === 'received')
  const arrived: Check = received.length === 0
    ? { id: 'all-probes-arrived', statement: 'every probe arrived, on every path, in every run', status: 'not-run', observed: 'no probes sent' }
    : (() => {
        const judged = received.map((f) => {
          const { verdict, observed } = boundOverRuns(f, { at: 'least', threshold: 1 }, percent)
          const p = f.pooled
          return { verdict, observed: `${f.path}: ${p === undefined ? '' : `${p.x} of ${p.n} pooled; `}each run ${observed}` }
        })
        return { id: 'all-probes-arrived', statement: 'every probe arrived, on every path, in every run (each run\'s share received, 95 % t-interval over the runs)', status: worst(judged.map((j) => j.verdict)), observed: judged.map((j) => j.observed).join('; ') }
      })()
  return [
    faster('one-hop-beats-broker', 'one mesh hop is faster than the broker path', 'one-hop', 'broker'),
    faster('hops-cost', 'three mesh hops take longer than one', 'one-hop', 'three-hop'),
    arrived
  ]
}

/** N latency runs as one results object (see above): the first run's paths, the repetitions, the checks on them. Provenance and notes are the caller's. */
export function combineLatencyRuns (runs: readonly LatencyResults[]): LatencyResults {
  const figures = latencyFigures(runs)
  const repetitions = repetitionsOf(runs, INTERVAL, figures) // throws below two runs
  return { ...(runs[0] as LatencyResults), finishedAt: (runs.at(-1) as LatencyResults).finishedAt, repetitions, checks: repeatedLatencyChecks(figures) }
}

/** A saved repeated latency run through the current code (`--from FILE --render-only`): intervals and checks again from each run's values. */
export function refreshLatencyRepetitions (results: LatencyResults): LatencyResults {
  const rep = results.repetitions
  if (rep === undefined) return results
  const figures = rep.figures.map((f) => latencyFigure(f.path, f.metric, f.values, { ...(f.versus === undefined ? {} : { versus: f.versus }), ...(f.counts === undefined ? {} : { counts: f.counts }) }))
  return { ...results, repetitions: { ...rep, figures }, checks: repeatedLatencyChecks(figures) }
}
