import {
  failoverResults, faultEvents, latencyResults, planFailover, scaleResults, FAILOVER_QUICK,
  type FailoverResults, type LatencyObservation, type LatencyResults, type Machine, type Mode, type ModeObservations,
  type ReadingObservation, type ResourceSample, type ScaleObservations, type ScaleResults, type Software, type Timeline
} from '../../lab/index.js'

/**
 * A deterministic stand-in for the runner: observations of a failover run that behave as the
 * three architectures should (broker-only holds readings while the broker is down and flushes
 * them after it returns; the mesh ignores the broker and catches a partition up when it heals;
 * hybrid takes whichever path is faster), so reports and charts have realistic data to show.
 * `broken` options make the data violate an expectation, for tests that must see a ✘.
 */

export const MACHINE: Machine = { platform: 'linux', release: '6.1.0', arch: 'x64', cpus: 2, cpuModel: 'Test CPU @ 2.0GHz', memoryBytes: 8 * 2 ** 30 }
export const SOFTWARE: Software = { node: 'v20.20.2', iotmesh: '0.1.0', aedes: '1.2.0', mqtt: '5.16.0', 'bonjour-service': '1.4.4', 'cbor-x': '1.6.9' }
export const T0 = 1_767_225_600_000

export interface Broken {
  /** broker mode keeps delivering while the broker is down (the stop did not take). */
  brokerNeverStopped?: boolean
  /** this many of mesh mode's readings never arrive. */
  meshLoses?: number
  /** hybrid delivers each reading twice to the application. */
  hybridDuplicates?: boolean
  /**
   * mesh and hybrid: the readings published in the broker outage's last second arrive 0.5 s after the phase ended
   * (late for "during the phase", on time within a 3 s tolerance).
   */
  lateAtOutageEnd?: boolean
  /** mesh and hybrid: this many devices lose every other reading they publish while the broker is down (a real loss). */
  outageLosers?: number
}

const origin = (i: number): string => `dev${String(i).padStart(2, '0')}`

export function simulateMode (timeline: Timeline, mode: Mode, broken: Broken = {}): ModeObservations {
  const n = timeline.params.devices
  const events = faultEvents(timeline)
  const at = (kind: string): number | undefined => events.find((e) => e.kind === kind)?.atS
  const brokerDown = [at('broker-stop') ?? Infinity, at('broker-start') ?? Infinity]
  const crash = events.find((e) => e.kind === 'crash')
  const crashed = [at('crash') ?? Infinity, at('restart') ?? Infinity]
  const partition = events.find((e) => e.kind === 'partition')
  const cut = new Set(partition?.groups?.slice(1).flat() ?? [])
  const parted = [at('partition') ?? Infinity, at('heal') ?? Infinity]
  const readings: ReadingObservation[] = []
  let lost = 0
  for (let d = 0; d < n; d++) {
    let seq = 0
    let restarted = false
    for (let k = 0; k < timeline.endS; k++) {
      const s = k + 0.05 + d * 0.013
      if (s >= timeline.endS) continue
      if (crash?.devices?.includes(d) === true && s >= (crashed[0] as number) && s < (crashed[1] as number) + 0.5) continue
      if (crash?.devices?.includes(d) === true && s >= (crashed[1] as number) && !restarted) { seq += 1000; restarted = true } // the reserved block
      seq++
      const publishedAt = T0 + s * 1000
      const viaBroker = (): number | undefined => {
        const down = !broken.brokerNeverStopped && s >= (brokerDown[0] as number) && s < (brokerDown[1] as number)
        return down ? T0 + ((brokerDown[1] as number) + 0.6 + d * 0.02) * 1000 : publishedAt + 3 + (d % 3)
      }
      const viaMesh = (): number | undefined => {
        const isolated = cut.has(d) && s >= (parted[0] as number) && s < (parted[1] as number)
        if (broken.lateAtOutageEnd === true && s >= (brokerDown[1] as number) - 1 && s < (brokerDown[1] as number)) return T0 + ((brokerDown[1] as number) + 0.5) * 1000
        return isolated ? T0 + ((parted[1] as number) + 0.8 + d * 0.01) * 1000 : publishedAt + 2 + (d % 5) * 0.5
      }
      let gateway = mode === 'broker' ? viaBroker() : mode === 'mesh' ? viaMesh() : Math.min(viaBroker() as number, viaMesh() as number)
      const outage = s >= (brokerDown[0] as number) && s < (brokerDown[1] as number)
      if (mode !== 'broker' && outage && d < (broken.outageLosers ?? 0) && k % 2 === 1) gateway = undefined
      if (mode === 'mesh' && broken.meshLoses !== undefined && lost < broken.meshLoses && d === 1 && k === 3) { gateway = undefined; lost++ }
      const peer = gateway === undefined || d === timeline.peer ? undefined : gateway + 1
      readings.push({
        origin: origin(d),
        seq,
        publishedAt,
        receivedAt: { ...(gateway === undefined ? {} : { gateway }), ...(peer === undefined ? {} : { peer }) },
        ...(mode === 'hybrid' && broken.hybridDuplicates === true ? { duplicatesAtGateway: 1 } : {})
      })
    }
  }
  const endedAt = T0 + (timeline.endS + timeline.params.drainS) * 1000
  return {
    mode,
    devices: Array.from({ length: n }, (_, i) => origin(i)),
    t0: T0,
    endedAt,
    peer: origin(timeline.peer),
    faults: events.map((e, i) => ({ kind: e.kind, plannedS: e.atS, at: T0 + e.atS * 1000 + 20 + i })),
    readings,
    samples: samples(mode, n, T0, endedAt)
  }
}

