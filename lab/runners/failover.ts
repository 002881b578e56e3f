import { meshError } from '../../shared/index.js'
import type { Fleet } from '../../firmware-sim/index.js'
import { failoverResults } from '../results/assemble.js'
import { MODES, type AppliedFault, type Mode, type ModeObservations } from '../observations.js'
import { writeReport } from '../report/write.js'
import type { FailoverResults } from '../results/types.js'
import { startObservedFleet, type ObservedFleet } from './fleet.js'
import { hiResNow, sleep, ticking, type RunComponents } from './support.js'
import {
  FAILOVER_PRESETS, planFailover, timelineDurationS, type FailoverParams, type FailoverPreset, type TimelineFault, type TimelineFaultKind, type Timeline
} from '../plan/timeline.js'
import { finishProvenance, startProvenance } from '../results/environment.js'
import { combineRepeatedRuns } from '../results/repeat-checks.js'

/**
 * `iotmesh experiment failover`, the runner: for each mode in turn (broker, mesh, hybrid), a fresh
 * fleet with the same seed and parameters runs through the same seeded fault timeline
 * (plan/timeline.ts `planFailover`), and every reading's fate is recorded (runners/record.ts). Then the
 * pure half computes the figures (results/assemble.ts) and writes the report (report/write.ts).
 *
 * Per mode: start the fleet, wait until it has settled (runners/fleet.ts), call that instant
 * timeline second 0, carry out each phase's fault events when it begins (stopBroker/startBroker,
 * crash/restart, partition/heal), observe for the drain after the last phase, stop the fleet.
 *
 * Choices:
 * - Devices keep sampling during the drain: the device runtime cannot stop sampling without
 *   leaving the mesh (`stop()` says goodbye and closes its node, which would stop it relaying
 *   other devices' backlogs). Readings published from the end of the last phase on are simply
 *   not observed: the figures cover exactly the readings published within the timeline.
 * - Readings belong to phases by the planned boundaries, so a fault must be in effect for the
 *   whole of its phase: broker-stop, crash and partition are set off `FAULT_LEAD_MS` (20 ms)
 *   before their instant; broker-start, restart and heal are carried out at it. The applied
 *   fault's `at` is when the fleet's call returned (the broker closed, the devices died, the
 *   links across the cut destroyed), a few ms either side of the boundary.
 * - Crashed devices crash together (concurrently), as do restarted ones.
 */

export interface FailoverRunInit extends Partial<FailoverParams> {
  /** Starting point for the parameters not given (default `default`: FAILOVER_DEFAULTS). */
  preset?: FailoverPreset
  /** Modes to run, in this order (default broker, mesh, hybrid). */
  modes?: Mode[]
  /** Sampling interval of every device, ms (default 1000: one reading a second). */
  intervalMs?: number
  /** Mesh links: real TCP with DNS-SD discovery (default), or in-memory links. */
  transport?: 'tcp' | 'memory'
  /** Longest wait for a fleet to settle before its timeline starts, s (default 30). */
  settleS?: number
  /** Write the report into this directory (report/write.ts `writeReport`). */
  out?: string
  /**
   * Runs of the whole experiment (default 1), with seeds seed, seed + 1, …: each its own fault
   * timeline. From 2 on, every figure gets a 95 % interval and the checks are judged on the
   * intervals (results/repeat-checks.ts); readings.csv, the charts and tables are the first run's.
   */
  repeat?: number
}

/** A failover run: its results, the first run's raw observations, and the files written. */
export interface FailoverRun {
  results: FailoverResults
  /** The first run's. */
  observations: ModeObservations[]
  /** The files written (empty without `out`). */
  files: string[]
}

/**
 * A fault is set off this long before its planned instant, so that it is in effect for the whole
 * of its phase: the broker's stop closes every client connection within a millisecond or two of
 * the call, and a reading published just after the boundary must not slip through before it.
 * The events that undo a fault (broker-start, restart, heal) are carried out at the boundary, so
 * the fault lasts to the end of its phase.
 */
const FAULT_LEAD_MS = 20
const STARTS_A_FAULT = new Set<TimelineFaultKind>(['broker-stop', 'crash', 'partition'])

/** Seconds a fleet is expected to take to start and settle, for the time-left estimate. */
const SETUP_ESTIMATE_S = 8

