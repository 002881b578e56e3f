/**
 * The experiment lab (`iotmesh experiment`, `iotmesh/lab`): it measures the other parts, so it
 * may depend on every one of them (through their index.ts) and nothing but bin/ and test/ depends
 * on it. Its rooms:
 *
 * - plan/      the seeded failover timeline and its fingerprint
 * - runners/   drive simulated fleets (and, for latency, the child programs) and record
 *              `ModeObservations` / `ScaleObservations` / `LatencyObservation`s (observations.ts)
 * - children/  the child programs the latency runner starts (one mesh node; the broker path),
 *              compiled to dist/lab/children/ and run, never imported
 * - metrics/   the figures computed from raw observations
 * - results/   results.json: its types, JSON Schema and validator, assembly, checks, environment
 * - charts/    hand-written SVG charts
 * - report/    report.md and the terminal summary
 * - progress.ts the progress display
 */
export {
  planFailover, timelineFingerprint, faultEvents, phaseAt, timelineDurationS,
  FAILOVER_DEFAULTS, FAILOVER_QUICK, FAILOVER_PRESETS, FAULT_KINDS, PHASE_NAMES,
  type FailoverParams, type FailoverPreset, type TimelineFault, type TimelineFaultKind, type Phase, type PhaseName, type Timeline
} from './plan/timeline.js'
export { canonicalJson, fingerprintOf } from './plan/canonical.js'

export {
  MODES, LATENCY_PATHS, RESOURCE_ROLES,
  type Mode, type Receiver, type ReadingObservation, type ResourceSample, type ResourceRole, type AppliedFault, type ModeObservations,
  type ScaleObservations, type LatencyPath, type LatencyObservation
} from './observations.js'

export { summarizeMode, mergeReadings, longestGaps } from './metrics/failover.js'
export { resumeAfter } from './metrics/resume.js'
export { summarizeScale, sortScalePoints } from './metrics/scale.js'
export { summarizeLatency } from './metrics/latency.js'
export { summarizeResources, perMember } from './metrics/resources.js'
export { percentiles, distribution, median, percentileOfSorted, type Percentiles, type Distribution } from './metrics/stats.js'
export { failoverChecks, scaleChecks, latencyChecks } from './results/checks.js'
export { tInterval, tQuantile975, repeatedFigures } from './metrics/repeat.js'
export { combineRepeatedRuns, repeatedFailoverChecks, refreshRepetitions } from './results/repeat-checks.js'
export { combineScaleRuns, scaleFigures, repeatedScaleChecks, refreshScaleRepetitions } from './results/scale-repeat.js'
export { combineLatencyRuns, latencyFigures, repeatedLatencyChecks, refreshLatencyRepetitions } from './results/latency-repeat.js'
export { compareRuns, reproductionMarkdown, type ComparedFigure, type Reproduction } from './results/reproduce.js'
export { automationFigures, combineAutomationRuns, refreshAutomationRepetitions, repeatedAutomationChecks } from './results/automation-repeat.js'
export { failoverResults, scaleResults, latencyResults, refreshScale, refreshLatency, type RunInfo, type FailoverInput, type ScaleInput, type LatencyInput } from './results/assemble.js'

export {
  RESULTS_FORMAT, RESULTS_VERSION, RESULTS_SCHEMA, EXPERIMENT_KINDS,
  type ExperimentKind, type ExperimentResults, type FailoverResults, type Repetitions, type RepeatedFigure, type RepeatMetric, type PooledShare, type ScaleResults, type LatencyResults,
  type RepetitionsOf, type FigureOverRuns, type ScaleFigure, type ScaleFigureMetric, type LatencyFigure, type LatencyFigureMetric,
  type FailoverParameters, type ScaleParameters, type LatencyParameters, type Machine, type Software, type Check,
  type ModeSummary, type PhaseSummary, type TargetDelivery, type Resume, type FaultOutcome, type DeviceGap,
  type DeliverySeries, type ResourceSummary, type RoleRates, type ScalePoint, type PathSummary
} from './results/types.js'
export { validateSchema, type JsonSchema, type SchemaError } from './results/validate.js'
export { machineInfo, softwareVersions, MEASURED_PACKAGES, type OsInfo, type SoftwareComponents } from './results/environment.js'

