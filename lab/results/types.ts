import type { LatencyPath, Mode, ResourceRole } from '../observations.js'
import type { Distribution, Percentiles } from '../metrics/stats.js'
import type { FailoverParams, TimelineFaultKind, PhaseName, Timeline } from '../plan/timeline.js'
import type { AutomationParams, AutomationRoles } from '../plan/automation.js'
import type { AutomationPhaseSummary, AutomationWay, TriggerOutcome } from '../metrics/automation.js'
import type { PathSummary as RevocationPathSummary, RevocationPath } from '../metrics/revocation.js'

/**
 * results.json: what `iotmesh experiment` writes, one file per run. Its JSON Schema (draft
 * 2020-12) is `RESULTS_SCHEMA` (results/schema.ts), written beside it as results.schema.json.
 * The file holds figures only, computed from the raw observations (observations.ts) by
 * metrics/failover.ts, metrics/scale.ts and metrics/latency.ts; times are in milliseconds
 * (`…Ms`) or seconds (`…S`) as named, ratios are fractions from 0 to 1, and a figure that
 * cannot be computed (nothing was published, no peer subscribed) is null, never 0.
 */

export const RESULTS_FORMAT = 'iotmesh-experiment'
/** The version of the results.json layout, in `version`. */
export const RESULTS_VERSION = 1

/** An experiment `iotmesh experiment` runs. */
export type ExperimentKind = 'failover' | 'scale' | 'latency' | 'automation' | 'revocation'
/** Every experiment `iotmesh experiment` runs. */
export const EXPERIMENT_KINDS: readonly ExperimentKind[] = ['failover', 'scale', 'latency', 'automation', 'revocation']

/** The machine the run took place on (node:os). */
export interface Machine {
  /** os.platform(), os.release(), os.arch(). */
  platform: string
  release: string
  arch: string
  /** Logical CPUs and the model of the first. */
  cpus: number
  cpuModel: string
  /** os.totalmem(). */
  memoryBytes: number
}

/** Versions read from package.json files (null: not installed). */
export interface Software {
  node: string
  iotmesh: string | null
  aedes: string | null
  mqtt: string | null
  'bonjour-service': string | null
  'cbor-x': string | null
}

/** How the run was made (environment.ts startProvenance). */
export interface Provenance {
  /** The command line, e.g. `iotmesh experiment failover --quick --seed 3`; null when run as a library. */
  command: string | null
  /** The git commit of the iotmesh tree, and whether it had uncommitted changes; null when unknown. */
  commit: string | null
  dirty: boolean | null
  /** os.loadavg() (1, 5, 15 min) when the run began and ended. */
  loadBefore: number[]
  loadAfter: number[] | null
}

/** An expectation the report states, evaluated against the data: never assumed. */
export interface Check {
  /** Stable identifier, e.g. `broker-silent-while-down`. */
  id: string
  /** The expectation, as a sentence. */
  statement: string
  /**
   * `not-run`: the data the check needs is not in this run (a mode or phase left out).
   * `undecided`: a check phrased as a hypothesis whose data cannot tell (too few readings for the
   * difference it is about: its `observed` says the smallest difference this run could detect).
   */
  status: 'pass' | 'fail' | 'not-run' | 'undecided'
  /** What the data showed, with the figures, e.g. `broker, broker-down: 0.0 % delivered during the phase`. */
  observed: string
}

interface ResultsBase {
  /** In results.json: `results.schema.json`, the schema written beside it (for editors). */
  $schema?: string
  format: typeof RESULTS_FORMAT
  version: typeof RESULTS_VERSION
  experiment: ExperimentKind
  /** ISO 8601 (UTC). */
  startedAt: string
  finishedAt: string
  seed: number
  machine: Machine
  software: Software
  /** Absent in reports written before it was recorded. */
  provenance?: Provenance
  checks: Check[]
  /** Remarks from the runner (transport used, anything unusual), printed in the report. */
  notes?: string[]
}

// ---- failover ---------------------------------------------------------------------------------

export interface FailoverParameters extends FailoverParams {
  /** Seconds between two readings of one device. */
  intervalS: number
  /** The modes run, in order. */
  modes: Mode[]
  /**
   * A gap at the gateway up to this long counts as "no gap" in the checks (default 3 intervals), and a
   * reading that arrived within it of its publication counts as on time (`TargetDelivery.deliveredOnTime`).
   */
  gapToleranceS: number
}