/** The timeline a run with these settings follows (the preset, then the explicit parameters). */
export function failoverTimeline (init: FailoverRunInit = {}): Timeline {
  const preset = FAILOVER_PRESETS[init.preset ?? 'default']
  const explicit = Object.fromEntries(Object.entries(pickParams(init)).filter(([, v]) => v !== undefined))
  return planFailover({ ...preset, ...explicit })
}

/** Seconds the whole run is expected to take (every mode, set-up and drains included). */
export function failoverRunSeconds (init: FailoverRunInit = {}): number {
  return (init.repeat ?? 1) * (init.modes ?? MODES).length * (SETUP_ESTIMATE_S + timelineDurationS(failoverTimeline(init)))
}

/** Runs the failover experiment: each mode through the same seeded fault timeline, `repeat` times; writes the report with `out`. */
export async function runFailover (init: FailoverRunInit = {}, components: RunComponents = {}): Promise<FailoverRun> {
  const repeat = init.repeat ?? 1
  if (!Number.isSafeInteger(repeat) || repeat < 1 || repeat > 100) throw meshError('ERR_BAD_ARGUMENT', `failover: repeat must be an integer from 1 to 100, got ${repeat}`)
  const first = failoverTimeline(init)
  if (repeat === 1) return await runOnce(init, first, components)
  const seed = first.params.seed
  if (seed + repeat - 1 > 0xffff_ffff) throw meshError('ERR_BAD_ARGUMENT', `failover: seeds ${seed}…${seed + repeat - 1} pass 4294967295`)
  const provenance = startProvenance(components.command)
  const runs: FailoverRun[] = []
  for (let i = 0; i < repeat; i++) {
    const timeline = failoverTimeline({ ...init, seed: seed + i })
    runs.push(await runOnce({ ...init, out: undefined }, timeline, { ...components, repetition: `${i + 1}/${repeat}` }))
  }
  const combined = combineRepeatedRuns(runs.map((r) => r.results))
  const notes = [...new Set(runs.flatMap((r, i) => (r.results.notes ?? []).map((n) => i === 0 ? n : `seed ${seed + i}: ${n}`)))]
  const results = { ...combined, notes, provenance: finishProvenance(provenance) }
  const observations = runs[0]?.observations ?? []
  const files = init.out === undefined ? [] : await writeReport(init.out, results, { observations })
  return { results, observations, files }
}

async function runOnce (init: FailoverRunInit, timeline: Timeline, components: RunComponents & { repetition?: string }): Promise<FailoverRun> {
  const modes = checkModes(init.modes ?? [...MODES])
  const intervalMs = init.intervalMs ?? 1000
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 50) throw meshError('ERR_BAD_ARGUMENT', `failover: intervalMs must be an integer of at least 50, got ${intervalMs}`)
  const transport = init.transport ?? 'tcp'
  const settleMs = (init.settleS ?? 30) * 1000
  const now = components.now ?? hiResNow
  const startedAt = now()
  const provenance = startProvenance(components.command)
  const observations: ModeObservations[] = []
  const notes: string[] = [
    `transport: ${transport === 'tcp' ? 'TCP links (authenticated, encrypted) with DNS-SD discovery' : 'in-memory links'}; every device, the gateway and the broker run in one process (iotmesh fleet simulator)`,
    'resources: CPU and memory are the whole process (devices, gateway and broker together), under the role "devices"; its traffic is the devices\' own (mesh link bytes and messages, relaying included, plus their MQTT connections)',
    `devices keep sampling during the ${timeline.params.drainS} s drain; readings published after the last phase are not observed`,
    'duplicates: readings the gateway handed to its application more than once (its ingest drops repeated frames before that)'
  ]
  for (const [i, mode] of modes.entries()) {
    const step = `${i + 1}/${modes.length}${components.repetition === undefined ? '' : `, run ${components.repetition}`}`
    const observed = await runMode(mode, timeline, { intervalMs, transport, settleMs, step, notes }, { ...components, now })
    observations.push(observed)
  }
  const results = failoverResults({ timeline, observations, intervalS: intervalMs / 1000, startedAt, finishedAt: now(), notes, provenance: finishProvenance(provenance) })
  const files = init.out === undefined ? [] : await writeReport(init.out, results, { observations })
  return { results, observations, files }
}

