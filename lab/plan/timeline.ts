import { meshError } from '../../shared/index.js'
import { streamAt } from '../../firmware-sim/index.js'
import { fingerprintOf } from './canonical.js'

/**
 * The fault timeline of the failover experiment: a pure, seeded plan that every mode (broker,
 * mesh, hybrid) runs through in the same way. Which devices crash, how the fleet splits in the
 * partition and which device subscribes as the peer are drawn from the seed (mulberry32 streams,
 * one per choice, so changing the crash count does not change the partition). The same seed and
 * parameters give the same timeline, byte for byte, and the same `fingerprint`.
 *
 *   steady | broker-down | broker-back | crashed | restarted | partitioned | healed | (drain)
 *
 * Each fault phase begins with its fault event and is followed by a recovery phase `gapS` long
 * that begins with the event undoing it. A fault whose duration is 0 is left out, with its
 * recovery phase. After the last phase the run observes for `drainS` more seconds, publishing
 * nothing new, so readings still on their way can arrive before anything is judged lost.
 */

export type TimelineFaultKind = 'broker-stop' | 'broker-start' | 'crash' | 'restart' | 'partition' | 'heal'
export const FAULT_KINDS: readonly TimelineFaultKind[] = ['broker-stop', 'broker-start', 'crash', 'restart', 'partition', 'heal']

export type PhaseName = 'steady' | 'broker-down' | 'broker-back' | 'crashed' | 'restarted' | 'partitioned' | 'healed'
export const PHASE_NAMES: readonly PhaseName[] = ['steady', 'broker-down', 'broker-back', 'crashed', 'restarted', 'partitioned', 'healed']

export interface TimelineFault {
  /** Seconds from the start of the timeline. */
  atS: number
  kind: TimelineFaultKind
  /** crash, restart: the fleet members concerned, by index (0-based), ascending. */
  devices?: number[]
  /**
   * partition: the groups of fleet members, by index, each ascending. `groups[0]` is the side the
   * gateway (and the broker) stays on; the others are cut off from it.
   */
  groups?: number[][]
}

export interface Phase {
  name: PhaseName
  startS: number
  endS: number
  /** The events at the start of this phase. */
  faults: TimelineFault[]
}

export interface FailoverParams {
  /** 32-bit unsigned seed of every choice the plan makes. */
  seed: number
  /** Fleet size. */
  devices: number
  /** The first phase, with no fault. */
  steadyS: number
  /** How long the broker stays down (0: no broker fault). */
  brokerDownS: number
  /** How many devices crash (SIGKILL) at once (0: no crash). */
  crashCount: number
  /** How long the crashed devices stay down. */
  crashS: number
  /** How long the fleet stays split in two (0: no partition). */
  partitionS: number
  /** The recovery phase after each fault. */
  gapS: number
  /** Observation after the last phase, for readings still on their way. */
  drainS: number
}

export interface Timeline {
  format: 'iotmesh-timeline'
  version: 1
  params: FailoverParams
  /** The fleet member (index) that subscribes to everything as the peer; it never crashes. */
  peer: number
  phases: Phase[]
  /** End of the last phase, seconds: devices stop publishing here. */
  endS: number
  /** `sha256:<hex>` of the canonical JSON (RFC 8785 key order) of every other field. */
  fingerprint: string
}

/** About 2.5 minutes per mode (plus a 10 s drain): 20 devices, the broker down for 30 s. */
export const FAILOVER_DEFAULTS: Readonly<FailoverParams> = Object.freeze({
  seed: 1, devices: 20, steadyS: 20, brokerDownS: 30, crashCount: 3, crashS: 20, partitionS: 20, gapS: 20, drainS: 10
})

/** About 37 s per mode (plus a 5 s drain), for tests and smoke runs. */
export const FAILOVER_QUICK: Readonly<FailoverParams> = Object.freeze({
  seed: 1, devices: 6, steadyS: 5, brokerDownS: 6, crashCount: 2, crashS: 5, partitionS: 6, gapS: 5, drainS: 5
})

export const FAILOVER_PRESETS = Object.freeze({ default: FAILOVER_DEFAULTS, quick: FAILOVER_QUICK })
export type FailoverPreset = keyof typeof FAILOVER_PRESETS