/** Readings of one phase that reached one receiver. */
export interface TargetDelivery {
  /** Arrived by the end of observation. */
  delivered: number
  /** Arrived before the phase ended (a reading published in the phase's last moments cannot). */
  deliveredDuring: number
  /**
   * Arrived within the gap tolerance of its publication (`FailoverParameters.gapToleranceS`), whenever the
   * phase ended: what "delivered in the phase" means for the checks. Absent in results made before it was recorded.
   */
  deliveredOnTime?: number
  /** delivered / published (null when nothing was published). */
  ratio: number | null
  /** deliveredDuring / published. */
  ratioDuring: number | null
  /** deliveredOnTime / published; absent with deliveredOnTime. */
  ratioOnTime?: number | null
}

/** How soon delivery came back after a fault (metrics/resume.ts `resumeAfter` defines it). */
export interface Resume {
  /** Devices the fault concerned. */
  affected: number
  /** Of those, devices with a reading published after the fault that arrived. */
  resumed: number
  /** The slowest affected device, ms; null when some never resumed or none was affected. */
  maxMs: number | null
  /** The median over the devices that resumed, ms. */
  medianMs: number | null
}

/** The figures of one phase of a failover run (or `all`), in one mode. */
export interface PhaseSummary {
  /** A timeline phase, or `all` for the whole timeline. */
  name: PhaseName | 'all'
  startS: number
  endS: number
  /** Readings published in [startS, endS). */
  published: number
  gateway: TargetDelivery
  /** Null when no peer subscribed. */
  peer: TargetDelivery | null
  /** The longest silence at the gateway within the phase, over every device, ms (metrics/failover.ts `longestGaps`). */
  longestGapMs: number | null
  /** The device with that silence. */
  longestGapOrigin: string | null
  /** The median over devices of each device's longest silence. */
  medianGapMs: number | null
  /** Readings published in the phase that never reached the gateway, with sequence holes. */
  lostForGood: number
  /** Copies delivered to the gateway's application after the first. */
  duplicates: number
  /** After the fault events at the start of the phase, at the gateway; null for a phase without one. */
  resume: Resume | null
  latencyMs: { gateway: Percentiles | null, peer: Percentiles | null }
}

/** One fault of a failover run as it took effect, and how soon delivery resumed after it. */
export interface FaultOutcome {
  kind: TimelineFaultKind
  plannedS: number
  /** When it took effect, seconds from timeline start. */
  atS: number
  /** Fleet members the fault concerned (indices). */
  devices: number[]
  gateway: Resume
  peer: Resume | null
}

/** One device's longest silence at the gateway in a failover run. */
export interface DeviceGap {
  index: number
  origin: string
  /** Longest silence at the gateway within the timeline (0 to endS), ms. */
  longestGapMs: number
}

/** Counts per second of timeline: bucket k covers [k, k+1) s. */
export interface DeliverySeries {
  bucketS: 1
  /** Readings published in the second. */
  published: number[]
  /** Readings first received by the gateway in the second (whenever published). */
  gateway: number[]
  peer: number[] | null
}

/** Rates of one role's processes together, between its first and last sample. */
export interface ResourceSummary {
  role: ResourceRole
  seconds: number
  /** Percent of one CPU core. */
  cpuPercent: number
  /** Mean resident set size, bytes. */
  rssBytes: number
  /** Bytes received plus bytes sent, per second. */
  bytesPerS: number
  /** Frames received plus frames sent, per second. */
  framesPerS: number
}

/** One mode's figures in a failover run: per phase and in all, per fault, per device, over time and in resources. */
export interface ModeSummary {
  mode: Mode
  devices: number
  /** Distinct readings published during the timeline. */
  readings: number
  /** Sequence numbers missing from the device reports within one device lifetime (counted as lost). */
  sequenceHoles: number
  /** Observation, seconds from timeline start to the end. */
  durationS: number
  phases: PhaseSummary[]
  total: PhaseSummary
  faults: FaultOutcome[]
  gaps: DeviceGap[]
  series: DeliverySeries
  /** Over the whole timeline. */
  latency: { gateway: Distribution | null, peer: Distribution | null }
  resources: ResourceSummary[]
}

