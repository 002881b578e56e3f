import { meshError } from '../../shared/index.js'
import { figureFrom, figureOf, repeatedFigures, tInterval } from '../metrics/repeat.js'
import type { Mode } from '../observations.js'
import { differenceInterval, percent, readingsToShow } from './checks.js'
import type { Check, FailoverResults, RepeatedFigure, RepeatMetric, Repetitions, RepetitionsOf } from './types.js'

/**
 * The failover checks over N runs (`--repeat N`), judged on 95 % intervals over the runs instead of
 * one run's figures, so that one late reading no longer flips a verdict. Each check is a threshold
 * on a figure: "at least θ" holds when the whole interval is at or above θ, fails when the whole
 * interval is below, and is undecided when it straddles θ (the runs cannot tell; more runs narrow
 * the interval — its half-width is the smallest difference they could detect). "At most θ" is the
 * mirror. Two kinds of figure:
 *
 * - A share against a threshold inside (0, 1) (`mesh-keeps-delivering`'s 99 % on time, and the
 *   difference of two shares in `hybrid-at-least-broker`) is judged on the runs' readings pooled:
 *   the 95 % Wilson interval of Σx / Σn (Newcombe's for a difference), as a single run is judged on
 *   its own readings (results/checks.ts). The t-interval of the per-run shares measures only the
 *   spread between runs: three runs of 36 of 36 give it zero width, though 108 readings cannot show
 *   99 % (Wilson's lower bound is 96.6 %; it takes 381). Pooling treats the runs' readings as one
 *   sample, which a run-level effect (one seed's split) would make too narrow, so a pass needs the
 *   t-interval over the runs to agree as well; a fail needs only the pool.
 * - A continuous figure (a silence, a count of lost or duplicated readings) and an all-or-none
 *   claim (100 %, 0) keep the t-interval of the per-run values: a figure that is the same in every
 *   run has a zero-width interval, so 0 lost in all runs passes, a loss in one run of five is
 *   undecided, losses in every run fail.
 */

interface Rule { mode: Mode, phase: string, metric: RepeatMetric, at: 'least' | 'most', threshold: number, show: (x: number) => string }

const pct = (x: number): string => percent(x)
const count = (x: number): string => x.toFixed(2)
const secs = (x: number): string => `${(x / 1000).toFixed(2)} s`
const SHARES = new Set<RepeatMetric>(['delivered-during', 'delivered-on-time', 'delivered', 'peer-during'])

/** Where an interval lies against a threshold: on the right side, the wrong side, or across it. */
export function side (low: number, high: number, rule: { at: 'least' | 'most', threshold: number }): Check['status'] {
  return rule.at === 'least'
    ? (low >= rule.threshold ? 'pass' : high < rule.threshold ? 'fail' : 'undecided')
    : (high <= rule.threshold ? 'pass' : low > rule.threshold ? 'fail' : 'undecided')
}

/** The pool decides a fail; a pass needs the spread between runs (the t-interval, where there is one) to agree. */
export function combine (pooled: Check['status'], overRuns: Check['status'] | null): Check['status'] {
  if (pooled !== 'pass') return pooled
  return overRuns === null || overRuns === 'pass' ? 'pass' : 'undecided'
}

const NO_COUNTS = 'the per-run counts are not in these results (saved before they were recorded), so the runs\' readings cannot be pooled; run again'

