import { meshError } from '../../shared/index.js'
import { failoverChecks, latencyChecks, scaleChecks } from './checks.js'
import { machineInfo, softwareVersions } from './environment.js'
import { pairedDifferences, summarizeLatency } from '../metrics/latency.js'
import { summarizeMode } from '../metrics/failover.js'
import { MODES, type LatencyObservation, type ModeObservations, type ScaleObservations } from '../observations.js'
import {
  RESULTS_FORMAT, RESULTS_VERSION, type ExperimentKind,
  type FailoverResults, type LatencyParameters, type LatencyResults, type Machine, type Provenance, type ScaleParameters, type ScaleResults, type Software
} from './types.js'
import { sortScalePoints, summarizeScale } from '../metrics/scale.js'
import { refreshScaleRepetitions } from './scale-repeat.js'
import { refreshLatencyRepetitions } from './latency-repeat.js'
import type { Timeline } from '../plan/timeline.js'

/**
 * From raw observations to a results object (results/types.ts): the figures, the evaluated checks,
 * and the run's context. The runner calls one of these once its fleets have stopped, then
 * `writeReport`. Machine and software default to this process's; tests pass their own.
 */

export interface RunInfo {
  startedAt: Date | number | string
  finishedAt: Date | number | string
  machine?: Machine
  software?: Software
  provenance?: Provenance
  notes?: string[]
}

export interface FailoverInput extends RunInfo {
  timeline: Timeline
  /** One entry per mode run, in the order run. */
  observations: ModeObservations[]
  /** Seconds between two readings of a device (default 1). */
  intervalS?: number
  /** A gap up to this long counts as no gap (default 3 intervals). */
  gapToleranceS?: number
}

/** A failover run's results: figures per mode and phase, and the checks, from its observations. */
export function failoverResults (input: FailoverInput): FailoverResults {
  const intervalS = input.intervalS ?? 1
  const modes = input.observations.map((o) => o.mode)
  if (new Set(modes).size !== modes.length) throw meshError('ERR_BAD_ARGUMENT', `failover: each mode may be observed once, got ${modes.join(', ')}`)
  const parameters = { ...input.timeline.params, intervalS, modes, gapToleranceS: input.gapToleranceS ?? 3 * intervalS }
  const summaries = input.observations.map((o) => summarizeMode(input.timeline, o, { onTimeMs: parameters.gapToleranceS * 1000 }))
  return {
    ...header('failover', input.timeline.params.seed, input),
    parameters,
    timeline: input.timeline,
    modes: summaries,
    checks: failoverChecks(summaries, parameters)
  }
}

export interface ScaleInput extends RunInfo {
  seed: number
  parameters: ScaleParameters
  observations: ScaleObservations[]
}

/** A scale run's results: one point per mode and fleet size, and the checks. */
export function scaleResults (input: ScaleInput): ScaleResults {
  const points = sortScalePoints(input.observations.map(summarizeScale))
  return {
    ...header('scale', input.seed, input),
    parameters: { ...input.parameters, modes: MODES.filter((m) => input.parameters.modes.includes(m)) },
    points,
    checks: scaleChecks(points)
  }
}

/** A saved scale run through the current code (`--from FILE --render-only`): its checks again from its points, or from its repetitions. */
export function refreshScale (results: ScaleResults): ScaleResults {
  return results.repetitions === undefined ? { ...results, checks: scaleChecks(results.points) } : refreshScaleRepetitions(results)
}

export interface LatencyInput extends RunInfo {
  seed: number
  parameters: LatencyParameters
  probes: LatencyObservation[]
}

/** A latency run's results: each path's distribution, paired differences per round, and the checks. */
export function latencyResults (input: LatencyInput): LatencyResults {
  const paths = summarizeLatency(input.probes, input.parameters.paths)
  const differences = pairedDifferences(input.probes, input.parameters.paths)
  return {
    ...header('latency', input.seed, input),
    parameters: input.parameters,
    paths,
    differences,
    checks: latencyChecks(paths, differences)
  }
}

/** A saved latency run through the current code (`--from FILE --render-only`): its checks again from its paths and pairs, or from its repetitions. */
export function refreshLatency (results: LatencyResults): LatencyResults {
  return results.repetitions === undefined ? { ...results, checks: latencyChecks(results.paths, results.differences) } : refreshLatencyRepetitions(results)
}

function iso (t: Date | number | string): string {
  const date = t instanceof Date ? t : new Date(t)
  if (Number.isNaN(date.getTime())) throw meshError('ERR_BAD_ARGUMENT', `experiment: ${JSON.stringify(t)} is not a time`)
  return date.toISOString()
}

export function header<K extends ExperimentKind> (experiment: K, seed: number, run: RunInfo): {
  format: typeof RESULTS_FORMAT, version: typeof RESULTS_VERSION, experiment: K, startedAt: string, finishedAt: string,
  seed: number, machine: Machine, software: Software, provenance?: Provenance, notes?: string[]
} {
  return {
    format: RESULTS_FORMAT,
    version: RESULTS_VERSION,
    experiment,
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
    seed,
    machine: run.machine ?? machineInfo(),
    software: run.software ?? softwareVersions(),
    ...(run.provenance === undefined ? {} : { provenance: run.provenance }),
    ...(run.notes === undefined || run.notes.length === 0 ? {} : { notes: run.notes })
  }
}
