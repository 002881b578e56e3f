import type { FailoverResults, RepeatedFigure, RepeatMetric } from '../results/types.js'
import { ms, pct, table } from './format.js'

/**
 * The repetitions section of a failover report (`--repeat N`): per mode and phase, the mean of
 * each figure over the runs with its 95 % interval, then how each run alone would have judged
 * each check, beside the verdict on the intervals.
 */
export function repetitionsSection (results: FailoverResults): string[] {
  const rep = results.repetitions
  if (rep === undefined) return []
  const cell = (f: RepeatedFigure | undefined, show: (x: number) => string): string => {
    if (f === undefined || f.mean === null) return 'n/a'
    return f.low === null || f.high === null ? show(f.mean) : `${show(f.mean)} [${show(f.low)}, ${show(f.high)}]`
  }
  const pooledCell = (f: RepeatedFigure | undefined): string => {
    const p = f?.pooled
    return p === undefined || p.share === null ? 'n/a' : `${p.x}/${p.n} ${pct(p.share)} [${pct(p.low)}, ${pct(p.high)}]`
  }
  const fig = (mode: string, phase: string, metric: RepeatMetric): RepeatedFigure | undefined =>
    rep.figures.find((f) => f.mode === mode && f.phase === phase && f.metric === metric)
  const phases = [...results.timeline.phases.map((p) => p.name as string), 'all']
  const rows = results.parameters.modes.flatMap((mode) => phases.flatMap((phase) => {
    if (fig(mode, phase, 'delivered') === undefined) return []
    return [[
      mode, phase === 'all' ? '**all**' : phase,
      cell(fig(mode, phase, 'delivered'), (x) => pct(x)),
      cell(fig(mode, phase, 'delivered-during'), (x) => pct(x)),
      cell(fig(mode, phase, 'delivered-on-time'), (x) => pct(x)),
      pooledCell(fig(mode, phase, 'delivered-on-time')),
      cell(fig(mode, phase, 'longest-gap-ms'), (x) => ms(x)),
      cell(fig(mode, phase, 'lost'), (x) => x.toFixed(1)),
      cell(fig(mode, phase, 'latency-p50-ms'), (x) => ms(x))
    ]]
  }))
  const mark = { pass: '✔', fail: '✘', undecided: '?', 'not-run': '–' } as const
  return [
    `## Repetitions: ${rep.count} runs`,
    '',
    `Seeds ${rep.seeds.join(', ')}, one run each, every mode per run (each seed its own fault timeline: which devices crash,`,
    `how the fleet splits). Figures: ${rep.interval}. The checks above are judged on these intervals: a share`,
    'against a threshold on the pooled readings ("on time, pooled": Σ on time of Σ published, Wilson), with the',
    't-interval over the runs agreeing for a pass. The tables, charts and timeline elsewhere in this report are the',
    'first run\'s. An interval\'s half-width is the smallest difference these runs could detect.',
    '',
    table(['mode', 'phase', 'to gateway', 'during phase', 'on time', 'on time, pooled', 'longest gap', 'lost for good', 'latency p50'], rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
    '',
    'Each run judged alone (✔ holds, ✘ fails, ? undecided, – not run):',
    '',
    table(['check', ...rep.seeds.map((s) => `seed ${s}`)], rep.runChecks.map((c) => [c.id, ...c.statuses.map((s) => mark[s])])),
    ''
  ]
}