export { deliveryChart, faultWindows, cdfChart, failoverLatencyChart, pathLatencyChart, trafficChart, type FaultWindow, type CdfSeries } from './charts/index.js'
export { writeReport, renderReport, validateResults, parseSavedResults, readingsCsv, SCHEMA_FILE, type ReportOptions, type ReportFile } from './report/write.js'
export { Progress, createProgress, progressStyle, clockTime, type ProgressInit, type ProgressComponents, type ProgressStream, type ProgressStyle, type ProgressUpdate } from './progress.js'

// The runners: they drive simulated fleets (and, for latency, child processes) and record the observations above.
export { runFailover, failoverTimeline, failoverRunSeconds, type FailoverRunInit, type FailoverRun } from './runners/failover.js'
export { runScale, scaleRunSeconds, SCALE_DEFAULTS, SCALE_QUICK, type ScaleRunInit, type ScaleRun } from './runners/scale.js'
export { runLatency, latencyRunSeconds, LATENCY_DEFAULTS, LATENCY_QUICK, type LatencyRunInit, type LatencyRun } from './runners/latency.js'
export { childPrograms, ChildProgram } from './runners/children.js'
export { MqttPacketCounter } from './runners/mqtt-tap.js'
export { summaryText, checkLines, textTable } from './report/summary.js'
export type { RunComponents } from './runners/support.js'

// The automation experiment (issue 12): rules on the devices, at the gateway, or both, through the failover faults.
export {
  planAutomation, automationWorld, automationRules, automationRoles, AUTOMATION_DEFAULTS, AUTOMATION_QUICK, AUTOMATION_PRESETS, AUTOMATION_RULES,
  type AutomationParams, type AutomationPlan, type AutomationRoles, type AutomationRule
} from './plan/automation.js'
export {
  matchTriggers, summarizeAutomation, AUTOMATION_WAYS,
  type AutomationWay, type TriggerObservation, type ExecutionObservation, type TriggerOutcome, type TriggerFate, type AutomationPhaseSummary, type MatchOptions
} from './metrics/automation.js'
export { automationResults, automationChecks, WORKING_SHARE, EXPIRY_TOLERANCE_MS, type AutomationInput } from './results/automation.js'
export { runAutomation, automationPlan, automationRunSeconds, centralRules, groundTruth, homeScenario, type AutomationRunInit, type AutomationRun } from './runners/automation.js'
export { triggersChart, notOnTimeChart } from './charts/automation.js'
export type { WayObservations } from './observations.js'
export type { AutomationFigure, AutomationFigureMetric, AutomationRepetitions, AutomationResults, AutomationParameters, AutomationWaySummary } from './results/types.js'

// The revocation experiment (issue 13): time until every node refuses a revoked device, mesh and broker.
export { summarizePath as summarizeRevocationPath, REVOCATION_PATHS, type RevocationPath, type NodeObservation, type PathObservation, type NodeFigures } from './metrics/revocation.js'
export { revocationResults, revocationChecks, revocationFigures, refreshRevocation, REFUSAL_BOUND_MS, REVOCATION_METRICS, type RevocationInput, type RevocationRunObservations } from './results/revocation.js'
export { runRevocation, revocationParams, revocationRunSeconds, revocationOwners, REVOCATION_DEFAULTS, REVOCATION_QUICK, REVOCATION_PRESETS, type RevocationParams, type RevocationRunInit, type RevocationRun } from './runners/revocation.js'
export { refusalChart } from './charts/revocation.js'
export type { RevocationResults, RevocationFigure, RevocationFigureMetric, RevocationParameters, RevocationRunSummary, RevocationPathSummary } from './results/types.js'
