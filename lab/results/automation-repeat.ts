import { meshError } from '../../shared/index.js'
import type { AutomationWay } from '../metrics/automation.js'
import { tInterval } from '../metrics/repeat.js'
import { round } from '../metrics/stats.js'
import { EXPIRY_TOLERANCE_MS, WORKING_SHARE } from './automation.js'
import { percent } from './checks.js'
import type { AutomationFigure, AutomationFigureMetric, AutomationRepetitions, AutomationResults, Check } from './types.js'

/**
 * `iotmesh experiment automation --repeat N`: N runs with seeds X, X+1, … (each its own visits,
 * crashes and split) as one results object, as failover does (results/repeat-checks.ts): the first
 * run's tables and charts, every figure over the runs with the mean and a 95 % Student t-interval
 * (metrics/repeat.ts), and the checks judged on those intervals. A run is the unit: the triggers of
 * one run share its faults and its world, so they are not pooled into one proportion (that would
 * make the intervals narrower than the runs warrant); a single run's checks (results/automation.ts)
 * use Wilson intervals over its triggers instead.
 */

const METRICS: Record<AutomationFigureMetric, (p: AutomationResults['ways'][number]['total']) => number | null> = {
  'not-on-time': (p) => p.notOnTimeShare,
  'latency-p50-ms': (p) => p.latencyMs?.p50 ?? null,
  twice: (p) => p.triggers === 0 ? null : p.twice / p.triggers
}
const SHARES = new Set<AutomationFigureMetric>(['not-on-time', 'twice'])

export function automationFigure (way: AutomationWay, phase: string, metric: AutomationFigureMetric, values: Array<number | null>): AutomationFigure {
  const { mean, low, high } = tInterval(values.filter((v): v is number => v !== null))
  const max = SHARES.has(metric) ? 1 : Infinity
  const r = (x: number | null): number | null => x === null ? null : round(Math.min(max, Math.max(0, x)), metric.endsWith('-ms') ? 1 : 4)
  return { way, phase, metric, values, mean: r(mean), low: r(low), high: r(high) }
}

/** Every figure (way × phase × metric) of the runs; a phase without triggers in a run has no value there. */
export function automationFigures (runs: readonly AutomationResults[]): AutomationFigure[] {
  const first = runs[0]
  if (first === undefined) return []
  const out: AutomationFigure[] = []
  for (const w of first.ways) {
    for (const phase of [...first.plan.phases.map((p) => p.name as string), 'all']) {
      for (const metric of Object.keys(METRICS) as AutomationFigureMetric[]) {
        const values = runs.map((run) => {
          const way = run.ways.find((x) => x.way === w.way)
          const p = phase === 'all' ? way?.total : way?.phases.find((x) => x.name === phase)
          return p === undefined || p.triggers === 0 ? null : METRICS[metric](p)
        })
        if (values.some((v) => v !== null)) out.push(automationFigure(w.way, phase, metric, values))
      }
    }
  }
  return out
}

const find = (figures: readonly AutomationFigure[], way: AutomationWay, phase: string, metric: AutomationFigureMetric): AutomationFigure | undefined =>
  figures.find((f) => f.way === way && f.phase === phase && f.metric === metric)

const show = (f: AutomationFigure): string => f.mean === null ? 'n/a' : f.low === null || f.high === null
  ? `${percent(f.mean)} (one run with triggers)` : `${percent(f.mean)} [${percent(f.low)}, ${percent(f.high)}]`

function works (id: string, statement: string, figures: readonly AutomationFigure[], pairs: Array<[AutomationWay, string]>): Check {
  const judged = pairs.flatMap(([way, phase]) => {
    const f = find(figures, way, phase, 'not-on-time')
    if (f === undefined) return []
    const verdict: Check['status'] = f.low === null || f.high === null ? 'undecided' : f.high <= WORKING_SHARE ? 'pass' : f.low > WORKING_SHARE ? 'fail' : 'undecided'
    return [{ verdict, observed: `${way}, ${phase}: not acted on in time ${show(f)} (${verdict})` }]
  })
  if (judged.length === 0) return { id, statement, status: 'not-run', observed: 'not in these runs' }
  const status: Check['status'] = judged.some((j) => j.verdict === 'fail') ? 'fail' : judged.some((j) => j.verdict === 'undecided') ? 'undecided' : 'pass'
  return { id, statement, status, observed: judged.map((j) => j.observed).join('; ') }
}