/** results.json of `iotmesh experiment failover`. */
export interface FailoverResults extends ResultsBase {
  experiment: 'failover'
  parameters: FailoverParameters
  timeline: Timeline
  modes: ModeSummary[]
  /**
   * With `--repeat N` (N ≥ 2): every figure over the N runs (seeds seed, seed + 1, …), and
   * `checks` are judged on their intervals. `timeline` and `modes` are then the first run's.
   */
  repetitions?: Repetitions
}

/** A failover figure that `--repeat` follows over the runs. */
export type RepeatMetric = 'delivered-during' | 'delivered-on-time' | 'delivered' | 'peer-during' | 'latency-p50-ms' | 'longest-gap-ms' | 'lost' | 'duplicates'

/** A figure over repeated runs (failover, scale, latency): each run's value, their mean and its interval, a share's pool. */
export interface FigureOverRuns {
  /** Each run's value, in run order; null where that run lacks it. */
  values: Array<number | null>
  mean: number | null
  /** The 95 % interval of the mean (Student's t over the runs that have a value); null below two values. */
  low: number | null
  high: number | null
  /**
   * A share only: each run's readings (or probes) behind its value (x of n), in run order, null where that run lacks
   * it. Absent in results saved before they were recorded (a pooled judgement of them is then undecided).
   */
  counts?: Array<{ x: number, n: number } | null>
  /** A share only, with `counts`: the runs' readings pooled (Σx of Σn), the pooled share and its 95 % Wilson interval. */
  pooled?: PooledShare
}

/** One figure (a mode, a phase or `all`, a metric) over the runs. */
export interface RepeatedFigure extends FigureOverRuns {
  mode: Mode
  phase: string
  metric: RepeatMetric
}

/** Readings of several runs taken together as one sample: x of n, x / n, and the 95 % Wilson interval of the share. */
export interface PooledShare {
  x: number
  n: number
  /** x / n; null when n is 0. */
  share: number | null
  low: number
  high: number
}

/** With `--repeat N`: every failover figure over the runs, and each run's own verdicts. */
export interface Repetitions {
  count: number
  /** The seed of each run. */
  seeds: number[]
  /** How the intervals are made, in words. */
  interval: string
  figures: RepeatedFigure[]
  /** Each run's own verdict of each check (as a single run would judge it). */
  runChecks: Array<{ id: string, statuses: Array<Check['status']> }>
}

// ---- scale ------------------------------------------------------------------------------------

/** What a scale run was asked to do: fleet sizes, modes, reading interval and the measured window. */
export interface ScaleParameters {
  sizes: number[]
  modes: Mode[]
  intervalS: number
  /** Measured window per fleet, after `warmupS` of settling. */
  durationS: number
  warmupS: number
}

/** A role's CPU, memory and traffic rates in a scale window. */
export interface RoleRates {
  cpuPercent: number
  rssBytes: number
  bytesPerS: number
  framesPerS: number
}

/** One mode at one fleet size in a scale run: delivery, latency and resources. */
export interface ScalePoint {
  mode: Mode
  devices: number
  /**
   * How the devices were linked (mesh over TCP or in memory; broker mode is MQTT over TCP). A
   * change of transport is a change of method: charts and checks never draw one trend across it.
   * Absent in reports written before it was recorded.
   */
  transport?: 'tcp' | 'memory'
  seconds: number
  readings: number
  /** Readings of the window that reached the gateway (absent in reports written before it was recorded: delivery × readings). */
  delivered?: number
  /** Delivered to the gateway / published. */
  delivery: number | null
  latencyMs: Percentiles | null
  /** The devices' rates divided by the fleet size: one device (one mesh node). */
  perDevice: RoleRates | null
  /** The broker process as a whole (null in mesh mode or when not sampled). */
  broker: RoleRates | null
  gateway: RoleRates | null
}

/** results.json of `iotmesh experiment scale`. */
export interface ScaleResults extends ResultsBase {
  experiment: 'scale'
  parameters: ScaleParameters
  points: ScalePoint[]
  /**
   * With `--repeat N` (N ≥ 2): every figure over the N runs (seeds seed, seed + 1, …), and `checks` are judged on
   * them (results/scale-repeat.ts). `points` are then the first run's.
   */
  repetitions?: RepetitionsOf<ScaleFigure>
}

/**
 * A scale figure that `--repeat` follows over the runs, per mode and fleet size: the share delivered, the per-device
 * rates, the latency percentiles; `growth` is per mode, the per-device bytes/s of the largest fleet over the smallest,
 * both measured on one transport in every run.
 */