function samples (mode: Mode, devices: number, from: number, to: number): ResourceSample[] {
  const out: ResourceSample[] = []
  for (let t = from, i = 0; t <= to; t += 5000, i++) {
    out.push({ at: t, role: 'devices', cpuMs: i * 60 * devices, rssBytes: devices * 40e6, bytesIn: i * 800 * devices, bytesOut: i * 900 * devices, framesIn: i * 6 * devices, framesOut: i * 6 * devices })
    if (mode !== 'mesh') out.push({ at: t, role: 'broker', cpuMs: i * 120, rssBytes: 60e6, bytesIn: i * 900 * devices, bytesOut: i * 950, framesIn: i * 5 * devices, framesOut: i * 5 })
  }
  return out
}

export function quickTimeline (seed = 7): Timeline {
  return planFailover({ ...FAILOVER_QUICK, seed })
}

export function failoverFixture (broken: Broken = {}, timeline = quickTimeline()): { results: FailoverResults, observations: ModeObservations[] } {
  const observations = (['broker', 'mesh', 'hybrid'] as const).map((m) => simulateMode(timeline, m, broken))
  const results = failoverResults({
    timeline, observations, intervalS: 1, startedAt: T0 - 5000, finishedAt: T0 + 200_000, machine: MACHINE, software: SOFTWARE
  })
  return { results, observations }
}

/** `memoryAbove`: mesh fleets larger than this ran on in-memory links (as `scale --transport auto` does above 50). */
export function scaleFixture (memoryAbove = Infinity): ScaleResults {
  const sizes = [5, 10, 20, 50, 100, 200]
  const observations: ScaleObservations[] = []
  for (const mode of ['broker', 'mesh'] as const) {
    for (const n of sizes) {
      const readings: ReadingObservation[] = []
      for (let d = 0; d < n; d++) for (let k = 0; k < 10; k++) readings.push({ origin: origin(d), seq: k + 1, publishedAt: T0 + k * 1000 + d, receivedAt: { gateway: T0 + k * 1000 + d + 2 + Math.log2(n) } })
      const perNode = mode === 'mesh' ? 400 * Math.log2(n) : 450
      const s: ResourceSample[] = [0, 10_000].map((dt, i) => ({ at: T0 + dt, role: 'devices' as const, cpuMs: i * 50 * n, rssBytes: n * 30e6, bytesIn: i * perNode * 5 * n, bytesOut: i * perNode * 5 * n, framesIn: i * 10 * n, framesOut: i * 10 * n }))
      if (mode === 'broker') s.push(...[0, 10_000].map((dt, i) => ({ at: T0 + dt, role: 'broker' as const, cpuMs: i * 30 * n, rssBytes: 50e6 + n * 1e5, bytesIn: i * 450 * 5 * n, bytesOut: i * 450 * 5 * n, framesIn: i * 10 * n, framesOut: i * 10 * n })))
      observations.push({ mode, devices: n, transport: mode === 'mesh' && n > memoryAbove ? 'memory' : 'tcp', t0: T0, endedAt: T0 + 10_000, readings, samples: s })
    }
  }
  return scaleResults({
    seed: 3, parameters: { sizes, modes: ['broker', 'mesh'], intervalS: 1, durationS: 10, warmupS: 5 }, observations,
    startedAt: T0, finishedAt: T0 + 600_000, machine: MACHINE, software: SOFTWARE
  })
}

export function latencyFixture (): LatencyResults {
  const probes: LatencyObservation[] = []
  for (let round = 0; round < 50; round++) {
    probes.push({ path: 'one-hop', round, latencyMs: 0.4 + (round % 10) * 0.05 })
    probes.push({ path: 'three-hop', round, latencyMs: 1.2 + (round % 10) * 0.1 })
    probes.push({ path: 'broker', round, ...(round === 7 ? {} : { latencyMs: 0.9 + (round % 10) * 0.08 }) })
  }
  return latencyResults({
    seed: 5, parameters: { rounds: 50, paths: ['one-hop', 'three-hop', 'broker'], intervalMs: 50 }, probes,
    startedAt: T0, finishedAt: T0 + 60_000, machine: MACHINE, software: SOFTWARE
  })
}
