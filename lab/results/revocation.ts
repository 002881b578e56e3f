import { tInterval } from '../metrics/repeat.js'
import { round } from '../metrics/stats.js'
import { summarizePath, type PathObservation, type RevocationPath } from '../metrics/revocation.js'
import { header, type RunInfo } from './assemble.js'
import type { Check, RevocationFigure, RevocationFigureMetric, RevocationParameters, RevocationResults, RevocationRunSummary } from './types.js'

/**
 * From what the revocation runner saw to results.json: per seed and path, the figures of
 * metrics/revocation.ts; over the seeds, every figure with its mean and a 95 % Student t-interval
 * (metrics/repeat.ts: a run is the unit; the nodes of one run share its timing, so they are not
 * pooled into one sample), and the checks: bounds judged on those intervals (pass when the whole
 * interval is inside the bound, fail when it is wholly outside, undecided otherwise or with one
 * run), and hard properties (no frame accepted by a node that already refused) judged on every run.
 */

export interface RevocationRunObservations { seed: number, paths: PathObservation[] }

export interface RevocationInput extends RunInfo {
  params: RevocationParameters
  paths: RevocationPath[]
  observations: RevocationRunObservations[]
}

/** "Within seconds" (issue 13): the bound on the time until the last node refuses a revoked device, ms. */
export const REFUSAL_BOUND_MS = 5000

const INTERVAL = 'mean of the runs (one per seed), 95 % two-sided Student t-interval (n − 1 degrees of freedom); null with one run'

/** A revocation run's results: per path, how soon the fleet refused the revoked device, and the checks. */
export function revocationResults (input: RevocationInput): RevocationResults {
  const runs: RevocationRunSummary[] = input.observations.map((o) => ({ seed: o.seed, paths: o.paths.map(summarizePath) }))
  const figures = revocationFigures(runs, input.paths)
  return {
    ...header('revocation', input.params.seed, input),
    parameters: { ...input.params, paths: [...input.paths] },
    interval: INTERVAL,
    runs,
    figures,
    checks: revocationChecks(runs, figures, input.paths, input.params.afterS * 1000)
  }
}

/**
 * A node that did not refuse within the window has no time: a percentile over the nodes exists only
 * when at least that share of them refused (the last node's time only when every node did);
 * otherwise the run has no value for it, and a bound on it is not met (`within`).
 */
const over = (p: RevocationRunSummary['paths'][number], share: number, value: number | undefined): number | null =>
  p.nodes > 0 && p.refusing >= Math.ceil(share * p.nodes) && value !== undefined ? value : null

const PICKS: Record<RevocationFigureMetric, (p: RevocationRunSummary['paths'][number]) => number | null> = {
  'refusal-p50-ms': (p) => over(p, 0.5, p.refusalMs?.p50),
  'refusal-p99-ms': (p) => over(p, 0.99, p.refusalMs?.p99),
  'refusal-max-ms': (p) => over(p, 1, p.refusalMs?.max),
  refusing: (p) => p.nodes === 0 ? null : p.refusing / p.nodes,
  'accepted-after': (p) => p.acceptedAfter,
  'last-accepted-ms': (p) => p.lastAcceptedMs,
  'cut-ms': (p) => p.cutMs
}
/** The revocation figures followed over the runs. */
export const REVOCATION_METRICS = Object.keys(PICKS) as RevocationFigureMetric[]

export function revocationFigure (path: RevocationPath, metric: RevocationFigureMetric, values: Array<number | null>): RevocationFigure {
  const { mean, low, high } = tInterval(values.filter((v): v is number => v !== null))
  const max = metric === 'refusing' ? 1 : Infinity
  const r = (x: number | null): number | null => x === null ? null : round(Math.min(max, Math.max(0, x)), metric.endsWith('-ms') ? 2 : 4)
  return { path, metric, values, mean: r(mean), low: r(low), high: r(high) }
}

/** Every figure (path × metric) over the runs; one no run has a value of is left out. */
export function revocationFigures (runs: readonly RevocationRunSummary[], paths: readonly RevocationPath[]): RevocationFigure[] {
  const out: RevocationFigure[] = []
  for (const path of paths) {
    for (const metric of REVOCATION_METRICS) {
      const values = runs.map((run) => { const p = run.paths.find((x) => x.path === path); return p === undefined ? null : PICKS[metric](p) })
      if (values.some((v) => v !== null)) out.push(revocationFigure(path, metric, values))
    }
  }
  return out
}

const find = (figures: readonly RevocationFigure[], path: RevocationPath, metric: RevocationFigureMetric): RevocationFigure | undefined =>
  figures.find((f) => f.path === path && f.metric === metric)