function judge (figure: RepeatedFigure, rule: Rule): { verdict: Check['status'], observed: string } {
  const { mean, low, high } = figure
  const label = `${rule.mode}, ${rule.phase}`
  const pooledRule = SHARES.has(rule.metric) && rule.threshold > 0 && rule.threshold < 1
  if (pooledRule) {
    const p = figure.pooled
    if (p === undefined || p.share === null) return { verdict: 'undecided', observed: `${label}: ${p === undefined ? NO_COUNTS : 'no readings'} (undecided)` }
    const overRuns = low === null || high === null ? null : side(low, high, rule)
    const verdict = combine(side(p.low, p.high, rule), overRuns)
    const runs = figure.values.map((v) => v === null ? 'n/a' : (v * 100).toFixed(1)).join(', ')
    const spread = low === null || high === null ? '' : ` (t-interval [${pct(low)}, ${pct(high)}])`
    const needs = rule.at === 'least' && verdict === 'undecided' && p.n < readingsToShow(rule.threshold)
      ? `; ≥ ${percent(rule.threshold)} needs ≥ ${readingsToShow(rule.threshold)} readings, all of them` : ''
    return { verdict, observed: `${label}: ${p.x} of ${p.n} pooled, ${pct(p.share)} [${pct(p.low)}, ${pct(p.high)}] (Wilson); runs ${runs} %${spread}${needs} (${verdict})` }
  }
  if (mean === null || low === null || high === null) return { verdict: 'undecided', observed: `${label}: fewer than two runs with a value` }
  const verdict = side(low, high, rule)
  return { verdict, observed: `${label}: ${rule.show(mean)} [${rule.show(low)}, ${rule.show(high)}] (${verdict})` }
}

function intervalCheck (id: string, statement: string, figures: readonly RepeatedFigure[], rules: Rule[]): Check {
  const judged = rules.flatMap((rule) => {
    const f = figureOf(figures, rule.mode, rule.phase, rule.metric)
    return f === undefined ? [] : [judge(f, rule)]
  })
  if (judged.length === 0) return { id, statement, status: 'not-run', observed: 'not in these runs' }
  const status: Check['status'] = judged.some((j) => j.verdict === 'fail') ? 'fail' : judged.some((j) => j.verdict === 'undecided') ? 'undecided' : 'pass'
  return { id, statement, status, observed: judged.map((j) => j.observed).join('; ') }
}

/**
 * The share of a phase's readings delivered in it: on time (within the gap tolerance of publication, so that a
 * reading published in the phase's last moments is not late), or, for runs saved before that was recorded,
 * before the phase ended.
 */
function inPhaseMetric (figures: readonly RepeatedFigure[]): { metric: RepeatMetric, words: string } {
  return figures.some((f) => f.metric === 'delivered-on-time')
    ? { metric: 'delivered-on-time', words: 'on time' }
    : { metric: 'delivered-during', words: 'before the phase ended' }
}

/**
 * hybrid − broker, delivered on time in each phase: the runs' readings pooled per mode, the 95 % interval of the
 * difference of the two pooled shares (Newcombe's hybrid score method, as a single run), beside the t-interval of the
 * per-run differences paired by run (the same seed and timeline), which must agree for a pass.
 */
function hybridAtLeastBroker (figures: readonly RepeatedFigure[], phases: readonly string[]): Check {
  const id = 'hybrid-at-least-broker'
  const { metric, words } = inPhaseMetric(figures)
  const statement = `hybrid delivers at least as much as broker-only ${words} in every phase, within 1 point (the runs' readings pooled: 95 % interval of the difference, Newcombe; the t-interval of the paired per-run differences must agree)`
  const observed: string[] = []
  const verdicts: Array<Check['status']> = []
  const pts = (x: number): string => { const v = Math.round(x * 1000) / 10 || 0; return `${v >= 0 ? '+' : ''}${v.toFixed(1)}` } // never "-0.0"
  const rule = { at: 'least', threshold: -0.01 } as const
  for (const phase of phases) {
    const h = figureOf(figures, 'hybrid', phase, metric)
    const b = figureOf(figures, 'broker', phase, metric)
    if (h === undefined || b === undefined) continue
    if (h.pooled === undefined || b.pooled === undefined || h.pooled.n === 0 || b.pooled.n === 0) {
      verdicts.push('undecided')
      observed.push(`${phase}: ${h.pooled === undefined || b.pooled === undefined ? NO_COUNTS : 'no readings'} (undecided)`)
      continue
    }
    const diffs = h.values.flatMap((v, i) => v === null || b.values[i] === null || b.values[i] === undefined ? [] : [v - (b.values[i] as number)])
    const t = tInterval(diffs)
    // A difference of two shares lies in [−1, 1].
    const cut = (x: number | null): number | null => x === null ? null : Math.min(1, Math.max(-1, x))
    const [tLow, tHigh] = [cut(t.low), cut(t.high)]
    const [lo, hi] = differenceInterval(h.pooled.x, h.pooled.n, b.pooled.x, b.pooled.n)
    const verdict = combine(side(lo, hi, rule), tLow === null || tHigh === null ? null : side(tLow, tHigh, rule))
    verdicts.push(verdict)
    const d = h.pooled.x / h.pooled.n - b.pooled.x / b.pooled.n
    const spread = tLow === null || tHigh === null || t.mean === null ? 'fewer than two paired runs' : `paired runs ${pts(t.mean)} [${pts(tLow)}, ${pts(tHigh)}]`
    observed.push(`${phase}: hybrid ${h.pooled.x} of ${h.pooled.n}, broker ${b.pooled.x} of ${b.pooled.n} pooled, ${pts(d)} [${pts(lo)}, ${pts(hi)}] points; ${spread} (${verdict})`)
  }
  if (verdicts.length === 0) return { id, statement, status: 'not-run', observed: 'not in these runs' }
  const status: Check['status'] = verdicts.includes('fail') ? 'fail' : verdicts.includes('undecided') ? 'undecided' : 'pass'
  return { id, statement, status, observed: observed.join('; ') }
}

