import type { TimelineFaultKind } from './plan/timeline.js'
import type { AutomationWay, ExecutionObservation, TriggerObservation } from './metrics/automation.js'

/**
 * What the runner records while it drives a fleet: the raw observations every figure of the
 * experiment is computed from (metrics/). This is the contract between the runners and the
 * pure half. Times are milliseconds on one clock shared by every process of
 * the run (`Date.now()`, or `performance.timeOrigin + performance.now()`): the runner stamps
 * publications and receptions on the same clock, so a latency is a difference of two stamps.
 */

export type Mode = 'broker' | 'mesh' | 'hybrid'
/** The three architectures compared, in the order they run: broker only, mesh only, both. */
export const MODES: readonly Mode[] = ['broker', 'mesh', 'hybrid']

/** The receivers whose arrivals are recorded: the gateway, and a device subscribing to the whole fleet. */
export type Receiver = 'gateway' | 'peer'

/** The fate of one reading, identified by its origin and sequence number. */
export interface ReadingObservation {
  /** Device id of the publisher (26 base32 characters). */
  origin: string
  seq: number
  /** When the device made the reading and handed it to its delivery paths (its outbox). */
  publishedAt: number
  /** First arrival at each receiver; a receiver missing here never got the reading. */
  receivedAt?: { gateway?: number, peer?: number }
  /** Copies delivered to the gateway's application after the first (0 or missing: none). */
  duplicatesAtGateway?: number
}

/**
 * Cumulative counters of one role's processes (or in-process nodes), sampled over the run. Rates
 * are taken between the first and the last sample of a window.
 */
export interface ResourceSample {
  /** When the sample was taken. */
  at: number
  /** `devices`: every device of the fleet together; `broker`: the MQTT broker; `gateway`: the rest of the gateway. */
  role: ResourceRole
  /** CPU time used so far, user + system, ms (process.cpuUsage() / 1000, summed over the role). */
  cpuMs: number
  /** Resident set size now, bytes, summed over the role's processes (each counted once when they share one). */
  rssBytes: number
  /** Bytes received and sent so far on the role's network links (TCP payload: mesh links and MQTT). */
  bytesIn: number
  bytesOut: number
  /** Frames (mesh messages, MQTT packets) received and sent so far. */
  framesIn: number
  framesOut: number
}

/** Whose resources a sample measures: the devices together, the broker, or the gateway. */
export type ResourceRole = 'devices' | 'broker' | 'gateway'
/** The process roles whose CPU, memory and traffic a run samples. */
export const RESOURCE_ROLES: readonly ResourceRole[] = ['devices', 'broker', 'gateway']

/** A fault event as the runner carried it out. */
export interface AppliedFault {
  kind: TimelineFaultKind
  /** When the plan put it (timeline seconds). */
  plannedS: number
  /** When it took effect (run clock, ms): after the broker closed, after the process died, … */
  at: number
}

/** One mode's run through the failover timeline. */
export interface ModeObservations {
  mode: Mode
  /** The fleet in order: `devices[i]` is the device id of member i (fault events name members by index). */
  devices: string[]
  /** The clock reading at timeline second 0. */
  t0: number
  /**
   * When observation stopped: the end of the last phase plus the drain. A reading that has not
   * reached a receiver by then is counted lost for good.
   */
  endedAt: number
  /** Device id of the peer subscriber (the timeline's `peer` member); missing: no peer subscribed, peer figures are null. */
  peer?: string
  /** Every fault event carried out, in timeline order; missing: taken as planned. */
  faults?: AppliedFault[]
  /**
   * Every reading a device made during the run (from the device's own report of what it
   * published), received or not. A reading may appear once only; repeats are merged.
   */
  readings: ReadingObservation[]
  /**
   * Sequence numbers devices spent on frames that are not readings (a mesh node signs its
   * `mesh/links` announcements with its device's sequence source): the gaps they leave in a
   * device's numbers are not holes. Missing: none.
   */
  otherFrames?: Array<{ origin: string, seq: number }>
  samples?: ResourceSample[]
}

/** One fleet size in one mode (`iotmesh experiment scale`). */
export interface ScaleObservations {
  mode: Mode
  /** Fleet size. */
  devices: number
  /** How the devices were linked: the mesh over TCP or in memory (broker mode: MQTT over TCP, `tcp`). Absent: not recorded. */
  transport?: 'tcp' | 'memory'
  /** Start and end of the measured window (after the fleet settled; readings outside it are ignored). */
  t0: number
  endedAt: number
  readings: ReadingObservation[]
  samples: ResourceSample[]
}

/** A path a probe takes in the latency experiment: one mesh hop, three mesh hops, or through the broker. */
export type LatencyPath = 'one-hop' | 'three-hop' | 'broker'
/** The paths the latency experiment measures, round by round. */
export const LATENCY_PATHS: readonly LatencyPath[] = ['one-hop', 'three-hop', 'broker']

/** One probe of `iotmesh experiment latency`: rounds interleave the paths (round r probes every path). */
export interface LatencyObservation {
  path: LatencyPath
  round: number
  /** Publisher to subscriber, ms; missing: the probe never arrived. */
  latencyMs?: number
}

/** What the automation runner saw of one way (runners/automation.ts). */
export interface WayObservations {
  way: AutomationWay
  mode: Mode
  t0: number
  endedAt: number
  faults: AppliedFault[]
  triggers: TriggerObservation[]
  executions: ExecutionObservation[]
  /** Commands the targets refused, by code. */
  refused: Record<string, number>
  /** Commands the rules sent (on the devices and at the gateway) and those that ended without a result. */
  sent: number
  unanswered: number
  /** How the rules' commands ended, by result status or error code (on the devices and at the gateway together). */
  outcomes: Record<string, number>
}