/** The automation checks on intervals over runs (the statements of results/automation.ts, the runs as the unit). */
export function repeatedAutomationChecks (figures: readonly AutomationFigure[], ways: readonly AutomationWay[], runChecks: AutomationRepetitions['runChecks']): Check[] {
  const checks: Check[] = []
  {
    const id = 'central-misses-while-broker-down'
    const statement = 'while the broker is down, rules at the gateway leave more triggers not acted on in time than rules on the devices (95 % t-interval over the runs of the paired difference above 0)'
    const c = find(figures, 'central', 'broker-down', 'not-on-time')
    const d = find(figures, 'device', 'broker-down', 'not-on-time')
    if (c === undefined || d === undefined) checks.push({ id, statement, status: 'not-run', observed: 'needs the central and device ways and a broker-down phase with triggers' })
    else {
      const diffs = c.values.flatMap((v, i) => v === null || d.values[i] === null || d.values[i] === undefined ? [] : [v - (d.values[i] as number)])
      const t = tInterval(diffs)
      const pts = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`
      const status: Check['status'] = t.low === null || t.high === null ? 'undecided' : t.low > 0 ? 'pass' : t.high < 0 ? 'fail' : 'undecided'
      const interval = t.mean === null ? 'no paired run' : t.low === null || t.high === null ? `${pts(t.mean)} points (one paired run)` : `${pts(t.mean)} [${pts(t.low)}, ${pts(t.high)}] points`
      checks.push({ id, statement, status, observed: `central ${show(c)}, device ${show(d)}; difference ${interval} over ${diffs.length} paired runs` })
    }
  }
  const has = (w: AutomationWay): boolean => ways.includes(w)
  checks.push(works('device-rules-work-while-broker-down', `while the broker is down, rules on the devices act in time on all but at most ${WORKING_SHARE * 100} % of the triggers (95 % t-interval over the runs)`,
    figures, has('device') ? [['device', 'broker-down']] : []))
  checks.push(works('hybrid-works-while-broker-down', `while the broker is down, hybrid acts in time on all but at most ${WORKING_SHARE * 100} % of the triggers (95 % t-interval over the runs)`,
    figures, has('hybrid') ? [['hybrid', 'broker-down']] : []))
  checks.push(works('every-way-works-when-steady', `with no fault, every way acts in time on all but at most ${WORKING_SHARE * 100} % of the triggers (95 % t-interval over the runs)`,
    figures, ways.map((w) => [w, 'steady'] as [AutomationWay, string])))
  {
    // A hard bound, not a rate: it holds only when it held in every run.
    const id = 'never-beyond-expiry-tolerance'
    const statuses = runChecks.find((c) => c.id === id)?.statuses ?? []
    const status: Check['status'] = statuses.length === 0 ? 'not-run' : statuses.includes('fail') ? 'fail' : statuses.every((s) => s === 'pass') ? 'pass' : 'undecided'
    checks.push({
      id,
      statement: `no command is executed later than its expiry plus the devices' clock tolerance (${EXPIRY_TOLERANCE_MS / 1000} s), in any run`,
      status,
      observed: `held in ${statuses.filter((s) => s === 'pass').length} of ${statuses.length} runs`
    })
  }
  return checks
}

/** N automation runs as one results object (see above). Provenance and notes are the caller's. */
export function combineAutomationRuns (runs: readonly AutomationResults[]): AutomationResults {
  const first = runs[0]
  const last = runs.at(-1)
  if (first === undefined || last === undefined || runs.length < 2) throw meshError('ERR_BAD_ARGUMENT', `--repeat needs at least 2 runs, got ${runs.length}`)
  const figures = automationFigures(runs)
  const repetitions: AutomationRepetitions = {
    count: runs.length,
    seeds: runs.map((r) => r.seed),
    interval: 'mean of the runs, 95 % two-sided Student t-interval (n − 1 degrees of freedom); each run its own seed: visits, crashes and split',
    figures,
    runChecks: first.checks.map((c) => ({ id: c.id, statuses: runs.map((r) => r.checks.find((x) => x.id === c.id)?.status ?? 'not-run') }))
  }
  const ways = first.ways.map((w) => w.way)
  return { ...first, finishedAt: last.finishedAt, repetitions, checks: repeatedAutomationChecks(figures, ways, repetitions.runChecks) }
}

/** A saved repeated run through the current code (`--from FILE --render-only`): intervals and checks again from each run's values. */
export function refreshAutomationRepetitions (results: AutomationResults): AutomationResults {
  const rep = results.repetitions
  if (rep === undefined) return results
  const figures = rep.figures.map((f) => automationFigure(f.way, f.phase, f.metric, f.values))
  return { ...results, repetitions: { ...rep, figures }, checks: repeatedAutomationChecks(figures, results.ways.map((w) => w.way), rep.runChecks) }
}