/** The failover checks judged over repeated runs: shares on their pooled readings, other figures on t-intervals. */
export function repeatedFailoverChecks (figures: readonly RepeatedFigure[], phases: readonly string[], gapToleranceS: number): Check[] {
  const all: Mode[] = ['broker', 'mesh', 'hybrid']
  const meshy: Mode[] = ['mesh', 'hybrid']
  const rule = (mode: Mode, phase: string, metric: RepeatMetric, at: Rule['at'], threshold: number, show: Rule['show']): Rule => ({ mode, phase, metric, at, threshold, show })
  const inPhase = inPhaseMetric(figures)
  return [
    intervalCheck('broker-silent-while-down', 'broker-only delivers nothing while the broker is down (interval of the share delivered during the phase at most 0)', figures,
      [rule('broker', 'broker-down', 'delivered-during', 'most', 0, pct)]),
    intervalCheck('broker-catches-up', 'broker-only delivers the readings of the outage once the broker is back (interval at least 100 %)', figures,
      [rule('broker', 'broker-down', 'delivered', 'least', 1, pct)]),
    intervalCheck('mesh-keeps-delivering', `mesh and hybrid keep delivering while the broker is down (≥ 99 % of the phase's readings ${inPhase.words === 'on time' ? `on time, within ${gapToleranceS.toFixed(1)} s of publication` : inPhase.words}: the runs' readings pooled, 95 % Wilson interval, the t-interval over the runs agreeing; longest silence ≤ ${gapToleranceS.toFixed(1)} s, t-interval over the runs)`, figures,
      meshy.flatMap((m) => [rule(m, 'broker-down', inPhase.metric, 'least', 0.99, pct), rule(m, 'broker-down', 'longest-gap-ms', 'most', gapToleranceS * 1000, secs)])),
    intervalCheck('nothing-lost', 'nothing is lost for good in any mode (interval of readings lost at most 0)', figures,
      all.map((m) => rule(m, 'all', 'lost', 'most', 0, count))),
    intervalCheck('no-duplicates', 'the gateway delivers each reading once, in every mode (interval of duplicates at most 0)', figures,
      all.map((m) => rule(m, 'all', 'duplicates', 'most', 0, count))),
    intervalCheck('crashed-devices-resume', 'crashed devices deliver again after their restart, in every mode (interval of the restart phase\'s delivery at least 100 % in the end)', figures,
      all.map((m) => rule(m, 'restarted', 'delivered', 'least', 1, pct))),
    intervalCheck('partition-caught-up', 'mesh and hybrid: the readings published during the partition reach the gateway once it heals (interval at least 100 %)', figures,
      meshy.map((m) => rule(m, 'partitioned', 'delivered', 'least', 1, pct))),
    hybridAtLeastBroker(figures, phases)
  ]
}

/**
 * N runs of one experiment as one results object: the first run's figures, timeline and charts,
 * the repetitions (every figure over the runs), and the checks judged on the intervals. Times span
 * all runs; provenance and notes are the caller's.
 */
