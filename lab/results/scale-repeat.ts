import { overRuns, poolCounts } from '../metrics/repeat.js'
import { sortScalePoints } from '../metrics/scale.js'
import { round } from '../metrics/stats.js'
import type { Mode } from '../observations.js'
import { percent, readingsToShow, scaleDelivered, worst } from './checks.js'
import { boundOverRuns, combine, repetitionsOf, side } from './repeat-checks.js'
import type { Check, ScaleFigure, ScaleFigureMetric, ScalePoint, ScaleResults } from './types.js'

/**
 * `iotmesh experiment scale --repeat N`: N runs with seeds X, X+1, … (each its own fleets: identities, sensors,
 * links) as one results object, as failover does (results/repeat-checks.ts): the first run's points, tables and
 * chart; every figure per mode and fleet size over the runs, with the mean and 95 % Student t-interval
 * (metrics/repeat.ts); and the checks judged on them:
 *
 * - `scale-delivery`, a share against 99 %, is judged per fleet on the runs' readings pooled (Σ delivered of Σ
 *   published, 95 % Wilson), as a single run judges its own window: three windows of 50 of 50 are 150 readings,
 *   which still cannot show 99 % (it takes 381). A pass needs the t-interval of the per-run shares to agree (a
 *   run-level effect, one seed's slow fleet, would otherwise look too certain); a fail needs only the pool.
 * - the growth checks (`mesh-per-node-sublinear`, `broker-per-device-flat`) judge a ratio each run measures within
 *   itself (per-device bytes/s of the largest fleet over the smallest, one transport) on its t-interval over the runs.
 *
 * A fleet size that some runs did not reach (a mode stops growing below 99 %) is judged on the runs that did.
 */

const INTERVAL = 'mean of the runs, 95 % two-sided Student t-interval (n − 1 degrees of freedom); delivery also pools its readings over the runs (Σ delivered of Σ published, 95 % Wilson interval); each run its own seed: identities, sensors, links'

const PICKS: Record<Exclude<ScaleFigureMetric, 'growth'>, (p: ScalePoint) => number | null> = {
  delivery: (p) => p.delivery,
  'bytes-per-s': (p) => p.perDevice?.bytesPerS ?? null,
  'frames-per-s': (p) => p.perDevice?.framesPerS ?? null,
  'cpu-percent': (p) => p.perDevice?.cpuPercent ?? null,
  'latency-p50-ms': (p) => p.latencyMs?.p50 ?? null,
  'latency-p99-ms': (p) => p.latencyMs?.p99 ?? null
}

/** One scale figure from each run's value: mean and interval cut to what it can be; delivery keeps its counts and their pool. */
export function scaleFigure (mode: Mode, devices: number, metric: ScaleFigureMetric, values: Array<number | null>, counts?: Array<{ x: number, n: number } | null>, from?: number): ScaleFigure {
  const range = { min: 0, max: metric === 'delivery' ? 1 : Infinity, digits: metric === 'delivery' ? 4 : 3 }
  const figure: ScaleFigure = { mode, devices, ...(from === undefined ? {} : { from }), metric, values, ...overRuns(values, range) }
  return metric === 'delivery' && counts !== undefined ? { ...figure, counts, pooled: poolCounts(counts) } : figure
}

/** Every figure of the runs: per mode and fleet size any run measured, then each mode's growth. */
export function scaleFigures (runs: readonly ScaleResults[]): ScaleFigure[] {
  const seen = new Map<string, ScalePoint>()
  for (const p of runs.flatMap((r) => r.points)) if (!seen.has(`${p.mode}/${p.devices}`)) seen.set(`${p.mode}/${p.devices}`, p)
  const out: ScaleFigure[] = []
  for (const { mode, devices } of sortScalePoints([...seen.values()])) {
    const points = runs.map((r) => r.points.find((p) => p.mode === mode && p.devices === devices))
    for (const metric of Object.keys(PICKS) as Array<keyof typeof PICKS>) {
      const values = points.map((p) => p === undefined ? null : PICKS[metric](p))
      if (values.every((v) => v === null)) continue
      const counts = metric === 'delivery' ? points.map((p) => p === undefined || p.readings === 0 ? null : { x: scaleDelivered(p), n: p.readings }) : undefined
      out.push(scaleFigure(mode, devices, metric, values, counts))
    }
  }
  const modes = [...new Set(runs.flatMap((r) => r.points.map((p) => p.mode)))]
  return [...out, ...modes.flatMap((m) => growthFigure(runs, m))]
}

/**
 * Per-device bytes/s of the largest fleet over the smallest, each run's own ratio: the smallest fleet the first run
 * measured, and the largest that every run measured on the same transport (a change of transport is a change of
 * method: results/checks.ts `scaleChecks`).
 */
function growthFigure (runs: readonly ScaleResults[], mode: Mode): ScaleFigure[] {
  const measured = (r: ScaleResults): ScalePoint[] => r.points.filter((p) => p.mode === mode && p.perDevice !== null && p.perDevice.bytesPerS > 0).sort((a, b) => a.devices - b.devices)
  const from = runs[0] === undefined ? undefined : measured(runs[0])[0]
  if (from === undefined) return []
  const everywhere = (n: number): boolean => runs.every((r) => measured(r).some((p) => p.devices === n && p.transport === from.transport))
  const to = measured(runs[0] as ScaleResults).filter((p) => p.transport === from.transport && everywhere(p.devices) && everywhere(from.devices)).at(-1)
  if (to === undefined || to.devices === from.devices) return []
  const bytes = (r: ScaleResults, n: number): number => measured(r).find((p) => p.devices === n)?.perDevice?.bytesPerS as number
  return [scaleFigure(mode, to.devices, 'growth', runs.map((r) => round(bytes(r, to.devices) / bytes(r, from.devices), 4)), undefined, from.devices)]
}