interface ModeSettings { intervalMs: number, transport: 'tcp' | 'memory', settleMs: number, step: string, notes: string[] }

async function runMode (mode: Mode, timeline: Timeline, settings: ModeSettings, components: RunComponents & { now: () => number }): Promise<ModeObservations> {
  const { now, progress, signal } = components
  const show = (phase: string): void => { progress?.update({ mode, step: settings.step, phase }) }
  show('starting the fleet')
  const observed = await ticking(500, () => { show('starting the fleet') }, startObservedFleet({
    mode,
    devices: timeline.params.devices,
    seed: timeline.params.seed,
    interval: settings.intervalMs,
    transport: settings.transport,
    peer: timeline.peer,
    settleMs: settings.settleMs
  }, { now, ...(signal === undefined ? {} : { signal }) }))
  try {
    if (observed.unsettled !== undefined) {
      settings.notes.push(observed.unsettled)
      progress?.log(`warning: ${observed.unsettled}`)
    }
    const t0 = now()
    observed.sampler.start()
    const faults: AppliedFault[] = []
    for (const [i, phase] of timeline.phases.entries()) {
      const previous = timeline.phases[i - 1]?.name ?? phase.name
      const lead = phase.faults.some((f) => STARTS_A_FAULT.has(f.kind)) ? FAULT_LEAD_MS : 0
      await ticking(500, () => { show(previous) }, sleep(t0 + phase.startS * 1000 - lead - now(), signal))
      show(phase.name)
      for (const event of phase.faults) {
        await applyFault(observed, event)
        faults.push({ kind: event.kind, plannedS: event.atS, at: now() })
      }
    }
    await ticking(500, () => { show(timeline.phases.at(-1)?.name ?? 'steady') }, sleep(t0 + timeline.endS * 1000 - now(), signal))
    await ticking(500, () => { show('drain') }, sleep(t0 + timelineDurationS(timeline) * 1000 - now(), signal))
    const endedAt = now()
    observed.sampler.sample()
    const fleet: Fleet = observed.fleet
    const dropped = fleet.gateway?.counters.dropped.duplicate ?? 0
    if (dropped > 0) settings.notes.push(`${mode}: the gateway's ingest dropped ${dropped} repeated frames (a second path or a retransmission)`)
    const refused = observed.peer?.refused ?? 0
    if (refused > 0) settings.notes.push(`${mode}: the peer subscriber refused or dropped ${refused} frames`)
    return {
      mode,
      devices: fleet.devices.map((d) => d.keys.id),
      t0,
      endedAt,
      peer: fleet.devices[timeline.peer]?.keys.id as string,
      faults,
      readings: observed.recorder.readings(t0, t0 + timeline.endS * 1000, endedAt),
      otherFrames: observed.recorder.otherFrames(),
      samples: observed.sampler.between(t0, endedAt)
    }
  } finally {
    show('stopping the fleet')
    await observed.stop()
  }
}

async function applyFault (observed: ObservedFleet, event: TimelineFault): Promise<void> {
  const { fleet } = observed
  switch (event.kind) {
    case 'broker-stop': await fleet.stopBroker(); break
    case 'broker-start': await fleet.startBroker(); break
    case 'crash':
      observed.sampler.sample() // the dying nodes' last counts
      await Promise.all((event.devices ?? []).map(async (i) => { await fleet.crash(i) }))
      break
    case 'restart':
      await Promise.all((event.devices ?? []).map(async (i) => { await fleet.restart(i) }))
      observed.recorder.watch()
      break
    case 'partition': fleet.partition(event.groups ?? []); break
    case 'heal': fleet.heal(); break
  }
}

function checkModes (modes: Mode[]): Mode[] {
  if (modes.length === 0 || modes.some((m) => !MODES.includes(m)) || new Set(modes).size !== modes.length) {
    throw meshError('ERR_BAD_ARGUMENT', `failover: modes must be distinct, from ${MODES.join(', ')}; got ${JSON.stringify(modes)}`)
  }
  return modes
}

function pickParams (init: FailoverRunInit): Partial<FailoverParams> {
  const { seed, devices, steadyS, brokerDownS, crashCount, crashS, partitionS, gapS, drainS } = init
  return { seed, devices, steadyS, brokerDownS, crashCount, crashS, partitionS, gapS, drainS }
}