export function combineRepeatedRuns (runs: readonly FailoverResults[]): FailoverResults {
  const first = runs[0]
  const last = runs.at(-1)
  if (first === undefined || last === undefined || runs.length < 2) throw meshError('ERR_BAD_ARGUMENT', `--repeat needs at least 2 runs, got ${runs.length}`)
  const figures = repeatedFigures(runs)
  const ids = first.checks.map((c) => c.id)
  const repetitions: Repetitions = {
    count: runs.length,
    seeds: runs.map((r) => r.seed),
    interval: 'mean of the runs, 95 % two-sided Student t-interval (n − 1 degrees of freedom); a share also pools its readings over the runs (Σx of Σn, 95 % Wilson interval); each run its own seed and fault timeline',
    figures,
    runChecks: ids.map((id) => ({ id, statuses: runs.map((r) => r.checks.find((c) => c.id === id)?.status ?? 'not-run') }))
  }
  const phases = first.timeline.phases.map((p) => p.name as string)
  return { ...first, finishedAt: last.finishedAt, repetitions, checks: repeatedFailoverChecks(figures, phases, first.parameters.gapToleranceS) }
}

/**
 * A saved repeated run through the current code: each figure's mean and interval again from its
 * per-run values (and a share's pool from its per-run counts), and the checks again from them (`iotmesh experiment
 * --from FILE --render-only`). A results object without repetitions is returned as it is. A file saved before the
 * counts were recorded still reads: its shares have no pool, so the checks that judge one say undecided and why.
 */
export function refreshRepetitions (results: FailoverResults): FailoverResults {
  const rep = results.repetitions
  if (rep === undefined) return results
  const figures = rep.figures.map((f) => figureFrom(f.mode, f.phase, f.metric, f.values, f.counts))
  const phases = results.timeline.phases.map((p) => p.name as string)
  return { ...results, repetitions: { ...rep, figures }, checks: repeatedFailoverChecks(figures, phases, results.parameters.gapToleranceS) }
}

/**
 * The repetitions block of N runs of any experiment (scale, latency): seeds, how the intervals were made, the
 * figures, and how each run alone judged each check (by the first run's check ids). Throws below two runs.
 */
export function repetitionsOf<F> (runs: ReadonlyArray<{ seed: number, checks: readonly Check[] }>, interval: string, figures: F[]): RepetitionsOf<F> {
  const first = runs[0]
  if (first === undefined || runs.length < 2) throw meshError('ERR_BAD_ARGUMENT', `--repeat needs at least 2 runs, got ${runs.length}`)
  return {
    count: runs.length,
    seeds: runs.map((r) => r.seed),
    interval,
    figures,
    runChecks: first.checks.map((c) => ({ id: c.id, statuses: runs.map((r) => r.checks.find((x) => x.id === c.id)?.status ?? 'not-run') }))
  }
}

/**
 * A continuous figure's interval over the runs against a bound ("at most θ", "at least θ"), in words: the verdict,
 * and when undecided the smallest difference from the bound these runs could tell (the interval's half-width).
 */
export function boundOverRuns (f: { mean: number | null, low: number | null, high: number | null, values: ReadonlyArray<number | null> }, rule: { at: 'least' | 'most', threshold: number }, show: (x: number) => string, width: (x: number) => string = show): { verdict: Check['status'], observed: string } {
  const runs = f.values.filter((v) => v !== null).length
  if (f.mean === null || f.low === null || f.high === null) return { verdict: 'undecided', observed: `${f.mean === null ? 'no run' : show(f.mean)} (${runs} run${runs === 1 ? '' : 's'} with a value: no interval; undecided)` }
  const verdict = side(f.low, f.high, rule)
  const detect = verdict === 'undecided' ? `; these ${runs} runs tell only a difference from ${show(rule.threshold)} larger than ±${width((f.high - f.low) / 2)}, the interval's half-width: more runs narrow it` : ''
  return { verdict, observed: `${show(f.mean)} [${show(f.low)}, ${show(f.high)}] over ${runs} runs (${verdict}${detect})` }
}
