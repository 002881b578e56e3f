import { repeatedFigures } from '../metrics/repeat.js'
import { automationFigures } from './automation-repeat.js'
import type { ExperimentResults } from './types.js'

/**
 * `iotmesh experiment --from results.json` (issue 14, "reproduce a published figure"): the saved
 * run's command is run again, and each figure of the saved run that has a 95 % interval (a run
 * made with `--repeat N`) is looked up in the new run: does the new value (the new mean, with
 * `--repeat` again) fall inside the old interval? A single saved run has no interval to fall in:
 * its figures are listed beside the new ones, and the verdict says so.
 */

export interface ComparedFigure {
  /** "mesh, broker-down, delivered-during", "device, broker-down, not-on-time". */
  figure: string
  old: { mean: number | null, low: number | null, high: number | null }
  /** The new run's value (its mean over runs, with --repeat). */
  new: number | null
  /** Inside the old interval; null when the old figure has no interval (one run, or every run the same) or the new run lacks it. */
  inside: boolean | null
}

/** What `iotmesh experiment --from FILE` found: each saved figure against the new run, and the verdict. */
export interface Reproduction {
  from: string
  experiment: ExperimentResults['experiment']
  oldSeeds: number[]
  newSeeds: number[]
  figures: ComparedFigure[]
  inside: number
  outside: number
  /** Figures that could not be judged (no old interval or a zero-width one, or missing in the new run). */
  unjudged: number
  /** 'reproduced' (every judged figure inside), 'not-reproduced' (one or more outside), 'no-intervals' (nothing to judge). */
  verdict: 'reproduced' | 'not-reproduced' | 'no-intervals'
}

interface Figure { key: string, mean: number | null, low: number | null, high: number | null }

/** Every figure of a run that repetitions describe: its own intervals with --repeat, else each value alone (no interval). */
function figuresOf (results: ExperimentResults): Figure[] {
  if (results.experiment === 'failover') {
    const figures = results.repetitions?.figures ?? repeatedFigures([results])
    return figures.map((f) => ({ key: `${f.mode}, ${f.phase}, ${f.metric}`, mean: f.mean, low: f.low, high: f.high }))
  }
  if (results.experiment === 'automation') {
    const figures = results.repetitions?.figures ?? automationFigures([results])
    return figures.map((f) => ({ key: `${f.way}, ${f.phase}, ${f.metric}`, mean: f.mean, low: f.low, high: f.high }))
  }
  if (results.experiment === 'revocation') return results.figures.map((f) => ({ key: `${f.path}, ${f.metric}`, mean: f.mean, low: f.low, high: f.high }))
  if (results.experiment === 'scale') return (results.repetitions?.figures ?? []).map((f) => ({ key: `${f.mode}, ${f.from === undefined ? '' : `${f.from} → `}${f.devices} devices, ${f.metric}`, mean: f.mean, low: f.low, high: f.high }))
  return (results.repetitions?.figures ?? []).map((f) => ({ key: `${f.path}${f.versus === undefined ? '' : ` − ${f.versus}`}, ${f.metric}`, mean: f.mean, low: f.low, high: f.high }))
}

/** The seed of every run behind a results object: one, or one per repetition. */
export const seedsOf = (r: ExperimentResults): number[] => r.experiment === 'revocation' ? r.runs.map((x) => x.seed) : r.repetitions?.seeds ?? [r.seed]

/** A saved run against a new run of its command: which figures fall inside the saved intervals. */
export function compareRuns (from: string, saved: ExperimentResults, fresh: ExperimentResults): Reproduction {
  const now = new Map(figuresOf(fresh).map((f) => [f.key, f]))
  const figures = figuresOf(saved).map((old): ComparedFigure => {
    const value = now.get(old.key)?.mean ?? null
    // A zero-width interval (every saved run gave the same value, e.g. 0 % missed in each) claims a precision the runs do not
    // have: a t-interval of identical values says nothing about the spread. Such a figure is listed, not judged.
    const judged = old.low !== null && old.high !== null && old.high > old.low && value !== null
    // Stored figures are rounded (4 decimals, ms to 3): a value equal to a bound after rounding is inside.
    const eps = 1e-9
    return { figure: old.key, old: { mean: old.mean, low: old.low, high: old.high }, new: value, inside: judged ? value >= (old.low as number) - eps && value <= (old.high as number) + eps : null }
  })
  const inside = figures.filter((f) => f.inside === true).length
  const outside = figures.filter((f) => f.inside === false).length
  return {
    from,
    experiment: saved.experiment,
    oldSeeds: seedsOf(saved),
    newSeeds: seedsOf(fresh),
    figures,
    inside,
    outside,
    unjudged: figures.length - inside - outside,
    verdict: inside + outside === 0 ? 'no-intervals' : outside > 0 ? 'not-reproduced' : 'reproduced'
  }
}

/** reproduction.md: the verdict, then every figure, old interval beside the new value. */
export function reproductionMarkdown (r: Reproduction): string {
  const show = (x: number | null): string => x === null ? 'n/a' : String(x)
  const mark = (inside: boolean | null): string => inside === null ? '–' : inside ? '✔' : '✘'
  const verdict = r.verdict === 'reproduced'
    ? `Reproduced: all ${r.inside} figures with an interval fall inside it.`
    : r.verdict === 'not-reproduced'
      ? `Not reproduced: ${r.outside} of ${r.inside + r.outside} figures with an interval fall outside it.`
      : 'Nothing to judge: the saved run has no intervals (one run). Save a run made with --repeat N to compare against its intervals.'
  return [
    `# Reproduction of ${r.from}`,
    '',
    `The saved ${r.experiment} run (seeds ${r.oldSeeds.join(', ')}) was run again with its own command (seeds ${r.newSeeds.join(', ')}).`,
    `${verdict} ${r.unjudged} figure${r.unjudged === 1 ? '' : 's'} could not be judged (no interval; a zero-width one, where every saved run gave the same value; or absent from the new run).`,
    'Even when nothing changed, a new mean of as many runs falls inside an old 95 % interval only about 83 % of the time',
    '(Cumming and Maillardet, 2006): a few figures outside are expected; many, or far outside, say the behaviour moved.',
    '',
    '| figure | old mean | old interval | new | inside |',
    '| --- | ---: | ---: | ---: | :---: |',
    ...r.figures.map((f) => `| ${f.figure} | ${show(f.old.mean)} | ${f.old.low === null || f.old.high === null ? 'none' : `[${f.old.low}, ${f.old.high}]`} | ${show(f.new)} | ${mark(f.inside)} |`),
    '',
    '✔ inside, ✘ outside, – not judged.',
    ''
  ].join('\n')
}