export type ScaleFigureMetric = 'delivery' | 'bytes-per-s' | 'frames-per-s' | 'cpu-percent' | 'latency-p50-ms' | 'latency-p99-ms' | 'growth'

/** One scale figure (a mode, a fleet size, a metric) over the runs; a run that did not reach the size has no value. Only `delivery` has counts and a pool. */
export interface ScaleFigure extends FigureOverRuns {
  mode: Mode
  /** The fleet size; for `growth`, the larger fleet of the ratio. */
  devices: number
  /** `growth` only: the smaller fleet of the ratio. */
  from?: number
  metric: ScaleFigureMetric
}

/**
 * With `--repeat N` (scale, latency): every figure over the runs and each run's own verdicts. The layout of
 * failover's `Repetitions`, for any kind of figure.
 */
export interface RepetitionsOf<F> {
  count: number
  /** The seed of each run. */
  seeds: number[]
  /** How the intervals are made, in words. */
  interval: string
  figures: F[]
  /** Each run's own verdict of each check (as a single run would judge it). */
  runChecks: Array<{ id: string, statuses: Array<Check['status']> }>
}

// ---- latency ----------------------------------------------------------------------------------

/** What a latency run was asked to do: its paths, rounds and timing. */
export interface LatencyParameters {
  rounds: number
  paths: LatencyPath[]
  /** Pause between probes, ms. */
  intervalMs: number
}

/** One path's figures in a latency run. */
export interface PathSummary {
  path: LatencyPath
  sent: number
  received: number
  rounds: number
  latencyMs: Distribution | null
  /** The 95 % interval of the median, from order statistics (metrics/median-interval.ts); null below 6 probes. Absent in reports written before it was recorded. */
  p50Ci95?: [number, number] | null
}

/**
 * Path `a` against path `b`, round by round: for every round in which both probes arrived, the
 * latency of `a` minus that of `b`, ms. The median of the differences and its 95 % interval decide
 * which path is faster in the same moment of the machine (a sign test).
 */
export interface PairedDifference {
  a: LatencyPath
  b: LatencyPath
  /** Rounds in which both probes arrived. */
  rounds: number
  /** Rounds in which `a` was faster. */
  aFaster: number
  medianMs: number | null
  ci95: [number, number] | null
}

/** results.json of `iotmesh experiment latency`. */
export interface LatencyResults extends ResultsBase {
  experiment: 'latency'
  parameters: LatencyParameters
  paths: PathSummary[]
  /** Absent in reports written before it was recorded. */
  differences?: PairedDifference[]
  /**
   * With `--repeat N` (N ≥ 2): every figure over the N runs (seeds seed, seed + 1, …), and `checks` are judged on
   * them (results/latency-repeat.ts). `paths` and `differences` are then the first run's.
   */
  repetitions?: RepetitionsOf<LatencyFigure>
}

/**
 * A latency figure that `--repeat` follows over the runs: a path's percentiles and the share of its probes that
 * arrived; `difference-ms` is the median of the round-by-round difference `path` − `versus` (PairedDifference).
 */
export type LatencyFigureMetric = 'p50-ms' | 'p95-ms' | 'p99-ms' | 'received' | 'difference-ms'

/** One latency figure (a path, or a pair of paths, and a metric) over the runs. Only `received` has counts and a pool. */
export interface LatencyFigure extends FigureOverRuns {
  path: LatencyPath
  /** `difference-ms` only: the path subtracted. */
  versus?: LatencyPath
  metric: LatencyFigureMetric
}

// ---- automation -------------------------------------------------------------------------------

export interface AutomationParameters extends AutomationParams {
  /** Seconds between two readings of a device. */
  intervalS: number
  /** The ways run, in order. */
  ways: AutomationWay[]
}

/** One way of running the rules in an automation run: its triggers, phases and figures. */
export interface AutomationWaySummary {
  way: AutomationWay
  /** The devices' delivery mode in this way. */
  mode: Mode
  phases: AutomationPhaseSummary[]
  total: AutomationPhaseSummary
  /** Per rule, over the whole timeline. */
  rules: Array<{ rule: string, triggers: number, onTime: number, late: number, missed: number, twice: number }>
  faults: Array<{ kind: TimelineFaultKind, plannedS: number, atS: number }>
  /** Commands the rules sent, those that got no result (timeout, no route, broker down), and the targets' refusals by code. */
  commands: { sent: number, unanswered: number, outcomes: Record<string, number>, refused: Record<string, number> }
  /** Every trigger and its fate, in time order. */
  triggers: TriggerOutcome[]
}

