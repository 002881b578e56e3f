/**
 * iotmesh experiment, the pure half: the seeded fault timeline, the figures computed from raw
 * observations, the results schema, the SVG charts, report.md and the progress display. The
 * runner that drives fleets records `ModeObservations` / `ScaleObservations` /
 * `LatencyObservation`s (observations.ts), assembles results (assemble.ts) and calls `writeReport`.
 */
export {
  planFailover, timelineFingerprint, faultEvents, phaseAt, timelineDurationS,
  FAILOVER_DEFAULTS, FAILOVER_QUICK, FAILOVER_PRESETS, FAULT_KINDS, PHASE_NAMES,
  type FailoverParams, type FailoverPreset, type FaultEvent, type FaultKind, type Phase, type PhaseName, type Timeline
} from './timeline.js'
export { canonicalJson, fingerprintOf } from './canonical.js'

export {
  MODES, LATENCY_PATHS, RESOURCE_ROLES,
  type Mode, type Receiver, type ReadingObservation, type ResourceSample, type ResourceRole, type AppliedFault, type ModeObservations,
  type ScaleObservations, type LatencyPath, type LatencyObservation
} from './observations.js'

export { summarizeMode, mergeReadings, longestGaps } from './metrics.js'
export { resumeAfter } from './resume.js'
export { summarizeScale, sortScalePoints } from './scale.js'
export { summarizeLatency } from './latency.js'
export { summarizeResources, perMember } from './resources.js'
export { percentiles, distribution, median, percentileOfSorted, type Percentiles, type Distribution } from './stats.js'
export { failoverChecks, scaleChecks, latencyChecks } from './checks.js'
export { failoverResults, scaleResults, latencyResults, type RunInfo, type FailoverInput, type ScaleInput, type LatencyInput } from './assemble.js'

export {
  RESULTS_FORMAT, RESULTS_VERSION, RESULTS_SCHEMA, EXPERIMENT_KINDS,
  type ExperimentKind, type ExperimentResults, type FailoverResults, type ScaleResults, type LatencyResults,
  type FailoverParameters, type ScaleParameters, type LatencyParameters, type Machine, type Software, type Check,
  type ModeSummary, type PhaseSummary, type TargetDelivery, type Resume, type FaultOutcome, type DeviceGap,
  type DeliverySeries, type ResourceSummary, type RoleRates, type ScalePoint, type PathSummary
} from './results.js'
export { validateSchema, type JsonSchema, type SchemaError } from './validate.js'
export { machineInfo, softwareVersions, MEASURED_PACKAGES, type OsInfo, type SoftwareComponents } from './environment.js'

export { deliveryChart, faultWindows, cdfChart, failoverLatencyChart, pathLatencyChart, trafficChart, type FaultWindow, type CdfSeries } from './charts/index.js'
export { writeReport, renderReport, validateResults, readingsCsv, SCHEMA_FILE, type ReportOptions, type ReportFile } from './report.js'
export { Progress, createProgress, progressStyle, clockTime, type ProgressInit, type ProgressComponents, type ProgressStream, type ProgressStyle, type ProgressUpdate } from './progress.js'

// The runners: they drive simulated fleets (and, for latency, child processes) and record the observations above.
export { runFailover, failoverTimeline, failoverRunSeconds, type FailoverRunInit, type FailoverRun } from './run-failover.js'
export { runScale, scaleRunSeconds, SCALE_DEFAULTS, SCALE_QUICK, type ScaleRunInit, type ScaleRun } from './run-scale.js'
export { runLatency, latencyRunSeconds, benchChildren, LATENCY_DEFAULTS, LATENCY_QUICK, type LatencyRunInit, type LatencyRun } from './run-latency.js'
export { MqttPacketCounter } from './run-mqtt-tap.js'
export { summaryText, checkLines, textTable } from './run-summary.js'
export type { RunComponents } from './run-support.js'
