import type { FailoverResults, LatencyFigure, LatencyResults, RepeatedFigure, RepeatMetric, RepetitionsOf, ScaleFigure, ScaleResults } from '../results/types.js'
import { ms, pct, table } from './format.js'

/**
 * The repetitions section of a failover report (`--repeat N`): per mode and phase, the mean of
 * each figure over the runs with its 95 % interval, then how each run alone would have judged
 * each check, beside the verdict on the intervals.
 */
export function repetitionsSection (results: FailoverResults): string[] {
  const rep = results.repetitions
  if (rep === undefined) return []
  const cell = intervalCell
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

type Interval = Pick<RepeatedFigure, 'mean' | 'low' | 'high'>

/** "mean [low, high]", the mean alone without an interval, n/a without a value. */
function intervalCell (f: Interval | undefined, show: (x: number) => string): string {
  if (f === undefined || f.mean === null) return 'n/a'
  return f.low === null || f.high === null ? show(f.mean) : `${show(f.mean)} [${show(f.low)}, ${show(f.high)}]`
}

/** "x/n share [low, high]" of a share's pooled readings. */
function pooledCell (f: { pooled?: RepeatedFigure['pooled'] } | undefined): string {
  const p = f?.pooled
  return p === undefined || p.share === null ? 'n/a' : `${p.x}/${p.n} ${pct(p.share)} [${pct(p.low)}, ${pct(p.high)}]`
}

/** The section's head: runs, seeds, how the intervals are made; its tail: each run's own verdicts. */
function around (rep: RepetitionsOf<unknown>, what: string, body: string[]): string[] {
  const mark = { pass: '✔', fail: '✘', undecided: '?', 'not-run': '–' } as const
  return [
    `## Repetitions: ${rep.count} runs`,
    '',
    `Seeds ${rep.seeds.join(', ')}, one run each (${what}). Figures: ${rep.interval}. The checks above are judged on these`,
    'figures; the tables and the chart elsewhere in this report are the first run\'s. An interval\'s half-width is the',
    'smallest difference these runs could detect.',
    '',
    ...body,
    '',
    'Each run judged alone (✔ holds, ✘ fails, ? undecided, – not run):',
    '',
    table(['check', ...rep.seeds.map((s) => `seed ${s}`)], rep.runChecks.map((c) => [c.id, ...c.statuses.map((s) => mark[s])])),
    ''
  ]
}

/** The repetitions section of a scale report (`--repeat N`): per mode and fleet size, each figure over the runs. */
export function scaleRepetitionsSection (results: ScaleResults): string[] {
  const rep = results.repetitions
  if (rep === undefined) return []
  const fig = (f: ScaleFigure, metric: ScaleFigure['metric']): ScaleFigure | undefined =>
    rep.figures.find((x) => x.mode === f.mode && x.devices === f.devices && x.metric === metric)
  const rows = rep.figures.filter((f) => f.metric === 'delivery').map((f) => [
    f.mode, String(f.devices), `${f.values.filter((v) => v !== null).length}`, intervalCell(f, pct), pooledCell(f),
    intervalCell(fig(f, 'bytes-per-s'), (x) => x.toFixed(1)), intervalCell(fig(f, 'cpu-percent'), (x) => `${x.toFixed(2)} %`),
    intervalCell(fig(f, 'latency-p50-ms'), ms), intervalCell(fig(f, 'latency-p99-ms'), ms)
  ])
  const growth = rep.figures.filter((f) => f.metric === 'growth').map((f) => `- ${f.mode}: per-device bytes/s from ${f.from ?? '?'} to ${f.devices} devices ×${intervalCell(f, (x) => x.toFixed(2))} (runs ${f.values.map((v) => v === null ? 'n/a' : v.toFixed(2)).join(', ')})`)
  return around(rep, 'each its own fleets: identities, sensors, links', [
    table(['mode', 'devices', 'runs', 'delivery', 'delivery, pooled', 'bytes / s per device', 'cpu per device', 'latency p50', 'latency p99'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
    '',
    'Growth within each run, on one transport (what the growth checks judge):',
    '',
    ...(growth.length === 0 ? ['- none: no mode measured two sizes on one transport in every run'] : growth)
  ])
}

/** The repetitions section of a latency report (`--repeat N`): per path and per pair of paths, each figure over the runs. */
export function latencyRepetitionsSection (results: LatencyResults): string[] {
  const rep = results.repetitions
  if (rep === undefined) return []
  const fig = (path: string, metric: LatencyFigure['metric']): LatencyFigure | undefined => rep.figures.find((x) => x.path === path && x.metric === metric && x.versus === undefined)
  const signed = (x: number): string => `${x > 0 ? '+' : ''}${ms(x)}`
  const rows = results.parameters.paths.map((path) => [
    path, pooledCell(fig(path, 'received')), intervalCell(fig(path, 'p50-ms'), ms), intervalCell(fig(path, 'p95-ms'), ms), intervalCell(fig(path, 'p99-ms'), ms)
  ])
  const pairs = rep.figures.filter((f) => f.metric === 'difference-ms').map((f) => [
    f.path, f.versus ?? '', intervalCell(f, signed), f.values.map((v) => v === null ? 'n/a' : signed(v)).join(', ')
  ])
  return around(rep, 'each fresh processes; the seed orders the paths within each round', [
    table(['path', 'received, pooled', 'p50', 'p95', 'p99'], rows, ['l', 'r', 'r', 'r', 'r']),
    '',
    'Each run\'s median of the round-by-round difference a − b (negative: a faster), over the runs:',
    '',
    table(['a', 'b', 'median a − b', 'each run'], pairs, ['l', 'l', 'r', 'r'])
  ])
}