const find = (figures: readonly ScaleFigure[], mode: Mode, metric: ScaleFigureMetric): ScaleFigure[] => figures.filter((f) => f.mode === mode && f.metric === metric)

/** Every fleet size delivers ≥ 99 %, per fleet on its pooled readings (Wilson), the t-interval over the runs agreeing for a pass. */
function deliveryOverRuns (figures: readonly ScaleFigure[]): Check {
  const id = 'scale-delivery'
  const statement = 'every fleet size delivers ≥ 99 % of its readings to the gateway, in every mode (per fleet, the runs\' readings pooled: 95 % Wilson interval; the t-interval over the runs must agree for a pass)'
  const rule = { at: 'least', threshold: 0.99 } as const
  const judged = figures.filter((f) => f.metric === 'delivery').map((f) => {
    const p = f.pooled
    const label = `${f.mode} with ${f.devices} devices`
    if (p === undefined || p.share === null) return { verdict: 'fail' as Check['status'], observed: `${label}: nothing published (fail)` }
    const runs = f.values.filter((v) => v !== null).length
    const verdict = combine(side(p.low, p.high, rule), f.low === null || f.high === null ? null : side(f.low, f.high, rule))
    const spread = f.low === null || f.high === null ? '' : `, t-interval [${percent(f.low)}, ${percent(f.high)}]`
    const needs = verdict !== 'undecided' ? '' : p.n < readingsToShow(0.99) ? `; ≥ 99 % needs ≥ ${readingsToShow(0.99)} readings, all delivered` : side(p.low, p.high, rule) === 'pass' ? '; the runs disagree' : ''
    return { verdict, observed: `${label}: ${p.x} of ${p.n} pooled over ${runs} run${runs === 1 ? '' : 's'}, ${percent(p.share)} [${percent(p.low)}, ${percent(p.high)}] (Wilson)${spread} (${verdict}${needs})` }
  })
  if (judged.length === 0) return { id, statement, status: 'not-run', observed: 'not in these runs' }
  const status = worst(judged.map((j) => j.verdict))
  const held = judged.filter((j) => j.verdict === 'pass').length
  const listed = status === 'pass' ? judged : judged.filter((j) => j.verdict !== 'pass')
  return { id, statement, status, observed: `${held} of ${judged.length} fleets hold; ${listed.map((j) => j.observed).join('; ')}` }
}

/** A mode's growth against a bound ("at most"), on its t-interval over the runs. */
function growthCheck (id: string, statement: string, figures: readonly ScaleFigure[], mode: Mode, bound: (f: ScaleFigure) => number): Check {
  const f = find(figures, mode, 'growth')[0]
  if (f === undefined) return { id, statement, status: 'not-run', observed: `no ${mode} fleets of two sizes on one transport in every run` }
  const threshold = bound(f)
  const { verdict, observed } = boundOverRuns(f, { at: 'most', threshold }, (x) => `×${x.toFixed(2)}`, (x) => x.toFixed(2))
  return { id, statement, status: verdict, observed: `${mode}, per-device bytes/s from ${f.from ?? '?'} to ${f.devices} devices: ${observed}; bound ×${threshold.toFixed(2)}` }
}

/** The scale checks judged over repeated runs: delivery on pooled readings per fleet, growth on t-intervals. */
export function repeatedScaleChecks (figures: readonly ScaleFigure[]): Check[] {
  return [
    deliveryOverRuns(figures),
    growthCheck('mesh-per-node-sublinear', 'mesh per-node traffic grows more slowly than the fleet (each run\'s growth from the smallest to the largest fleet on one transport; 95 % t-interval over the runs below the fleet\'s growth)',
      figures, 'mesh', (f) => f.devices / (f.from ?? f.devices)),
    growthCheck('broker-per-device-flat', 'broker-mode per-device traffic stays flat as the fleet grows (each run\'s growth within ×1.5; 95 % t-interval over the runs)',
      figures, 'broker', () => 1.5)
  ]
}

/** N scale runs as one results object (see above): the first run's points, the repetitions, the checks on them. Provenance and notes are the caller's. */
export function combineScaleRuns (runs: readonly ScaleResults[]): ScaleResults {
  const first = runs[0]
  const last = runs.at(-1)
  const figures = scaleFigures(runs)
  const repetitions = repetitionsOf(runs, INTERVAL, figures) // throws below two runs
  return { ...(first as ScaleResults), finishedAt: (last as ScaleResults).finishedAt, repetitions, checks: repeatedScaleChecks(figures) }
}

/** A saved repeated scale run through the current code (`--from FILE --render-only`): intervals, pools and checks again from each run's values. */
export function refreshScaleRepetitions (results: ScaleResults): ScaleResults {
  const rep = results.repetitions
  if (rep === undefined) return results
  const figures = rep.figures.map((f) => scaleFigure(f.mode, f.devices, f.metric, f.values, f.counts, f.from))
  return { ...results, repetitions: { ...rep, figures }, checks: repeatedScaleChecks(figures) }
}