/** results.json of `iotmesh experiment automation`. */
export interface AutomationResults extends ResultsBase {
  experiment: 'automation'
  parameters: AutomationParameters
  plan: {
    fingerprint: string
    timelineFingerprint: string
    roles: AutomationRoles
    phases: Array<{ name: PhaseName, startS: number, endS: number }>
    endS: number
    /** The rule file, in words (firmware-sim/rules explainRules). */
    rules: string[]
  }
  ways: AutomationWaySummary[]
  /** With --repeat N (results/automation-repeat.ts): figures over the runs; the checks are then judged on them. */
  repetitions?: AutomationRepetitions
}

/** not-on-time: share of triggers not acted on in time; twice: share followed by two or more executions. */
export type AutomationFigureMetric = 'not-on-time' | 'latency-p50-ms' | 'twice'

/** One figure (a way, a phase or `all`, a metric) over the runs. */
export interface AutomationFigure {
  way: AutomationWay
  phase: string
  metric: AutomationFigureMetric
  values: Array<number | null>
  mean: number | null
  low: number | null
  high: number | null
}

/** With `--repeat N`: every automation figure over the runs, and each run's own verdicts. */
export interface AutomationRepetitions {
  count: number
  seeds: number[]
  interval: string
  figures: AutomationFigure[]
  runChecks: Array<{ id: string, statuses: Array<Check['status']> }>
}

// ---- revocation -------------------------------------------------------------------------------

/** What a revocation run was asked to do. */
export interface RevocationParameters {
  seed: number
  devices: number
  /** The mesh's fixed topology (firmware-sim/fleet/topology.ts). */
  topology: 'grid' | 'line'
  /** Sampling interval of every other device, ms. */
  intervalMs: number
  /** Sampling interval of the device that is revoked, ms (how finely a leak shows). */
  victimIntervalMs: number
  /** Normal traffic after the fleet settled, before the revocation, s. */
  beforeS: number
  /** Observation after the revocation, s. */
  afterS: number
  /** Longest wait for a fleet to settle, s. */
  settleS: number
  /** Delay every mesh link adds to each message, ms (the fleet's seeded fault model; 0: in-memory links as fast as the process). */
  linkDelayMs: number
  /**
   * The mesh path's links: 'memory' (in-memory links, no credentials shown at the handshake) or
   * 'tcp' (every node's own TCP transport on 127.0.0.1: credentials shown and checked at every
   * handshake, relayed origins' credentials checked). Absent in results from before the option: memory.
   */
  transport?: 'memory' | 'tcp'
  repeat: number
  paths: RevocationPath[]
}

export type { RevocationPathSummary, RevocationPath }

/** One seed's run: each path's figures (metrics/revocation.ts), every node's own among them. */
export interface RevocationRunSummary { seed: number, paths: RevocationPathSummary[] }

/**
 * refusal-*-ms: issue to a node's refusal, percentiles over the nodes of a run; refusing: the share
 * of nodes that refused within the window; accepted-after: frames of the device accepted anywhere
 * after the issue; last-accepted-ms: issue to the last of them; cut-ms: issue to the device's cut-off.
 */
export type RevocationFigureMetric = 'refusal-p50-ms' | 'refusal-p99-ms' | 'refusal-max-ms' | 'refusing' | 'accepted-after' | 'last-accepted-ms' | 'cut-ms'

/** One figure (a path, a metric) over the runs: each run's value, the mean and its 95 % t-interval (null with one run). */
export interface RevocationFigure {
  path: RevocationPath
  metric: RevocationFigureMetric
  values: Array<number | null>
  mean: number | null
  low: number | null
  high: number | null
}

/** results.json of `iotmesh experiment revocation`. */
export interface RevocationResults extends ResultsBase {
  experiment: 'revocation'
  parameters: RevocationParameters
  /** How the intervals were made. */
  interval: string
  runs: RevocationRunSummary[]
  figures: RevocationFigure[]
}

/** results.json of any experiment, told apart by `experiment`. */
export type ExperimentResults = FailoverResults | ScaleResults | LatencyResults | AutomationResults | RevocationResults

export { RESULTS_SCHEMA } from './schema.js'