/** Plans the failover timeline; missing parameters come from `FAILOVER_DEFAULTS`. */
export function planFailover (init: Partial<FailoverParams> = {}): Timeline {
  const params = checkParams({ ...FAILOVER_DEFAULTS, ...stripUndefined(init) })
  const { seed, devices } = params
  const crashed = sample(streamAt(seed, 'failover', 'crash'), range(devices), params.crashCount)
  const survivors = range(devices).filter((d) => !crashed.includes(d))
  const peer = survivors[Math.floor(streamAt(seed, 'failover', 'peer')() * survivors.length)] as number
  const phases: Phase[] = []
  let t = 0
  const phase = (name: PhaseName, lengthS: number, faults: Array<Omit<TimelineFault, 'atS'>> = []): void => {
    phases.push({ name, startS: t, endS: t + lengthS, faults: faults.map((f) => ({ atS: t, ...f })) })
    t += lengthS
  }
  phase('steady', params.steadyS)
  if (params.brokerDownS > 0) {
    phase('broker-down', params.brokerDownS, [{ kind: 'broker-stop' }])
    phase('broker-back', params.gapS, [{ kind: 'broker-start' }])
  }
  if (params.crashCount > 0 && params.crashS > 0) {
    phase('crashed', params.crashS, [{ kind: 'crash', devices: crashed }])
    phase('restarted', params.gapS, [{ kind: 'restart', devices: crashed }])
  }
  if (params.partitionS > 0) {
    phase('partitioned', params.partitionS, [{ kind: 'partition', groups: splitInTwo(streamAt(seed, 'failover', 'partition'), devices) }])
    phase('healed', params.gapS, [{ kind: 'heal' }])
  }
  const body = { format: 'iotmesh-timeline' as const, version: 1 as const, params, peer, phases, endS: t }
  return { ...body, fingerprint: fingerprintOf(body) }
}

/** Recomputes a timeline's fingerprint: equal to `timeline.fingerprint` unless it was edited. */
export function timelineFingerprint (timeline: Omit<Timeline, 'fingerprint'> & { fingerprint?: string }): string {
  const { fingerprint: _ignored, ...body } = timeline
  return fingerprintOf(body)
}

/** Every fault event of the timeline, in order. */
export function faultEvents (timeline: Pick<Timeline, 'phases'>): TimelineFault[] {
  return timeline.phases.flatMap((p) => p.faults)
}

/** The phase in which second `s` falls, or undefined before 0 and from `endS` on. */
export function phaseAt (timeline: Pick<Timeline, 'phases'>, s: number): Phase | undefined {
  return timeline.phases.find((p) => s >= p.startS && s < p.endS)
}

/** Seconds one mode takes: the phases and the drain. */
export function timelineDurationS (timeline: Pick<Timeline, 'endS' | 'params'>): number {
  return timeline.endS + timeline.params.drainS
}

/** The cut-off side holds between a quarter and a half of the fleet (at least one device). */
function splitInTwo (rng: () => number, devices: number): number[][] {
  const low = Math.max(1, Math.floor(devices / 4))
  const high = Math.max(low, Math.floor(devices / 2))
  const size = low + Math.floor(rng() * (high - low + 1))
  const cut = sample(rng, range(devices), size)
  return [range(devices).filter((d) => !cut.includes(d)), cut]
}

/** `count` distinct items chosen by a partial Fisher–Yates shuffle, returned ascending. */
function sample (rng: () => number, items: number[], count: number): number[] {
  const pool = [...items]
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng() * (pool.length - i))
    const swap = pool[i] as number
    pool[i] = pool[j] as number
    pool[j] = swap
  }
  return pool.slice(0, count).sort((a, b) => a - b)
}

function range (n: number): number[] {
  return Array.from({ length: n }, (_, i) => i)
}

function stripUndefined<T extends object> (init: T): Partial<T> {
  return Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) as Partial<T>
}

function checkParams (p: FailoverParams): FailoverParams {
  const bad = (name: string, want: string): never => {
    throw meshError('ERR_BAD_ARGUMENT', `failover: ${name} must be ${want}, got ${String((p as unknown as Record<string, unknown>)[name])}`, { details: { name } })
  }
  if (!Number.isInteger(p.seed) || p.seed < 0 || p.seed > 0xffff_ffff) bad('seed', 'an integer from 0 to 4294967295')
  if (!Number.isInteger(p.devices) || p.devices < 2) bad('devices', 'an integer of at least 2')
  if (!Number.isInteger(p.crashCount) || p.crashCount < 0 || p.crashCount > p.devices - 1) {
    bad('crashCount', `an integer from 0 to ${p.devices - 1} (devices - 1: the peer subscriber never crashes)`)
  }
  if (!(p.steadyS > 0) || !Number.isFinite(p.steadyS)) bad('steadyS', 'a number of seconds above 0')
  if (!(p.gapS > 0) || !Number.isFinite(p.gapS)) bad('gapS', 'a number of seconds above 0')
  for (const name of ['brokerDownS', 'crashS', 'partitionS', 'drainS'] as const) {
    if (!(p[name] >= 0) || !Number.isFinite(p[name])) bad(name, 'a number of seconds, 0 or more')
  }
  return {
    seed: p.seed,
    devices: p.devices,
    steadyS: p.steadyS,
    brokerDownS: p.brokerDownS,
    crashCount: p.crashCount,
    crashS: p.crashS,
    partitionS: p.partitionS,
    gapS: p.gapS,
    drainS: p.drainS
  }
}