const seconds = (x: number): string => `${(x / 1000).toFixed(2)} s`
const showMs = (f: RevocationFigure): string => f.mean === null ? 'n/a' : f.low === null || f.high === null
  ? `${seconds(f.mean)} (one run: no interval)` : `${seconds(f.mean)} [${seconds(f.low)}, ${seconds(f.high)}]`

/**
 * A time below a bound, judged on its interval over the runs. A run without a value (the time never
 * came within its window of `windowMs`) fails the bound when the window is at least the bound.
 */
function within (id: string, statement: string, f: RevocationFigure | undefined, bound: number, what: string, windowMs: number): Check {
  if (f === undefined) return { id, statement, status: 'not-run', observed: 'not in these runs, or in none of them within the window' }
  const missing = f.values.filter((v) => v === null).length
  const status: Check['status'] = missing > 0 ? (windowMs >= bound ? 'fail' : 'undecided')
    : f.low === null || f.high === null ? 'undecided' : f.high <= bound ? 'pass' : f.low > bound ? 'fail' : 'undecided'
  return { id, statement, status, observed: `${what} ${showMs(f)} over ${f.values.length - missing} run${f.values.length - missing === 1 ? '' : 's'}${missing === 0 ? '' : ` (${missing} without a value: never within the window)`}` }
}

/** The revocation experiment's checks, judged on the runs' figures. */
export function revocationChecks (runs: readonly RevocationRunSummary[], figures: readonly RevocationFigure[], paths: readonly RevocationPath[], windowMs = Infinity): Check[] {
  const checks: Check[] = []
  const of = (path: RevocationPath): Array<RevocationRunSummary['paths'][number]> => runs.flatMap((r) => r.paths.filter((p) => p.path === path))
  const mesh = paths.includes('mesh') ? of('mesh') : []
  const broker = paths.includes('broker') ? of('broker') : []
  {
    const id = 'mesh-every-node-refuses'
    const statement = 'in the mesh, every node refuses the revoked device before the observation ends, in every run'
    if (mesh.length === 0) checks.push({ id, statement, status: 'not-run', observed: 'no mesh path in this run' })
    else {
      const short = mesh.filter((p) => p.refusing < p.nodes)
      checks.push({ id, statement, status: short.length === 0 ? 'pass' : 'fail', observed: mesh.map((p, i) => `run ${i + 1}: ${p.refusing} of ${p.nodes} nodes`).join('; ') })
    }
  }
  checks.push(within('mesh-last-node-within-bound', `in the mesh, the last node refuses the revoked device within ${REFUSAL_BOUND_MS / 1000} s of the issue (95 % t-interval over the runs)`,
    paths.includes('mesh') ? meshMax(figures, runs) : undefined, REFUSAL_BOUND_MS, 'the last node refused after', windowMs))
  checks.push(within('broker-cuts-session-within-bound', `the broker closes the revoked device's session within ${REFUSAL_BOUND_MS / 1000} s of the issue (95 % t-interval over the runs)`,
    paths.includes('broker') ? find(figures, 'broker', 'cut-ms') ?? revocationFigure('broker', 'cut-ms', runs.map(() => null)) : undefined, REFUSAL_BOUND_MS, 'session closed after', windowMs))
  {
    // A hard property, not a rate: a node that holds the revocation accepts nothing more of the device.
    const id = 'nothing-accepted-after-refusal'
    const statement = 'no node accepts a frame of the revoked device after it began to refuse it (the broker: after it closed the session), in any run'
    const all = [...mesh, ...broker]
    if (all.length === 0) checks.push({ id, statement, status: 'not-run', observed: 'nothing ran' })
    else {
      const leaks = all.reduce((a, p) => a + p.acceptedAfterRefusal, 0)
      checks.push({ id, statement, status: leaks === 0 ? 'pass' : 'fail', observed: `${leaks} frames accepted after refusal over ${runs.length} run${runs.length === 1 ? '' : 's'} (${paths.join(', ')})` })
    }
  }
  return checks
}

/** The mesh's last-node figure; when no run has one (never every node within the window), one of nulls, which fails the bound. */
function meshMax (figures: readonly RevocationFigure[], runs: readonly RevocationRunSummary[]): RevocationFigure {
  return find(figures, 'mesh', 'refusal-max-ms') ?? revocationFigure('mesh', 'refusal-max-ms', runs.map(() => null))
}

/** A saved run through the current code (`--from FILE --render-only`): figures and checks again from each run's values. */
export function refreshRevocation (results: RevocationResults): RevocationResults {
  const figures = revocationFigures(results.runs, results.parameters.paths)
  return { ...results, interval: INTERVAL, figures, checks: revocationChecks(results.runs, figures, results.parameters.paths, results.parameters.afterS * 1000) }
}
